import type { KernelDef, TensorInfo } from '../../core/kernel-contract.js';
import { WeightspaceError, fmtShape, q } from '../../core/errors.js';
import { matmulBackend } from '../linalg/matmul.js';
import { accumulateNormalProduct, basisFrom, projectRows, sketchWidth, testMatrix } from '../linalg/randomized-svd.js';
import { scratchF32 } from '../linalg/scratch.js';
import { svdFromGram } from '../linalg/svd-small.js';

export interface LoraExtractParams {
  /** r: rows of lora_A and columns of lora_B (fixed at plan time: output shapes are planned) */
  readonly rank: number;
  /** extra sketch columns beyond r (default max(10, ⌈r/4⌉)) */
  readonly oversample?: number;
  /** power iterations after the first pass (default 2) */
  readonly powerIters?: number;
  readonly seed: number;
  /**
   * How Σ is split between the factors: 'sqrt' (default) B = U√Σ, A = √ΣVᵀ, as
   * mergekit-extract-lora does; 'b' B = UΣ, A = Vᵀ (A has orthonormal rows).
   */
  readonly split?: 'sqrt' | 'b';
}

export interface LoraExtractResult {
  readonly rank: number;
  /** Ritz values σ̂₁..σ̂_ℓ of ΔW (lower bounds of the true σ; see worker/linalg/randomized-svd.ts) */
  readonly sigma: number[];
  /** ‖ΔW‖_F², exact */
  readonly frobenius2: number;
  /** ‖ΔW − BA‖_F² as estimated from the spectrum: ‖ΔW‖_F² − Σ_{i≤r} σ̂ᵢ² */
  readonly residual2: number;
}

interface LoraExtractState {
  frobenius2: number;
  /** current basis Q [n, ℓ] f32 */
  basis?: Float32Array;
  /** final factors */
  a?: Float32Array;
  b?: Float32Array;
  sigma?: number[];
}

interface Dims { m: number; n: number; l: number; power: number; r: number }

function dimsOf(params: LoraExtractParams, info: Pick<TensorInfo, 'tensor' | 'shape'>): Dims {
  if (info.shape.length !== 2) {
    throw new WeightspaceError('invalid-spec', `tensor ${q(info.tensor)}: lora extraction needs a 2-D weight, got shape ${fmtShape(info.shape)}`);
  }
  const m = info.shape[0]!;
  const n = info.shape[1]!;
  const r = params.rank;
  if (!Number.isInteger(r) || r < 1 || r > Math.min(m, n)) {
    throw new WeightspaceError('invalid-spec', `tensor ${q(info.tensor)}: lora rank must be a whole number from 1 to ${Math.min(m, n)}, got ${r}`);
  }
  const over = params.oversample ?? Math.max(10, Math.ceil(r / 4));
  const power = params.powerIters ?? 2;
  return { m, n, r, power, l: sketchWidth(r, over, m, n) };
}

/** Fills `delta` with θ_ft − θ_base for the block. */
function deltaOf(inputs: readonly Float32Array[], n: number): Float32Array {
  const ft = inputs[0]!;
  const base = inputs[1]!;
  const delta = scratchF32('lora-extract.delta', n);
  for (let j = 0; j < n; j++) delta[j] = ft[j]! - base[j]!;
  return delta;
}

/**
 * LoRA extraction: ΔW = W_ft − W_base ≈ B·A with B [out, r], A [r, in], the rank-r truncated
 * SVD of ΔW from a block-wise randomized SVD with power iterations (Halko et al. 2011;
 * mergekit-extract-lora computes the same factors with a full SVD). Passes: 0 sketches
 * AᵀAΩ and ‖ΔW‖_F²; 1..p power iterations; the last stores ΔW·Q ([out, ℓ], the size of the
 * B output). Inputs [W_ft, W_base]; `emit` returns [lora_A, lora_B], in that order, so the
 * planner gives the job two outputs: lora_A [r, in] and lora_B [out, r].
 */
