import { afterEach, describe, expect, it } from 'vitest';
import { decodeBlock, encodeBlock } from '../../../core/dtypes.js';
import { decodeInto, encodeFrom } from '../../../worker/simd/simd-codec.js';
import { setNativeEnabled, setSimdEnabled, simdBytes, simdFloats, simdFor, simdUse, simdWords, type SimdKernels } from '../../../worker/simd/simd-module.js';
import { exactOnBf16, linearKernel } from '../../../worker/kernels/linear.js';
import { rng } from '../kernels/merge-harness.js';

// Each WebAssembly loop against a naive JavaScript reference, bit for bit, on lengths that
// exercise the vector body and the scalar tail, with NaN, ±Inf, ±0 and subnormals.

afterEach(() => setSimdEnabled(true));

function kernels(...arrays: ArrayBufferView[]): SimdKernels {
  const k = simdFor(...arrays);
  if (!k) throw new Error('arrays are not in the simd memory');
  return k;
}

function floatsOf(bits: Uint32Array): Float32Array {
  const f = simdFloats(bits.length);
  new Uint32Array(f.buffer, f.byteOffset, bits.length).set(bits);
  return f;
}

function bitsOf(f: Float32Array): Uint32Array {
  return new Uint32Array(f.buffer, f.byteOffset, f.length);
}

/** Random f32 bit patterns, a third of them special (NaN payloads, ±Inf, ±0, subnormals, rounding ties for bf16). */
function nastyBits(n: number, seed: number): Uint32Array {
  const r = rng(seed);
  const specials = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x00000001, 0x807fffff, 0x3f808000, 0x3f818000, 0x3f80ffff, 0x7f7fffff, 0xff7fffff];
  const out = new Uint32Array(n);
  for (let j = 0; j < n; j++) out[j] = r() < 0.33 ? specials[Math.floor(r() * specials.length)]! : Math.floor(r() * 2 ** 32) >>> 0;
  return out;
}

describe('simd backend', () => {
  it('is loaded, and serves only arrays in its own memory', () => {
    const inside = simdFloats(8);
    expect(simdFor(inside)).toBeDefined();
    expect(simdFor(inside, new Float32Array(8))).toBeUndefined();
    setSimdEnabled(false);
    expect(simdFor(inside)).toBeUndefined();
  });

  it('hands out separate, aligned scratch, and a buffer of its own when the memory is full', () => {
    const a = simdBytes(100);
    const b = simdBytes(100);
    expect(a.buffer).toBe(b.buffer);
    expect(b.byteOffset).toBeGreaterThanOrEqual(a.byteOffset + 100);
    expect(a.byteOffset % 64).toBe(0);
    const huge = simdBytes(512 << 20);
    expect(huge.buffer).not.toBe(a.buffer);
    expect(simdFor(huge)).toBeUndefined();
  });
});

describe('bf16 codecs', () => {
  it('decode: every bf16 value, as core/dtypes.ts decodes it', () => {
    for (const n of [65536, 65531]) {
      const raw = simdBytes(2 * n);
      const words = new Uint16Array(raw.buffer, raw.byteOffset, n);
      for (let i = 0; i < n; i++) words[i] = (i * 40503) & 0xffff; // a permutation of all 16-bit values
      const wasm = simdFloats(n);
      decodeInto('BF16', raw, wasm, n);
      kernels(raw, wasm);
      const js = new Float32Array(n);
      decodeBlock('BF16', raw.slice(), js, n);
      expect(Buffer.from(bitsOf(wasm).buffer, wasm.byteOffset, 4 * n).equals(Buffer.from(js.buffer))).toBe(true);
    }
  });

  it('encode: round to nearest even, NaN kept quiet, as core/dtypes.ts encodes', () => {
    for (const n of [100_000, 99_997]) {
      const src = floatsOf(nastyBits(n, n));
      const wasm = simdBytes(2 * n);
      encodeFrom('BF16', src, wasm, n);
      kernels(src, wasm);
      const js = new Uint8Array(2 * n);
      encodeBlock('BF16', new Float32Array(src), js, n);
      expect(Buffer.from(wasm).equals(Buffer.from(js))).toBe(true);
    }
    // hand vectors: 1 + 2⁻⁸ is a tie (to even: 1), 1 + 3·2⁻⁸ a tie (to even: 1 + 2⁻⁶), a signalling NaN turns quiet
    const src = floatsOf(new Uint32Array([0x3f808000, 0x3f818000, 0x7f800001, 0xc0490fdb]));
    const out = simdBytes(8);
    encodeFrom('BF16', src, out, 4);
    expect([...new Uint16Array(out.buffer, out.byteOffset, 4)].map((x) => x.toString(16))).toEqual(['3f80', '3f82', '7fc0', 'c049']);
  });
});

