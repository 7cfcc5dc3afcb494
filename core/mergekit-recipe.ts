/**
 * mergekit's YAML merge configuration, read unchanged: `merge_method`, `base_model`,
 * `models: [{model, parameters}]` or `slices: [{sources: [{model, layer_range, parameters}],
 * parameters}]`, top-level `parameters`, `dtype`, `out_dtype`, `tokenizer_source` /
 * `tokenizer.source`. Parameter settings are a scalar, a gradient (a list interpolated over the
 * layers of a slice) or a list of `{filter, value}` (first substring match wins); a parameter
 * is looked up on the model's source, then the slice, then the top level (mergekit's
 * ConfigReader). Validated at the edge: an unknown method, an unknown parameter, a Hub model
 * name or anything weightspace does not do is an error that names it, never ignored.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDTypeName, type WritableFloatDType } from './dtypes.js';
import { WeightspaceError, q, type ErrorCode } from './errors.js';
import { layerIndexOf, layerKeyOf } from './plan.js';

// ---------------------------------------------------------------------------------------
// methods and their parameters (mergekit's `parameters()` and `tensor_parameters()`)

export const MERGE_METHOD_NAMES = [
  'linear', 'task_arithmetic', 'ties', 'dare_ties', 'dare_linear', 'breadcrumbs', 'breadcrumbs_ties',
  'della', 'della_linear', 'slerp', 'nuslerp', 'multislerp', 'karcher', 'model_stock', 'sce',
  'nearswap', 'ram', 'passthrough',
] as const;
export type MergeMethodName = (typeof MERGE_METHOD_NAMES)[number];

/** mergekit methods weightspace does not implement: named as such in the error. */
const OTHER_MERGEKIT_METHODS = ['arcee_fusion', 'ramplus_tl', 'lrp', 'core_space', 'dare_ties_linear', 'pcb', 'cabs', 'zipit', 'task_adapter'];

/** 'rescale' takes mergekit's booleans and weightspace's norm names. */
export type ParamKind = 'number' | 'integer' | 'boolean' | 'rescale';
export type ParamValue = number | boolean | string;

export interface ParamDef {
  readonly name: string;
  readonly kind: ParamKind;
  /** the default; undefined with `required` (or for an optional parameter without one) */
  readonly default?: ParamValue;
  readonly required?: boolean;
}

export interface MergeMethodDef {
  readonly name: MergeMethodName;
  /** one value per tensor (mergekit `parameters()`): set at the top level or on a slice */
  readonly global: readonly ParamDef[];
  /** one value per model and tensor (mergekit `tensor_parameters()`): also on a model/source */
  readonly perModel: readonly ParamDef[];
  /** 'required': a base_model is the origin of task vectors; 'optional': used when given; 'input': an ordinary input */
  readonly base: 'required' | 'optional' | 'input';
  /** how many models besides the base (per slice) */
  readonly models: { readonly min: number; readonly max?: number };
}

const gta = (name: MergeMethodName, normalize: boolean, rescale: boolean, extra: ParamDef[] = []): MergeMethodDef => ({
  name,
  global: [
    { name: 'int8_mask', kind: 'boolean', default: false },
    { name: 'normalize', kind: 'boolean', default: normalize },
    { name: 'rescale', kind: 'rescale', default: rescale },
    { name: 'lambda', kind: 'number', default: 1 },
  ],
  perModel: [{ name: 'weight', kind: 'number', required: true }, { name: 'density', kind: 'number', default: 1 }, ...extra],
  base: 'required',
  models: { min: 1 },
});
const GAMMA: ParamDef = { name: 'gamma', kind: 'number', default: 0.01 };
const EPSILON: ParamDef = { name: 'epsilon', kind: 'number', default: 0.15 };
const WEIGHT: ParamDef = { name: 'weight', kind: 'number', required: true };

