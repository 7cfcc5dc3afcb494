import { describe, it, expect } from 'vitest';
import { f32, gaussian, maxRelError, runKernel } from './merge-harness.js';

/** mergekit's karcher_merge_tensors with weights 1/N, on whole arrays */
function refKarcher(xs: Float32Array[], maxIter: number, tol: number): Float32Array {
  const n = xs[0]!.length;
  const N = xs.length;
  if (N === 1) return Float32Array.from(xs[0]!);
  const alphas = xs.map(() => 1 / N);
  const norms = xs.map((x) => Math.sqrt(x.reduce((s, v) => s + v * v, 0)));
  const units = xs.map((x, i) => Float64Array.from(x, (v) => (norms[i] === 0 ? 0 : v / norms[i]!)));
  const valid = norms.map((x, i) => (x > tol ? i : -1)).filter((i) => i >= 0);
  if (valid.length === 0) return new Float32Array(n);
  const asum = valid.reduce((s, i) => s + alphas[i]!, 0);
  const a = valid.map((i) => alphas[i]! / asum);
  const dot = (p: Float64Array, q: Float64Array): number => p.reduce((s, v, j) => s + v * q[j]!, 0);
  let mean = new Float64Array(n);
  valid.forEach((i, r) => units[i]!.forEach((v, j) => (mean[j]! += a[r]! * v)));
  const mn = Math.sqrt(dot(mean, mean));
  mean = mn < tol ? Float64Array.from(units[valid[0]!]!) : mean.map((v) => v / mn);
  for (let it = 0; it < maxIter; it++) {
    const tangent = new Float64Array(n);
    valid.forEach((i, r) => {
      const d = Math.min(1, Math.max(-1, dot(mean, units[i]!)));
      const th = Math.acos(d);
      if (th < tol) return;
      const f = (a[r]! * th) / Math.sin(th);
      for (let j = 0; j < n; j++) tangent[j]! += f * (units[i]![j]! - d * mean[j]!);
    });
    const tn = Math.sqrt(dot(tangent, tangent));
    if (tn < tol) break;
    mean = mean.map((v, j) => Math.cos(tn) * v + Math.sin(tn) * (tangent[j]! / tn));
    const un = Math.sqrt(dot(mean, mean));
    if (un > tol) mean = mean.map((v) => v / un);
  }
  const scale = alphas.reduce((s, al, i) => s + al * norms[i]!, 0);
  return Float32Array.from(mean, (v) => scale * v);
}

describe('karcher kernel', () => {
  const p = (models: number) => ({ models, maxIter: 10, tol: 1e-5 });

  it('hand values: orthogonal vectors of norms 2 and 1 → the 45° direction, norm 1.5', async () => {
    const out = await runKernel('karcher', p(2), [f32([2, 0]), f32([0, 1])], [2]);
    const h = 1.5 * Math.SQRT1_2;
    expect([...out].map((x) => +x.toFixed(5))).toEqual([+h.toFixed(5), +h.toFixed(5)]);
  });

  it('zero tensors: left out of the mean, counted in the scale; all zero gives zero', async () => {
    const out = await runKernel('karcher', p(3), [f32([3, 0]), f32([0, 0]), f32([0, 3])], [2]);
    expect(maxRelError(out, refKarcher([f32([3, 0]), f32([0, 0]), f32([0, 3])], 10, 1e-5))).toBeLessThan(1e-6);
    expect([...(await runKernel('karcher', p(2), [f32([0, 0]), f32([0, 0])], [2]))]).toEqual([0, 0]);
  });

  it('one model is returned as it is', async () => {
    expect([...(await runKernel('karcher', p(1), [f32([1, -2])], [2]))]).toEqual([1, -2]);
  });

  it('matches the naive reference on three models spanning several blocks', async () => {
    const shape = [700, 1000];
    const base = gaussian(700_000, 1, 0.02);
    const xs = [2, 3, 4].map((s) => Float32Array.from(gaussian(700_000, s, 0.02), (x, j) => x + base[j]!));
    for (const maxIter of [1, 10]) {
      const out = await runKernel('karcher', { models: 3, maxIter, tol: 1e-5 }, xs, shape);
      expect(maxRelError(out, refKarcher(xs, maxIter, 1e-5))).toBeLessThan(1e-6);
    }
  });
});
