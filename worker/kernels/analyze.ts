import type { KernelDef } from '../../core/kernel-contract.js';
import { WeightspaceError } from '../../core/errors.js';
import { matmulBackend } from '../linalg/matmul.js';
import {
  accumulateGram, accumulateNormalProduct, basisFrom, sketchWidth, summarizeSpectrum, symmetrizeUpper, testMatrix,
  type SpectrumSummary,
} from '../linalg/randomized-svd.js';
import { scratchF32 } from '../linalg/scratch.js';
import { svdFromGram } from '../linalg/svd-small.js';

export interface AnalyzeSpectrumParams {
  /** sketch width ℓ before clamping to min(m, n) (e.g. max rank asked + 16) */
  readonly sketch: number;
  /** power iterations after the first pass (2 is a good default) */
  readonly powerIters: number;
  readonly seed: number;
  /** ranks k at which to report the captured energy */
  readonly ranks: readonly number[];
}

export interface AnalyzeParams {
  /** number of fine-tuned models; inputs are [base, model_1, ..., model_M] */
  readonly models: number;
  /** spectra of each δᵢ; only for 2-D tensors (set by the planner) */
  readonly spectrum?: AnalyzeSpectrumParams;
}

export interface AnalyzeResult {
  readonly numel: number;
  /** ‖θ₀‖² */
  readonly base2: number;
  /** ‖δᵢ‖², by model */
  readonly delta2: number[];
  /** dot(δᵢ, δⱼ) for pairs i < j in row-major order: (0,1), (0,2), ..., (1,2), ... */
  readonly dots: number[];
  /** elements where δᵢ and δⱼ are both non-zero and of opposite sign, by pair */
  readonly conflicts: number[];
  /** elements where δᵢ and δⱼ are both non-zero, by pair */
  readonly bothNonzero: number[];
  /** spectra of δᵢ (2-D tensors with a spectrum requested), by model */
  readonly spectra?: SpectrumSummary[];
}

interface AnalyzeState {
  stats: number[];
  /** current orthonormal bases Qᵢ [n, ℓ] (f32), by model */
  bases?: Float32Array[];
  spectra?: SpectrumSummary[];
}

const pairCount = (m: number): number => (m * (m - 1)) / 2;
const statsLength = (m: number): number => 1 + m + 3 * pairCount(m);

interface Dims { rows: number; cols: number; l: number; power: number }

function dimsOf(params: AnalyzeParams, info: { shape: readonly number[]; tensor: string }): Dims | undefined {
  const s = params.spectrum;
  if (!s || info.shape.length !== 2) return undefined;
  const rows = info.shape[0]!;
  const cols = info.shape[1]!;
  if (rows === 0 || cols === 0) return undefined;
  return { rows, cols, l: sketchWidth(s.sketch, 0, rows, cols), power: s.powerIters };
}

/**
 * Task-vector statistics for δᵢ = θᵢ − θ₀: ‖θ₀‖², ‖δᵢ‖², dot(δᵢ, δⱼ), TIES sign conflicts
 * (both non-zero, opposite signs; Yadav et al. 2023), all summed in f64; and for 2-D tensors
 * the spectrum of each δᵢ by block-wise randomized SVD (worker/linalg/randomized-svd.ts says
 * what is exact and what is estimated): top σ, stable rank ‖δ‖_F²/σ₁², effective rank
 * (Roy & Vetterli 2007), energy at rank k.
 */
