import type { KernelDef } from '../../core/kernel-contract.js';
import type { KarcherParams } from '../../core/specs/merge-spec.js';
import { addGram, quad, symmetric, taskVectors } from './ta-gram.js';

export interface KarcherState {
  /** out = Σᵢ cᵢ·θᵢ */
  readonly coef: readonly number[];
}

/**
 * mergekit's `karcher_merge_tensors` with equal weights 1/N, run on coefficients over the unit
 * vectors (every iterate stays in their span), with their Gram matrix as the inner product.
 * Returns coefficients on the input tensors.
 */
export function karcherCoefficients(g: readonly (readonly number[])[], maxIter: number, tol: number): number[] {
  const n = g.length;
  const norms = g.map((row, i) => Math.sqrt(Math.max(0, row[i]!)));
  const alphas = norms.map(() => 1 / n);
  const valid = norms.map((x, i) => (x > tol ? i : -1)).filter((i) => i >= 0);
  if (valid.length === 0) return norms.map(() => 0);
  const k = valid.length;
  // U = Gram matrix of the valid unit vectors
  const u = valid.map((i) => valid.map((j) => g[i]![j]! / (norms[i]! * norms[j]!)));
  let alphaSum = 0;
  for (const i of valid) alphaSum += alphas[i]!;
  const a = valid.map((i) => alphas[i]! / alphaSum);
  const norm = (c: readonly number[]): number => Math.sqrt(Math.max(0, quad(u, c, c)));
  let mean = [...a];
  const mn = norm(mean);
  mean = mn < tol ? valid.map((_, r) => (r === 0 ? 1 : 0)) : mean.map((x) => x / mn);
  for (let it = 0; it < maxIter; it++) {
    const tangent = new Array<number>(k).fill(0);
    for (let r = 0; r < k; r++) {
      let dot = 0;
      for (let s = 0; s < k; s++) dot += u[r]![s]! * mean[s]!;
      dot = Math.min(1, Math.max(-1, dot));
      const theta = Math.acos(dot);
      if (theta < tol) continue;
      const f = (a[r]! * theta) / Math.sin(theta);
      // tangent += f·(u_r − dot·mean)
      tangent[r]! += f;
      for (let s = 0; s < k; s++) tangent[s]! -= f * dot * mean[s]!;
    }
    const tn = norm(tangent);
    if (tn < tol) break;
    mean = mean.map((x, s) => Math.cos(tn) * x + (Math.sin(tn) * tangent[s]!) / tn);
    const un = norm(mean);
    if (un > tol) mean = mean.map((x) => x / un);
  }
  let scale = 0;
  for (let i = 0; i < n; i++) scale += alphas[i]! * norms[i]!;
  const coef = norms.map(() => 0);
  valid.forEach((i, r) => {
    coef[i] = (scale * mean[r]!) / norms[i]!;
  });
  return coef;
}

/**
 * Karcher (Riemannian) mean of the models' tensors on the unit sphere, rescaled by their mean
 * norm (mergekit `karcher`; Karcher 1977): fixed-point iteration mean ← exp_mean(Σ αᵢ log_mean(θ̂ᵢ)).
 */
export const karcherKernel: KernelDef<KarcherParams, KarcherState> = {
  name: 'karcher',
  doc: 'out = (Σ‖θᵢ‖/N) · argmin_μ Σ d(μ, θ̂ᵢ)² on the sphere, by Karcher iteration (mergekit karcher)',
  passes: (params) => (params.models <= 1 ? 0 : 1),
  partialLength: (_pass, params) => params.models ** 2,
  reduce(_pass, params, _state, inputs, block, partial) {
    addGram(taskVectors(inputs.slice(0, params.models), undefined, 0, block.length), params.models, block.length, partial);
  },
  finish(_pass, params, _state, acc) {
    return { coef: karcherCoefficients(symmetric(acc, params.models), params.maxIter, params.tol) };
  },
  map(params, state, inputs, outputs, block) {
    const n = block.length;
    const out = outputs[0]!;
    if (params.models === 1) out.set(inputs[0]!.subarray(0, n));
    else {
      const coef = state!.coef;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let i = 0; i < params.models; i++) s += coef[i]! * inputs[i]![j]!;
        out[j] = s;
      }
    }
    for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, n));
  },
};