export const loraExtractKernel: KernelDef<LoraExtractParams, LoraExtractState> = {
  name: 'lora-extract',
  doc: 'ΔW = W_ft − W_base ≈ B·A, rank-r randomized SVD with power iterations',
  passes(params, info) {
    return 2 + dimsOf(params, info).power;
  },
  partialLength(pass, params, _state, info) {
    const d = dimsOf(params, info);
    if (pass === 1 + d.power) return d.m * d.l;
    return (pass === 0 ? 1 : 0) + d.n * d.l;
  },
  reduce(pass, params, state, inputs, block, partial) {
    const d = dimsOf(params, block);
    const n = block.length;
    const delta = deltaOf(inputs, n);
    const rows = n / d.n;
    const mm = matmulBackend();
    if (pass === 1 + d.power) {
      projectRows(mm, delta, rows, d.n, state!.basis!, d.l, partial, (block.start / d.n) * d.l);
      return;
    }
    let off = 0;
    if (pass === 0) {
      let f = 0;
      for (let j = 0; j < n; j++) f += delta[j]! * delta[j]!;
      partial[0] = f;
      off = 1;
    }
    const q0 = pass === 0 ? testMatrix(params.seed, block.tensor, d.n, d.l) : state!.basis!;
    accumulateNormalProduct(mm, delta, rows, d.n, q0, d.l, partial, off);
  },
  finish(pass, params, state, acc, info) {
    const d = dimsOf(params, info);
    if (pass < 1 + d.power) {
      const off = pass === 0 ? 1 : 0;
      return { frobenius2: pass === 0 ? acc[0]! : state!.frobenius2, basis: basisFrom(acc.subarray(off), d.n, d.l) };
    }
    // acc = ΔW·Q [m, ℓ]; its SVD from the Gram matrix: ΔW·Q = U Σ Ṽᵀ, ΔW ≈ U Σ (Q Ṽ)ᵀ
    const { m, n, l, r } = d;
    const gram = new Float64Array(l * l);
    for (let i = 0; i < m; i++) {
      const yi = i * l;
      for (let a = 0; a < l; a++) {
        const ya = acc[yi + a]!;
        if (ya === 0) continue;
        for (let b = a; b < l; b++) gram[a * l + b]! += ya * acc[yi + b]!;
      }
    }
    for (let a = 0; a < l; a++) for (let b = a + 1; b < l; b++) gram[b * l + a] = gram[a * l + b]!;
    const { sigma, v } = svdFromGram(gram, l);
    const basis = state!.basis!;
    const sqrt = (params.split ?? 'sqrt') === 'sqrt';
    // A = diag(wA)·(QṼ_r)ᵀ [r, n];  B = (ΔW·Q)·Ṽ_r·diag(wB) [m, r]; wA·wB = σ (0 if σ = 0)
    const wA = new Float64Array(r);
    const wB = new Float64Array(r);
    for (let k = 0; k < r; k++) {
      const s = sigma[k]!;
      wA[k] = s > 0 ? (sqrt ? Math.sqrt(s) : 1) : 0;
      wB[k] = s > 0 ? (sqrt ? 1 / Math.sqrt(s) : 1) : 0;
    }
    const a = new Float32Array(r * n);
    for (let j = 0; j < n; j++) {
      for (let k = 0; k < r; k++) {
        let x = 0;
        for (let p = 0; p < l; p++) x += basis[j * l + p]! * v[p * l + k]!;
        a[k * n + j] = wA[k]! * x;
      }
    }
    const b = new Float32Array(m * r);
    const row = new Float64Array(r);
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let p = 0; p < l; p++) {
        const y = acc[i * l + p]!;
        if (y === 0) continue;
        for (let k = 0; k < r; k++) row[k]! += y * v[p * l + k]!;
      }
      for (let k = 0; k < r; k++) b[i * r + k] = row[k]! * wB[k]!;
    }
    return { frobenius2: state!.frobenius2, a, b, sigma: Array.from(sigma) };
  },
  emit(_params, state) {
    return [state!.a!, state!.b!];
  },
  result(params, state): LoraExtractResult {
    const sigma = state?.sigma ?? [];
    const f = state?.frobenius2 ?? 0;
    let kept = 0;
    for (let k = 0; k < Math.min(params.rank, sigma.length); k++) kept += sigma[k]! * sigma[k]!;
    return { rank: params.rank, sigma, frobenius2: f, residual2: Math.max(0, f - kept) };
  },
};
