import { fillUniforms, tensorKey } from '../../core/counter-rng.js';
import { WeightspaceError, q } from '../../core/errors.js';
import type { BlockInfo, KernelDef, RawBf16, TensorInfo } from '../../core/kernel-contract.js';
import type { TaskArithmeticParams } from '../../core/specs/merge-spec.js';
import { combine, combineThinnedSum } from './ta-combine.js';
import { dellaRowProbs } from './ta-della.js';
import {
  SELECT_PASSES, aboveCut, initSelect, keepAboveCut, needsSelect, selectAccumulatorLength,
  selectClearAccumulator, selectFinish, selectFold,
  selectFoldsBySum, selectPartialLength, selectReduce, selectReduceDeltas, selectSkip, selectSkipBlock, selectTake, tieEnd, tiesKept, type Cut, type SelectState, type WindowLayout,
} from './ta-select.js';

export interface TaskArithmeticState {
  readonly select?: SelectState;
  /** per model factor restoring the L1 norm */
  readonly scales?: readonly number[];
}

const L1_EPS = 1e-7;

const densityOf = (p: TaskArithmeticParams, i: number): number => p.densities?.[i] ?? 1;
const gammaOf = (p: TaskArithmeticParams, i: number): number => p.gammas?.[i] ?? 0.01;
const epsilonOf = (p: TaskArithmeticParams, i: number): number => p.epsilons?.[i] ?? 0.15;
/** A model's task vector is thinned iff a method is set and its density is below 1 (mergekit returns δ untouched otherwise). */
const thinned = (p: TaskArithmeticParams, i: number): boolean => p.sparsify !== 'none' && densityOf(p, i) < 1;