export const analyzeKernel: KernelDef<AnalyzeParams, AnalyzeState> = {
  name: 'analyze',
  doc: '‖θ₀‖², ‖δᵢ‖², δᵢ·δⱼ, sign conflicts, spectra of δᵢ = θᵢ − θ₀ (randomized SVD)',
  passes(params, info) {
    if (!Number.isInteger(params.models) || params.models < 1) {
      throw new WeightspaceError('invalid-spec', `analyze: need at least one model besides the base, got ${params.models}`);
    }
    const d = dimsOf(params, info);
    return d ? 2 + d.power : 1;
  },
  partialLength(pass, params, _state, info) {
    const d = dimsOf(params, info);
    const m = params.models;
    if (!d) return statsLength(m);
    const last = 1 + d.power;
    if (pass === last) return m * d.l * d.l;
    return (pass === 0 ? statsLength(m) : 0) + m * d.cols * d.l;
  },
  reduce(pass, params, state, inputs, block, partial) {
    const m = params.models;
    if (inputs.length !== m + 1) throw new WeightspaceError('internal', `analyze: ${inputs.length} inputs for ${m} models and a base`);
    const n = block.length;
    const base = inputs[0]!;
    const d = dimsOf(params, block);
    let off = 0;
    if (pass === 0) {
      let b2 = 0;
      for (let j = 0; j < n; j++) b2 += base[j]! * base[j]!;
      partial[0] = b2;
      for (let i = 0; i < m; i++) {
        const x = inputs[i + 1]!;
        let s = 0;
        for (let j = 0; j < n; j++) {
          const v = x[j]! - base[j]!;
          s += v * v;
        }
        partial[1 + i] = s;
      }
      const pairs = pairCount(m);
      let p = 0;
      for (let i = 0; i < m; i++) {
        const xi = inputs[i + 1]!;
        for (let k = i + 1; k < m; k++, p++) {
          const xk = inputs[k + 1]!;
          let dot = 0;
          let conflicts = 0;
          let both = 0;
          for (let j = 0; j < n; j++) {
            const b = base[j]!;
            const di = xi[j]! - b;
            const dk = xk[j]! - b;
            dot += di * dk;
            // "non-zero" means strictly positive or negative: NaN is neither and is not counted
            if ((di > 0 || di < 0) && (dk > 0 || dk < 0)) {
              both++;
              if ((di > 0) !== (dk > 0)) conflicts++;
            }
          }
          partial[1 + m + p] = dot;
          partial[1 + m + pairs + p] = conflicts;
          partial[1 + m + 2 * pairs + p] = both;
        }
      }
      off = statsLength(m);
    }
    if (!d) return;
    const rows = n / d.cols;
    const mm = matmulBackend();
    const delta = scratchF32('analyze.delta', n);
    for (let i = 0; i < m; i++) {
      const x = inputs[i + 1]!;
      for (let j = 0; j < n; j++) delta[j] = x[j]! - base[j]!;
      if (pass === 1 + d.power) {
        accumulateGram(mm, delta, rows, d.cols, state!.bases![i]!, d.l, partial, i * d.l * d.l);
      } else {
        const qi = pass === 0 ? testMatrix(params.spectrum!.seed, `${block.tensor}#${i}`, d.cols, d.l) : state!.bases![i]!;
        accumulateNormalProduct(mm, delta, rows, d.cols, qi, d.l, partial, off + i * d.cols * d.l);
      }
    }
  },
  finish(pass, params, state, acc, info) {
    const m = params.models;
    const d = dimsOf(params, info);
    const next: AnalyzeState = pass === 0 ? { stats: Array.from(acc.subarray(0, statsLength(m))) } : { ...state! };
    if (!d) return next;
    if (pass === 1 + d.power) {
      next.bases = undefined;
      next.spectra = [];
      for (let i = 0; i < m; i++) {
        const g = acc.slice(i * d.l * d.l, (i + 1) * d.l * d.l);
        symmetrizeUpper(g, d.l);
        const { sigma } = svdFromGram(g, d.l);
        next.spectra.push(summarizeSpectrum(sigma, next.stats[1 + i]!, d.rows, d.cols, params.spectrum!.ranks));
      }
      return next;
    }
    const off = pass === 0 ? statsLength(m) : 0;
    next.bases = [];
    for (let i = 0; i < m; i++) {
      next.bases.push(basisFrom(acc.subarray(off + i * d.cols * d.l, off + (i + 1) * d.cols * d.l), d.cols, d.l));
    }
    return next;
  },
  result(params, state, info): AnalyzeResult {
    const m = params.models;
    const stats = state?.stats ?? new Array<number>(statsLength(m)).fill(0);
    const pairs = pairCount(m);
    const out: AnalyzeResult = {
      numel: info.numel,
      base2: stats[0]!,
      delta2: stats.slice(1, 1 + m),
      dots: stats.slice(1 + m, 1 + m + pairs),
      conflicts: stats.slice(1 + m + pairs, 1 + m + 2 * pairs),
      bothNonzero: stats.slice(1 + m + 2 * pairs, 1 + m + 3 * pairs),
    };
    return state?.spectra ? { ...out, spectra: state.spectra } : out;
  },
};

