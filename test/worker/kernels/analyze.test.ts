import { describe, it, expect } from 'vitest';
import type { AnalyzeResult } from '../../../worker/kernels/analyze.js';
import { jacobiSingularValues, lowRankPlusNoise } from '../linalg/naive-svd.js';
import { randomF32, randomNormal, runKernel, shuffledDispatcher } from './research-harness.js';

/** Independent reference for the exact statistics: plain loops over whole arrays. */
function naiveStats(base: Float32Array, models: Float32Array[]) {
  const d = models.map((x) => Float64Array.from(x, (v, i) => v - base[i]!));
  const base2 = base.reduce((s, x) => s + x * x, 0);
  const delta2 = d.map((x) => x.reduce((s, v) => s + v * v, 0));
  const dots: number[] = [];
  const conflicts: number[] = [];
  const both: number[] = [];
  for (let i = 0; i < d.length; i++) for (let k = i + 1; k < d.length; k++) {
    let dot = 0;
    let c = 0;
    let b = 0;
    for (let j = 0; j < base.length; j++) {
      const x = d[i]![j]!;
      const y = d[k]![j]!;
      dot += x * y;
      if (x !== 0 && y !== 0 && !Number.isNaN(x) && !Number.isNaN(y)) {
        b++;
        if (Math.sign(x) !== Math.sign(y)) c++;
      }
    }
    dots.push(dot);
    conflicts.push(c);
    both.push(b);
  }
  return { base2, delta2, dots, conflicts, both };
}

async function analyze(base: Float32Array, models: Float32Array[], shape: number[], spectrum?: Record<string, unknown>) {
  const params = { models: models.length, ...(spectrum ? { spectrum: { seed: 0, powerIters: 2, ranks: [1, 4, 16], ...spectrum } } : {}) };
  return (await runKernel({ kernel: 'analyze', params, shape, inputs: [base, ...models], outputs: [] })).result as AnalyzeResult;
}

describe('analyze kernel: exact statistics', () => {
  it('hand-computed norms, dots and TIES sign conflicts (zeros, ties and NaN not counted)', async () => {
    const base = Float32Array.of(0, 1, 2, 3, 4, 5);
    const m1 = Float32Array.of(1, 2, 2, 2, 5, 5); // δ1 = [1, 1, 0, -1, 1, 0]
    const m2 = Float32Array.of(-1, 2, 3, 4, Number.NaN, 5); // δ2 = [-1, 1, 1, 1, NaN, 0]
    const r = await analyze(base, [m1, m2], [6]);
    expect(r.base2).toBe(55);
    expect(r.delta2[0]).toBe(4);
    expect(r.delta2[1]).toBeNaN();
    expect(r.dots[0]).toBeNaN(); // NaN propagates into sums
    // both non-zero at elements 0, 1, 3 (element 4 has NaN); opposite signs at 0 and 3
    expect(r.bothNonzero).toEqual([2 + 1]);
    expect(r.conflicts).toEqual([2]);
  });

  it('matches the naive reference for three models on [700, 1000] (several blocks)', async () => {
    const shape = [700, 1000];
    const n = 700_000;
    const base = randomF32(n, 1);
    const models = [2, 3, 4].map((s) => {
      const x = Float32Array.from(base);
      const d = randomF32(n, s, 0.01);
      for (let i = 0; i < n; i++) if (i % (s + 1) !== 0) x[i] = x[i]! + d[i]!; // some elements untouched: zeros in δ
      return x;
    });
    const r = await analyze(base, models, shape);
    const ref = naiveStats(base, models);
    expect(r.numel).toBe(n);
    expect(r.base2 / ref.base2).toBeCloseTo(1, 10);
    r.delta2.forEach((x, i) => expect(x / ref.delta2[i]!).toBeCloseTo(1, 10));
    r.dots.forEach((x, i) => expect(Math.abs(x - ref.dots[i]!)).toBeLessThan(1e-9 * Math.sqrt(ref.delta2[0]! * ref.delta2[1]!)));
    expect(r.conflicts).toEqual(ref.conflicts);
    expect(r.bothNonzero).toEqual(ref.both);
    expect(r.spectra).toBeUndefined(); // none requested
  });

  it('a single model has no pairs', async () => {
    const r = await analyze(Float32Array.of(1, 2), [Float32Array.of(1, 3)], [2]);
    expect(r).toEqual({ numel: 2, base2: 5, delta2: [1], dots: [], conflicts: [], bothNonzero: [] });
  });
});