/** Checks settings the math needs (the planner reports them first, with the recipe's words). */
export function validateTaskArithmetic(p: TaskArithmeticParams, tensor: string): void {
  const m = p.weights.length;
  for (const [name, arr] of [['densities', p.densities], ['gammas', p.gammas], ['epsilons', p.epsilons], ['modelKeys', p.modelKeys]] as const) {
    if (arr && arr.length !== m) throw new WeightspaceError('internal', `tensor ${q(tensor)}: ${name} has ${arr.length} entries for ${m} models`);
  }
  if (p.sparsify !== 'della') return;
  for (let i = 0; i < m; i++) {
    const d = densityOf(p, i);
    const e = epsilonOf(p, i);
    if (d > 0 && d < 1 && (d - e <= 0 || d + e >= 1)) {
      throw new WeightspaceError('invalid-recipe', `tensor ${q(tensor)}: della needs density ± epsilon inside (0, 1), got density ${d} and epsilon ${e}`);
    }
  }
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** The cuts of the selection methods: TIES keeps the ⌊ρn⌋ first; breadcrumbs keeps ranks [nTop, nTop+⌊ρn⌋). */
function cutsOf(p: TaskArithmeticParams, n: number): Cut[] {
  const cuts: Cut[] = [];
  for (let i = 0; i < p.weights.length; i++) {
    const on = thinned(p, i);
    const d = Math.max(0, densityOf(p, i));
    if (p.sparsify === 'magnitude') {
      cuts.push({ source: i, rank: on ? Math.floor(d * n) : n });
    } else if (p.sparsify === 'breadcrumbs') {
      // mergekit's magnitude_outliers: n_top = ⌊γn⌋, n_bot = n − ⌊ρn⌋ − n_top, and if n_bot < 0 fewer
      // of the largest are dropped so that ⌊ρn⌋ are kept
      const target = Math.floor(d * n);
      let nTop = Math.floor(Math.max(0, gammaOf(p, i)) * n);
      const nBot = n - target - nTop;
      if (nBot < 0) nTop += nBot;
      cuts.push({ source: i, rank: on ? nTop : 0 }, { source: i, rank: on ? nTop + target : n });
    }
  }
  return cuts;
}

/** Where pass 0's speculative windows go (ta-select.ts): one histogram per model. */
function layoutOf(p: TaskArithmeticParams, info: TensorInfo): WindowLayout {
  return { sources: p.weights.length, numel: info.numel, blockCount: info.blockCount };
}

interface Plan {
  readonly cuts: Cut[];
  readonly selectPasses: number;
  readonly l1Pass: number | undefined;
  readonly passes: number;
}

function planOf(p: TaskArithmeticParams, n: number): Plan {
  const cuts = cutsOf(p, n);
  const selectPasses = (p.sparsify === 'magnitude' || p.sparsify === 'breadcrumbs') && needsSelect(cuts, n) ? SELECT_PASSES : 0;
  const anyThinned = p.weights.some((_, i) => thinned(p, i));
  const l1Pass = p.rescale === 'l1' && anyThinned ? selectPasses : undefined;
  return { cuts, selectPasses, l1Pass, passes: selectPasses + (l1Pass === undefined ? 0 : 1) };
}

// ---------------------------------------------------------------------------------------
// per-thread scratch, grown on demand (kernels allocate nothing in their inner loops)

let deltas: Float32Array[] = [];
let deltaBits: Uint32Array[] = [];
let mask = new Uint8Array(0);
let mask2 = new Uint8Array(0);
let uniforms = new Float64Array(0);
let probs = new Float64Array(0);

function scratch(models: number, n: number): void {
  if (deltas.length < models || (deltas[0]?.length ?? 0) < n) {
    const len = Math.max(n, deltas[0]?.length ?? 0);
    deltas = [];
    deltaBits = [];
    for (let i = 0; i < models; i++) {
      const f = new Float32Array(len);
      deltas.push(f);
      deltaBits.push(new Uint32Array(f.buffer));
    }
  }
  if (mask.length < n) {
    mask = new Uint8Array(n);
    mask2 = new Uint8Array(n);
    uniforms = new Float64Array(n);
    probs = new Float64Array(n);
  }
}

const CHUNK = 4096;
const chunkDeltas: Float32Array[] = [];
const chunkBits: Uint32Array[] = [];

function chunkScratch(models: number): void {
  while (chunkDeltas.length < models) {
    const f = new Float32Array(CHUNK);
    chunkDeltas.push(f);
    chunkBits.push(new Uint32Array(f.buffer));
  }
}

/** δᵢ = xᵢ − base for every model, rounded to f32 (the key bits and the arithmetic use the same values). */
function computeDeltas(inputs: readonly Float32Array[], models: number, n: number): void {
  const base = inputs[0]!;
  for (let i = 0; i < models; i++) {
    const x = inputs[i + 1]!;
    const d = deltas[i]!;
    for (let j = 0; j < n; j++) d[j] = x[j]! - base[j]!;
  }
}

/** Writes model i's keep mask for the block (and, for della, each element's keep probability to `probs`). */
function keepMask(p: TaskArithmeticParams, sel: SelectState, i: number, block: BlockInfo, n: number): void {
  const d = densityOf(p, i);
  switch (p.sparsify) {
    case 'magnitude':
      aboveCut(sel, i, deltaBits[i]!, n, block.blockIndex, mask);
      return;
    case 'breadcrumbs':
      aboveCut(sel, 2 * i + 1, deltaBits[i]!, n, block.blockIndex, mask);
      aboveCut(sel, 2 * i, deltaBits[i]!, n, block.blockIndex, mask2);
      for (let j = 0; j < n; j++) mask[j] = mask[j]! & (mask2[j]! ^ 1);
      return;
    case 'random': {
      if (d <= 0) {
        mask.fill(0, 0, n);
        return;
      }
      fillUniforms(p.seed ?? 0, p.modelKeys?.[i] ?? i, tensorKey(block.tensor), block.start, n, uniforms);
      for (let j = 0; j < n; j++) mask[j] = uniforms[j]! < d ? 1 : 0;
      return;
    }
    case 'della': {
      if (d <= 0) {
        mask.fill(0, 0, n);
        return;
      }
      const eps = epsilonOf(p, i);
      const row = block.rowLength;
      const bits = deltaBits[i]!;
      for (let r = 0; r < n; r += row) dellaRowProbs(bits.subarray(r, r + row), row, d, eps, probs.subarray(r, r + row));
      fillUniforms(p.seed ?? 0, p.modelKeys?.[i] ?? i, tensorKey(block.tensor), block.start, n, uniforms);
      for (let j = 0; j < n; j++) mask[j] = uniforms[j]! < probs[j]! ? 1 : 0;
      return;
    }
    case 'none':
      mask.fill(1, 0, n);
      return;
  }
}

// the fused TIES map's per-model settings for the block being mapped: factor, keep threshold
// before and after the model's split (the index past its last kept tie; 0 when it has none)
const factors: number[] = [];
const thresholds: number[] = [];
const thresholdsAfter: number[] = [];
const splits: number[] = [];

/**
 * For TIES' fused map (combineThinnedSum): each model's factor wᵢ·sᵢ and keep threshold on the
 * f32 bits of |δᵢ|, as keepAboveCut would apply them in this block; in the block where a cut's
 * ties end, the threshold keeps the ties up to the split and drops those after it. False when a
 * model needs keepAboveCut's other forms (a cut keeping nothing, a cut value in the NaN range).
 */
function fusedSettings(
  p: TaskArithmeticParams, state: TaskArithmeticState | undefined, sel: SelectState, block: BlockInfo, inputs: readonly Float32Array[],
): boolean {
  const models = p.weights.length;
  factors.length = models;
  thresholds.length = models;
  thresholdsAfter.length = models;
  splits.length = models;
  splits.fill(0);
  for (let i = 0; i < models; i++) {
    const w = p.weights[i]!;
    if (!thinned(p, i)) {
      factors[i] = w;
      thresholds[i] = -1;
      continue;
    }
    const s = p.rescale === 'l1' ? (state?.scales?.[i] ?? 1) : p.rescale === 'density' ? 1 / densityOf(p, i) : 1;
    factors[i] = w * s;
    const kind = sel.kind[i]!;
    if (kind === 'all') {
      thresholds[i] = -1;
      continue;
    }
    if (kind === 'none') return false;
    const kept = tiesKept(sel, i, block.blockIndex);
    const t = sel.t[i]!;
    if (kept === Infinity) thresholds[i] = t - 1;
    else if (kept === 0) thresholds[i] = t;
    else {
      if (t >= 0x7f800000) return false;
      thresholds[i] = t - 1;
      thresholdsAfter[i] = t;
      block.bf16?.decode();
      splits[i] = tieEnd(t, kept, inputs[0]!, inputs[i + 1]!, block.length);
    }
  }
  return true;
}

/**
 * TIES' fused map over the block, in segments between the models' splits (each segment has one
 * threshold per model). False (nothing written) when the model count has no fused loop.
 */
function fusedMap(
  p: TaskArithmeticParams, inputs: readonly Float32Array[], out: Float32Array, n: number, bf16: RawBf16 | undefined,
): boolean {
  const models = p.weights.length;
  const ins = inputs.length === models + 1 ? inputs : inputs.slice(0, models + 1);
  const cuts = [...new Set(splits.filter((s) => s > 0 && s < n))].sort((a, b) => a - b);
  if (cuts.length === 0 && bf16 && bf16.raw.length === models + 1) {
    // the whole block in one segment: the loop may read the BF16 inputs raw
    return combineThinnedSum({
      inputs: ins, factors, thresholds: segment(0), weights: p.weights, out, n, normalize: p.normalize, lambda: p.lambda, bf16,
    });
  }
  bf16?.decode();
  let from = 0;
  for (const to of [...cuts, n]) {
    const done = combineThinnedSum({
      inputs: ins.map((x) => x.subarray(from, to)), factors, thresholds: segment(from), weights: p.weights,
      out: out.subarray(from, to), n: to - from, normalize: p.normalize, lambda: p.lambda,
    });
    // declined only for a model count or a threshold that no segment can take: on the first one
    if (!done) return false;
    from = to;
  }
  return true;
}

/** Each model's threshold in the segment starting at `from`: after its split, its ties are out. */
function segment(from: number): number[] {
  return thresholds.map((t, i) => (splits[i]! > 0 && from >= splits[i]! ? thresholdsAfter[i]! : t));
}

/**
 * Generalized task arithmetic, mergekit's GTA (Ilharco et al. 2023; TIES: Yadav et al. 2023;
 * DARE: Yu et al. 2024; breadcrumbs: Davari & Belilovsky 2023; DELLA: Deep et al. 2024):
 *
 *   out = θ₀ + λ · Σᵢ wᵢ·mᵢ·sᵢ·δᵢ / (normalize ? Σᵢ wᵢ [agreeing] : 1),   δᵢ = θᵢ − θ₀
 *
 * with mᵢ the thinning mask, sᵢ its rescale, and with consensus only the terms whose sign
 * matches the elected sign. Inputs: base, then the models.
 */
export const taskArithmeticKernel: KernelDef<TaskArithmeticParams, TaskArithmeticState> = {
  name: 'task-arithmetic',
  doc: 'out = θ₀ + λ·Σ wᵢ·mask(δᵢ)·δᵢ / Σ wᵢ[agree] (task arithmetic, TIES, DARE, breadcrumbs, DELLA; mergekit GTA)',

  passes(params, info) {
    validateTaskArithmetic(params, info.tensor);
    return planOf(params, info.numel).passes;
  },

  partialLength(pass, params, _state, info) {
    const plan = planOf(params, info.numel);
    if (pass < plan.selectPasses) return selectPartialLength(pass, plan.cuts);
    return 2 * params.weights.length;
  },

  accumulatorLength(pass, params, state, info) {
    const plan = planOf(params, info.numel);
    if (pass < plan.selectPasses) return selectAccumulatorLength(pass, plan.cuts, params.weights.length, state?.select, layoutOf(params, info));
    return 2 * params.weights.length;
  },

  skipPass(pass, params, state, info) {
    return pass < planOf(params, info.numel).selectPasses && selectSkip(pass, state?.select);
  },

  skipBlock(pass, params, state, blockIndex, info) {
    return pass < planOf(params, info.numel).selectPasses && selectSkipBlock(pass, state?.select, blockIndex);
  },

  readsRawBf16(pass, params) {
    // pass 0's windows and histogram, pass 2's candidate scan and the fused map have loops that read
    // one to three models' BF16 blocks as they are
    const models = params.weights.length;
    return (pass === 0 || pass === 2 || pass === 'map') && params.sparsify === 'magnitude' && params.consensus === 'sum' && models >= 1 && models <= 3;
  },

  foldsBySum(pass, params, info) {
    // the L1 pass (after the select passes, if any) sums
    const selectPasses = planOf(params, info.numel).selectPasses;
    return pass >= selectPasses || selectFoldsBySum(pass);
  },

  reduce(pass, params, state, inputs, block, partial) {
    const models = params.weights.length;
    const n = block.length;
    const plan = planOf(params, numelOf(block.shape));
    const sel = state?.select ?? initSelect(plan.cuts, numelOf(block.shape));
    // passes 0 and 2 may read BF16 raw (readsRawBf16, selectReduceDeltas decodes where it must);
    // every other path reads the decoded inputs
    if ((pass !== 0 && pass !== 2) || pass >= plan.selectPasses) block.bf16?.decode();
    if (pass <= 2 && pass < plan.selectPasses) {
      // the histogram and the candidate scan read δ as they compute it
      selectReduceDeltas(pass as 0 | 1 | 2, plan.cuts, sel, inputs, n, { tensor: block.tensor, numel: numelOf(block.shape), index: block.blockIndex }, block.bf16);
      return selectTake(pass);
    }
    if (pass < plan.selectPasses) {
      // the counting fallback, in chunks small enough for L1: δ is computed, looked at once, and dropped
      chunkScratch(models);
      const base = inputs[0]!;
      for (let from = 0; from < n; from += CHUNK) {
        const len = Math.min(CHUNK, n - from);
        for (let i = 0; i < models; i++) {
          const x = inputs[i + 1]!;
          const d = chunkDeltas[i]!;
          for (let j = 0; j < len; j++) d[j] = x[from + j]! - base[from + j]!;
        }
        selectReduce(pass, plan.cuts, sel, chunkBits, len, partial);
      }
      return selectTake(pass);
    }
    scratch(models, n);
    computeDeltas(inputs, models, n);
    // the L1 pass: Σ|δᵢ| and Σ|mᵢ·δᵢ| per model
    for (let i = 0; i < models; i++) {
      if (!thinned(params, i)) continue;
      keepMask(params, sel, i, block, n);
      const d = deltas[i]!;
      let before = 0;
      let after = 0;
      for (let j = 0; j < n; j++) {
        const a = Math.abs(d[j]!);
        before += a;
        after += a * mask[j]!;
      }
      partial[2 * i] = before;
      partial[2 * i + 1] = after;
    }
  },

  releasesAccumulator: true,

  clearAccumulator(pass, params, state, acc, info) {
    const plan = planOf(params, info.numel);
    if (pass < plan.selectPasses) selectClearAccumulator(pass, plan.cuts, state?.select, layoutOf(params, info), acc);
    else acc.fill(0);
  },

  fold(pass, acc, partial, blockIndex) {
    // only the selection's passes get here; the L1 pass and the low-bits histogram sum (foldsBySum)
    selectFold(pass, acc, partial, blockIndex);
  },

  finish(pass, params, state, acc, info) {
    const plan = planOf(params, info.numel);
    if (pass < plan.selectPasses) {
      const sel = state?.select ?? initSelect(plan.cuts, info.numel);
      return { ...state, select: selectFinish(pass, plan.cuts, sel, acc, layoutOf(params, info)) };
    }
    const scales = params.weights.map((_, i) => {
      const before = acc[2 * i]!;
      const after = acc[2 * i + 1]!;
      // mergekit's rescaled_masked_tensor: leave the masked vector as is when either norm is ~0
      return thinned(params, i) && before >= L1_EPS && after >= L1_EPS ? before / after : 1;
    });
    return { ...state, scales };
  },

  map(params, state, inputs, outputs, block) {
    const models = params.weights.length;
    const n = block.length;
    const base = inputs[0]!;
    const out = outputs[0]!;
    const plan = planOf(params, numelOf(block.shape));
    // with no select pass run (every cut trivial), the initial state says which cuts keep all or nothing
    const sel = state?.select ?? initSelect(plan.cuts, numelOf(block.shape));
    if (params.sparsify === 'magnitude' && params.consensus === 'sum' && models >= 1 && models <= 3 && fusedSettings(params, state, sel, block, inputs)) {
      if (fusedMap(params, inputs, out, n, block.bf16)) {
        for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, n));
        return;
      }
    }
    block.bf16?.decode();
    scratch(models, n);
    computeDeltas(inputs, models, n);

    // thin, rescale and weight each task vector in place: dᵢ ← f32(wᵢ·sᵢ)·mᵢ·δᵢ (stored as f32;
    // the factor in f32, as the fused map takes it)
    for (let i = 0; i < models; i++) {
      const d = deltas[i]!;
      const w = params.weights[i]!;
      if (!thinned(params, i)) {
        const wf = Math.fround(w);
        for (let j = 0; j < n; j++) d[j] = wf * d[j]!;
        continue;
      }
      const rho = densityOf(params, i);
      const s = params.rescale === 'l1' ? (state?.scales?.[i] ?? 1) : params.rescale === 'density' ? 1 / rho : 1;
      if (params.sparsify === 'magnitude') {
        keepAboveCut(sel, i, d, deltaBits[i]!, n, block.blockIndex, Math.fround(w * s));
        continue;
      }
      keepMask(params, sel, i, block, n);
      if (params.rescale === 'density' && params.sparsify === 'della') {
        for (let j = 0; j < n; j++) d[j] = mask[j] ? (w * d[j]!) / probs[j]! : 0 * d[j]!;
        continue;
      }
      // a multiply by the mask, as mergekit's: a dropped NaN or ±Inf stays NaN
      const ws = Math.fround(w * s);
      for (let j = 0; j < n; j++) d[j] = ws * d[j]! * mask[j]!;
    }
    combine({
      vs: deltas.length === models ? deltas : deltas.slice(0, models),
      weights: params.weights, base, out, n, consensus: params.consensus, normalize: params.normalize, lambda: params.lambda,
    });
    for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, n));
  },
};
