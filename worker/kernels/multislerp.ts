import { WeightspaceError, q } from '../../core/errors.js';
import type { KernelDef } from '../../core/kernel-contract.js';
import type { MultislerpParams } from '../../core/specs/merge-spec.js';
import { addGram, quad, symmetric, taskVectors } from './ta-gram.js';

export interface MultislerpState {
  /** out = Σᵢ cᵢ·vᵢ (+ base), vᵢ the models' (task) vectors */
  readonly coef: readonly number[];
}

/**
 * The multislerp result as coefficients on the input vectors, from their Gram matrix: every
 * step of mergekit's algorithm (unit vectors, weighted mean, tangent projection, exponential
 * map) stays in the span of the inputs, so it runs on coefficients with G as the inner product.
 */
export function multislerpCoefficients(g: readonly (readonly number[])[], w0: readonly number[], normalize: boolean, eps: number, tensor: string): number[] {
  const n = w0.length;
  let wsum = 0;
  for (const w of w0) wsum += w;
  const w = normalize ? w0.map((x) => x / wsum) : [...w0];
  const norms = g.map((row, i) => Math.sqrt(Math.max(0, row[i]!)));
  // unit vectors uᵢ = vᵢ/(‖vᵢ‖ + eps): coefficient aᵢ on vᵢ
  const a = norms.map((x) => 1 / (x + eps));
  let mean = a.map((ai, i) => w[i]! * ai);
  const meanNorm = Math.sqrt(Math.max(0, quad(g, mean, mean)));
  if (meanNorm < eps) {
    if (n === 2) return [w[0]!, w[1]!];
    throw new WeightspaceError('invalid-recipe', `multislerp: the weighted mean of the unit vectors of tensor ${q(tensor)} is zero (antipodal models with balancing weights): use different weights`);
  }
  mean = mean.map((x) => x / meanNorm);
  // dotsᵢ = uᵢ·mean; tangent = Σ wᵢ(uᵢ − dotsᵢ·mean)
  const gm = g.map((row) => row.reduce((s, x, k) => s + x * mean[k]!, 0));
  let wd = 0;
  for (let i = 0; i < n; i++) wd += w[i]! * a[i]! * gm[i]!;
  const tangent = mean.map((m, i) => w[i]! * a[i]! - wd * m);
  const tn = Math.sqrt(Math.max(0, quad(g, tangent, tangent))) + eps;
  const cos = Math.cos(tn);
  const sinc = Math.sin(tn) / tn;
  let avgNorm = 0;
  for (let i = 0; i < n; i++) avgNorm += norms[i]! * w[i]!;
  return mean.map((m, i) => (cos * m + sinc * tangent[i]!) * avgNorm);
}

/**
 * Multi-SLERP (mergekit `multislerp`; Goddard 2025): barycentric interpolation on the
 * hypersphere: project the unit vectors to the tangent space at their weighted mean, average
 * there, map back with exp, scale by the weighted mean norm. With a base, on task vectors.
 */
export const multislerpKernel: KernelDef<MultislerpParams, MultislerpState> = {
  name: 'multislerp',
  doc: 'out = [θ₀ +] ‖·‖_w · exp_μ(Σ wᵢ·log_μ(v̂ᵢ)), μ = normalised Σ wᵢv̂ᵢ (mergekit multislerp)',
  passes: (params) => (params.weights.length <= 1 ? 0 : 1),
  partialLength: (_pass, params) => params.weights.length ** 2,
  reduce(_pass, params, _state, inputs, block, partial) {
    const m = params.weights.length;
    const o = params.hasBase ? 1 : 0;
    const vs = taskVectors(inputs.slice(o, o + m), params.hasBase ? inputs[0] : undefined, 0, block.length);
    addGram(vs, m, block.length, partial);
  },
  finish(_pass, params, _state, acc, info) {
    const m = params.weights.length;
    return { coef: multislerpCoefficients(symmetric(acc, m), params.weights, params.normalizeWeights, params.eps, info.tensor) };
  },
  map(params, state, inputs, outputs, block) {
    const m = params.weights.length;
    const o = params.hasBase ? 1 : 0;
    const out = outputs[0]!;
    const n = block.length;
    if (m === 1) {
      // mergekit returns the one model as it is (no base involved)
      out.set(inputs[o]!.subarray(0, n));
    } else {
      const base = params.hasBase ? inputs[0] : undefined;
      const vs = taskVectors(inputs.slice(o, o + m), base, 0, n);
      const coef = state!.coef;
      for (let j = 0; j < n; j++) {
        let s = base ? base[j]! : 0;
        for (let i = 0; i < m; i++) s += coef[i]! * vs[i]![j]!;
        out[j] = s;
      }
    }
    for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, n));
  },
};
