import { describe, it, expect } from 'vitest';
import { f32, gaussian, maxRelError, runKernel } from './merge-harness.js';

function refNearswap(t: number, a: Float32Array, b: Float32Array): Float32Array {
  return Float32Array.from(a, (x, j) => {
    const y = b[j]!;
    let w = t / Math.abs(x - y);
    if (Number.isNaN(w) || !Number.isFinite(w)) w = 1;
    w = Math.min(1, Math.max(0, w));
    return w * y + (1 - w) * x;
  });
}

describe('nearswap kernel', () => {
  it('hand values, t = 0.5', async () => {
    const out = await runKernel('nearswap', { t: 0.5 }, [f32([1, 2, 3, 4]), f32([1, 2.5, 13, 4.0001])], [4]);
    expect([...out].map((x) => +x.toFixed(4))).toEqual([1, 2.5, 3.5, 4.0001]);
  });

  it('NaN takes the other model (weight 1)', async () => {
    const out = await runKernel('nearswap', { t: 0.1 }, [f32([NaN, 1]), f32([2, 1])], [2]);
    expect(Number.isNaN(out[0]!)).toBe(true); // 1·2 + 0·NaN
    expect(out[1]).toBe(1);
  });

  it('matches the naive reference on several blocks', async () => {
    const a = gaussian(700_000, 1, 0.02);
    const b = Float32Array.from(gaussian(700_000, 2, 0.001), (x, j) => x + a[j]!);
    const out = await runKernel('nearswap', { t: 0.001 }, [a, b], [700, 1000]);
    expect(maxRelError(out, refNearswap(0.001, a, b))).toBeLessThan(1e-6);
  });
});