describe('TIES selection loops', () => {
  const KEY = 0x7fffffff;
  const key = (x: number, b: number): number => new Uint32Array(new Float32Array([x - b]).buffer)[0]! & KEY;

  function inputs(n: number, seed: number): Float32Array[] {
    const r = rng(seed);
    const base = simdFloats(n);
    const x0 = simdFloats(n);
    const x1 = simdFloats(n);
    for (let j = 0; j < n; j++) {
      base[j] = (r() - 0.5) * 0.1;
      // coarse deltas (many ties), and a few specials
      x0[j] = base[j]! + Math.round((r() - 0.5) * 64) / 4096;
      x1[j] = r() < 0.01 ? [NaN, Infinity, -0][j % 3]! : base[j]! + (r() - 0.5) * 0.01;
    }
    return [base, x0, x1];
  }

  it('histDeltas2 and histDeltas count the high 16 bits of |δ| as the naive loop does, and takeCounts hands them over', () => {
    const n = 10_003;
    const [base, x0, x1] = inputs(n, 5) as [Float32Array, Float32Array, Float32Array];
    const hist = simdWords(2 << 16);
    const pairs = simdWords(4 << 16);
    const k = kernels(base, x0, x1, hist, pairs);
    const naive = new Map<number, number>();
    for (let j = 0; j < n; j++) {
      for (const [s, x] of [[0, x0], [1, x1]] as const) {
        const b = (s << 16) + (key(x[j]!, base[j]!) >>> 15);
        naive.set(b, (naive.get(b) ?? 0) + 1);
      }
    }
    const check = (): void => {
      const m = k.takeCounts(hist.byteOffset, 2 << 16, pairs.byteOffset);
      const got = new Map<number, number>();
      for (let i = 0; i < m; i++) got.set(pairs[2 * i]!, pairs[2 * i + 1]!);
      expect(got).toEqual(naive);
      expect(hist.every((c) => c === 0)).toBe(true);
    };
    k.histDeltas2(base.byteOffset, x0.byteOffset, x1.byteOffset, n, hist.byteOffset);
    check();
    k.histDeltas(base.byteOffset, x0.byteOffset, n, hist.byteOffset);
    k.histDeltas(base.byteOffset, x1.byteOffset, n, hist.byteOffset + (4 << 16));
    check();
  });

  it('windowAbove1 and windowAbove2 count (bucket − start, low bits) for keys in a window of high buckets, and the keys above it', () => {
    const n = 20_003;
    const [base, x0, x1] = inputs(n, 13) as [Float32Array, Float32Array, Float32Array];
    const width = 5;
    const span = width << 15;
    const lo0 = (key(4 / 4096, 0) >>> 15) - 2;
    const lo1 = (key(0.002, 0) >>> 15) - 2;
    const counts = simdWords(2 * (span + 4));
    const lists = simdWords(2 * (span + 5));
    const pairs = simdWords(2 * span);
    const k = kernels(base, x0, x1, counts, lists, pairs);
    const at1 = counts.byteOffset + 4 * (span + 4);
    const list0 = lists.byteOffset;
    const list1 = lists.byteOffset + 4 * (span + 5);
    const naive = (x: Float32Array, lo: number): Map<number, number> => {
      const m = new Map<number, number>();
      for (let j = 0; j < n; j++) {
        const kk = key(x[j]!, base[j]!);
        const rel = (kk >>> 15) - lo;
        if (rel >= 0 && rel < width) m.set(rel * 32768 + (kk & 0x7fff), (m.get(rel * 32768 + (kk & 0x7fff)) ?? 0) + 1);
      }
      expect(m.size).toBeGreaterThan(3);
      return m;
    };
    // takeTouched hands over the listed counters (and the spare's, zeroed); every counter is then 0 again
    const taken = (at: number, list: number): Map<number, number> => {
      const m = k.takeTouched(at, list, span, pairs.byteOffset);
      const got = new Map<number, number>();
      for (let i = 0; i < m; i++) got.set(pairs[2 * i]!, pairs[2 * i + 1]!);
      expect(got.size).toBe(m);
      const words = new Uint32Array(counts.buffer, at, span + 4);
      expect(words.every((w) => w === 0)).toBe(true);
      expect(new Uint32Array(counts.buffer, list, 1)[0]).toBe(0);
      return got;
    };
    // how many keys lie above each window (bucket ≥ start + width)
    const naiveAbove = (x: Float32Array, lo: number): number => {
      let a = 0;
      for (let j = 0; j < n; j++) if (key(x[j]!, base[j]!) >>> 15 >= lo + width) a++;
      return a;
    };
    const above = simdWords(2);
    expect(simdFor(above)).toBeDefined();
    k.windowAbove1(base.byteOffset, x0.byteOffset, n, lo0, width, counts.byteOffset, list0, above.byteOffset);
    expect(taken(counts.byteOffset, list0)).toEqual(naive(x0, lo0));
    expect(above[0]).toBe(naiveAbove(x0, lo0));
    k.windowAbove2(base.byteOffset, x0.byteOffset, x1.byteOffset, n, lo0, lo1, width, counts.byteOffset, at1, list0, list1, above.byteOffset);
    expect(taken(counts.byteOffset, list0)).toEqual(naive(x0, lo0));
    expect(taken(at1, list1)).toEqual(naive(x1, lo1));
    expect([above[0], above[1]]).toEqual([naiveAbove(x0, lo0), naiveAbove(x1, lo1)]);
    expect(above[0]).toBeGreaterThan(0);
    expect(above[0]).toBeLessThan(n);
  });

  it('localBucket finds where the count from the top reaches a rank', () => {
    const hist = simdWords(1 << 16);
    hist[65535] = 2;
    hist[40000] = 3;
    hist[7] = 5;
    const k = kernels(hist);
    expect([1, 2, 3, 5, 6, 10, 11].map((need) => k.localBucket(hist.byteOffset, need))).toEqual([65535, 65535, 40000, 40000, 7, 7, -1]);
  });

  it('lowDeltas and lowDeltas2 count the low 15 bits of the keys in one high bucket', () => {
    const n = 10_001;
    const [base, x0, x1] = inputs(n, 9) as [Float32Array, Float32Array, Float32Array];
    const t0 = key(4 / 4096, 0) >>> 15;
    const t1 = key(0.002, 0) >>> 15;
    const lo = simdWords(2 << 15);
    const pairs = simdWords(2 << 15);
    const k = kernels(base, x0, x1, lo, pairs);
    const naive = (x: Float32Array, t: number): Map<number, number> => {
      const m = new Map<number, number>();
      for (let j = 0; j < n; j++) {
        const kk = key(x[j]!, base[j]!);
        if (kk >>> 15 === t) m.set(kk & 0x7fff, (m.get(kk & 0x7fff) ?? 0) + 1);
      }
      expect(m.size).toBeGreaterThan(0);
      return m;
    };
    const taken = (at: number): Map<number, number> => {
      const m = k.takeCounts(at, 1 << 15, pairs.byteOffset);
      const got = new Map<number, number>();
      for (let i = 0; i < m; i++) got.set(pairs[2 * i]!, pairs[2 * i + 1]!);
      return got;
    };
    const lo1 = lo.byteOffset + (4 << 15);
    k.lowDeltas(base.byteOffset, x0.byteOffset, n, t0, lo.byteOffset);
    expect(taken(lo.byteOffset)).toEqual(naive(x0, t0));
    k.lowDeltas2(base.byteOffset, x0.byteOffset, x1.byteOffset, n, t0, t1, lo.byteOffset, lo1);
    expect(taken(lo.byteOffset)).toEqual(naive(x0, t0));
    expect(taken(lo1)).toEqual(naive(x1, t1));
  });
});

