import { describe, it, expect } from 'vitest';
import { f32, gaussian, maxRelError, runKernel } from './merge-harness.js';

/** mergekit's model_stock on whole arrays (rows = vectors along the last dimension when filter-wise) */
function refModelStock(base: Float32Array, xs: Float32Array[], rowLen: number): Float32Array {
  const n = base.length;
  const N = xs.length;
  const out = new Float32Array(n);
  for (let r = 0; r < n; r += rowLen) {
    const off = xs.map((x) => Float64Array.from(x.subarray(r, r + rowLen), (v, j) => Math.fround(v - base[r + j]!)));
    const cos: number[] = [];
    for (let i = 0; i < N; i++) {
      for (let k = i + 1; k < N; k++) {
        let d = 0, a = 0, b = 0;
        for (let j = 0; j < rowLen; j++) {
          d += off[i]![j]! * off[k]![j]!;
          a += off[i]![j]! ** 2;
          b += off[k]![j]! ** 2;
        }
        cos.push(Math.min(1, Math.max(-1, d / Math.max(Math.sqrt(a) * Math.sqrt(b), 1e-6))));
      }
    }
    const c = cos.reduce((s, x) => s + x, 0) / cos.length;
    const t = (N * c) / (1 + (N - 1) * c);
    for (let j = 0; j < rowLen; j++) {
      let avg = 0;
      for (const x of xs) avg += x[r + j]!;
      avg /= N;
      out[r + j] = t * avg + (1 - t) * base[r + j]!;
    }
  }
  return out;
}

describe('model-stock kernel', () => {
  it('golden: δ₁ = [1, 1, 0], δ₂ = [1, 0, 1] → t = 2/3 → [0.6667, 0.3333, 0.3333]', async () => {
    const out = await runKernel('model-stock', { models: 2, filterWise: false }, [f32([0, 0, 0]), f32([1, 1, 0]), f32([1, 0, 1])], [3]);
    expect([...out].map((x) => +x.toFixed(4))).toEqual([0.6667, 0.3333, 0.3333]);
  });

  it('zero task vectors keep the base; opposite ones (t infinite) keep the base', async () => {
    const b = f32([1, 2, 3]);
    expect([...(await runKernel('model-stock', { models: 2, filterWise: false }, [b, b, b], [3]))]).toEqual([1, 2, 3]);
    const out = await runKernel('model-stock', { models: 2, filterWise: false }, [f32([0, 0, 0]), f32([1, 0, 0]), f32([-1, 0, 0])], [3]);
    expect([...out]).toEqual([0, 0, 0]);
  });

  const shape = [700, 1000];
  const base = gaussian(700_000, 1, 0.02);
  const common = gaussian(700_000, 9, 0.01);
  // task vectors sharing a common part, so the cosine is well away from 0
  const xs = [2, 3, 4].map((s) => Float32Array.from(gaussian(700_000, s, 0.01), (x, j) => x + common[j]! + base[j]!));

  it('matches the naive reference per tensor, several blocks', async () => {
    const out = await runKernel('model-stock', { models: 3, filterWise: false }, [base, ...xs], shape);
    expect(maxRelError(out, refModelStock(base, xs, 700_000))).toBeLessThan(1e-6);
  });

  it('matches the naive reference filter-wise (one t per row)', async () => {
    const out = await runKernel('model-stock', { models: 2, filterWise: true }, [base, xs[0]!, xs[1]!], shape);
    expect(maxRelError(out, refModelStock(base, [xs[0]!, xs[1]!], 1000))).toBeLessThan(1e-6);
  });
});