describe('analyze kernel: spectra', () => {
  const [m, n] = [1100, 250]; // 275k elements: 2 blocks
  const base = randomF32(m * n, 5, 0.05);
  const d = lowRankPlusNoise(m, n, 20, 0.0005, randomNormal, 6);
  const ft = Float32Array.from(base, (x, i) => x + d[i]!);
  const delta = Float64Array.from(ft, (x, i) => x - base[i]!);
  const sigma = jacobiSingularValues(delta, m, n);
  const frob = sigma.reduce((s, x) => s + x * x, 0);
  const erank = (() => {
    const l1 = sigma.reduce((s, x) => s + x, 0);
    return Math.exp(-sigma.reduce((s, x) => (x > 0 ? s + (x / l1) * Math.log(x / l1) : s), 0));
  })();

  it('exact when the sketch spans the row space (ℓ = min(m, n)): matches a Jacobi SVD', async () => {
    const r = await analyze(base, [ft], [m, n], { sketch: 250 });
    const s = r.spectra![0]!;
    expect(s.exact).toBe(true);
    for (let k = 0; k < 10; k++) expect(s.top[k]! / sigma[k]!).toBeCloseTo(1, 6);
    expect(s.frobenius2 / frob).toBeCloseTo(1, 8);
    expect(s.stableRank / (frob / sigma[0]! ** 2)).toBeCloseTo(1, 6);
    expect(s.effectiveRank / erank).toBeCloseTo(1, 4);
    const e4 = sigma.slice(0, 4).reduce((a, x) => a + x * x, 0) / frob;
    expect(s.energy['4']! / e4).toBeCloseTo(1, 6);
  });

  it('estimated with a small sketch: top values and energies accurate, effective rank errs high', async () => {
    const r = await analyze(base, [ft], [m, n], { sketch: 32 });
    const s = r.spectra![0]!;
    expect(s.exact).toBe(false);
    expect(s.top.length).toBe(32);
    for (let k = 0; k < 16; k++) {
      expect(s.top[k]!).toBeLessThanOrEqual(sigma[k]! * (1 + 1e-6)); // Ritz values are lower bounds
      expect(s.top[k]! / sigma[k]!).toBeCloseTo(1, 3);
    }
    expect(s.energy['16']! / (sigma.slice(0, 16).reduce((a, x) => a + x * x, 0) / frob)).toBeCloseTo(1, 3);
    expect(s.energy['64']).toBeUndefined(); // not requested
    expect(s.effectiveRank).toBeGreaterThanOrEqual(erank * 0.999);
  });

  it('is deterministic whatever order blocks complete in, with several models', async () => {
    const other = Float32Array.from(base, (x, i) => x + 0.01 * Math.sin(i));
    const params = { models: 2, spectrum: { sketch: 16, powerIters: 1, seed: 3, ranks: [4] } };
    const a = (await runKernel({ kernel: 'analyze', params, shape: [m, n], inputs: [base, ft, other], outputs: [] })).result;
    const b = (await runKernel({ kernel: 'analyze', params, shape: [m, n], inputs: [base, ft, other], outputs: [], dispatcher: await shuffledDispatcher() })).result;
    expect(b).toEqual(a);
    expect((a as AnalyzeResult).spectra).toHaveLength(2);
  });

  it('a zero task vector has a zero spectrum, and 1-D tensors get none', async () => {
    const r = await analyze(base, [base], [m, n], { sketch: 8 });
    expect(r.spectra![0]!.top.every((x) => x === 0)).toBe(true);
    expect(r.spectra![0]!.effectiveRank).toBe(0);
    const v = await analyze(Float32Array.of(1, 2, 3), [Float32Array.of(2, 2, 2)], [3], { sketch: 8 });
    expect(v.spectra).toBeUndefined();
  });
});
