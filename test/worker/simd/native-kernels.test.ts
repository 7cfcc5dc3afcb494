import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { NATIVE_LOOPS, nativeUnavailable, setNativeEnabled, simdBytes, simdFloats, simdFor, simdWords, type SimdKernels } from '../../../worker/simd/simd-module.js';
import { rng } from '../kernels/merge-harness.js';

// The native AVX-512 loops against the WebAssembly ones they replace, bit for bit: every BF16
// pattern class (NaN payloads of both signs, ±Inf, ±0, subnormals), lengths that end inside a
// vector and on either side of the window loop's hit chunk (1024), windows that start at bucket 0
// (where the masked-off lanes of a tail would hit if they were not masked), every parameter form.

afterEach(() => setNativeEnabled(true));

/** Whether this machine's CPU runs the native loops (then `npm run build` must have built them). */
function cpuHasAvx512(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
  return ['avx512f', 'avx512bw', 'avx512vl', 'avx512dq'].every((f) => flags.includes(f));
}

function both(...arrays: ArrayBufferView[]): { wasm: SimdKernels; native: SimdKernels } {
  setNativeEnabled(false);
  const wasm = simdFor(...arrays)!;
  expect(setNativeEnabled(true)).toBe(true);
  const native = simdFor(...arrays)!;
  expect(native).not.toBe(wasm);
  return { wasm, native };
}

const LENGTHS = [0, 1, 15, 16, 17, 1023, 1024, 1025, 2063, 9000];

/** BF16 words: a base, and models near it (small deltas, many ties at a cut) with a share of specials. */
function bf16Inputs(models: number, n: number, seed: number, clustered = false): Uint8Array[] {
  const r = rng(seed);
  const raws = Array.from({ length: models + 1 }, () => simdBytes(2 * n + 64));
  const words = raws.map((b) => new Uint16Array(b.buffer, b.byteOffset, n));
  const specials = [0x7fc0, 0xffc1, 0x7f81, 0xff80, 0x7f80, 0x0000, 0x8000, 0x0001, 0x807f, 0x7f7f, 0xff7f];
  for (let j = 0; j < n; j++) {
    // clustered: bases in [2⁻⁷, 2⁻⁵), so that the deltas' buckets repeat and windows fill
    const magnitude = clustered ? 0x3c00 + Math.floor(r() * 0x100) : Math.floor(r() * 0x7f00);
    const b = r() < 0.03 ? specials[Math.floor(r() * specials.length)]! : magnitude | (r() < 0.5 ? 0x8000 : 0);
    words[0]![j] = b;
    for (let i = 1; i <= models; i++) {
      words[i]![j] = r() < 0.04 ? specials[Math.floor(r() * specials.length)]! : (b + Math.round((r() - 0.5) * 24)) & 0xffff;
    }
  }
  return raws;
}

const bytesOf = (a: ArrayBufferView, bytes: number): Buffer => Buffer.from(a.buffer, a.byteOffset, bytes);

/** The f32 loops' inputs: the same BF16 words as the high halves, random low halves (more NaN payloads, subnormals). */
function f32Inputs(raws: readonly Uint8Array[], n: number, seed: number): Uint8Array[] {
  const r = rng(seed);
  return raws.map((raw) => {
    const words = new Uint16Array(raw.buffer, raw.byteOffset, n);
    const f = simdBytes(4 * n + 64);
    const bits = new Uint32Array(f.buffer, f.byteOffset, n);
    for (let j = 0; j < n; j++) bits[j] = ((words[j]! << 16) | Math.floor(r() * 0x10000)) >>> 0;
    return f;
  });
}

/** Each case runs the loops over raw BF16 inputs and over f32 ones. */
const FORMS = [true, false].map((bf16) => ({ bf16, label: bf16 ? 'Bf16' : 'f32', inputs: (raws: Uint8Array[], n: number, seed: number) => (bf16 ? raws : f32Inputs(raws, n, seed)) }));