export const MERGE_METHODS: Readonly<Record<MergeMethodName, MergeMethodDef>> = {
  linear: { name: 'linear', global: [{ name: 'normalize', kind: 'boolean', default: true }], perModel: [WEIGHT], base: 'optional', models: { min: 1 } },
  task_arithmetic: gta('task_arithmetic', false, false),
  ties: gta('ties', true, false),
  dare_ties: gta('dare_ties', false, true),
  dare_linear: gta('dare_linear', false, true),
  breadcrumbs: gta('breadcrumbs', false, false, [GAMMA]),
  breadcrumbs_ties: gta('breadcrumbs_ties', false, false, [GAMMA]),
  della: gta('della', true, true, [EPSILON]),
  della_linear: gta('della_linear', false, true, [EPSILON]),
  slerp: { name: 'slerp', global: [{ name: 't', kind: 'number', required: true }], perModel: [], base: 'required', models: { min: 1, max: 1 } },
  nuslerp: {
    name: 'nuslerp',
    global: [{ name: 'nuslerp_row_wise', kind: 'boolean', default: false }, { name: 'nuslerp_flatten', kind: 'boolean', default: true }],
    perModel: [WEIGHT],
    base: 'optional',
    models: { min: 2, max: 2 },
  },
  multislerp: {
    name: 'multislerp',
    global: [{ name: 'normalize_weights', kind: 'boolean', default: true }, { name: 'eps', kind: 'number', default: 1e-8 }],
    perModel: [WEIGHT],
    base: 'optional',
    models: { min: 1 },
  },
  karcher: {
    name: 'karcher',
    global: [{ name: 'max_iter', kind: 'integer', default: 10 }, { name: 'tol', kind: 'number', default: 1e-5 }],
    perModel: [],
    base: 'input',
    models: { min: 1 },
  },
  model_stock: { name: 'model_stock', global: [{ name: 'filter_wise', kind: 'boolean', default: false }], perModel: [], base: 'required', models: { min: 2 } },
  sce: {
    name: 'sce',
    global: [{ name: 'int8_mask', kind: 'boolean', default: false }, { name: 'select_topk', kind: 'number', default: 1 }],
    perModel: [],
    base: 'required',
    models: { min: 1 },
  },
  nearswap: { name: 'nearswap', global: [{ name: 't', kind: 'number', required: true }], perModel: [], base: 'required', models: { min: 1, max: 1 } },
  ram: { name: 'ram', global: [{ name: 'epsilon', kind: 'number', default: 1e-5 }], perModel: [], base: 'required', models: { min: 1 } },
  passthrough: { name: 'passthrough', global: [], perModel: [{ name: 'scale', kind: 'number' }], base: 'input', models: { min: 1, max: 1 } },
};

// ---------------------------------------------------------------------------------------
// the YAML schema

const scalar = z.union([z.number(), z.boolean(), z.string()]);
const scalarOrGradient = z.union([scalar, z.array(scalar).min(1)]);
const conditional = z.object({ filter: z.string().nullish(), value: scalarOrGradient }).strict();
/** mergekit's ParameterSetting: a scalar, a gradient, or {filter, value} entries */
const setting = z.union([scalarOrGradient, conditional, z.array(conditional).min(1)]);
export type ParamSetting = z.infer<typeof setting>;
type ParamMap = Readonly<Record<string, ParamSetting>>;

const parameters = z.record(z.string(), setting).nullish();
const modelRef = z.string().min(1);

const inputModel = z.object({ model: modelRef, parameters }).strict();
const inputSlice = z.object({ model: modelRef, layer_range: z.tuple([z.number().int().min(0), z.number().int().min(0)]), parameters }).strict();
const outputSlice = z.object({
  sources: z.array(inputSlice).min(1),
  base_model: modelRef.nullish(),
  residual_weight: z.number().nullish(),
  parameters,
}).strict();
const tokenizerConfig = z.object({
  source: z.string().nullish(),
  tokens: z.record(z.string(), z.unknown()).nullish(),
  pad_to_multiple_of: z.number().nullish(),
}).strict();

const recipeSchema = z.object({
  merge_method: z.string(),
  base_model: modelRef.nullish(),
  models: z.array(inputModel).nullish(),
  slices: z.array(outputSlice).nullish(),
  modules: z.record(z.string(), z.unknown()).nullish(),
  parameters,
  dtype: z.string().nullish(),
  out_dtype: z.string().nullish(),
  tokenizer_source: z.string().nullish(),
  tokenizer: tokenizerConfig.nullish(),
  chat_template: z.string().nullish(),
}).strict();

// ---------------------------------------------------------------------------------------
// the parsed recipe

export interface RecipeSource {
  /** an absolute local path or an http(s) URL */
  readonly model: string;
  /** [start, end) of the source's layers; undefined in the `models` form: every layer */
  readonly layerRange: readonly [number, number] | undefined;
  readonly parameters: ParamMap;
}

export interface RecipeSlice {
  readonly sources: readonly RecipeSource[];
  readonly parameters: ParamMap;
}

