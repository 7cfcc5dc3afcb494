import type { KernelDef, TensorInfo } from '../../core/kernel-contract.js';
import { WeightspaceError, fmtShape, q } from '../../core/errors.js';
import { scratchF64 } from '../linalg/scratch.js';

/**
 * Norm preservation after the projection, in terms of the module's logical [out, in] matrix
 * (a Linear's weight; `transposed` storage is mapped back to it):
 * - 'none':   W′ = W − s·P(W), nothing rescaled (Arditi et al. 2024; FailSpy's abliterator).
 * - 'column': each input column keeps its L2 norm: W″[:, j] = W′[:, j]·‖W[:, j]‖ / ‖W′[:, j]‖.
 *             For a writer a column is what input unit j writes into the residual stream, so
 *             this is grimjim's "norm-preserving biprojected abliteration" (magnitudes of the
 *             per-neuron write vectors kept, only their direction changes; with s = 1 the
 *             result is still orthogonal to r̂, since each column is only rescaled).
 * - 'row':    each output row keeps its L2 norm: W″[i, :] = W′[i, :]·‖W[i, :]‖ / ‖W′[i, :]‖.
 *             For a reader (embed_tokens, lm_head) a row is a token's / unit's vector in the
 *             residual space, so this is the reader-side analogue of 'column' (W″r̂ = 0 still
 *             holds at s = 1). For a writer it keeps each residual dimension's row norm, like
 *             heretic's row_normalization = "full" — heretic projects the row-normalised matrix
 *             and stores a rank-3 LoRA approximation, so its numbers differ from this exact one.
 * - 'matrix': the Frobenius norm is kept: W″ = W′·‖W‖_F / ‖W′‖_F (one factor per matrix;
 *             per expert for stacked [E, out, in] tensors). Orthogonality to r̂ is kept.
 * A column or row whose projected norm is zero is left as projected (there is no direction
 * to rescale). Norms are computed in f64 from the f32 inputs; the output is rounded once.
 */
export type NormPreserving = 'none' | 'column' | 'row' | 'matrix';

export interface ProjectParams {
  /** the module's role, set by the planner from its name, never from its shape */
  readonly side: 'writer' | 'reader';
  /** s: 1 removes the direction fully; 0 < s < 1 partially; layer gradients resolved by the planner */
  readonly scale: number;
  readonly norm: NormPreserving;
  /** the weight is stored [in, out] (GPT-2 Conv1D, some fused MoE expert tensors) */
  readonly transposed?: boolean;
}

interface Layout {
  /** matrices in the tensor (leading dimensions flattened), rows and columns of each as stored */
  readonly batch: number;
  readonly rows: number;
  readonly cols: number;
  /** true: W ← W − s·r̂(r̂ᵀW) over stored rows (residual along the first axis); false: W ← W − s·(W r̂)r̂ᵀ */
  readonly first: boolean;
  readonly norm: 'none' | 'cols' | 'rows' | 'matrix';
}

function layoutOf(params: ProjectParams, info: Pick<TensorInfo, 'tensor' | 'shape'>): Layout {
  const shape = info.shape;
  if (shape.length < 2) {
    throw new WeightspaceError('invalid-spec', `tensor ${q(info.tensor)}: projection needs a matrix, got shape ${fmtShape(shape)}`);
  }
  const rows = shape[shape.length - 2]!;
  const cols = shape[shape.length - 1]!;
  let batch = 1;
  for (let i = 0; i < shape.length - 2; i++) batch *= shape[i]!;
  const t = params.transposed === true;
  const first = (params.side === 'writer') !== t;
  const logical = params.norm;
  const norm = logical === 'column' ? (t ? 'rows' : 'cols') : logical === 'row' ? (t ? 'cols' : 'rows') : logical;
  return { batch, rows, cols, first, norm };
}

interface ProjectState {
  /** r̂ᵀW per matrix and column [batch·cols] (first-axis projections) */
  c?: Float64Array;
  /** Σ W² per column (or per matrix) before projection, from pass 0 */
  before?: Float64Array;
  /** rescaling factors per column [batch·cols] or per matrix [batch] */
  factor?: Float64Array;
}