/**
 * `count` BF16 blocks of n elements in the module's memory, filled by `fill`, their decoded f32
 * copies, and the scratch the linear tests compare in (f32 and BF16, got and want).
 */
function bf16Blocks(count: number, n: number, fill: (i: number, words: Uint16Array) => void) {
  const raws = Array.from({ length: count }, () => simdBytes(2 * n));
  raws.forEach((raw, i) => fill(i, new Uint16Array(raw.buffer, raw.byteOffset, n)));
  const dec = raws.map((raw) => {
    const f = simdFloats(n);
    decodeInto('BF16', raw, f, n);
    return f;
  });
  const want = simdFloats(n);
  const got = simdFloats(n);
  const enc = simdBytes(2 * n);
  const wantEnc = simdBytes(2 * n);
  return { raws, dec, want, got, enc, wantEnc, k: kernels(...raws, ...dec, want, got, enc, wantEnc) };
}

describe('linear loop', () => {
  it('linear4: ((c₀x₀ + c₁x₁) + …) + b in f64, rounded once to f32, for one to four terms, as the naive loop', () => {
    for (const n of [4099, 4096, 3]) {
      const xs = [0, 1, 2, 3].map((i) => floatsOf(nastyBits(n, 7 * n + i)));
      // ordinary values too: specials make most sums NaN or ±Inf
      const r = rng(n);
      for (const x of xs) for (let j = 0; j < n; j += 2) x[j] = (r() - 0.5) * 2 ** Math.floor(r() * 40 - 20);
      const coef = [0.5, -1.25, 1 / 3, 7e-3];
      const b = 0.1;
      const out = simdFloats(n);
      const k = kernels(out, ...xs);
      for (let terms = 1; terms <= 4; terms++) {
        out.fill(0);
        k.linear4(xs[0]!.byteOffset, xs[1]!.byteOffset, xs[2]!.byteOffset, xs[3]!.byteOffset, terms, coef[0]!, coef[1]!, coef[2]!, coef[3]!, b, out.byteOffset, n);
        let nans = 0;
        for (let j = 0; j < n; j++) {
          let acc = coef[0]! * xs[0]![j]!;
          for (let i = 1; i < terms; i++) acc += coef[i]! * xs[i]![j]!;
          const want = Math.fround(acc + b);
          if (Number.isNaN(want)) {
            nans++;
            expect(out[j]).toBeNaN();
          } else expect(Object.is(out[j], want), `terms ${terms}, element ${j}: ${out[j]} ≠ ${want}`).toBe(true);
        }
        expect(nans).toBeLessThan(n);
      }
    }
  });

  it('linear4Bf16 reads BF16 with the bits of linear4 on the decoded values; linear4Bf16To16 writes encodeBf16 of them', () => {
    for (const n of [4099, 4096, 5]) {
      const r = rng(n + 1);
      const { raws, dec, want, got, enc, wantEnc, k } = bf16Blocks(4, n, (_i, w) => {
        for (let j = 0; j < n; j++) w[j] = r() < 0.05 ? [0x7fc1, 0xff80, 0x8000, 0x0001][Math.floor(r() * 4)]! : Math.floor(r() * 0x10000) & 0xbfff;
      });
      const c = [0.5, -1.25, 1 / 3, 7e-3];
      for (let terms = 1; terms <= 4; terms++) {
        k.linear4(dec[0]!.byteOffset, dec[1]!.byteOffset, dec[2]!.byteOffset, dec[3]!.byteOffset, terms, c[0]!, c[1]!, c[2]!, c[3]!, 0.1, want.byteOffset, n);
        k.linear4Bf16(raws[0]!.byteOffset, raws[1]!.byteOffset, raws[2]!.byteOffset, raws[3]!.byteOffset, terms, c[0]!, c[1]!, c[2]!, c[3]!, 0.1, got.byteOffset, n);
        expect(Buffer.from(bitsOf(got).buffer, got.byteOffset, 4 * n).equals(Buffer.from(bitsOf(want).buffer, want.byteOffset, 4 * n))).toBe(true);
        k.linear4Bf16To16(raws[0]!.byteOffset, raws[1]!.byteOffset, raws[2]!.byteOffset, raws[3]!.byteOffset, terms, c[0]!, c[1]!, c[2]!, c[3]!, 0.1, enc.byteOffset, n);
        k.encodeBf16(want.byteOffset, wantEnc.byteOffset, n);
        expect(Buffer.from(enc).equals(Buffer.from(wantEnc))).toBe(true);
      }
    }
  });

  it('linear2ExactBf16 (f32 and BF16 out) gives linear4\'s bits over every BF16 pattern, for coefficients exact on BF16', () => {
    // x₀ runs through all 65 536 patterns (NaN, ±Inf, ±0, subnormals, the largest), x₁ through them shuffled; 3 more for the tail
    const n = 65536 + 3;
    const r = rng(17);
    const { raws, dec, want, got, enc, wantEnc, k } = bf16Blocks(2, n, (i, w) => {
      for (let j = 0; j < n; j++) w[j] = i === 0 ? j & 0xffff : Math.floor(r() * 0x10000);
    });
    const sets: [number, number, number][] = [[0.5, 0.5, 2], [1, -1, 2], [0.75, 0.25, 2], [2 ** -16, 1, 2], [65535 / 65536, -(2 ** -16), 2], [1, 1, 2], [-1, 0, 1], [0.5, 0, 1]];
    for (const [c0, c1, terms] of sets) {
      expect([c0, c1].slice(0, terms).every(exactOnBf16)).toBe(true);
      k.linear4(dec[0]!.byteOffset, dec[1]!.byteOffset, 0, 0, terms, c0, c1, 0, 0, 0, want.byteOffset, n);
      k.linear2ExactBf16(raws[0]!.byteOffset, raws[1]!.byteOffset, terms, c0, c1, got.byteOffset, n);
      expect(Buffer.from(bitsOf(got).buffer, got.byteOffset, 4 * n).equals(Buffer.from(bitsOf(want).buffer, want.byteOffset, 4 * n)), `${c0}, ${c1}`).toBe(true);
      k.linear2ExactBf16To16(raws[0]!.byteOffset, raws[1]!.byteOffset, terms, c0, c1, enc.byteOffset, n);
      k.encodeBf16(want.byteOffset, wantEnc.byteOffset, n);
      expect(Buffer.from(enc).equals(Buffer.from(wantEnc)), `${c0}, ${c1} to BF16`).toBe(true);
    }
    // where the argument fails, so does the loop: 1.5 overflows f32 where f64 does not, 1/3 is not exact
    for (const [c0, c1] of [[1.5, -1.5], [1 / 3, 2 / 3]] as const) {
      expect(exactOnBf16(c0)).toBe(false);
      k.linear4(dec[0]!.byteOffset, dec[1]!.byteOffset, 0, 0, 2, c0, c1, 0, 0, 0, want.byteOffset, n);
      k.linear2ExactBf16(raws[0]!.byteOffset, raws[1]!.byteOffset, 2, c0, c1, got.byteOffset, n);
      expect(Buffer.from(bitsOf(got).buffer, got.byteOffset, 4 * n).equals(Buffer.from(bitsOf(want).buffer, want.byteOffset, 4 * n))).toBe(false);
    }
    expect([2 ** -17, 0.3, 1 + 2 ** -16].some(exactOnBf16)).toBe(false);
  });

  it('the linear kernel takes the exact f32 loop for raw BF16 blocks when it may, with the bytes of its JavaScript loop', () => {
    const n = 4099;
    const r = rng(5);
    const raws = [0, 1, 2].map(() => simdBytes(2 * n));
    // NaN in the first input only: where two NaNs meet, which one's payload an add keeps is up to
    // the engine (WebAssembly leaves it open), so JavaScript and WebAssembly may differ there
    const isNaN16 = (w: number): boolean => (w & 0x7f80) === 0x7f80 && (w & 0x7f) !== 0;
    raws.forEach((raw, i) => {
      const w = new Uint16Array(raw.buffer, raw.byteOffset, n);
      for (let j = 0; j < n; j++) {
        const x = r() < 0.05 ? [0x7fc1, 0xff80, 0x8000, 0x0001][Math.floor(r() * 4)]! : Math.floor(r() * 0x10000);
        w[j] = i > 0 && isNaN16(x) ? x & 0xbfff : x;
      }
    });
    const dec = raws.map((raw) => {
      const f = new Float32Array(n);
      decodeInto('BF16', raw, f, n);
      return f;
    });
    const block = { tensor: 't', shape: [n], blockIndex: 0, start: 0, length: n, rowLength: n };
    const cases: [number[][], boolean][] = [[[[0.5, 0.5, 0]], true], [[[1, -1]], true], [[[0.5, 0.25, 0.25]], false], [[[0.3, 0.7]], false]];
    for (const [coefficients, exact] of cases) {
      const inSimd = dec.map(() => simdFloats(n));
      const bf16Out = simdBytes(2 * n);
      const before = simdUse.exactLinear;
      const done = linearKernel.map!({ coefficients }, undefined, inSimd, [simdFloats(n)], {
        ...block, bf16: { raw: raws, decode: () => dec.forEach((d, i) => inSimd[i]!.set(d)) }, bf16Out,
      });
      expect(done).toBe('encoded');
      expect(simdUse.exactLinear - before).toBe(exact ? 1 : 0);
      const ref = [new Float32Array(n)];
      linearKernel.map!({ coefficients }, undefined, dec, ref, block);
      const refEnc = new Uint8Array(2 * n);
      encodeBlock('BF16', ref[0]!, refEnc, n);
      expect(Buffer.from(bf16Out).equals(Buffer.from(refEnc)), JSON.stringify(coefficients)).toBe(true);
    }
  });

  it('the linear kernel gives the same bytes from its SIMD loop (inputs in the module memory) and its JavaScript loops', () => {
    const n = 1027;
    const r = rng(3);
    const plain = [0, 1, 2, 3, 4].map(() => Float32Array.from({ length: n }, () => (r() - 0.5) * 4));
    const inSimd = plain.map((x) => {
      const f = simdFloats(n);
      f.set(x);
      return f;
    });
    const block = { tensor: 't', shape: [n], blockIndex: 0, start: 0, length: n, rowLength: n };
    for (const coefficients of [[[0.5]], [[0.5, 0.5]], [[1, -1, 0.25]], [[0.1, 0, 0.2, 0.3, 0.4]], [[1, 2, 3, 4, 5]], [[2, -2], [0, 1]]]) {
      const terms = coefficients[0]!.length;
      const outs = (xs: Float32Array[], simd: boolean): Float32Array[] => {
        const o = coefficients.map(() => (simd ? simdFloats(n) : new Float32Array(n)));
        linearKernel.map!({ coefficients, constants: coefficients.map(() => 0.125) }, undefined, xs.slice(0, terms), o, block);
        return o;
      };
      const calls = simdUse.calls;
      const a = outs(inSimd, true);
      if (terms <= 4) expect(simdUse.calls).toBeGreaterThan(calls);
      const b = outs(plain, false);
      for (let k = 0; k < a.length; k++) expect(Buffer.from(bitsOf(a[k]!).buffer, a[k]!.byteOffset, 4 * n).equals(Buffer.from(b[k]!.buffer))).toBe(true);
    }
  });

});

