import { describe, it, expect } from 'vitest';
import { f32, gaussian, maxRelError, runKernel } from './merge-harness.js';

/** mergekit's multislerp, step by step on whole arrays */
function refMultislerp(xs: Float32Array[], weights: number[], normalize: boolean, eps: number, base?: Float32Array): Float32Array {
  const n = xs[0]!.length;
  if (xs.length === 1) return Float32Array.from(xs[0]!);
  const ts = xs.map((x) => Float64Array.from(x, (v, j) => (base ? Math.fround(v - base[j]!) : v)));
  const wsum = weights.reduce((a, b) => a + b, 0);
  const w = normalize ? weights.map((x) => x / wsum) : weights;
  const norms = ts.map((t) => Math.sqrt(t.reduce((s, v) => s + v * v, 0)));
  const units = ts.map((t, i) => t.map((v) => v / (norms[i]! + eps)));
  const mean = new Float64Array(n);
  units.forEach((u, i) => u.forEach((v, j) => (mean[j]! += w[i]! * v)));
  const mn = Math.sqrt(mean.reduce((s, v) => s + v * v, 0));
  if (mn < eps) {
    if (xs.length !== 2) throw new Error('zero mean');
    return Float32Array.from(ts[0]!, (v, j) => v * w[0]! + ts[1]![j]! * w[1]! + (base ? base[j]! : 0));
  }
  for (let j = 0; j < n; j++) mean[j]! /= mn;
  const tangent = new Float64Array(n);
  units.forEach((u, i) => {
    let dot = 0;
    for (let j = 0; j < n; j++) dot += u[j]! * mean[j]!;
    for (let j = 0; j < n; j++) tangent[j]! += w[i]! * (u[j]! - dot * mean[j]!);
  });
  const tn = Math.sqrt(tangent.reduce((s, v) => s + v * v, 0)) + eps;
  const avg = norms.reduce((s, x, i) => s + x * w[i]!, 0);
  return Float32Array.from(mean, (m, j) => (m * Math.cos(tn) + tangent[j]! * (Math.sin(tn) / tn)) * avg + (base ? base[j]! : 0));
}

describe('multislerp kernel', () => {
  it('hand values: two orthogonal unit vectors, equal weights → the 45° midpoint', async () => {
    const out = await runKernel('multislerp', { weights: [1, 1], normalizeWeights: true, eps: 1e-8, hasBase: false }, [f32([1, 0]), f32([0, 1])], [2]);
    expect([...out].map((x) => +x.toFixed(5))).toEqual([0.70711, 0.70711]);
  });

  it('one model is returned as it is', async () => {
    const out = await runKernel('multislerp', { weights: [0.3], normalizeWeights: true, eps: 1e-8, hasBase: true }, [f32([1, 1]), f32([3, 4])], [2]);
    expect([...out]).toEqual([3, 4]);
  });

  it('antipodal pair with equal weights falls back to the weighted sum; three balanced ones are an error', async () => {
    const p = { weights: [1, 1], normalizeWeights: true, eps: 1e-8, hasBase: false };
    expect([...(await runKernel('multislerp', p, [f32([1, 2]), f32([-1, -2])], [2]))]).toEqual([0, 0]);
    const three = { ...p, weights: [1, 1, 2] };
    await expect(runKernel('multislerp', three, [f32([1, 0]), f32([1, 0]), f32([-1, 0])], [2])).rejects.toMatchObject({ code: 'invalid-recipe' });
  });

  const shape = [700, 1000];
  const base = gaussian(700_000, 1, 0.02);
  const xs = [2, 3, 4].map((s, i) => Float32Array.from(gaussian(700_000, s, 0.01 * (i + 1), 0.001), (x, j) => x + base[j]!));

  it('matches the naive reference with a base (task vectors), several blocks', async () => {
    const w = [0.5, 0.3, 0.2];
    const out = await runKernel('multislerp', { weights: w, normalizeWeights: true, eps: 1e-8, hasBase: true }, [base, ...xs], shape);
    expect(maxRelError(out, refMultislerp(xs, w, true, 1e-8, base))).toBeLessThan(1e-6);
  });

  it('matches the naive reference without a base, unnormalised weights', async () => {
    const w = [1, 2, 0.5];
    const out = await runKernel('multislerp', { weights: w, normalizeWeights: false, eps: 1e-8, hasBase: false }, xs, shape);
    expect(maxRelError(out, refMultislerp(xs, w, false, 1e-8))).toBeLessThan(1e-6);
  });
});