/** 1/‖r‖ after checking r's length against the projected axis. */
function inverseNorm(r: Float32Array, expected: number, tensor: string): number {
  if (r.length !== expected) {
    throw new WeightspaceError('shape-mismatch', `tensor ${q(tensor)}: direction has ${r.length} elements, expected ${expected}`);
  }
  let s = 0;
  for (let i = 0; i < r.length; i++) s += r[i]! * r[i]!;
  if (!(s > 0) || !Number.isFinite(s)) {
    throw new WeightspaceError('invalid-spec', `tensor ${q(tensor)}: direction has norm ${Math.sqrt(s)}: expected a finite non-zero vector`);
  }
  return 1 / Math.sqrt(s);
}

const ratio = (before: number, after: number): number => (after > 0 ? Math.sqrt(before / after) : 1);

/**
 * Directional ablation (abliteration): writers to the residual stream W ← W − s·r̂(r̂ᵀW),
 * readers W ← W − s·(W r̂)r̂ᵀ, optionally norm-preserving (see NormPreserving). Arditi et al.
 * 2024 "Refusal in language models is mediated by a single direction"; FailSpy; grimjim; heretic.
 * Inputs: [W (blocks), r ('whole', [residual width])]. r̂ᵀW sums over rows, so writers take a
 * reduce pass for it; column/matrix norms take reduce passes too; readers and row norms are row-local.
 */
