/**
 * `merge`: mergekit's YAML recipes, every method, planned tensor by tensor. The recipe's
 * slices become output layers (stacked and renumbered, as mergekit does: a passthrough
 * frankenmerge rewrites num_hidden_layers); embeddings are planned with the first slice's
 * models at t = 0, the final norm and head with the last slice's at t = 1; every parameter
 * is resolved per tensor (core/mergekit-recipe.ts) and each method becomes one kernel with
 * settings (the task-arithmetic family is one kernel, as in mergekit).
 */
import { basename } from 'node:path';
import { readConfig, type Checkpoint, type TensorRef } from '../../core/checkpoint.js';
import { isFloatDType, type DType, type WritableFloatDType } from '../../core/dtypes.js';
import { WeightspaceError, fmtShape, q } from '../../core/errors.js';
import type { KernelName } from '../../core/kernel-contract.js';
import {
  layerT, mergekitRecipeFromObject, resolveTensorParameters, type MergekitRecipe, type ParamValue,
} from '../../core/mergekit-recipe.js';
import { nameFilter } from '../../core/name-glob.js';
import { compareNames } from '../../core/output-layout.js';
import { layerIndexOf, layerKeyOf, type Plan } from '../../core/plan.js';
import type {
  Consensus, KarcherParams, MergeSpec, ModelStockParams, MultislerpParams, NearswapParams, NuslerpParams, RamParams, Rescale, SceParams,
  SlerpParams, Sparsify, TaskArithmeticParams,
} from '../../core/specs/merge-spec.js';
import { buildPlan, inputOf, openModels, type TensorRecipe } from '../plan-builder.js';
import { modelCardFiles } from './model-card.js';
import type { OpDef } from './op-def.js';

/** The task-arithmetic family: mergekit's GeneralizedTaskArithmeticMerge settings per method. */
const GTA: Partial<Record<MergekitRecipe['method'], { sparsify: Sparsify; consensus: Consensus }>> = {
  task_arithmetic: { sparsify: 'none', consensus: 'none' },
  ties: { sparsify: 'magnitude', consensus: 'sum' },
  dare_ties: { sparsify: 'random', consensus: 'sum' },
  dare_linear: { sparsify: 'random', consensus: 'none' },
  breadcrumbs: { sparsify: 'breadcrumbs', consensus: 'none' },
  breadcrumbs_ties: { sparsify: 'breadcrumbs', consensus: 'sum' },
  della: { sparsify: 'della', consensus: 'sum' },
  della_linear: { sparsify: 'della', consensus: 'none' },
};

const LAYER = /((?:^|\.)(?:layers|h|blocks|layer)\.)(\d+)(\.)/;

/** The same tensor name in another layer. */
function withLayer(name: string, layer: number): string {
  return name.replace(LAYER, (_, a: string, _i: string, b: string) => `${a}${layer}${b}`);
}

/** Tensor names of a checkpoint per layer, and those outside layers. */
function layersOf(ckpt: Checkpoint): { layers: string[][]; outside: string[] } {
  const layers: string[][] = [];
  const outside: string[] = [];
  for (const name of [...ckpt.tensors.keys()].sort(compareNames)) {
    const i = layerIndexOf(name);
    if (i === undefined) outside.push(name);
    else (layers[i] ??= []).push(name);
  }
  for (let i = 0; i < layers.length; i++) layers[i] ??= [];
  return { layers, outside };
}

interface Source {
  readonly model: string;
  readonly ckpt: Checkpoint;
}

/** One output tensor: its slice, the input tensor of each of the slice's sources, t. */
interface Placement {
  readonly name: string;
  readonly slice: number;
  readonly inputs: readonly string[];
  readonly t: number;
}

