import type { KernelDef } from '../../core/kernel-contract.js';
import type { SceParams } from '../../core/specs/merge-spec.js';
import {
  SELECT_PASSES, aboveCut, initSelect, selectAccumulatorLength, selectFinish, selectFold, selectFoldsBySum,
  selectPartialLength, selectReduce, selectSkip, selectTake, type Cut, type SelectState,
} from './ta-select.js';

export interface SceState {
  readonly select?: SelectState;
  /** per model matrix-level weight */
  readonly weights?: readonly number[];
}

// one cut over one key source (the variance); its rank is only known after pass 0 counts the
// non-zero variances, so pass 0 histograms with a provisional cut and its finish sets the rank
const PROVISIONAL: Cut[] = [{ source: 0, rank: 1 }];
const ZEROS_SLOT = selectAccumulatorLength(0, PROVISIONAL, 1, undefined);

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

const selectPassesOf = (p: SceParams): number => (p.selectTopk < 1 && p.models > 0 ? SELECT_PASSES : 0);

let deltas: Float32Array[] = [];
let variance = new Float32Array(0);
let varianceBits = new Uint32Array(0);
let mask = new Uint8Array(0);

/** δᵢ (f32) and, when selecting, the per-position population variance over models (f32, as torch.var). */
function prepare(inputs: readonly Float32Array[], models: number, n: number, withVariance: boolean): void {
  if (deltas.length < models || (deltas[0]?.length ?? 0) < n) {
    const len = Math.max(n, deltas[0]?.length ?? 0);
    deltas = Array.from({ length: models }, () => new Float32Array(len));
  }
  if (variance.length < n) {
    variance = new Float32Array(n);
    varianceBits = new Uint32Array(variance.buffer);
    mask = new Uint8Array(n);
  }
  const base = inputs[0]!;
  for (let i = 0; i < models; i++) {
    const x = inputs[i + 1]!;
    const d = deltas[i]!;
    for (let j = 0; j < n; j++) d[j] = x[j]! - base[j]!;
  }
  if (!withVariance) return;
  for (let j = 0; j < n; j++) {
    let mean = 0;
    for (let i = 0; i < models; i++) mean += deltas[i]![j]!;
    mean /= models;
    let v = 0;
    for (let i = 0; i < models; i++) {
      const e = deltas[i]![j]! - mean;
      v += e * e;
    }
    variance[j] = v / models;
  }
}

/** The variance mask of a block (1: position kept), or all ones without selection. */
function varianceMask(p: SceParams, state: SceState | undefined, block: { blockIndex: number; start: number }, n: number): void {
  if (selectPassesOf(p) === 0) mask.fill(1, 0, n);
  else aboveCut(state!.select!, 0, varianceBits, n, block.blockIndex, mask);
}

/**
 * SCE (Wan et al. 2024, FuseChat, arXiv 2408.07990; mergekit `sce`): Select the positions of
 * largest variance across the task vectors (top τ of the non-zero ones), Calculate per-model
 * weights wᵢ ∝ mean(δᵢ²), Erase entries against the sign of Σδᵢ, then
 * out = θ₀ + Σ wᵢδᵢ[agree] / Σ wᵢ[agree].
 */
