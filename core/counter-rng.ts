/**
 * A counter-based random number generator: Philox-4x32-10 (Salmon et al., "Parallel Random
 * Numbers: As Easy as 1, 2, 3", SC 2011; the Random123 library). A draw is a pure function of
 * (seed, model, tensor, flat element index), so the same job gives the same masks on any
 * machine, any number of workers and any block split: nothing is carried from one draw to
 * the next, and a block can start anywhere.
 *
 * Layout: key = (seed mod 2³², ⌊seed / 2³²⌋); counter = (g mod 2³², ⌊g / 2³²⌋, model,
 * tensorKey(name)) with g = ⌊index / 4⌋; the 4 output words serve elements 4g … 4g+3.
 * A uniform is word · 2⁻³² ∈ [0, 1).
 */

import { fmix32, fnv1a } from './hash32.js';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const M0L = M0 & 0xffff, M0H = M0 >>> 16, M1L = M1 & 0xffff, M1H = M1 >>> 16;
const TWO32 = 4294967296;
const INV_TWO32 = 1 / TWO32;

/**
 * High 32 bits of the 64-bit product of a constant (given as 16-bit halves) and a uint32,
 * in int32 arithmetic (Math.imul on 16-bit limbs): the fastest exact form in V8.
 */
function mulhi(mL: number, mH: number, x: number): number {
  const aL = x & 0xffff;
  const aH = x >>> 16;
  const ll = Math.imul(mL, aL) >>> 0;
  const lh = Math.imul(mL, aH) >>> 0;
  const hl = Math.imul(mH, aL) >>> 0;
  const hh = Math.imul(mH, aH) >>> 0;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox-4x32 with 10 rounds: writes the 4 output words of counter (c0..c3) under key (k0, k1) to `out`. */
export function philox4x32(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  let x0 = c0 >>> 0, x1 = c1 >>> 0, x2 = c2 >>> 0, x3 = c3 >>> 0;
  let key0 = k0 >>> 0, key1 = k1 >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(M0L, M0H, x0);
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi(M1L, M1H, x2);
    const lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
    key0 = (key0 + W0) >>> 0;
    key1 = (key1 + W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

/** A 32-bit key for a tensor name: FNV-1a over its UTF-16 code units, then a murmur3 finaliser. */
export function tensorKey(name: string): number {
  return fmix32(fnv1a(name));
}

function seedWords(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
  return [seed % TWO32, Math.floor(seed / TWO32)];
}

const one = new Uint32Array(4);

/** The uniform in [0, 1) of one element (the reference; blocks use `fillUniforms`). */
export function uniformAt(seed: number, model: number, tkey: number, index: number): number {
  const [k0, k1] = seedWords(seed);
  const g = Math.floor(index / 4);
  philox4x32(g % TWO32, Math.floor(g / TWO32), model, tkey, k0, k1, one);
  return one[index % 4]! * INV_TWO32;
}

/**
 * Fills out[0..count) with the uniforms of elements start … start+count−1: the same values
 * `uniformAt` gives, one Philox call per 4 elements (rounds inlined: this is the hot loop of
 * DARE and DELLA, about 11 ns per element). Allocates nothing.
 */
export function fillUniforms(seed: number, model: number, tkey: number, start: number, count: number, out: Float64Array): void {
  const [k0, k1] = seedWords(seed);
  const end = start + count;
  let i = start;
  let j = 0;
  while (i < end) {
    const g = Math.floor(i / 4);
    let x0 = g % TWO32 | 0, x1 = Math.floor(g / TWO32) | 0, x2 = model | 0, x3 = tkey | 0;
    let key0 = k0 | 0, key1 = k1 | 0;
    for (let r = 0; r < 10; r++) {
      let aL = x0 & 0xffff, aH = x0 >>> 16;
      let ll = Math.imul(M0L, aL) >>> 0, lh = Math.imul(M0L, aH) >>> 0, hl = Math.imul(M0H, aL) >>> 0, hh = Math.imul(M0H, aH) >>> 0;
      let mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
      const hi0 = (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
      const lo0 = Math.imul(M0, x0);
      aL = x2 & 0xffff;
      aH = x2 >>> 16;
      ll = Math.imul(M1L, aL) >>> 0;
      lh = Math.imul(M1L, aH) >>> 0;
      hl = Math.imul(M1H, aL) >>> 0;
      hh = Math.imul(M1H, aH) >>> 0;
      mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
      const hi1 = (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
      const lo1 = Math.imul(M1, x2);
      x0 = hi1 ^ x1 ^ key0;
      x1 = lo1;
      x2 = hi0 ^ x3 ^ key1;
      x3 = lo0;
      key0 = (key0 + W0) | 0;
      key1 = (key1 + W1) | 0;
    }
    const w = i - g * 4;
    if (w === 0 && i + 4 <= end) {
      out[j] = (x0 >>> 0) * INV_TWO32;
      out[j + 1] = (x1 >>> 0) * INV_TWO32;
      out[j + 2] = (x2 >>> 0) * INV_TWO32;
      out[j + 3] = (x3 >>> 0) * INV_TWO32;
      i += 4;
      j += 4;
      continue;
    }
    for (let k = w; k < 4 && i < end; k++, i++, j++) out[j] = ((k === 0 ? x0 : k === 1 ? x1 : k === 2 ? x2 : x3) >>> 0) * INV_TWO32;
  }
}
