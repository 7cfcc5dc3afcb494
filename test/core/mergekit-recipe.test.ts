import { describe, it, expect } from 'vitest';
import {
  MERGE_METHODS, MERGE_METHOD_NAMES, evaluateSetting, gradientAt, layerT, parametersFor, parseMergekitRecipe, resolveTensorParameters,
  type RecipeOptions,
} from '../../core/mergekit-recipe.js';

// every model path "exists" except Hub-like names that start with "hub-org/"
const opts: RecipeOptions = { cwd: '/work', exists: (p) => !p.includes('hub-org') };
const parse = (yaml: string): ReturnType<typeof parseMergekitRecipe> => parseMergekitRecipe(yaml, opts);
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};
const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

describe('mergekit recipe: settings', () => {
  it('golden: gradient [0, 0.5, 0.3, 0.7, 1] at layer 10 of 40 → 0.494872', () => {
    expect(+gradientAt([0, 0.5, 0.3, 0.7, 1], layerT(10, 40)).toFixed(6)).toBe(0.494872);
    const r = parse(`
merge_method: slerp
base_model: ./a
slices:
  - sources:
      - model: ./a
        layer_range: [0, 40]
      - model: ./b
        layer_range: [0, 40]
parameters:
  t: [0, 0.5, 0.3, 0.7, 1]
`);
    const p = resolveTensorParameters(r, { slice: 0, tensor: 'model.layers.10.mlp.up_proj.weight', t: layerT(10, 40) });
    expect(+(p.global.t as number).toFixed(6)).toBe(0.494872);
  });

  it('parametersFor: a model, a tensor name and the layer count (models form): t from the layer, 0/1 outside layers', () => {
    const r = parse(`
merge_method: ties
base_model: ./base
models:
  - model: ./ft1
    parameters:
      weight: [0, 0.5, 0.3, 0.7, 1]
      density: 0.5
`);
    const w = (tensor: string): unknown => parametersFor(r, { model: '/work/ft1', tensor, layers: 40 }).model.weight;
    expect(+(w('model.layers.10.mlp.up_proj.weight') as number).toFixed(6)).toBe(0.494872);
    expect(w('model.embed_tokens.weight')).toBe(0);
    expect(w('lm_head.weight')).toBe(1);
    expect(w('model.norm.weight')).toBe(1);
    expect(parametersFor(r, { model: '/work/base', tensor: 'model.layers.0.mlp.up_proj.weight', layers: 40 }).model).toEqual({ density: 1 });
    expect(code(() => parametersFor(r, { model: '/work/other', tensor: 'x', layers: 40 }))).toBe('invalid-recipe');
  });

  it('gradients hit their anchors at the ends and interpolate linearly; t of a one-layer slice is 1', () => {
    expect(gradientAt([0.2, 0.8], 0)).toBe(0.2);
    expect(gradientAt([0.2, 0.8], 1)).toBe(0.8);
    expect(gradientAt([0.2, 0.8], 0.25)).toBeCloseTo(0.35, 12);
    expect(gradientAt([5], 0.7)).toBe(5);
    expect(layerT(0, 1)).toBe(1);
    expect(layerT(3, 4)).toBe(1);
  });

  it('filter lists: first substring match wins, no filter or "*" matches everything, no match is undefined', () => {
    const s = [{ filter: 'self_attn', value: 0.1 }, { filter: 'mlp', value: [0, 1] }, { value: 0.5 }];
    expect(evaluateSetting(s, 'model.layers.0.self_attn.q_proj.weight', 0)).toBe(0.1);
    expect(evaluateSetting(s, 'model.layers.0.mlp.up_proj.weight', 0.5)).toBe(0.5);
    expect(evaluateSetting(s, 'model.layers.0.mlp.up_proj.weight', 1)).toBe(1);
    expect(evaluateSetting(s, 'model.norm.weight', 0)).toBe(0.5);
    expect(evaluateSetting([{ filter: '*', value: 2 }], 'x', 0)).toBe(2);
    expect(evaluateSetting([{ filter: 'mlp', value: 2 }], 'model.embed_tokens.weight', 0)).toBeUndefined();
  });

  it('lists of non-numbers step instead of interpolating', () => {
    expect(evaluateSetting([true, false], 'x', 0.4)).toBe(true);
    expect(evaluateSetting([true, false], 'x', 1)).toBe(false);
  });

  it('precedence: source > slice > top level; an unmatched filter falls through', () => {
    const r = parse(`
merge_method: ties
base_model: ./base
slices:
  - sources:
      - model: ./base
        layer_range: [0, 4]
      - model: ./ft1
        layer_range: [0, 4]
        parameters:
          weight: [{filter: mlp, value: 0.9}]
      - model: ./ft2
        layer_range: [0, 4]
    parameters:
      weight: 0.4
      density: 0.7
parameters:
  weight: 0.1
  density: 0.2
  normalize: false
`);
    const mlp = resolveTensorParameters(r, { slice: 0, tensor: 'model.layers.1.mlp.up_proj.weight', t: 0 });
    expect(mlp.models.map((m) => m.weight)).toEqual([0.4, 0.9, 0.4]);
    expect(mlp.models.map((m) => m.density)).toEqual([0.7, 0.7, 0.7]);
    const attn = resolveTensorParameters(r, { slice: 0, tensor: 'model.layers.1.self_attn.o_proj.weight', t: 0 });
    expect(attn.models.map((m) => m.weight)).toEqual([0.4, 0.4, 0.4]);
    expect(attn.global).toEqual({ int8_mask: false, normalize: false, rescale: false, lambda: 1 });
  });

  it("defaults follow mergekit's method table", () => {
    const g = (m: string): Record<string, unknown> => Object.fromEntries(MERGE_METHODS[m as 'ties'].global.map((p) => [p.name, p.default]));
    expect(g('ties')).toMatchObject({ normalize: true, rescale: false, lambda: 1 });
    expect(g('dare_ties')).toMatchObject({ normalize: false, rescale: true });
    expect(g('dare_linear')).toMatchObject({ normalize: false, rescale: true });
    expect(g('della')).toMatchObject({ normalize: true, rescale: true });
    expect(g('della_linear')).toMatchObject({ normalize: false, rescale: true });
    expect(g('breadcrumbs')).toMatchObject({ normalize: false, rescale: false });
    expect(g('task_arithmetic')).toMatchObject({ normalize: false, rescale: false });
    expect(g('linear')).toEqual({ normalize: true });
    expect(g('karcher')).toEqual({ max_iter: 10, tol: 1e-5 });
    expect(g('nuslerp')).toEqual({ nuslerp_row_wise: false, nuslerp_flatten: true });
    expect(g('multislerp')).toEqual({ normalize_weights: true, eps: 1e-8 });
    expect(g('sce')).toMatchObject({ select_topk: 1 });
    expect(g('ram')).toEqual({ epsilon: 1e-5 });
    const pm = (m: string): Record<string, unknown> => Object.fromEntries(MERGE_METHODS[m as 'ties'].perModel.map((p) => [p.name, p.default]));
    expect(pm('breadcrumbs_ties')).toMatchObject({ density: 1, gamma: 0.01 });
    expect(pm('della')).toMatchObject({ density: 1, epsilon: 0.15 });
    expect(MERGE_METHOD_NAMES).toHaveLength(18);
  });

  it('a required parameter missing names the model and tensor; the base model needs none', () => {
    const r = parse(`
merge_method: ties
base_model: ./base
models:
  - model: ./base
  - model: ./ft1
    parameters: {weight: [{filter: mlp, value: 1}], density: 0.5}
`);
    expect(resolveTensorParameters(r, { slice: 0, tensor: 'model.layers.0.mlp.up_proj.weight', t: 0 }).models[0]).toEqual({ density: 1 });
    const m = message(() => resolveTensorParameters(r, { slice: 0, tensor: 'model.layers.0.self_attn.q_proj.weight', t: 0 }));
    expect(m).toContain("'weight'");
    expect(m).toContain("'/work/ft1'");
    expect(m).toContain("'model.layers.0.self_attn.q_proj.weight'");
  });

  it('parameter types are checked; rescale takes booleans, l1, density', () => {
    const r = parse(`
merge_method: dare_linear
base_model: ./base
models:
  - model: ./ft1
    parameters: {weight: abc}
parameters: {rescale: density}
`);
    expect(code(() => resolveTensorParameters(r, { slice: 0, tensor: 'x', t: 0 }))).toBe('invalid-recipe');
    const ok = parse(`
merge_method: dare_linear
base_model: ./base
models:
  - model: ./ft1
    parameters: {weight: 1, density: 0.5}
parameters: {rescale: density}
`);
    expect(resolveTensorParameters(ok, { slice: 0, tensor: 'x', t: 0 }).global.rescale).toBe('density');
  });
});