export const sceKernel: KernelDef<SceParams, SceState> = {
  name: 'sce',
  doc: 'out = θ₀ + Σ wᵢ·m·δᵢ[agree]/Σ wᵢ[agree], m = top-τ variance mask, wᵢ ∝ mean((m·δᵢ)²) (mergekit sce)',
  passes: (params) => selectPassesOf(params) + 1,
  partialLength(pass, params) {
    if (pass < selectPassesOf(params)) return selectPartialLength(pass, PROVISIONAL);
    return params.models;
  },
  accumulatorLength(pass, params, state) {
    if (pass === 0 && selectPassesOf(params) > 0) return ZEROS_SLOT + 1;
    if (pass < selectPassesOf(params)) return selectAccumulatorLength(pass, PROVISIONAL, 1, state?.select);
    return params.models;
  },
  skipPass: (pass, params, state) => pass < selectPassesOf(params) && selectSkip(pass, state?.select),
  foldsBySum: (pass, params) => pass >= selectPassesOf(params) || selectFoldsBySum(pass),
  reduce(pass, params, state, inputs, block, partial) {
    const n = block.length;
    const selecting = pass < selectPassesOf(params);
    prepare(inputs, params.models, n, selectPassesOf(params) > 0);
    if (selecting) {
      const sel = state?.select ?? initSelect(PROVISIONAL, numelOf(block.shape));
      selectReduce(pass, PROVISIONAL, sel, [varianceBits], n, partial);
      if (pass === 0) {
        // the histogram's (bucket, count) pairs, and one more pair: the zero variances, in their own slot
        let zeros = 0;
        for (let j = 0; j < n; j++) if (variance[j] === 0) zeros++;
        const pairs = selectTake(0)!;
        const out = new Float64Array(pairs.length + 2);
        out.set(pairs);
        out[pairs.length] = ZEROS_SLOT;
        out[pairs.length + 1] = zeros;
        return out;
      }
      return selectTake(pass);
    }
    // Σ (m·δᵢ)² per model
    varianceMask(params, state, block, n);
    for (let i = 0; i < params.models; i++) {
      const d = deltas[i]!;
      let s = 0;
      for (let j = 0; j < n; j++) if (mask[j]) s += d[j]! * d[j]!;
      partial[i] = s;
    }
  },
  fold(pass, acc, partial, blockIndex) {
    // only the selection's passes get here; the weights pass and the low-bits histogram sum (foldsBySum)
    selectFold(pass, acc, partial, blockIndex);
  },
  finish(pass, params, state, acc, info) {
    const sp = selectPassesOf(params);
    if (pass < sp) {
      let sel = state?.select ?? initSelect(PROVISIONAL, info.numel);
      if (pass === 0) {
        // mergekit: k = ⌊τ·(number of non-zero variances)⌋; k = 0 keeps nothing
        const nonzero = info.numel - acc[ZEROS_SLOT]!;
        const cut: Cut[] = [{ source: 0, rank: Math.floor(Math.abs(params.selectTopk) * nonzero) }];
        sel = initSelect(cut, info.numel);
        return { select: selectFinish(0, cut, sel, acc.subarray(0, ZEROS_SLOT)) };
      }
      return { select: selectFinish(pass, PROVISIONAL, sel, acc) };
    }
    const ms = Array.from(acc, (s) => s / info.numel);
    const total = ms.reduce((a, b) => a + b, 0);
    const weights = total === 0 ? ms.map(() => 1 / ms.length) : ms.map((x) => x / total);
    return { ...state, weights };
  },
  map(params, state, inputs, outputs, block) {
    const m = params.models;
    const n = block.length;
    const base = inputs[0]!;
    const out = outputs[0]!;
    prepare(inputs, m, n, selectPassesOf(params) > 0);
    varianceMask(params, state, block, n);
    const w = state!.weights!;
    for (let j = 0; j < n; j++) {
      if (!mask[j]) {
        out[j] = base[j]!;
        continue;
      }
      // the elected sign: that of the plain sum of the (masked) task vectors, 0 counting as +
      let vote = 0;
      for (let i = 0; i < m; i++) vote += deltas[i]![j]!;
      const positive = vote >= 0;
      let mixed = 0;
      let div = 0;
      for (let i = 0; i < m; i++) {
        const v = deltas[i]![j]!;
        if (positive ? v > 0 : v < 0) {
          mixed += w[i]! * v;
          div += w[i]!;
        } else mixed += 0 * v; // NaN or ±Inf poison the sum, as mask·δ does in mergekit
      }
      out[j] = base[j]! + mixed / (div === 0 ? 1 : div);
    }
    for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, n));
  },
};
