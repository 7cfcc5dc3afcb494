import { describe, it, expect } from 'vitest';
import type { LoraExtractResult } from '../../../worker/kernels/lora-extract.js';
import { jacobiSingularValues, lowRankPlusNoise } from '../linalg/naive-svd.js';
import { randomF32, randomNormal, runKernel, shuffledDispatcher } from './research-harness.js';

/** ‖ΔW − B·A‖_F², naive loops in f64. */
function reconstructionError2(delta: Float64Array, b: Float32Array, a: Float32Array, m: number, n: number, r: number): number {
  let e = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let k = 0; k < r; k++) x += b[i * r + k]! * a[k * n + j]!;
      e += (delta[i * n + j]! - x) ** 2;
    }
  }
  return e;
}

async function extract(ft: Float32Array, base: Float32Array, m: number, n: number, params: Record<string, unknown>) {
  const r = params.rank as number;
  const out = await runKernel({ kernel: 'lora-extract', params: { seed: 0, ...params }, shape: [m, n], inputs: [ft, base], outputs: [r * n, m * r] });
  return { a: out.outputs[0]!, b: out.outputs[1]!, result: out.result as LoraExtractResult };
}

function deltaOf(ft: Float32Array, base: Float32Array): Float64Array {
  return Float64Array.from(ft, (x, i) => x - base[i]!);
}

describe('lora-extract kernel', () => {
  it('reconstruction error within 1% of the optimal rank-r error (Eckart–Young), 300×200', async () => {
    const [m, n, r] = [300, 200, 8];
    const base = randomF32(m * n, 1, 0.05);
    const d = lowRankPlusNoise(m, n, 30, 0.002, randomNormal, 2);
    const ft = Float32Array.from(base, (x, i) => x + d[i]!);
    const delta = deltaOf(ft, base);
    const sigma = jacobiSingularValues(delta, m, n);
    const optimal = sigma.slice(r).reduce((s, x) => s + x * x, 0);
    const { a, b, result } = await extract(ft, base, m, n, { rank: r });
    const err = reconstructionError2(delta, b, a, m, n, r);
    expect(Math.sqrt(err)).toBeLessThanOrEqual(1.01 * Math.sqrt(optimal));
    expect(Math.sqrt(err)).toBeGreaterThanOrEqual(Math.sqrt(optimal) * (1 - 1e-6)); // cannot beat the optimum
    // the result: exact Frobenius norm, top singular values, estimated residual
    const frob = delta.reduce((s, x) => s + x * x, 0);
    expect(result.frobenius2 / frob).toBeCloseTo(1, 10);
    for (let k = 0; k < r; k++) expect(result.sigma[k]! / sigma[k]!).toBeCloseTo(1, 4);
    expect(result.residual2 / optimal).toBeCloseTo(1, 2);
  });

  it('within 1% on a flat (pure noise) spectrum too, and with the singular values all in B', async () => {
    const [m, n, r] = [300, 200, 16];
    const base = new Float32Array(m * n);
    const ft = Float32Array.from(randomNormal(m * n, 5));
    const delta = deltaOf(ft, base);
    const sigma = jacobiSingularValues(delta, m, n);
    const optimal = sigma.slice(r).reduce((s, x) => s + x * x, 0);
    const { a, b } = await extract(ft, base, m, n, { rank: r, split: 'b', powerIters: 4 });
    expect(Math.sqrt(reconstructionError2(delta, b, a, m, n, r))).toBeLessThanOrEqual(1.01 * Math.sqrt(optimal));
    // split 'b': A = Vᵀ has orthonormal rows
    for (let p = 0; p < r; p++) for (let q = 0; q < r; q++) {
      let dot = 0;
      for (let j = 0; j < n; j++) dot += a[p * n + j]! * a[q * n + j]!;
      expect(Math.abs(dot - (p === q ? 1 : 0))).toBeLessThan(1e-5);
    }
  });

  it('spans several blocks (1100×250, folded in block order) and splits √σ into both factors', async () => {
    const [m, n, r] = [1100, 250, 12];
    const base = randomF32(m * n, 7, 0.05);
    const d = lowRankPlusNoise(m, n, 40, 0.001, randomNormal, 8);
    const ft = Float32Array.from(base, (x, i) => x + d[i]!);
    const delta = deltaOf(ft, base);
    const sigma = jacobiSingularValues(delta, m, n);
    const optimal = sigma.slice(r).reduce((s, x) => s + x * x, 0);
    const { a, b } = await extract(ft, base, m, n, { rank: r });
    expect(Math.sqrt(reconstructionError2(delta, b, a, m, n, r))).toBeLessThanOrEqual(1.01 * Math.sqrt(optimal));
    // sqrt split: ‖row k of A‖ = ‖column k of B‖ = √σ_k
    for (let k = 0; k < r; k++) {
      let ra = 0;
      let cb = 0;
      for (let j = 0; j < n; j++) ra += a[k * n + j]! ** 2;
      for (let i = 0; i < m; i++) cb += b[i * r + k]! ** 2;
      expect(Math.sqrt(ra) / Math.sqrt(sigma[k]!)).toBeCloseTo(1, 3);
      expect(Math.sqrt(cb) / Math.sqrt(sigma[k]!)).toBeCloseTo(1, 3);
    }
    // deterministic whatever order blocks complete in
    const again = await runKernel({ kernel: 'lora-extract', params: { seed: 0, rank: r }, shape: [m, n], inputs: [ft, base], outputs: [r * n, m * r], dispatcher: await shuffledDispatcher() });
    expect(Buffer.from(again.outputs[0]!.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    expect(Buffer.from(again.outputs[1]!.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  it('recovers an exactly low-rank ΔW to f32 precision', async () => {
    const [m, n, r] = [120, 90, 3];
    const u = randomF32(m * r, 9);
    const v = randomF32(r * n, 10);
    const base = randomF32(m * n, 11);
    const ft = new Float32Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let x = 0;
      for (let k = 0; k < r; k++) x += u[i * r + k]! * v[k * n + j]!;
      ft[i * n + j] = base[i * n + j]! + x;
    }
    const delta = deltaOf(ft, base);
    const { a, b } = await extract(ft, base, m, n, { rank: r });
    const frob = delta.reduce((s, x) => s + x * x, 0);
    expect(Math.sqrt(reconstructionError2(delta, b, a, m, n, r) / frob)).toBeLessThan(1e-5);
  });

  it('identical models give zero factors, not NaN', async () => {
    const base = randomF32(50 * 40, 12);
    const { a, b, result } = await extract(base, base, 50, 40, { rank: 4 });
    expect(a.every((x) => x === 0)).toBe(true);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(result.frobenius2).toBe(0);
  });

  it('rejects a rank beyond the matrix and a 1-D tensor', async () => {
    const x = randomF32(20, 1);
    await expect(extract(x, x, 4, 5, { rank: 5 })).rejects.toMatchObject({ code: 'invalid-spec' });
    await expect(runKernel({ kernel: 'lora-extract', params: { seed: 0, rank: 1 }, shape: [20], inputs: [x, x], outputs: [1, 1] })).rejects.toMatchObject({ code: 'invalid-spec' });
  });
});
