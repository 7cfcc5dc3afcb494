import { describe, it, expect } from 'vitest';
import { f32, gaussian, maxRelError, runKernel } from './merge-harness.js';

/** mergekit's ram: unique changes kept whole, overlapping ones averaged */
function refRam(base: Float32Array, xs: Float32Array[], eps: number): Float32Array {
  return Float32Array.from(base, (b, j) => {
    const tv = xs.map((x) => Math.fround(x[j]! - b));
    const nz = tv.map((v) => Math.abs(v) > eps);
    const count = nz.filter(Boolean).length;
    let s = 0;
    tv.forEach((v, i) => {
      s += nz[i] ? (count === 1 ? v : v / Math.max(count, 1)) : 0 * v;
    });
    return b + s;
  });
}

describe('ram kernel', () => {
  it('hand values: overlaps averaged, unique changes kept, changes ≤ ε ignored', async () => {
    const out = await runKernel('ram', { models: 2, epsilon: 1e-5 }, [f32([0, 0, 0, 0]), f32([0.1, 0, 0.3, 1e-6]), f32([0.3, 0.2, 0, 1e-6])], [4]);
    expect([...out].map((x) => +x.toFixed(6))).toEqual([0.2, 0.2, 0.3, 0]);
  });

  it('a NaN task vector poisons its position', async () => {
    const out = await runKernel('ram', { models: 2, epsilon: 1e-5 }, [f32([0, 0]), f32([NaN, 1]), f32([1, 1])], [2]);
    expect(Number.isNaN(out[0]!)).toBe(true);
    expect(out[1]).toBe(1);
  });

  it('matches the naive reference on several blocks (sparse task vectors)', async () => {
    const base = gaussian(700_000, 1, 0.02);
    const xs = [2, 3, 4].map((s) => {
      const d = gaussian(700_000, s, 0.01);
      return Float32Array.from(base, (b, j) => (j % (s + 1) === 0 ? b + d[j]! : b));
    });
    const out = await runKernel('ram', { models: 3, epsilon: 1e-5 }, [base, ...xs], [700, 1000]);
    expect(maxRelError(out, refRam(base, xs, 1e-5))).toBeLessThan(1e-6);
  });
});