export const projectKernel: KernelDef<ProjectParams, ProjectState> = {
  name: 'project',
  doc: 'writer W − s·r̂(r̂ᵀW), reader W − s·(Wr̂)r̂ᵀ, optional column/row/matrix norm preservation',
  passes(params, info) {
    if (!Number.isFinite(params.scale)) throw new WeightspaceError('invalid-spec', `tensor ${q(info.tensor)}: projection scale must be finite, got ${params.scale}`);
    const l = layoutOf(params, info);
    if (l.first) return l.norm === 'cols' || l.norm === 'matrix' ? 2 : 1;
    return l.norm === 'cols' || l.norm === 'matrix' ? 1 : 0;
  },
  partialLength(pass, params, _state, info) {
    const l = layoutOf(params, info);
    const bc = l.batch * l.cols;
    if (l.first) {
      if (pass === 0) return bc + (l.norm === 'cols' ? bc : 0) + (l.norm === 'matrix' ? l.batch : 0);
      return l.norm === 'cols' ? bc : l.batch;
    }
    return l.norm === 'cols' ? 2 * bc : 2 * l.batch;
  },
  reduce(pass, params, state, inputs, block, partial) {
    const l = layoutOf(params, block);
    const w = inputs[0]!;
    const r = inputs[1]!;
    const C = l.cols;
    const bc = l.batch * C;
    const rowCount = block.length / C;
    const g0 = block.start / C;
    if (l.first) {
      const inv = inverseNorm(r, l.rows, block.tensor);
      if (pass === 0) {
        for (let k = 0; k < rowCount; k++) {
          const g = g0 + k;
          const b = Math.floor(g / l.rows);
          const ri = r[g - b * l.rows]! * inv;
          const base = k * C;
          const cb = b * C;
          for (let j = 0; j < C; j++) partial[cb + j]! += ri * w[base + j]!;
          if (l.norm === 'cols') for (let j = 0; j < C; j++) partial[bc + cb + j]! += w[base + j]! * w[base + j]!;
          if (l.norm === 'matrix') {
            let s = 0;
            for (let j = 0; j < C; j++) s += w[base + j]! * w[base + j]!;
            partial[bc + b]! += s;
          }
        }
        return;
      }
      // pass 1: norms after projection
      const c = state!.c!;
      const s = params.scale;
      for (let k = 0; k < rowCount; k++) {
        const g = g0 + k;
        const b = Math.floor(g / l.rows);
        const sri = s * r[g - b * l.rows]! * inv;
        const base = k * C;
        const cb = b * C;
        if (l.norm === 'cols') {
          for (let j = 0; j < C; j++) {
            const v = w[base + j]! - sri * c[cb + j]!;
            partial[cb + j]! += v * v;
          }
        } else {
          let acc = 0;
          for (let j = 0; j < C; j++) {
            const v = w[base + j]! - sri * c[cb + j]!;
            acc += v * v;
          }
          partial[b]! += acc;
        }
      }
      return;
    }
    // readers (residual along the last axis): norms before and after in one pass
    const inv = inverseNorm(r, C, block.tensor);
    const s = params.scale;
    for (let k = 0; k < rowCount; k++) {
      const g = g0 + k;
      const b = Math.floor(g / l.rows);
      const base = k * C;
      let p = 0;
      for (let j = 0; j < C; j++) p += w[base + j]! * r[j]!;
      const sp = s * p * inv * inv;
      if (l.norm === 'cols') {
        const cb = b * C;
        for (let j = 0; j < C; j++) {
          const x = w[base + j]!;
          const v = x - sp * r[j]!;
          partial[cb + j]! += x * x;
          partial[bc + cb + j]! += v * v;
        }
      } else {
        let before = 0;
        let after = 0;
        for (let j = 0; j < C; j++) {
          const x = w[base + j]!;
          const v = x - sp * r[j]!;
          before += x * x;
          after += v * v;
        }
        partial[2 * b]! += before;
        partial[2 * b + 1]! += after;
      }
    }
  },
  finish(pass, params, state, acc, info) {
    const l = layoutOf(params, info);
    const bc = l.batch * l.cols;
    if (l.first && pass === 0) {
      const next: ProjectState = { c: acc.slice(0, bc) };
      if (l.norm === 'cols') next.before = acc.slice(bc, 2 * bc);
      if (l.norm === 'matrix') next.before = acc.slice(bc, bc + l.batch);
      return next;
    }
    if (l.first) {
      const before = state!.before!;
      const factor = new Float64Array(acc.length);
      for (let i = 0; i < acc.length; i++) factor[i] = ratio(before[i]!, acc[i]!);
      return { c: state!.c, factor };
    }
    const count = l.norm === 'cols' ? bc : l.batch;
    const factor = new Float64Array(count);
    if (l.norm === 'cols') for (let i = 0; i < bc; i++) factor[i] = ratio(acc[i]!, acc[bc + i]!);
    else for (let b = 0; b < l.batch; b++) factor[b] = ratio(acc[2 * b]!, acc[2 * b + 1]!);
    return { factor };
  },
  map(params, state, inputs, outputs, block) {
    const l = layoutOf(params, block);
    const w = inputs[0]!;
    const r = inputs[1]!;
    const C = l.cols;
    const rowCount = block.length / C;
    const g0 = block.start / C;
    const s = params.scale;
    const inv = inverseNorm(r, l.first ? l.rows : C, block.tensor);
    const row = scratchF64('project.row', C);
    const factor = state?.factor;
    for (let k = 0; k < rowCount; k++) {
      const g = g0 + k;
      const b = Math.floor(g / l.rows);
      const base = k * C;
      const cb = b * C;
      if (l.first) {
        const c = state!.c!;
        const sri = s * r[g - b * l.rows]! * inv;
        for (let j = 0; j < C; j++) row[j] = w[base + j]! - sri * c[cb + j]!;
      } else {
        let p = 0;
        for (let j = 0; j < C; j++) p += w[base + j]! * r[j]!;
        const sp = s * p * inv * inv;
        for (let j = 0; j < C; j++) row[j] = w[base + j]! - sp * r[j]!;
      }
      if (l.norm === 'rows') {
        let before = 0;
        let after = 0;
        for (let j = 0; j < C; j++) {
          before += w[base + j]! * w[base + j]!;
          after += row[j]! * row[j]!;
        }
        const f = ratio(before, after);
        for (let j = 0; j < C; j++) row[j]! *= f;
      } else if (l.norm === 'cols') {
        for (let j = 0; j < C; j++) row[j]! *= factor![cb + j]!;
      } else if (l.norm === 'matrix') {
        const f = factor![b]!;
        for (let j = 0; j < C; j++) row[j]! *= f;
      }
      for (const out of outputs) for (let j = 0; j < C; j++) out[base + j] = row[j]!;
    }
  },
};