export const mergeOp: OpDef<MergeSpec> = {
  op: 'merge',
  async plan(spec) {
    const where = spec.recipePath ?? 'recipe';
    if (spec.shardParams !== undefined && spec.shardSize !== undefined) {
      throw new WeightspaceError('invalid-spec', `give shardSize (bytes) or shardParams (parameters per shard), not both: got ${spec.shardSize} and ${spec.shardParams}`);
    }
    const recipe = mergekitRecipeFromObject(spec.recipe, { source: where, ...(spec.cwd ? { cwd: spec.cwd } : {}) });

    // every model once, in order of first mention: its position keys its random masks
    const locations: string[] = [];
    for (const m of [recipe.baseModel, ...recipe.slices.flatMap((s) => s.sources.map((x) => x.model))]) {
      if (m !== undefined && !locations.includes(m)) locations.push(m);
    }
    const opened = await openModels(locations.map((l) => ({ name: l, location: l })));
    const ckptOf = (m: string): Checkpoint => opened.get(m)!;
    const slices = recipe.slices.map((s) => s.sources.map((x): Source => ({ model: x.model, ckpt: ckptOf(x.model) })));
    const refOf = (s: number): Source => slices[s]!.find((x) => x.model === recipe.baseModel) ?? slices[s]![0]!;
    const home = recipe.baseModel ? ckptOf(recipe.baseModel) : slices[0]![0]!.ckpt;

    // where every output tensor comes from
    const placements: Placement[] = [];
    const first = layersOf(refOf(0).ckpt);
    const last = layersOf(refOf(slices.length - 1).ckpt);
    const pre = first.outside.filter((n) => !['final', 'head'].includes(layerKeyOf(n)));
    const post = last.outside.filter((n) => ['final', 'head'].includes(layerKeyOf(n)));
    for (const name of pre) placements.push({ name, slice: 0, inputs: slices[0]!.map(() => name), t: 0 });
    let outLayers = 0;
    recipe.slices.forEach((slice, s) => {
      const ref = refOf(s);
      const refLayers = layersOf(ref.ckpt).layers;
      const range = (k: number): readonly [number, number] => slice.sources[k]!.layerRange ?? [0, refLayers.length];
      const count = range(0)[1] - range(0)[0];
      slices[s]!.forEach((src, k) => {
        const have = layersOf(src.ckpt).layers.length;
        const [a, b] = range(k);
        if (b > have) {
          throw new WeightspaceError('invalid-recipe', `${where}: ${recipe.wholeModels ? 'models' : `slices[${s}].sources[${k}]`}: model ${q(src.model)} has ${have} layers, the merge needs layers ${a} to ${b - 1}`);
        }
      });
      const refIndex = slices[s]!.indexOf(ref);
      for (let i = 0; i < count; i++) {
        const names = refLayers[range(refIndex)[0] + i] ?? [];
        for (const n of names) {
          placements.push({
            name: withLayer(n, outLayers),
            slice: s,
            inputs: slice.sources.map((_, k) => withLayer(n, range(k)[0] + i)),
            t: layerT(i, count),
          });
        }
        outLayers++;
      }
    });
    for (const name of post) placements.push({ name, slice: slices.length - 1, inputs: slices[slices.length - 1]!.map(() => name), t: 1 });

    const keep = nameFilter(spec.include, spec.exclude);
    const outDtype = spec.dtype ?? recipe.outDtype ?? recipe.dtype;
    const seed = spec.seed ?? 0;
    const warnings = new Set<string>();
    const tensors: TensorRecipe[] = [];
    for (const p of placements) {
      const srcs = slices[p.slice]!;
      const refs = srcs.map((src, k) => tensorOf(src, p.inputs[k]!, where));
      const ref = refs[srcs.indexOf(refOf(p.slice))]!;
      for (const [k, r] of refs.entries()) {
        if (r.shape.length !== ref.shape.length || r.shape.some((d, i) => d !== ref.shape[i])) {
          throw new WeightspaceError('shape-mismatch', `tensor ${q(r.name)}: shape ${fmtShape(r.shape)} in ${q(srcs[k]!.model)} does not match ${fmtShape(ref.shape)} in ${q(refOf(p.slice).model)}`);
        }
        if (isFloatDType(r.dtype) !== isFloatDType(ref.dtype)) {
          throw new WeightspaceError('dtype-mismatch', `tensor ${q(r.name)}: dtype ${r.dtype} in ${q(srcs[k]!.model)} does not match ${ref.dtype} in ${q(refOf(p.slice).model)}`);
        }
      }
      const dtype = outputDtypeOf(ref.dtype, outDtype);
      if (!isFloatDType(ref.dtype) || !keep(p.name)) {
        tensors.push({ name: p.name, kernel: 'copy', params: {}, inputs: [inputOf(ref)], shape: ref.shape, dtype });
        continue;
      }
      const params = resolveTensorParameters(recipe, { slice: p.slice, tensor: p.name, sourceTensors: p.inputs, t: p.t }, where);
      if (params.global['int8_mask'] === true) warnings.add('int8_mask has no effect: weightspace computes every merge in f32');
      const k = kernelFor(recipe, srcs, refs, params, { locations, seed, tensor: p.name, where });
      tensors.push({ name: p.name, kernel: k.kernel, params: k.params, inputs: k.inputs.map((r) => inputOf(r)), shape: ref.shape, dtype });
    }

    const configPatch: Record<string, unknown> = {};
    const homeConfig = await readConfig(home);
    const homeLayers = layersOf(home).layers.length;
    const declared = typeof homeConfig?.['num_hidden_layers'] === 'number' ? homeConfig['num_hidden_layers'] : homeLayers;
    if (!recipe.wholeModels && outLayers !== declared) configPatch['num_hidden_layers'] = outLayers;
    if (outDtype) configPatch['torch_dtype'] = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' }[outDtype];

    const plan: Plan = buildPlan({
      op: 'merge',
      spec,
      outputs: [{
        subdir: '',
        label: `${recipe.method} of ${locations.length} model${locations.length === 1 ? '' : 's'}`,
        copyFilesFrom: home.dir,
        // mergekit writes the recipe's tokenizer source even with --no-copy-tokenizer
        ...(spec.copyTokenizer === false && !recipe.tokenizerSource ? { copyTokenizer: false } : {}),
        configPatch,
        ...(spec.modelCard ? { extraFiles: modelCardFiles(spec.recipe, recipe.method, basename(spec.out)) } : {}),
        manifest: { mergekit: recipe.raw, method: recipe.method, seed, layers: outLayers },
      }],
      tensors,
      ...(spec.shardParams ? { shardSize: spec.shardParams, shardUnit: 'elements' as const } : spec.shardSize ? { shardSize: spec.shardSize } : {}),
      warnings: [...warnings],
    });
    return plan;
  },
};