describe('mergekit recipe: structure', () => {
  it('the models form becomes one slice over every layer, the base appended when not listed', () => {
    const r = parse(`
merge_method: task_arithmetic
base_model: ./base
models:
  - model: ./ft1
    parameters: {weight: 1}
dtype: bfloat16
out_dtype: float16
tokenizer_source: base
`);
    expect(r.wholeModels).toBe(true);
    expect(r.slices).toHaveLength(1);
    expect(r.slices[0]!.sources.map((s) => s.model)).toEqual(['/work/ft1', '/work/base']);
    expect(r.slices[0]!.sources[0]!.layerRange).toBeUndefined();
    expect(r.dtype).toBe('BF16');
    expect(r.outDtype).toBe('F16');
    expect(r.tokenizerSource).toBe('base');
  });

  it("reads mergekit's own examples: a slerp with filter lists and a passthrough frankenmerge", () => {
    const slerp = parse(`
slices:
  - sources:
      - model: psmathur/orca_mini_v3_13b
        layer_range: [0, 40]
      - model: garage-bAInd/Platypus2-13B
        layer_range: [0, 40]
merge_method: slerp
base_model: psmathur/orca_mini_v3_13b
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5 # fallback for rest of tensors
dtype: float16
`);
    expect(slerp.method).toBe('slerp');
    const t = (tensor: string, i: number): unknown => resolveTensorParameters(slerp, { slice: 0, tensor, t: layerT(i, 40) }).global.t;
    expect(t('model.layers.0.self_attn.k_proj.weight', 0)).toBe(0);
    expect(t('model.layers.39.mlp.up_proj.weight', 39)).toBe(0);
    expect(t('model.layers.39.input_layernorm.weight', 39)).toBe(0.5);
    const frank = parse(`
slices:
  - sources:
    - model: ./a
      layer_range: [0, 24]
  - sources:
    - model: ./b
      layer_range: [8, 32]
merge_method: passthrough
dtype: bfloat16
`);
    expect(frank.slices.map((s) => s.sources[0]!.layerRange)).toEqual([[0, 24], [8, 32]]);
  });

  it('relative paths resolve against the working directory; URLs stay as they are', () => {
    const r = parse(`
merge_method: linear
models:
  - model: models/ft1
    parameters: {weight: 0.5}
  - model: https://example.com/models/ft2
    parameters: {weight: 0.5}
`);
    expect(r.slices[0]!.sources.map((s) => s.model)).toEqual(['/work/models/ft1', 'https://example.com/models/ft2']);
  });
});

