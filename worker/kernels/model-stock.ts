import type { KernelDef } from '../../core/kernel-contract.js';
import type { ModelStockParams } from '../../core/specs/merge-spec.js';
import { addGram, symmetric, taskVectors } from './ta-gram.js';

export interface ModelStockState {
  readonly t: number;
}

const NORM_CLAMP = 1e-6;

/**
 * Model Stock's interpolation ratio from the task vectors' Gram matrix: the mean pairwise
 * cosine c (norm products clamped to ≥ 1e-6, cosines to [−1, 1], as mergekit), then
 * t = N·c / (1 + (N−1)·c). Where the denominator vanishes (c = −1/(N−1), e.g. two opposite task
 * vectors) t would be infinite: the base is kept (t = 0).
 */
export function modelStockT(g: readonly (readonly number[])[]): number {
  const n = g.length;
  let sum = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let k = i + 1; k < n; k++) {
      const np = Math.sqrt(Math.max(0, g[i]![i]!)) * Math.sqrt(Math.max(0, g[k]![k]!));
      sum += Math.min(1, Math.max(-1, g[i]![k]! / Math.max(np, NORM_CLAMP)));
      pairs++;
    }
  }
  if (pairs === 0) return 0; // one model: nothing to compare (the planner asks for two)
  const c = sum / pairs;
  const den = 1 + (n - 1) * c;
  return den === 0 ? 0 : (n * c) / den;
}

let rowGram = new Float64Array(0);

/**
 * Model Stock (Jang et al. 2024, arXiv 2403.19522; mergekit `model_stock`):
 * out = t·mean(θᵢ) + (1−t)·θ₀, t = N·cos/(1+(N−1)·cos), cos the mean pairwise cosine of the task vectors.
 */
export const modelStockKernel: KernelDef<ModelStockParams, ModelStockState> = {
  name: 'model-stock',
  doc: 'out = θ₀ + t·mean(δᵢ), t = N·c/(1+(N−1)c), c = mean pairwise cos(δᵢ, δⱼ) (mergekit model_stock)',
  passes: (params) => (params.filterWise ? 0 : 1),
  partialLength: (_pass, params) => params.models ** 2,
  reduce(_pass, params, _state, inputs, block, partial) {
    const vs = taskVectors(inputs.slice(1, 1 + params.models), inputs[0]!, 0, block.length);
    addGram(vs, params.models, block.length, partial);
  },
  finish(_pass, params, _state, acc) {
    return { t: modelStockT(symmetric(acc, params.models)) };
  },
  map(params, state, inputs, outputs, block) {
    const m = params.models;
    const n = block.length;
    const base = inputs[0]!;
    const out = outputs[0]!;
    const vs = taskVectors(inputs.slice(1, 1 + m), base, 0, n);
    const row = params.filterWise ? block.rowLength : n;
    if (rowGram.length < m * m) rowGram = new Float64Array(m * m);
    for (let r = 0; r < n; r += row) {
      let t = state?.t ?? 0;
      if (params.filterWise) {
        const g = rowGram.subarray(0, m * m);
        g.fill(0);
        const views = vs.map((v) => v.subarray(r, r + row));
        addGram(views, m, row, g);
        t = modelStockT(symmetric(g, m));
      }
      const f = t / m;
      for (let j = r; j < r + row; j++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += vs[i]![j]!;
        out[j] = base[j]! + f * s;
      }
    }
    for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, n));
  },
};
