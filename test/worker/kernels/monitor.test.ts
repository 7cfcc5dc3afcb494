import { describe, it, expect } from 'vitest';
import type { MonitorResult } from '../../../worker/kernels/monitor.js';
import { randomF32, runKernel, shuffledDispatcher } from './research-harness.js';

/** Independent reference: plain loops over whole arrays. */
function naive(before: Float32Array, afters: Float32Array[], v: Float64Array): { vv: number; dot: number[]; dd: number[] } {
  let vv = 0;
  for (let i = 0; i < v.length; i++) vv += v[i]! * v[i]!;
  const dot: number[] = [];
  const dd: number[] = [];
  for (const a of afters) {
    let d1 = 0;
    let d2 = 0;
    for (let i = 0; i < before.length; i++) {
      const d = a[i]! - before[i]!;
      d1 += d * v[i]!;
      d2 += d * d;
    }
    dot.push(d1);
    dd.push(d2);
  }
  return { vv, dot, dd };
}

const SHAPE = [700, 1000]; // 700k elements: 3 blocks of 262 rows

describe('monitor kernel', () => {
  it('matches hand-computed sums for a vector checkpoint', async () => {
    const before = Float32Array.of(1, 2, 3, 4);
    const after = Float32Array.of(2, 2, 3, 2); // Δ = [1, 0, 0, -2]
    const v = Float32Array.of(1, 1, 1, 1);
    const { result } = await runKernel({ kernel: 'monitor', params: { contrast: false, afters: 1 }, shape: [4], inputs: [before, v, after], outputs: [] });
    expect(result).toEqual({ numel: 4, vv: 4, dot: [-1], dd: [5] });
  });

  it('uses positive − negative as the vector in contrast mode', async () => {
    const before = Float32Array.of(1, 2, 3, 4);
    const after = Float32Array.of(2, 2, 3, 2);
    const pos = Float32Array.of(2, 1, 0, -1);
    const neg = Float32Array.of(1, 0, -1, -2); // v = [1, 1, 1, 1]
    const { result } = await runKernel({ kernel: 'monitor', params: { contrast: true, afters: 1 }, shape: [4], inputs: [before, pos, neg, after], outputs: [] });
    expect(result).toEqual({ numel: 4, vv: 4, dot: [-1], dd: [5] });
  });

  it('matches the naive reference across several blocks, for several afters, folded in block order', async () => {
    const n = SHAPE[0]! * SHAPE[1]!;
    const before = randomF32(n, 1);
    const pos = randomF32(n, 2);
    const neg = randomF32(n, 3);
    const a1 = randomF32(n, 4);
    const a2 = new Float32Array(n);
    for (let i = 0; i < n; i++) a2[i] = before[i]! + 0.01 * (pos[i]! - neg[i]!) + 1e-4 * a1[i]!; // steered: cosine near 1
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = pos[i]! - neg[i]!;
    const ref = naive(before, [a1, a2], v);
    const run = { kernel: 'monitor' as const, params: { contrast: true, afters: 2 }, shape: SHAPE, inputs: [before, pos, neg, a1, a2], outputs: [] };
    const got = (await runKernel(run)).result as MonitorResult;
    expect(got.vv).toBeCloseTo(ref.vv, 6);
    for (let a = 0; a < 2; a++) {
      expect(Math.abs(got.dot[a]! - ref.dot[a]!)).toBeLessThan(1e-9 * Math.sqrt(ref.dd[a]! * ref.vv));
      expect(got.dd[a]! / ref.dd[a]!).toBeCloseTo(1, 10);
    }
    const cos2 = got.dot[1]! / Math.sqrt(got.dd[1]! * got.vv);
    expect(cos2).toBeGreaterThan(0.99);
    // blocks completing out of order give the same bits: partials are folded in block order
    const shuffled = (await runKernel({ ...run, dispatcher: await shuffledDispatcher() })).result;
    expect(shuffled).toEqual(got);
  });

  it('propagates NaN and reports a zero vector as zero norm', async () => {
    const before = Float32Array.of(0, 0, 0);
    const after = Float32Array.of(1, Number.NaN, 0);
    const zero = Float32Array.of(0, 0, 0);
    const r = (await runKernel({ kernel: 'monitor', params: { contrast: false, afters: 1 }, shape: [3], inputs: [before, zero, after], outputs: [] })).result as MonitorResult;
    expect(r.vv).toBe(0);
    expect(r.dd[0]).toBeNaN();
  });

  it('rejects a job without afters', async () => {
    const x = Float32Array.of(1);
    await expect(runKernel({ kernel: 'monitor', params: { contrast: false, afters: 0 }, shape: [1], inputs: [x, x], outputs: [] })).rejects.toMatchObject({ code: 'invalid-spec' });
  });
});