describe('BF16 variants of the TIES loops', () => {
  afterEach(() => setNativeEnabled(true));

  // with the native AVX-512 loops where this CPU has them (worker/native), and with the wasm ones
  it.each([true, false])('windowAbove2Bf16 and tiesMap2Bf16 read raw BF16 with the bits of the f32 loops on the decoded values (native loops allowed: %s)', (native) => {
    setNativeEnabled(native);
    const n = 10_003;
    const r = rng(21);
    const raws = [0, 1, 2].map(() => simdBytes(2 * n));
    const words = raws.map((b) => new Uint16Array(b.buffer, b.byteOffset, n));
    for (let j = 0; j < n; j++) {
      const b = Math.floor(r() * 0x7f00) | (r() < 0.5 ? 0x8000 : 0);
      words[0]![j] = b;
      // models near the base (small deltas, many ties) and some far, NaN, ±Inf
      for (const w of [words[1]!, words[2]!]) w[j] = r() < 0.02 ? [0x7fc0, 0x7f80, 0xff80, 0x0001][Math.floor(r() * 4)]! : (b + Math.round((r() - 0.5) * 24)) & 0xffff;
    }
    const dec = raws.map((b) => {
      const f = simdFloats(n);
      decodeInto('BF16', b, f, n);
      return f;
    });
    const span = 5 << 15;
    const counts = simdWords(4 * (span + 4));
    const lists = simdWords(4 * (span + 5));
    const above = simdWords(4);
    const pairs = simdWords(2 * span);
    const out = [simdFloats(n), simdFloats(n)];
    const k = kernels(...raws, ...dec, counts, lists, above, pairs, ...out);
    const c = (i: number): number => counts.byteOffset + 4 * i * (span + 4);
    const l = (i: number): number => lists.byteOffset + 4 * i * (span + 5);
    const taken = (i: number): Map<number, number> => {
      const m = k.takeTouched(c(i), l(i), span, pairs.byteOffset);
      return new Map(Array.from({ length: m }, (_, q) => [pairs[2 * q]!, pairs[2 * q + 1]!]));
    };
    // windows around the keys of some element of each model, so that they hold some keys
    const bucketAt = (x: Float32Array, j: number): number => (new Uint32Array(new Float32Array([x[j]! - dec[0]![j]!]).buffer)[0]! & 0x7fffffff) >>> 15;
    const lo = Math.max(0, bucketAt(dec[1]!, 7) - 2);
    const lo1 = Math.max(0, bucketAt(dec[2]!, 11) - 2);
    k.windowAbove2(dec[0]!.byteOffset, dec[1]!.byteOffset, dec[2]!.byteOffset, n, lo, lo1, 5, c(0), c(1), l(0), l(1), above.byteOffset);
    k.windowAbove2Bf16(raws[0]!.byteOffset, raws[1]!.byteOffset, raws[2]!.byteOffset, n, lo, lo1, 5, c(2), c(3), l(2), l(3), above.byteOffset + 8);
    expect([above[2], above[3]]).toEqual([above[0], above[1]]);

    const w0 = taken(0);
    expect(w0.size).toBeGreaterThan(0);
    expect(taken(2)).toEqual(w0);
    // windowAbove1 (one model), f32 and BF16: the window and count of windowAbove2's second model
    const pairs1 = taken(1);
    expect(pairs1.size).toBeGreaterThan(0);
    expect(taken(3)).toEqual(pairs1);
    const above1 = above[1];
    k.windowAbove1(dec[0]!.byteOffset, dec[2]!.byteOffset, n, lo1, 5, c(0), l(0), above.byteOffset);
    expect(above[0]).toBe(above1);
    expect(taken(0)).toEqual(pairs1);
    k.windowAbove1Bf16(raws[0]!.byteOffset, raws[2]!.byteOffset, n, lo1, 5, c(0), l(0), above.byteOffset);
    expect(above[0]).toBe(above1);
    expect(taken(0)).toEqual(pairs1);
    for (const norm of [1, 0]) {
      k.tiesMap2(dec[0]!.byteOffset, dec[1]!.byteOffset, dec[2]!.byteOffset, out[0]!.byteOffset, n, 0.75, -0.5, 2e-3, 1e-3, 1, 1, 0.6, 0.4, norm, 1.25);
      k.tiesMap2Bf16(raws[0]!.byteOffset, raws[1]!.byteOffset, raws[2]!.byteOffset, out[1]!.byteOffset, n, 0.75, -0.5, 2e-3, 1e-3, 1, 1, 0.6, 0.4, norm, 1.25);
      expect(Buffer.from(bitsOf(out[1]!).buffer, out[1]!.byteOffset, 4 * n).equals(Buffer.from(bitsOf(out[0]!).buffer, out[0]!.byteOffset, 4 * n))).toBe(true);
      // three models (the third a copy of the second, shifted): the same two forms
      k.tiesMap3(dec[0]!.byteOffset, dec[1]!.byteOffset, dec[2]!.byteOffset, dec[1]!.byteOffset, out[0]!.byteOffset, n, 0.75, -0.5, 0.3, 2e-3, 1e-3, 0, 1, 1, 1, 0.6, 0.4, 0.2, norm, 1.25);
      k.tiesMap3Bf16(raws[0]!.byteOffset, raws[1]!.byteOffset, raws[2]!.byteOffset, raws[1]!.byteOffset, out[1]!.byteOffset, n, 0.75, -0.5, 0.3, 2e-3, 1e-3, 0, 1, 1, 1, 0.6, 0.4, 0.2, norm, 1.25);
      expect(Buffer.from(bitsOf(out[1]!).buffer, out[1]!.byteOffset, 4 * n).equals(Buffer.from(bitsOf(out[0]!).buffer, out[0]!.byteOffset, 4 * n))).toBe(true);
      // one model: the same two forms
      k.tiesMap1(dec[0]!.byteOffset, dec[1]!.byteOffset, out[0]!.byteOffset, n, 0.75, 2e-3, 1, 0.6, norm, 1.25);
      k.tiesMap1Bf16(raws[0]!.byteOffset, raws[1]!.byteOffset, out[1]!.byteOffset, n, 0.75, 2e-3, 1, 0.6, norm, 1.25);
      expect(Buffer.from(bitsOf(out[1]!).buffer, out[1]!.byteOffset, 4 * n).equals(Buffer.from(bitsOf(out[0]!).buffer, out[0]!.byteOffset, 4 * n))).toBe(true);
    }
    // the histogram and candidate loops, f32 and BF16: the same counters (two models in one loop, and one)
    const hist = simdWords(3 << 16);
    const histOf = (raw: boolean): Uint32Array => {
      hist.fill(0);
      if (raw) k.histDeltas2Bf16(raws[0]!.byteOffset, raws[1]!.byteOffset, raws[2]!.byteOffset, n, hist.byteOffset);
      else k.histDeltas2(dec[0]!.byteOffset, dec[1]!.byteOffset, dec[2]!.byteOffset, n, hist.byteOffset);
      // the one-model loop, for the first model again, after the two models' histograms
      if (raw) k.histDeltasBf16(raws[0]!.byteOffset, raws[1]!.byteOffset, n, hist.byteOffset + (8 << 16));
      else k.histDeltas(dec[0]!.byteOffset, dec[1]!.byteOffset, n, hist.byteOffset + (8 << 16));
      return hist.slice();
    };
    const h32 = histOf(false);
    expect(h32.reduce((a, b) => a + b, 0)).toBe(3 * n);
    expect(h32.subarray(2 << 16)).toEqual(h32.subarray(0, 1 << 16));
    expect(histOf(true)).toEqual(h32);
    // candidates in the busiest bucket of each model (NaN and ±Inf deltas among the keys)
    const busiest = (from: number): number => {
      let best = from;
      for (let b = from; b < from + (1 << 16); b++) if (h32[b]! > h32[best]!) best = b;
      return best - from;
    };
    const [t0, t1] = [busiest(0), busiest(1 << 16)];
    const lows = simdWords(2 << 15);
    const lowOf = (raw: boolean): Uint32Array => {
      lows.fill(0);
      if (raw) k.lowDeltas2Bf16(raws[0]!.byteOffset, raws[1]!.byteOffset, raws[2]!.byteOffset, n, t0, t1, lows.byteOffset, lows.byteOffset + (4 << 15));
      else k.lowDeltas2(dec[0]!.byteOffset, dec[1]!.byteOffset, dec[2]!.byteOffset, n, t0, t1, lows.byteOffset, lows.byteOffset + (4 << 15));
      if (raw) k.lowDeltasBf16(raws[0]!.byteOffset, raws[1]!.byteOffset, n, t0, lows.byteOffset);
      else k.lowDeltas(dec[0]!.byteOffset, dec[1]!.byteOffset, n, t0, lows.byteOffset);
      return lows.slice();
    };
    const l32 = lowOf(false);
    expect(l32.reduce((a, b) => a + b, 0)).toBe(2 * h32[t0]! + h32[(1 << 16) + t1]!);
    expect(lowOf(true)).toEqual(l32);
    // plain TIES (f = 1, every model cut, λ = 1, normalised): the BF16 loops drop f, g and λ, the f32
    // loops keep them; the same bits, NaN and ±Inf deltas included (the cuts keep about half)
    const same = (): boolean => Buffer.from(bitsOf(out[1]!).buffer, out[1]!.byteOffset, 4 * n).equals(Buffer.from(bitsOf(out[0]!).buffer, out[0]!.byteOffset, 4 * n));
    const at = (i: number, xs: readonly (Float32Array | Uint8Array)[]): number => xs[i]!.byteOffset;
    // cuts at keys that occur (real cuts lie on a delta's magnitude: |δ| = l is kept)
    const cutAt = (x: Float32Array, j: number): number => Math.abs(Math.fround(x[j]! - dec[0]![j]!));
    const [l0, l1, l2] = [cutAt(dec[1]!, 7), cutAt(dec[2]!, 11), cutAt(dec[1]!, 13)];
    expect(l0 * l1 * l2).toBeGreaterThan(0);
    k.tiesMap2(at(0, dec), at(1, dec), at(2, dec), out[0]!.byteOffset, n, 1, 1, l0, l1, 1, 1, 0.6, 0.4, 1, 1);
    k.tiesMap2Bf16(at(0, raws), at(1, raws), at(2, raws), out[1]!.byteOffset, n, 1, 1, l0, l1, 1, 1, 0.6, 0.4, 1, 1);
    expect(same()).toBe(true);
    k.tiesMap3(at(0, dec), at(1, dec), at(2, dec), at(1, dec), out[0]!.byteOffset, n, 1, 1, 1, l0, l1, l2, 1, 1, 1, 0.6, 0.4, -0.2, 1, 1);
    k.tiesMap3Bf16(at(0, raws), at(1, raws), at(2, raws), at(1, raws), out[1]!.byteOffset, n, 1, 1, 1, l0, l1, l2, 1, 1, 1, 0.6, 0.4, -0.2, 1, 1);
    expect(same()).toBe(true);
    k.tiesMap1(at(0, dec), at(1, dec), out[0]!.byteOffset, n, 1, l0, 1, 0.6, 1, 1);
    k.tiesMap1Bf16(at(0, raws), at(1, raws), out[1]!.byteOffset, n, 1, l0, 1, 0.6, 1, 1);
    expect(same()).toBe(true);
    // and the plain loop is not the general one with other parameters: λ = 2 changes the bits
    k.tiesMap2(at(0, dec), at(1, dec), at(2, dec), out[0]!.byteOffset, n, 1, 1, l0, l1, 1, 1, 0.6, 0.4, 1, 2);
    expect(same()).toBe(false);
  });
});