export interface MergekitRecipe {
  readonly method: MergeMethodName;
  readonly baseModel: string | undefined;
  /** `models` form: one slice over every layer (the base appended as a source if not listed, as mergekit does) */
  readonly wholeModels: boolean;
  readonly slices: readonly RecipeSlice[];
  readonly parameters: ParamMap;
  readonly dtype: WritableFloatDType | undefined;
  readonly outDtype: WritableFloatDType | undefined;
  /** 'base': copy the base model's tokenizer files */
  readonly tokenizerSource: 'base' | undefined;
  /** the recipe as written (for the output's manifest) */
  readonly raw: unknown;
}

export interface RecipeOptions {
  /** how the recipe is named in messages (its path) */
  readonly source?: string;
  /** directory relative model paths are resolved against (mergekit: the working directory) */
  readonly cwd?: string;
  /** path existence check (tests replace it) */
  readonly exists?: (path: string) => boolean;
}

function fail(code: ErrorCode, source: string, message: string): never {
  throw new WeightspaceError(code, `${source}: ${message}`);
}

/** Parses mergekit YAML text. */
export function parseMergekitRecipe(text: string, options: RecipeOptions = {}): MergekitRecipe {
  const source = options.source ?? 'recipe';
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    fail('invalid-recipe', source, `not valid YAML: ${(err as Error).message.split('\n')[0]!.toLowerCase()}`);
  }
  return mergekitRecipeFromObject(value, options);
}

/** Validates a recipe already parsed from YAML or JSON. */
export function mergekitRecipeFromObject(value: unknown, options: RecipeOptions = {}): MergekitRecipe {
  const source = options.source ?? 'recipe';
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('invalid-recipe', source, 'expected a mapping with merge_method and models or slices');
  const r = recipeSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      fail('invalid-recipe', source, `unsupported key ${keys.map(q).join(', ')}${path ? ` in ${q(path)}` : ''}: weightspace reads mergekit's merge_method, base_model, models, slices, parameters, dtype, out_dtype, tokenizer_source and tokenizer`);
    }
    fail('invalid-recipe', source, `${path ? `${q(path)}: ` : ''}${issue.message.toLowerCase()}`);
  }
  const cfg = r.data;

  const method = methodOf(cfg.merge_method, source);

  if (cfg.modules) fail('unsupported-option', source, "'modules' (per-module merges) is not supported: use models or slices");
  const forms = [cfg.models, cfg.slices].filter((x) => x && x.length > 0).length;
  if (forms !== 1) fail('invalid-recipe', source, "exactly one of 'models' or 'slices' must be given");
  if (cfg.chat_template) fail('unsupported-option', source, `chat_template ${q(cfg.chat_template)} is not supported: set the chat template in the output's tokenizer_config.json`);

  let tokenizerSource: 'base' | undefined;
  if (cfg.tokenizer_source && cfg.tokenizer) fail('invalid-recipe', source, 'give tokenizer_source or tokenizer, not both');
  const tok = cfg.tokenizer_source ?? cfg.tokenizer?.source;
  if (cfg.tokenizer?.tokens && Object.keys(cfg.tokenizer.tokens).length > 0) fail('unsupported-option', source, "'tokenizer.tokens' is not supported: only tokenizer source 'base' is");
  if (cfg.tokenizer?.pad_to_multiple_of) fail('unsupported-option', source, "'tokenizer.pad_to_multiple_of' is not supported: only tokenizer source 'base' is");
  if (tok !== undefined && tok !== null) {
    if (tok !== 'base') fail('unsupported-option', source, `tokenizer source ${q(tok)} is not supported: only 'base' (copy the base model's tokenizer) is; 'union' and other models need embedding permutation`);
    tokenizerSource = 'base';
  }

  const dtype = cfg.dtype ? parseDTypeName(cfg.dtype) : undefined;
  const outDtype = cfg.out_dtype ? parseDTypeName(cfg.out_dtype) : undefined;

  const model = (m: string): string => resolveModel(m, source, options);
  const baseModel = cfg.base_model ? model(cfg.base_model) : undefined;
  const params = (p: Readonly<Record<string, ParamSetting>> | null | undefined): ParamMap => p ?? {};

  let slices: RecipeSlice[];
  if (cfg.models) {
    const sources: RecipeSource[] = cfg.models.map((m) => ({ model: model(m.model), layerRange: undefined, parameters: params(m.parameters) }));
    // mergekit appends the base model as a source when the models do not list it
    if (baseModel && !sources.some((s) => s.model === baseModel)) sources.push({ model: baseModel, layerRange: undefined, parameters: {} });
    slices = [{ sources, parameters: {} }];
  } else {
    slices = cfg.slices!.map((s, i) => {
      if (s.base_model) fail('unsupported-option', source, `slices[${i}].base_model is not supported: set base_model at the top level`);
      if (s.residual_weight !== undefined && s.residual_weight !== null) fail('unsupported-option', source, `slices[${i}].residual_weight is not supported`);
      const sources = s.sources.map((src, k): RecipeSource => {
        const [a, b] = src.layer_range;
        if (b <= a) fail('invalid-recipe', source, `slices[${i}].sources[${k}].layer_range [${a}, ${b}] is empty: expected [start, end) with end > start`);
        return { model: model(src.model), layerRange: [a, b], parameters: params(src.parameters) };
      });
      const len = sources[0]!.layerRange![1] - sources[0]!.layerRange![0];
      for (const [k, src] of sources.entries()) {
        const l = src.layerRange![1] - src.layerRange![0];
        if (l !== len) fail('invalid-recipe', source, `slices[${i}].sources[${k}] has ${l} layers but sources[0] has ${len}: all sources of a slice must have the same number of layers`);
      }
      return { sources, parameters: params(s.parameters) };
    });
  }

  const recipe: MergekitRecipe = {
    method, baseModel, wholeModels: !!cfg.models, slices, parameters: params(cfg.parameters), dtype, outDtype, tokenizerSource, raw: value,
  };
  checkShape(recipe, source);
  checkParameterNames(recipe, source);
  return recipe;
}

