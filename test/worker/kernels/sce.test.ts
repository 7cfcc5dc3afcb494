import { describe, it, expect } from 'vitest';
import { f32, fineTune, gaussian, maxRelError, runKernel } from './merge-harness.js';

/** mergekit's sce on whole arrays; the top-k by a full sort, ties to the lowest index */
function refSce(base: Float32Array, xs: Float32Array[], topk: number): Float32Array {
  const n = base.length;
  const N = xs.length;
  const d = xs.map((x) => Float32Array.from(x, (v, j) => v - base[j]!));
  if (topk < 1) {
    const variance = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      let m = 0;
      for (const v of d) m += v[j]!;
      m /= N;
      let s = 0;
      for (const v of d) s += (v[j]! - m) ** 2;
      variance[j] = s / N;
    }
    const nonzero = variance.reduce((c, v) => c + (v !== 0 ? 1 : 0), 0);
    const k = Math.floor(topk * nonzero);
    const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => variance[b]! - variance[a]! || a - b);
    const keep = new Uint8Array(n);
    for (let r = 0; r < k; r++) keep[order[r]!] = 1;
    for (const v of d) for (let j = 0; j < n; j++) if (!keep[j]) v[j] = 0;
  }
  const ms = d.map((v) => v.reduce((s, x) => s + x * x, 0) / n);
  const tot = ms.reduce((a, b) => a + b, 0);
  const w = tot === 0 ? ms.map(() => 1 / N) : ms.map((x) => x / tot);
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (const v of d) s += v[j]!;
    const sign = s >= 0 ? 1 : -1;
    let mixed = 0, div = 0;
    d.forEach((v, i) => {
      if (Math.sign(v[j]!) === sign) {
        mixed += v[j]! * w[i]!;
        div += w[i]!;
      }
    });
    out[j] = base[j]! + mixed / (div === 0 ? 1 : div);
  }
  return out;
}

describe('sce kernel', () => {
  const zero = f32([0, 0, 0, 0]);
  const d1 = f32([1, -2, 0, 3]);
  const d2 = f32([3, 2, 0, -1]);

  it('hand values, τ = 1: weights [0.5, 0.5], sign of the plain sum → [2, 2, 0, 3]', async () => {
    const out = await runKernel('sce', { models: 2, selectTopk: 1 }, [zero, d1, d2], [4]);
    expect([...out]).toEqual([2, 2, 0, 3]);
  });

  it('hand values, τ = 0.5: variances [1, 4, 0, 4], k = ⌊0.5·3⌋ = 1, tie to the lower index → [0, 2, 0, 0]', async () => {
    const out = await runKernel('sce', { models: 2, selectTopk: 0.5 }, [zero, d1, d2], [4]);
    expect([...out]).toEqual([0, 2, 0, 0]);
  });

  it('τ so small that k = 0 keeps the base', async () => {
    const b = f32([1, 2, 3, 4]);
    const out = await runKernel('sce', { models: 2, selectTopk: 0.01 }, [b, d1, d2], [4]);
    expect([...out]).toEqual([1, 2, 3, 4]);
  });

  const shape = [700, 1000];
  const base = gaussian(700_000, 1, 0.02);
  // quantised task vectors: many equal variances, so the top-k cut falls inside ties across blocks
  const xs = [2, 3, 4].map((s) => fineTune(base, s, 0.01, 1 / 256));

  for (const topk of [1, 0.5, 0.1]) {
    it(`matches the naive reference, τ = ${topk}, several blocks`, async () => {
      const out = await runKernel('sce', { models: 3, selectTopk: topk }, [base, ...xs], shape);
      expect(maxRelError(out, refSce(base, xs, topk))).toBeLessThan(1e-6);
    });
  }
});
