import { describe, it, expect } from 'vitest';
import { combine, combineThinnedSum, type ThinnedSumArgs } from '../../../worker/kernels/ta-combine.js';
import { simdFloats, simdFor } from '../../../worker/simd/simd-module.js';
import { gaussian, rng } from './merge-harness.js';

// combineThinnedSum fuses δ, the cut, the weighting and combine's sign election into one loop:
// it must give the bytes of the unfused steps (δ = f32(x − base); vᵢ = f32(fᵢ·δᵢ·[key > thᵢ]);
// combine), NaN, ±Inf, signed zeros and tied votes included

const NASTY = [0, -0, NaN, Infinity, -Infinity, 1e-45, -1e-45, 3e38, -3e38, 0.5, -0.5, 0.25, -0.25, 1.5];

function unfused(inputs: Float32Array[], factors: number[], thresholds: number[], weights: number[], normalize: boolean, lambda: number): Float32Array {
  const base = inputs[0]!;
  const n = base.length;
  const vs = inputs.slice(1).map((x, i) => {
    const d = new Float32Array(n);
    const bits = new Uint32Array(d.buffer);
    for (let j = 0; j < n; j++) d[j] = x[j]! - base[j]!;
    const v = new Float32Array(n);
    const f = Math.fround(factors[i]!);
    for (let j = 0; j < n; j++) v[j] = f * d[j]! * ((bits[j]! & 0x7fffffff) > thresholds[i]! ? 1 : 0);
    return v;
  });
  const out = new Float32Array(n);
  combine({ vs, weights, base, out, n, consensus: 'sum', normalize, lambda });
  return out;
}

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function inSimd(x: Float32Array): Float32Array {
  const y = simdFloats(x.length);
  y.set(x);
  return y;
}

/**
 * The same bits, except that a NaN's sign may differ: x86 returns the first operand's NaN (or a
 * negative default NaN for Inf·0), and V8 may swap the operands of a commutative operation.
 */
function sameBitsOrNaN(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let j = 0; j < a.length; j++) if (x[j] !== y[j] && !(Number.isNaN(a[j]) && Number.isNaN(b[j]))) return false;
  return a.length === b.length;
}

/** Runs the fused map on both backends (JS arrays; copies in the SIMD memory) and checks they agree. */
function fused(args: ThinnedSumArgs): boolean {
  const done = combineThinnedSum(args) === true;
  const inputs = args.inputs.map(inSimd);
  const out = simdFloats(args.n);
  expect(simdFor(...inputs, out)).toBeDefined();
  expect(combineThinnedSum({ ...args, inputs, out }) === true).toBe(done);
  if (done) expect(sameBitsOrNaN(out, args.out)).toBe(true);
  return done;
}

describe('combineThinnedSum, on the JavaScript and SIMD backends', () => {
  const settings: [string, number[], number[], boolean, number][] = [
    ['equal weights, normalized', [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], true, 1],
    ['negative and zero weights', [1, -0.7, 0], [1, -0.7, 0], true, 1.3],
    ['weights summing to 0', [0.4, -0.4, 0.4], [0.4, -0.4, 0.4], true, 1],
    ['rescaled factors, unnormalized, negative λ', [0.6 / 0.3, 0.4, 1 / 0.7], [0.6, 0.4, 1], false, -0.8],
  ];
  for (const m of [1, 2, 3]) {
    for (const [label, f, w, normalize, lambda] of settings) {
      it(`${m} models, ${label}: every combination of nasty values`, () => {
        const k = NASTY.length;
        const n = k ** (m + 1);
        const inputs = Array.from({ length: m + 1 }, () => new Float32Array(n));
        for (let j = 0; j < n; j++) {
          let r = j;
          for (let i = 0; i <= m; i++) {
            inputs[i]![j] = NASTY[r % k]!;
            r = Math.floor(r / k);
          }
        }
        // thresholds: keep all, keep above the bits of 0.25 (ties out), keep from 0.25 on (ties in)
        const t = new Uint32Array(new Float32Array([0.25]).buffer)[0]!;
        for (const th of [[-1, -1, -1], [t, t - 1, -1], [2147483647, t, t - 1]]) {
          const out = new Float32Array(n);
          const args = { inputs, factors: f.slice(0, m), thresholds: th.slice(0, m), weights: w.slice(0, m), out, n, normalize, lambda };
          expect(fused(args)).toBe(true);
          expect(sameBytes(out, unfused(inputs, args.factors, args.thresholds, args.weights, normalize, lambda))).toBe(true);
        }
      });
    }
    it(`${m} models, random data with tied magnitudes`, () => {
      const n = 50_000;
      const r = rng(m);
      const base = gaussian(n, 10 + m, 0.02);
      const inputs = [base];
      for (let i = 0; i < m; i++) {
        const x = new Float32Array(n);
        // a coarse grid of deltas: many equal magnitudes and exact cancellations
        for (let j = 0; j < n; j++) x[j] = base[j]! + Math.round((r() - 0.5) * 16) / 512;
        inputs.push(x);
      }
      const t = new Uint32Array(new Float32Array([4 / 512]).buffer)[0]!;
      const thresholds = [t, t - 1, -1].slice(0, m);
      const factors = [0.5, 0.8, 0.3].slice(0, m);
      const out = new Float32Array(n);
      expect(fused({ inputs, factors, thresholds, weights: factors, out, n, normalize: true, lambda: 1 })).toBe(true);
      expect(sameBytes(out, unfused(inputs, factors, thresholds, factors, true, 1))).toBe(true);
    });
  }

  it('declines other model counts', () => {
    const x = new Float32Array(4);
    const out = new Float32Array(4);
    expect(combineThinnedSum({ inputs: [x], factors: [], thresholds: [], weights: [], out, n: 4, normalize: true, lambda: 1 })).toBe(false);
    expect(combineThinnedSum({ inputs: [x, x, x, x, x], factors: [1, 1, 1, 1], thresholds: [-1, -1, -1, -1], weights: [1, 1, 1, 1], out, n: 4, normalize: true, lambda: 1 })).toBe(false);
  });
});