describe('native kernels', () => {
  it('load where the CPU has AVX-512, and say why not elsewhere', () => {
    const on = setNativeEnabled(true);
    expect(on).toBe(cpuHasAvx512());
    if (on) expect(nativeUnavailable).toBeUndefined();
    else expect(nativeUnavailable).toMatch(/AVX-512|missing|did not load/);
    // on, the native loops stand in for theirs and the others stay; off, every loop is the wasm one
    const f = simdFloats(4);
    setNativeEnabled(false);
    const wasm = simdFor(f)!;
    setNativeEnabled(true);
    const mixed = simdFor(f)!;
    for (const name of NATIVE_LOOPS) expect(mixed[name] !== wasm[name]).toBe(on);
    expect(mixed.takeTouched).toBe(wasm.takeTouched);
    expect(mixed.localBucket).toBe(wasm.localBucket);
    expect(mixed.histDeltas2Bf16).toBe(wasm.histDeltas2Bf16);
    expect(mixed.linear4Bf16).toBe(wasm.linear4Bf16);
  });

  it.runIf(cpuHasAvx512())('windowAbove1 and windowAbove2, f32 and BF16: the counters, their order and the counts above, as the wasm loops', () => {
    const span = 16 << 15; // the widest window ta-select asks for (WIN1_WIDTH)
    const counts = simdWords(4 * (span + 4));
    const lists = simdWords(4 * (span + 5));
    const above = simdWords(4);
    const pairs = simdWords(4 * span);
    const c = (i: number): number => counts.byteOffset + 4 * i * (span + 4);
    const l = (i: number): number => lists.byteOffset + 4 * i * (span + 5);
    const { wasm, native } = both(counts, lists, above, pairs);
    // the pairs (index, count) in the order the counters were first touched (the wasm loops' spare
    // counter, at width·2¹⁵, is dropped here as ta-select drops it)
    const taken = (k: SimdKernels, i: number, width: number): number[] => {
      const m = k.takeTouched(c(i), l(i), width << 15, pairs.byteOffset);
      return Array.from(pairs.subarray(0, 2 * m));
    };
    let windows = 0; // keys counted in the first model's windows
    for (const [n, form] of LENGTHS.flatMap((n) => FORMS.map((form) => [n, form] as const))) {
      const words16 = bf16Inputs(2, n, 100 + n, true);
      const raws = form.inputs(words16, n, n);
      const w2 = (k: SimdKernels): SimdKernels['windowAbove2'] => (form.bf16 ? k.windowAbove2Bf16 : k.windowAbove2);
      const w1 = (k: SimdKernels): SimdKernels['windowAbove1'] => (form.bf16 ? k.windowAbove1Bf16 : k.windowAbove1);
      const words = words16.map((b) => new Uint16Array(b.buffer, b.byteOffset, n));
      const bucket = (i: number, j: number): number => {
        const d = new Float32Array([new Float32Array(new Uint32Array([words[i]![j]! << 16]).buffer)[0]! - new Float32Array(new Uint32Array([words[0]![j]! << 16]).buffer)[0]!]);
        return (new Uint32Array(d.buffer)[0]! & 0x7fffffff) >>> 15;
      };
      // a window at bucket 0 (zero deltas hit it), and windows around real deltas
      const los: [number, number][] = [[0, 0]];
      if (n > 20) los.push([Math.max(0, bucket(1, 7) - 2), Math.max(0, bucket(2, 11) - 2)], [bucket(1, 19), 0xfff0]);
      for (const [lo0, lo1] of los) {
        for (const width of [16, 5, 1]) {
          const at = raws.map((b) => b.byteOffset);
          w2(wasm)(at[0]!, at[1]!, at[2]!, n, lo0, lo1, width, c(0), c(1), l(0), l(1), above.byteOffset);
          w2(native)(at[0]!, at[1]!, at[2]!, n, lo0, lo1, width, c(2), c(3), l(2), l(3), above.byteOffset + 8);
          expect([above[2], above[3]], `${form.label} n=${n} lo=${lo0},${lo1} width=${width}`).toEqual([above[0], above[1]]);
          const w0 = taken(wasm, 0, width);
          windows += w0.reduce((sum, v, i) => sum + (i % 2 === 1 ? v : 0), 0);
          expect(taken(native, 2, width)).toEqual(w0);
          expect(taken(native, 3, width)).toEqual(taken(wasm, 1, width));
          w1(wasm)(at[0]!, at[2]!, n, lo1, width, c(0), l(0), above.byteOffset);
          w1(native)(at[0]!, at[2]!, n, lo1, width, c(1), l(1), above.byteOffset + 4);
          expect(above[1]).toBe(above[0]);
          expect(taken(native, 1, width)).toEqual(taken(wasm, 0, width));
        }
      }
    }
    expect(windows).toBeGreaterThan(4000);
  });

  it.runIf(cpuHasAvx512())('lowDeltas and lowDeltas2, f32 and BF16: the counters of the wasm loops', () => {
    const hist = simdWords(2 << 16);
    const lows = [simdWords(2 << 15), simdWords(2 << 15)];
    const { wasm, native } = both(hist, ...lows);
    let counted = 0;
    for (const [n, form] of LENGTHS.flatMap((n) => FORMS.map((form) => [n, form] as const))) {
      const at = form.inputs(bf16Inputs(2, n, 300 + n, true), n, n).map((b) => b.byteOffset);
      // each model's busiest bucket (the most candidates), from the histogram loop (WebAssembly on both)
      hist.fill(0);
      (form.bf16 ? wasm.histDeltas2Bf16 : wasm.histDeltas2)(at[0]!, at[1]!, at[2]!, n, hist.byteOffset);
      const busiest = (from: number): number => {
        let best = from;
        for (let b = from; b < from + (1 << 16); b++) if (hist[b]! > hist[best]!) best = b;
        return best - from;
      };
      // and bucket 0, where the masked lanes of a tail would land if they counted
      for (const [t0, t1] of [[busiest(0), busiest(1 << 16)], [0, 0]] as const) {
        // counters filled with a pattern first: the loops add to what is there
        const low = (k: SimdKernels, i: number): void => {
          lows[i]!.fill(1);
          const [l0, l1] = [lows[i]!.byteOffset, lows[i]!.byteOffset + (4 << 15)];
          (form.bf16 ? k.lowDeltas2Bf16 : k.lowDeltas2)(at[0]!, at[1]!, at[2]!, n, t0, t1, l0, l1);
          (form.bf16 ? k.lowDeltasBf16 : k.lowDeltas)(at[0]!, at[1]!, n, t0, l1);
        };
        low(wasm, 0);
        low(native, 1);
        expect(bytesOf(lows[1]!, 8 << 15).equals(bytesOf(lows[0]!, 8 << 15)), `low ${form.label} n=${n} t=${t0},${t1}`).toBe(true);
        counted += lows[0]!.reduce((a, c) => a + c, 0) - (2 << 15);
      }
    }
    expect(counted).toBeGreaterThan(4000);
  });

  it.runIf(cpuHasAvx512())('tiesMap1, tiesMap2 and tiesMap3, f32 and BF16: the bits of the wasm loops, plain and general, NaN and ±Inf included', () => {
    const out = [simdFloats(9000 + 16), simdFloats(9000 + 16)];
    const { wasm, native } = both(...out);
    const cases: { f: number[]; l: number[]; g: number[]; w: number[]; norm: number; lambda: number }[] = [
      { f: [1, 1, 1], l: [2e-3, 1e-3, 5e-4], g: [1, 1, 1], w: [0.6, 0.4, -0.2], norm: 1, lambda: 1 }, // plain
      { f: [0.75, -0.5, 0.3], l: [2e-3, 1e-3, 0], g: [1, 1, 0], w: [0.6, 0.4, 0.2], norm: 1, lambda: 1.25 },
      { f: [1, 1, 1], l: [2e-3, 1e-3, 5e-4], g: [1, 1, 1], w: [0.5, 0.5, 0.5], norm: 0, lambda: 1 },
      { f: [2, 1, 1], l: [0, Infinity, 1e-3], g: [0, 1, 1], w: [0, 1, 3], norm: 1, lambda: 0.5 },
    ];
    let compared = 0;
    for (const [n, form] of LENGTHS.flatMap((n) => FORMS.map((form) => [n, form] as const))) {
      const at = form.inputs(bf16Inputs(3, n, 7 + n), n, n).map((b) => b.byteOffset);
      for (const p of cases) {
        const { f, l, g, w, norm, lambda } = p;
        // one loop run by both backends into outputs that start alike (NaN), compared past n too
        const same = (name: string, run: (k: SimdKernels, o: number) => void): void => {
          out.forEach((a) => a.fill(NaN));
          run(wasm, out[0]!.byteOffset);
          run(native, out[1]!.byteOffset);
          expect(bytesOf(out[1]!, 4 * n + 64).equals(bytesOf(out[0]!, 4 * n + 64)), `${name} ${form.label} n=${n} ${JSON.stringify(p)}`).toBe(true);
          compared += n;
        };
        same('tiesMap1', (k, o) => (form.bf16 ? k.tiesMap1Bf16 : k.tiesMap1)(at[0]!, at[1]!, o, n, f[0]!, l[0]!, g[0]!, w[0]!, norm, lambda));
        same('tiesMap2', (k, o) => (form.bf16 ? k.tiesMap2Bf16 : k.tiesMap2)(at[0]!, at[1]!, at[2]!, o, n, f[0]!, f[1]!, l[0]!, l[1]!, g[0]!, g[1]!, w[0]!, w[1]!, norm, lambda));
        same('tiesMap3', (k, o) => (form.bf16 ? k.tiesMap3Bf16 : k.tiesMap3)(
          at[0]!, at[1]!, at[2]!, at[3]!, o, n, f[0]!, f[1]!, f[2]!, l[0]!, l[1]!, l[2]!, g[0]!, g[1]!, g[2]!, w[0]!, w[1]!, w[2]!, norm, lambda,
        ));
      }
    }
    expect(compared).toBeGreaterThan(200_000);
    // the comparison can fail: another λ on one side gives other bits
    const raws = bf16Inputs(2, 1000, 1);
    const at = raws.map((b) => b.byteOffset);
    wasm.tiesMap2Bf16(at[0]!, at[1]!, at[2]!, out[0]!.byteOffset, 1000, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1);
    native.tiesMap2Bf16(at[0]!, at[1]!, at[2]!, out[1]!.byteOffset, 1000, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1.5);
    expect(bytesOf(out[1]!, 4000).equals(bytesOf(out[0]!, 4000))).toBe(false);
  });

  it.runIf(cpuHasAvx512())('encodeBf16: the bits of the wasm loop over NaN payloads, ±Inf, subnormals and rounding ties, and no byte past n', () => {
    const r = rng(3);
    for (const n of LENGTHS) {
      const src = simdWords(n + 16);
      const specials = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0xff812345, 0x00000001, 0x807fffff, 0x3f808000, 0x3f818000, 0x3f80ffff, 0x7f7fffff, 0xff7fffff, 0xff7f8000];
      for (let j = 0; j < n; j++) src[j] = r() < 0.4 ? specials[Math.floor(r() * specials.length)]! : Math.floor(r() * 2 ** 32) >>> 0;
      const dst = [simdBytes(2 * n + 32), simdBytes(2 * n + 32)];
      dst.forEach((d) => d.fill(0xa5));
      const { wasm, native } = both(src, ...dst);
      wasm.encodeBf16(src.byteOffset, dst[0]!.byteOffset, n);
      native.encodeBf16(src.byteOffset, dst[1]!.byteOffset, n);
      expect(bytesOf(dst[1]!, 2 * n + 32).equals(bytesOf(dst[0]!, 2 * n + 32)), `n=${n}`).toBe(true);
    }
  });

  it('a machine that cannot build them gets a warning, not a failed install', () => {
    const script = fileURLToPath(new URL('../../../worker/native/build-native.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/native kernels were not built \(.*ENOENT.*\); the WebAssembly loops will run instead/);
  });

  it.runIf(cpuHasAvx512())('refuse arrays outside the memory and counts that are not element counts, touching nothing', () => {
    const out = simdFloats(16);
    out.fill(7);
    const { native } = both(out);
    const end = (out.buffer as ArrayBuffer).byteLength;
    expect(() => native.encodeBf16(end - 8, out.byteOffset, 16)).toThrow(/outside the memory/);
    expect(() => native.tiesMap1Bf16(0, 0, end - 4, 16, 1, 0, 1, 1, 1, 1)).toThrow(/outside the memory/);
    expect(() => native.tiesMap1Bf16(0, 0, -64, 16, 1, 0, 1, 1, 1, 1)).toThrow(/outside the memory/);
    expect(() => native.windowAbove1Bf16(0, 0, 16, 0, 5, end - 100, out.byteOffset, out.byteOffset)).toThrow(/outside the memory/);
    expect(() => native.tiesMap1Bf16(0, 0, out.byteOffset, 1.5, 1, 0, 1, 1, 1, 1)).toThrow(/element count/);
    expect(() => native.tiesMap1Bf16(0, 0, out.byteOffset, -1, 1, 0, 1, 1, 1, 1)).toThrow(/element count/);
    expect(() => (native.encodeBf16 as (...a: unknown[]) => void)('0', out.byteOffset, 4)).toThrow(/not a number/);
    expect(Array.from(out)).toEqual(new Array(16).fill(7));
  });
});
