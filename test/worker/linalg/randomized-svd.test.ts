import { describe, it, expect } from 'vitest';
import { summarizeSpectrum, sketchWidth } from '../../../worker/linalg/randomized-svd.js';
import { fillGaussian } from '../../../worker/linalg/gaussian.js';

describe('summarizeSpectrum', () => {
  it('exact spectrum of the identity: effective rank n, stable rank n, energy k/n', () => {
    const s = summarizeSpectrum([1, 1, 1, 1], 4, 4, 4, [1, 2, 4]);
    expect(s.exact).toBe(true);
    expect(s.effectiveRank).toBeCloseTo(4, 12);
    expect(s.stableRank).toBe(4);
    expect(s.energy).toEqual({ 1: 0.25, 2: 0.5, 4: 1 });
  });

  it('rank one: effective and stable rank 1', () => {
    const s = summarizeSpectrum([3, 0, 0], 9, 3, 5, [1]);
    expect(s.effectiveRank).toBeCloseTo(1, 12);
    expect(s.stableRank).toBe(1);
    expect(s.energy['1']).toBe(1);
  });

  it('Roy & Vetterli by hand: σ = (3, 1) → p = (0.75, 0.25), erank = exp(H)', () => {
    const s = summarizeSpectrum([3, 1], 10, 2, 2, []);
    const h = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
    expect(s.effectiveRank).toBeCloseTo(Math.exp(h), 12);
    expect(s.stableRank).toBeCloseTo(10 / 9, 12);
  });

  it('estimated tail: the residual energy is spread flat over the missing values', () => {
    // top 2 of a 4-dim spectrum; residual energy 2 over 2 values → σ₃ = σ₄ = 1
    const est = summarizeSpectrum([2, 1], 4 + 1 + 2, 4, 4, [1, 2, 3]);
    const full = summarizeSpectrum([2, 1, 1, 1], 7, 4, 4, [1, 2, 3]);
    expect(est.exact).toBe(false);
    expect(est.effectiveRank).toBeCloseTo(full.effectiveRank, 12);
    expect(est.energy).toEqual({ 1: 4 / 7, 2: 5 / 7, 3: null }); // beyond the sketch: unknown
  });

  it('a zero matrix has zero ranks', () => {
    const s = summarizeSpectrum([0, 0], 0, 5, 5, [1]);
    expect(s.effectiveRank).toBe(0);
    expect(s.stableRank).toBe(0);
    expect(s.energy['1']).toBe(0);
  });
});

describe('sketch pieces', () => {
  it('sketch width is clamped to the matrix', () => {
    expect(sketchWidth(64, 10, 4096, 4096)).toBe(74);
    expect(sketchWidth(64, 10, 30, 4096)).toBe(30);
  });

  it('the Gaussian stream is reproducible, keyed, and roughly standard normal', () => {
    const a = new Float64Array(20001);
    const b = new Float64Array(20001);
    fillGaussian(a, 7, 'x');
    fillGaussian(b, 7, 'x');
    expect(a).toEqual(b);
    fillGaussian(b, 7, 'y');
    expect(a[0]).not.toBe(b[0]);
    let mean = 0;
    let v = 0;
    for (const x of a) mean += x / a.length;
    for (const x of a) v += (x - mean) ** 2 / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.05);
  });
});
