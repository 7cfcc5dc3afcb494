import { describe, it, expect } from 'vitest';
import { fillUniforms, philox4x32, tensorKey, uniformAt } from '../../core/counter-rng.js';

const hex = (a: Uint32Array): string[] => [...a].map((x) => x.toString(16).padStart(8, '0'));

describe('philox4x32-10', () => {
  // known-answer vectors of Random123 (kat_vectors: philox4x32 10 rounds)
  it('matches the Random123 known answers', () => {
    const out = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, out);
    expect(hex(out)).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    philox4x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, out);
    expect(hex(out)).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
    expect(hex(out)).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });
});

describe('counter-based uniforms', () => {
  it('fillUniforms gives uniformAt for any start, length and alignment', () => {
    const buf = new Float64Array(64);
    for (const seed of [0, 1, 2 ** 32 + 5, 2 ** 52]) {
      for (const start of [0, 1, 2, 3, 4, 5, 1021, 2 ** 33 + 3]) {
        for (const count of [1, 3, 4, 7, 64]) {
          fillUniforms(seed, 3, 0xdeadbeef, start, count, buf);
          for (let k = 0; k < count; k++) expect(buf[k]).toBe(uniformAt(seed, 3, 0xdeadbeef, start + k));
        }
      }
    }
  });

  it('a block split anywhere gives the same stream', () => {
    const whole = new Float64Array(1000);
    fillUniforms(9, 0, 42, 100, 1000, whole);
    const parts = new Float64Array(1000);
    const tmp = new Float64Array(1000);
    for (const [s, c] of [[0, 333], [333, 1], [334, 666]] as const) {
      fillUniforms(9, 0, 42, 100 + s, c, tmp);
      parts.set(tmp.subarray(0, c), s);
    }
    expect([...parts]).toEqual([...whole]);
  });

  it('values lie in [0, 1) and look uniform (mean, variance, 16-bucket χ²)', () => {
    const n = 1 << 18;
    const u = new Float64Array(n);
    fillUniforms(1234, 0, tensorKey('model.layers.0.mlp.up_proj.weight'), 0, n, u);
    let sum = 0, sq = 0, outside = 0;
    const buckets = new Array<number>(16).fill(0);
    for (const x of u) {
      if (!(x >= 0 && x < 1)) outside++;
      sum += x;
      sq += x * x;
      buckets[Math.floor(x * 16)]!++;
    }
    expect(outside).toBe(0);
    const mean = sum / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(sq / n - mean * mean - 1 / 12)).toBeLessThan(0.002);
    const e = n / 16;
    const chi2 = buckets.reduce((a, b) => a + ((b - e) ** 2) / e, 0);
    expect(chi2).toBeLessThan(40); // 15 degrees of freedom: p ≈ 5e-4 at 40
  });

  it('streams of different seeds, models and tensors are different and uncorrelated', () => {
    const n = 1 << 16;
    const a = new Float64Array(n), b = new Float64Array(n), c = new Float64Array(n), d = new Float64Array(n);
    const t = tensorKey('w');
    fillUniforms(1, 0, t, 0, n, a);
    fillUniforms(2, 0, t, 0, n, b);
    fillUniforms(1, 1, t, 0, n, c);
    fillUniforms(1, 0, tensorKey('w2'), 0, n, d);
    const corr = (x: Float64Array, y: Float64Array): number => {
      let s = 0;
      for (let i = 0; i < n; i++) s += (x[i]! - 0.5) * (y[i]! - 0.5);
      return s / n / (1 / 12);
    };
    for (const other of [b, c, d]) {
      expect(other[0]).not.toBe(a[0]);
      expect(Math.abs(corr(a, other))).toBeLessThan(5 / Math.sqrt(n));
    }
    // neighbouring elements are uncorrelated too
    const shifted = a.subarray(1);
    let s = 0;
    for (let i = 0; i < n - 1; i++) s += (a[i]! - 0.5) * (shifted[i]! - 0.5);
    expect(Math.abs(s / (n - 1) / (1 / 12))).toBeLessThan(5 / Math.sqrt(n));
  });

  it('tensor keys are stable (they are part of the determinism contract)', () => {
    expect(tensorKey('')).toBe(tensorKey(''));
    expect(tensorKey('model.layers.0.mlp.up_proj.weight')).toMatchInlineSnapshot(`3482872978`);
    expect(uniformAt(0, 0, tensorKey('model.embed_tokens.weight'), 12345)).toMatchInlineSnapshot(`0.8457557500805706`);
    expect(tensorKey('a')).not.toBe(tensorKey('b'));
  });

  it('rejects seeds that are not non-negative safe integers', () => {
    expect(() => uniformAt(-1, 0, 0, 0)).toThrow();
    expect(() => uniformAt(0.5, 0, 0, 0)).toThrow();
    expect(() => uniformAt(2 ** 53, 0, 0, 0)).toThrow();
  });
});