function tensorOf(src: Source, name: string, where: string): TensorRef {
  const t = src.ckpt.tensors.get(name);
  if (!t) throw new WeightspaceError('missing-tensor', `${where}: tensor ${q(name)} is missing from ${q(src.model)}`);
  return t;
}

/** The output dtype of a tensor: the recipe's (out_dtype, else dtype) for floating point, else the input's (F64/F8 written as F32). */
function outputDtypeOf(input: DType, requested: WritableFloatDType | undefined): DType {
  if (!isFloatDType(input)) return input;
  if (requested) return requested;
  return input === 'F32' || input === 'F16' || input === 'BF16' ? input : 'F32';
}

interface KernelChoice {
  readonly kernel: KernelName;
  readonly params: unknown;
  readonly inputs: readonly TensorRef[];
}

interface Ctx {
  readonly locations: readonly string[];
  readonly seed: number;
  readonly tensor: string;
  readonly where: string;
}

const num = (v: ParamValue | undefined, fallback = 0): number => (typeof v === 'number' ? v : fallback);
const bool = (v: ParamValue | undefined): boolean => v === true;

/** One tensor's kernel, parameters and inputs for the recipe's method. */
function kernelFor(
  recipe: MergekitRecipe, srcs: readonly Source[], refs: readonly TensorRef[],
  params: ReturnType<typeof resolveTensorParameters>, ctx: Ctx,
): KernelChoice {
  const g = params.global;
  const baseIndex = srcs.findIndex((s) => s.model === recipe.baseModel);
  const others = srcs.map((_, k) => k).filter((k) => k !== baseIndex);
  const base = baseIndex >= 0 ? refs[baseIndex] : undefined;
  const copyOf = (r: TensorRef): KernelChoice => ({ kernel: 'copy', params: {}, inputs: [r] });
  const m = recipe.method;
  const gta = GTA[m];
  if (gta) {
    if (others.length === 0) return copyOf(base!);
    const rescale: Rescale = g['rescale'] === true ? 'l1' : g['rescale'] === false ? 'none' : (g['rescale'] as Rescale);
    const per = (name: string, fallback: number): number[] => others.map((k) => num(params.models[k]![name], fallback));
    const p: TaskArithmeticParams = {
      sparsify: gta.sparsify,
      consensus: gta.consensus,
      rescale,
      normalize: bool(g['normalize']),
      lambda: num(g['lambda'], 1),
      weights: per('weight', 0),
      densities: per('density', 1),
      ...(gta.sparsify === 'breadcrumbs' ? { gammas: per('gamma', 0.01) } : {}),
      ...(gta.sparsify === 'della' ? { epsilons: per('epsilon', 0.15) } : {}),
      seed: ctx.seed,
      modelKeys: others.map((k) => ctx.locations.indexOf(srcs[k]!.model)),
    };
    if (gta.sparsify === 'della') {
      others.forEach((k, i) => {
        const d = p.densities![i]!;
        const e = p.epsilons![i]!;
        if (d > 0 && d < 1 && (d - e <= 0 || d + e >= 1)) {
          throw new WeightspaceError('invalid-recipe', `${ctx.where}: ${m} needs density ± epsilon inside (0, 1): model ${q(srcs[k]!.model)} has density ${d} and epsilon ${e} for tensor ${q(ctx.tensor)}`);
        }
      });
    }
    return { kernel: 'task-arithmetic', params: p, inputs: [base!, ...others.map((k) => refs[k]!)] };
  }
  switch (m) {
    case 'linear': {
      const used = srcs.map((_, k) => k).filter((k) => typeof params.models[k]!['weight'] === 'number');
      const w = used.map((k) => params.models[k]!['weight'] as number);
      let f = 1;
      if (g['normalize'] === true) {
        const sum = w.reduce((a, b) => a + b, 0);
        if (sum === 0) throw new WeightspaceError('invalid-recipe', `${ctx.where}: linear with normalize: the weights of tensor ${q(ctx.tensor)} sum to 0`);
        f = 1 / sum;
      }
      return { kernel: 'linear', params: { coefficients: [w.map((x) => x * f)] }, inputs: used.map((k) => refs[k]!) };
    }
    case 'passthrough': {
      const scale = params.models[0]!['scale'];
      if (typeof scale === 'number' && scale !== 1) return { kernel: 'linear', params: { coefficients: [[scale]] }, inputs: [refs[0]!] };
      return copyOf(refs[0]!);
    }
    case 'slerp': {
      const p: SlerpParams = { t: num(g['t']) };
      return { kernel: 'slerp', params: p, inputs: [base!, refs[others[0]!]!] };
    }
    case 'nearswap': {
      const t = num(g['t']);
      if (!(t > 0)) throw new WeightspaceError('invalid-recipe', `${ctx.where}: nearswap needs t > 0, got ${t} for tensor ${q(ctx.tensor)}`);
      const p: NearswapParams = { t };
      return { kernel: 'nearswap', params: p, inputs: [base!, refs[others[0]!]!] };
    }
    case 'nuslerp': {
      const [a, b] = others as [number, number];
      const wa = num(params.models[a]!['weight']);
      const wb = num(params.models[b]!['weight']);
      const p: NuslerpParams = {
        t: Math.abs(wa + wb) < 1e-6 ? 0.5 : wb / (wa + wb),
        mode: g['nuslerp_flatten'] !== false ? 'flat' : g['nuslerp_row_wise'] === true ? 'columns' : 'rows',
        hasBase: base !== undefined,
      };
      return { kernel: 'nuslerp', params: p, inputs: [...(base ? [base] : []), refs[a]!, refs[b]!] };
    }
    case 'multislerp': {
      const p: MultislerpParams = {
        weights: others.map((k) => num(params.models[k]!['weight'])),
        normalizeWeights: g['normalize_weights'] !== false,
        eps: num(g['eps'], 1e-8),
        hasBase: base !== undefined,
      };
      return { kernel: 'multislerp', params: p, inputs: [...(base ? [base] : []), ...others.map((k) => refs[k]!)] };
    }
    case 'karcher': {
      const p: KarcherParams = { models: srcs.length, maxIter: num(g['max_iter'], 10), tol: num(g['tol'], 1e-5) };
      return { kernel: 'karcher', params: p, inputs: refs };
    }
    case 'model_stock': {
      const p: ModelStockParams = { models: others.length, filterWise: bool(g['filter_wise']) };
      return { kernel: 'model-stock', params: p, inputs: [base!, ...others.map((k) => refs[k]!)] };
    }
    case 'sce': {
      const p: SceParams = { models: others.length, selectTopk: num(g['select_topk'], 1) };
      return { kernel: 'sce', params: p, inputs: [base!, ...others.map((k) => refs[k]!)] };
    }
    case 'ram': {
      const p: RamParams = { models: others.length, epsilon: num(g['epsilon'], 1e-5) };
      return { kernel: 'ram', params: p, inputs: [base!, ...others.map((k) => refs[k]!)] };
    }
    default:
      throw new WeightspaceError('internal', `merge method ${q(m)} has no kernel`);
  }
}