/** mergekit's method name, or an error listing the valid ones. */
function methodOf(name: string, source: string): MergeMethodName {
  if ((MERGE_METHOD_NAMES as readonly string[]).includes(name)) return name as MergeMethodName;
  const valid = MERGE_METHOD_NAMES.join(', ');
  if (OTHER_MERGEKIT_METHODS.includes(name)) {
    fail('unknown-method', source, `merge method ${q(name)} is a mergekit method weightspace does not implement: expected one of ${valid}`);
  }
  const near = closest(name, MERGE_METHOD_NAMES);
  fail('unknown-method', source, `unknown merge method ${q(name)}${near ? ` (did you mean ${q(near)}?)` : ''}: expected one of ${valid}`);
}

/** The nearest name within edit distance 2, if any. */
function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const d = editDistance(word.toLowerCase(), n);
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = cur;
  }
  return prev[b.length]!;
}

const HUB_NAME = /^[A-Za-z0-9][\w.-]*\/[\w.-]+(@[\w./-]+)?$/;

/** A local path (made absolute) or a URL; a Hugging Face Hub name is an error. */
function resolveModel(ref: string, source: string, options: RecipeOptions): string {
  if (/^https?:\/\//.test(ref)) return ref;
  const exists = options.exists ?? existsSync;
  const path = isAbsolute(ref) ? ref : resolve(options.cwd ?? process.cwd(), ref);
  if (exists(path)) return path;
  if (ref.includes('+')) {
    fail('unsupported-option', source, `model ${q(ref)}: mergekit's model+lora syntax is not supported: apply the adapter first (weightspace lora apply) and name the result`);
  }
  if (!ref.startsWith('.') && !ref.startsWith('/') && HUB_NAME.test(ref)) {
    fail('invalid-recipe', source, `model ${q(ref)} looks like a Hugging Face Hub name and is not a local path: weightspace does not download models, give a local path or an http(s) URL of a checkpoint directory`);
  }
  return path;
}

/** Static checks of the models a method needs. */
function checkShape(recipe: MergekitRecipe, source: string): void {
  const def = MERGE_METHODS[recipe.method];
  const m = q(recipe.method);
  if (def.base === 'required' && !recipe.baseModel) fail('invalid-recipe', source, `merge method ${m} needs a base_model`);
  recipe.slices.forEach((s, i) => {
    const where = recipe.wholeModels ? 'models' : `slices[${i}].sources`;
    const others = def.base === 'input' ? s.sources.length : s.sources.filter((x) => x.model !== recipe.baseModel).length;
    if (recipe.method === 'passthrough') {
      if (s.sources.length !== 1) fail('invalid-recipe', source, `merge method 'passthrough' takes exactly one model per slice, ${where} has ${s.sources.length}`);
      return;
    }
    if (def.base === 'required' && !s.sources.some((x) => x.model === recipe.baseModel)) {
      fail('invalid-recipe', source, `${where}: the base_model must be one of the sources of every slice for ${m}`);
    }
    if (others < def.models.min || (def.models.max !== undefined && others > def.models.max)) {
      const want = def.models.max === def.models.min ? `exactly ${def.models.min}` : def.models.max !== undefined ? `${def.models.min} to ${def.models.max}` : `at least ${def.models.min}`;
      fail('invalid-recipe', source, `merge method ${m} takes ${want} model${def.models.min === 1 && def.models.max === 1 ? '' : 's'} besides the base, ${where} has ${others}`);
    }
  });
}

/** Every parameter the recipe sets must be one the method reads, at a level where it is read. */
function checkParameterNames(recipe: MergekitRecipe, source: string): void {
  const def = MERGE_METHODS[recipe.method];
  const globals = new Set(def.global.map((p) => p.name));
  const perModel = new Set(def.perModel.map((p) => p.name));
  const valid = [...globals, ...perModel];
  const list = valid.length ? valid.map(q).join(', ') : 'none';
  const check = (params: ParamMap, where: string, modelLevel: boolean): void => {
    for (const name of Object.keys(params)) {
      if (!globals.has(name) && !perModel.has(name)) {
        fail('unknown-parameter', source, `unknown parameter ${q(name)} for merge method ${q(recipe.method)} in ${where}: valid parameters are ${list}`);
      }
      if (modelLevel && globals.has(name)) {
        fail('invalid-recipe', source, `parameter ${q(name)} of ${q(recipe.method)} is one value for the whole merge: set it in the top-level or slice parameters, not in ${where}`);
      }
    }
  };
  check(recipe.parameters, 'the top-level parameters', false);
  recipe.slices.forEach((s, i) => {
    if (!recipe.wholeModels) check(s.parameters, `slices[${i}].parameters`, false);
    s.sources.forEach((src, k) => check(src.parameters, recipe.wholeModels ? `models[${k}].parameters` : `slices[${i}].sources[${k}].parameters`, true));
  });
}

// ---------------------------------------------------------------------------------------
// evaluating settings

/** mergekit's gradient: piecewise-linear over evenly spaced anchors, t ∈ [0, 1]. */
export function gradientAt(values: readonly number[], t: number): number {
  const scaled = t * (values.length - 1);
  const i0 = Math.floor(scaled);
  const i1 = Math.min(values.length - 1, i0 + 1);
  const frac = scaled - i0;
  return (1 - frac) * values[i0]! + frac * values[i1]!;
}

/** mergekit's t of layer `index` (0-based) of a slice of `count` layers: index/(count−1), 1 for a single layer. */
export function layerT(index: number, count: number): number {
  return count > 1 ? index / (count - 1) : 1;
}

/** mergekit's `evaluate_setting`: the value of a setting for a tensor at t, or undefined when no filter matches. */
export function evaluateSetting(s: ParamSetting, tensor: string, t: number): ParamValue | undefined {
  if (!Array.isArray(s)) {
    if (typeof s === 'object') return evaluateSetting([s], tensor, t);
    return s;
  }
  if (s.length === 0) return undefined;
  if (s.every((e) => typeof e === 'number')) return gradientAt(s as number[], t);
  if (s.every((e) => typeof e !== 'object')) return (s as ParamValue[])[Math.floor(t * (s.length - 1))];
  for (const c of s as { filter?: string | null; value: ParamValue | ParamValue[] }[]) {
    if (c.filter === undefined || c.filter === null || c.filter === '*' || (tensor !== '' && tensor.includes(c.filter))) {
      return evaluateSetting(c.value, tensor, t);
    }
  }
  return undefined;
}

export interface ResolveArgs {
  /** index of the slice the tensor comes from */
  readonly slice: number;
  /** the output tensor's name (filters of global parameters match it) */
  readonly tensor: string;
  /** per source of the slice, the input tensor's name (filters of per-model parameters match it; default `tensor`) */
  readonly sourceTensors?: readonly string[];
  /** position in the slice's layers (layerT), 0 for embeddings, 1 for the final norm and head, as mergekit */
  readonly t: number;
}

export interface TensorParameters {
  /** every global parameter of the method, defaults applied */
  readonly global: Readonly<Record<string, ParamValue>>;
  /** per source of the slice (same order), every per-model parameter; absent when neither set nor defaulted */
  readonly models: readonly Readonly<Record<string, ParamValue>>[];
}

/**
 * Resolves every parameter of the recipe's method for one tensor: source > slice > top level,
 * each setting evaluated at the tensor's name and t; then defaults; then types checked. A
 * required parameter missing is an error naming the model and tensor (not for the base model,
 * whose task vector is zero).
 */
export function resolveTensorParameters(recipe: MergekitRecipe, args: ResolveArgs, source = 'recipe'): TensorParameters {
  const def = MERGE_METHODS[recipe.method];
  const slice = recipe.slices[args.slice];
  if (!slice) throw new WeightspaceError('internal', `recipe has no slice ${args.slice}`);
  const lookup = (name: string, tensor: string, src: RecipeSource | undefined): ParamValue | undefined => {
    if (src) {
      const s = src.parameters[name];
      if (s !== undefined) {
        const v = evaluateSetting(s, tensor, args.t);
        if (v !== undefined) return v;
      }
    }
    const sl = slice.parameters[name];
    if (sl !== undefined) {
      const v = evaluateSetting(sl, tensor, args.t);
      if (v !== undefined) return v;
    }
    const top = recipe.parameters[name];
    return top !== undefined ? evaluateSetting(top, tensor, args.t) : undefined;
  };
  const global: Record<string, ParamValue> = {};
  for (const p of def.global) {
    const v = lookup(p.name, args.tensor, undefined) ?? p.default;
    if (v === undefined) {
      if (p.required) fail('invalid-recipe', source, `merge method ${q(recipe.method)} needs parameter ${q(p.name)} (for tensor ${q(args.tensor)})`);
      continue;
    }
    global[p.name] = checkType(p, v, source, args.tensor);
  }
  const models = slice.sources.map((src, k) => {
    const tensor = args.sourceTensors?.[k] ?? args.tensor;
    const isBase = src.model === recipe.baseModel && def.base !== 'input';
    const out: Record<string, ParamValue> = {};
    for (const p of def.perModel) {
      const v = lookup(p.name, tensor, src) ?? p.default;
      if (v === undefined) {
        if (p.required && !isBase) fail('invalid-recipe', source, `model ${q(src.model)} needs parameter ${q(p.name)} for merge method ${q(recipe.method)} (tensor ${q(tensor)})`);
        continue;
      }
      out[p.name] = checkType(p, v, source, tensor);
    }
    return out;
  });
  return { global, models };
}

function checkType(p: ParamDef, v: ParamValue, source: string, tensor: string): ParamValue {
  const bad = (want: string): never => fail('invalid-recipe', source, `parameter ${q(p.name)} must be ${want}, got ${q(String(v))} (tensor ${q(tensor)})`);
  switch (p.kind) {
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) bad('a number');
      return v;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) bad('a whole number');
      return v;
    case 'boolean':
      if (typeof v !== 'boolean') bad('true or false');
      return v;
    case 'rescale':
      if (typeof v === 'boolean' || v === 'l1' || v === 'density' || v === 'none') return v;
      return bad("true, false, 'l1', 'density' or 'none'");
  }
}