describe('mergekit recipe: errors', () => {
  const two = `
base_model: ./base
models:
  - model: ./base
  - model: ./ft1
    parameters: {weight: 1, density: 0.5}
`;

  it('unknown method: unknown-method listing the valid ones (and a near miss)', () => {
    const m = message(() => parse(`merge_method: tie\n${two}`));
    expect(code(() => parse(`merge_method: tie\n${two}`))).toBe('unknown-method');
    expect(m).toContain("unknown merge method 'tie'");
    expect(m).toContain("did you mean 'ties'");
    for (const name of MERGE_METHOD_NAMES) expect(m).toContain(name);
    expect(message(() => parse(`merge_method: arcee_fusion\n${two}`))).toContain('does not implement');
  });

  it('unknown parameter: unknown-parameter listing the valid ones', () => {
    const bad = `merge_method: ties\n${two}\nparameters: {densty: 0.5}\n`;
    expect(code(() => parse(bad))).toBe('unknown-parameter');
    const m = message(() => parse(bad));
    expect(m).toContain("'densty'");
    for (const p of ['int8_mask', 'normalize', 'rescale', 'lambda', 'weight', 'density']) expect(m).toContain(`'${p}'`);
    // a parameter of another method
    expect(code(() => parse(`merge_method: slerp\n${two}\nparameters: {t: 0.5, gamma: 0.1}\n`))).toBe('unknown-parameter');
  });

  it('a whole-merge parameter set on a model is an error (mergekit would silently ignore it)', () => {
    const bad = `
merge_method: ties
base_model: ./base
models:
  - model: ./ft1
    parameters: {weight: 1, lambda: 2}
`;
    expect(code(() => parse(bad))).toBe('invalid-recipe');
    expect(message(() => parse(bad))).toContain("'lambda'");
  });

  it('a Hugging Face Hub name: invalid-recipe asking for a local path or URL', () => {
    const bad = `
merge_method: linear
models:
  - model: hub-org/some-model
    parameters: {weight: 1}
`;
    expect(code(() => parse(bad))).toBe('invalid-recipe');
    expect(message(() => parse(bad))).toMatch(/hub-org\/some-model.*local path or an http\(s\) URL/);
    // an existing local directory named like org/model is fine
    expect(() => parse(bad.replace('hub-org', 'local-org'))).not.toThrow();
    expect(code(() => parse(bad.replace('hub-org/some-model', 'hub-org/m+hub-org/lora')))).toBe('unsupported-option');
  });

  it('unsupported features are errors naming them', () => {
    expect(code(() => parse(`merge_method: ties\n${two}\nmodules: {text: {models: []}}\n`))).toBe('unsupported-option');
    expect(code(() => parse(`merge_method: ties\n${two}\ntokenizer_source: union\n`))).toBe('unsupported-option');
    expect(message(() => parse(`merge_method: ties\n${two}\ntokenizer_source: union\n`))).toContain("'union'");
    expect(code(() => parse(`merge_method: ties\n${two}\ntokenizer: {source: base, tokens: {'<x>': {source: ./ft1}}}\n`))).toBe('unsupported-option');
    expect(parse(`merge_method: ties\n${two}\ntokenizer: {source: base}\n`).tokenizerSource).toBe('base');
    expect(code(() => parse(`merge_method: ties\n${two}\nchat_template: chatml\n`))).toBe('unsupported-option');
    const extra = message(() => parse(`merge_method: ties\n${two}\nname: my-merge\n`));
    expect(extra).toContain("unsupported key 'name'");
    expect(code(() => parse(`merge_method: ties\n${two}\ndtype: int8\n`))).toBe('unsupported-dtype');
  });

  it('model counts and layer ranges are checked', () => {
    expect(code(() => parse('merge_method: slerp\nmodels:\n  - model: ./a\n  - model: ./b\nparameters: {t: 0.5}\n'))).toBe('invalid-recipe'); // no base
    expect(message(() => parse(`merge_method: slerp\nbase_model: ./a\nmodels:\n  - model: ./a\n  - model: ./b\n  - model: ./c\nparameters: {t: 0.5}\n`))).toContain('exactly 1 model');
    expect(message(() => parse(`merge_method: model_stock\nbase_model: ./a\nmodels:\n  - model: ./b\n`))).toContain('at least 2');
    expect(code(() => parse(`
merge_method: passthrough
slices:
  - sources:
      - {model: ./a, layer_range: [0, 4]}
      - {model: ./b, layer_range: [0, 4]}
`))).toBe('invalid-recipe');
    expect(message(() => parse(`
merge_method: linear
slices:
  - sources:
      - {model: ./a, layer_range: [0, 4], parameters: {weight: 1}}
      - {model: ./b, layer_range: [0, 5], parameters: {weight: 1}}
`))).toContain('same number of layers');
    expect(code(() => parse('merge_method: linear\nmodels: []\n'))).toBe('invalid-recipe');
    expect(code(() => parse('merge_method: [x]\n'))).toBe('invalid-recipe');
    expect(code(() => parse('::: not yaml'))).toBe('invalid-recipe');
  });
});
