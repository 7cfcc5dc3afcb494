import { describe, it, expect } from 'vitest';
import { blocksOf } from '../../../core/plan.js';
import { f32, gaussian, maxRelError, runKernel } from './merge-harness.js';

/** mergekit's slerp, naively over whole arrays */
function refSlerp(t: number, a: Float32Array, b: Float32Array): Float32Array {
  let na = 0, nb = 0;
  for (let j = 0; j < a.length; j++) {
    na += a[j]! * a[j]!;
    nb += b[j]! * b[j]!;
  }
  na = Math.sqrt(na);
  nb = Math.sqrt(nb);
  const ua = Array.from(a, (x) => (na > 1e-8 ? x / na : x));
  const ub = Array.from(b, (x) => (nb > 1e-8 ? x / nb : x));
  let dot = 0;
  for (let j = 0; j < a.length; j++) dot += ua[j]! * ub[j]!;
  if (Math.abs(dot) > 0.9995) return Float32Array.from(a, (x, j) => (1 - t) * x + t * b[j]!);
  const th = Math.acos(dot);
  const s0 = Math.sin(th - th * t) / Math.sin(th);
  const s1 = Math.sin(th * t) / Math.sin(th);
  return Float32Array.from(a, (x, j) => s0 * x + s1 * b[j]!);
}

describe('slerp kernel', () => {
  it('golden: t = 0.5 of [2, 0] and [0, 1] → [1.41421, 0.70711]', async () => {
    const out = await runKernel('slerp', { t: 0.5 }, [f32([2, 0]), f32([0, 1])], [2]);
    expect([...out].map((x) => +x.toFixed(5))).toEqual([1.41421, 0.70711]);
  });

  it('golden: t = 0.5 of [1, 1] and [2, 2.001] lerps (|cos| > 0.9995) → [1.5, 1.5005]', async () => {
    const out = await runKernel('slerp', { t: 0.5 }, [f32([1, 1]), f32([2, 2.001])], [2]);
    expect([...out].map((x) => +x.toFixed(4))).toEqual([1.5, 1.5005]);
  });

  it('matches the naive reference on a tensor spanning several blocks (the whole tensor is one vector)', async () => {
    const shape = [700, 1000];
    expect(blocksOf(shape).length).toBeGreaterThan(2);
    const a = gaussian(700_000, 1, 0.02);
    const b = gaussian(700_000, 2, 0.03, 0.001);
    for (const t of [0, 0.3, 0.5, 1]) {
      const out = await runKernel('slerp', { t }, [a, b], shape);
      expect(maxRelError(out, refSlerp(t, a, b))).toBeLessThan(1e-6);
    }
    // t = 0 is the base exactly
    expect(maxRelError(await runKernel('slerp', { t: 0 }, [a, b], shape), a)).toBe(0);
  });

  it('edge cases: a zero tensor, antiparallel tensors, NaN', async () => {
    const zero = f32([0, 0, 0]);
    const x = f32([1, -2, 2]);
    expect(maxRelError(await runKernel('slerp', { t: 0.25 }, [zero, x], [3]), refSlerp(0.25, zero, x))).toBeLessThan(1e-7);
    const neg = f32([-1, 2, -2]);
    expect([...(await runKernel('slerp', { t: 0.25 }, [x, neg], [3]))]).toEqual([0.5, -1, 1]);
    const out = await runKernel('slerp', { t: 0.5 }, [f32([1, NaN, 0]), x], [3]);
    expect([...out].every(Number.isNaN)).toBe(true);
  });
});