/**
 * Every parameter for one model and one of its tensors: t from the tensor's layer within the
 * slice (layerT), 0 for embeddings, 1 for the final norm and head, as mergekit's planner.
 * `layers` is the model's layer count (the `models` form covers all of them).
 */
export function parametersFor(
  recipe: MergekitRecipe, args: { readonly model: string; readonly tensor: string; readonly layers: number; readonly slice?: number }, source = 'recipe',
): { readonly global: Readonly<Record<string, ParamValue>>; readonly model: Readonly<Record<string, ParamValue>> } {
  const s = args.slice ?? 0;
  const slice = recipe.slices[s];
  const k = slice?.sources.findIndex((x) => x.model === args.model) ?? -1;
  if (!slice || k < 0) throw new WeightspaceError('invalid-recipe', `${source}: model ${q(args.model)} is not a source of slice ${s}`);
  const layer = layerIndexOf(args.tensor);
  let t: number;
  if (layer === undefined) t = ['final', 'head'].includes(layerKeyOf(args.tensor)) ? 1 : 0;
  else {
    const [from, to] = slice.sources[k]!.layerRange ?? [0, args.layers];
    t = layerT(layer - from, to - from);
  }
  const r = resolveTensorParameters(recipe, { slice: s, tensor: args.tensor, t }, source);
  return { global: r.global, model: r.models[k]! };
}
