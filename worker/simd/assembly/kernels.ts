// AssemblyScript (compiled to WebAssembly with SIMD by `npm run build:wasm`): the hot loops of
// the executor and of TIES over f32 blocks in the module's memory, which JS shares as typed
// arrays. Pointers are byte offsets into that memory; n counts elements. Every function gives
// the same bits as the JavaScript loop it stands for (see worker/simd/simd-kernels.ts).

const KEY_MASK: u32 = 0x7fffffff;

// An input's four (ld4) or one (ld1) f32 values from element j: T = f32 reads them, T = u16 reads
// BF16 words and widens them (the value is the high half of the f32), so a loop written once
// serves decoded blocks and raw BF16 ones.
// @ts-ignore: decorator
@inline
function ld4<T>(p: usize, j: i32): v128 {
  if (sizeof<T>() == 2) return i32x4.shl(v128.load16x4_u(p + (<usize>j << 1)), 16);
  return v128.load(p + (<usize>j << 2));
}

// The store of one result at element j (the loops' tails): O = f32 stores it, O = u16 encodes it
// to BF16 first (as encodeBf16).
// @ts-ignore: decorator
@inline
function st1<O>(p: usize, j: i32, v: f32): void {
  if (sizeof<O>() == 2) {
    const b = reinterpret<u32>(v);
    store<u16>(p + (<usize>j << 1), <u16>((b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x0040 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16));
  } else store<f32>(p + (<usize>j << 2), v);
}

// @ts-ignore: decorator
@inline
function ld1<T>(p: usize, j: i32): f32 {
  if (sizeof<T>() == 2) return reinterpret<f32>(<u32>load<u16>(p + (<usize>j << 1)) << 16);
  return load<f32>(p + (<usize>j << 2));
}
const HI_SHIFT: u32 = 15;
const LO_MASK: u32 = 0x7fff;

/** bf16 → f32: each 16-bit value becomes the high half of a 32-bit word. */
export function decodeBf16(src: usize, dst: usize, n: i32): void {
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const v = v128.load(src + (<usize>j << 1));
    v128.store(dst + (<usize>j << 2), i32x4.shl(i32x4.extend_low_i16x8_u(v), 16));
    v128.store(dst + (<usize>j << 2), i32x4.shl(i32x4.extend_high_i16x8_u(v), 16), 16);
  }
  for (; j < n; j++) store<u32>(dst + (<usize>j << 2), (<u32>load<u16>(src + (<usize>j << 1))) << 16);
}

/** f32 → bf16, round to nearest even; NaN stays NaN (quiet bit set). */
export function encodeBf16(src: usize, dst: usize, n: i32): void {
  let j = 0;
  const bias = i32x4.splat(0x7fff);
  const one = i32x4.splat(1);
  const quiet = i32x4.splat(0x0040);
  for (; j + 8 <= n; j += 8) {
    const a = v128.load(src + (<usize>j << 2));
    const b = v128.load(src + (<usize>j << 2), 16);
    const ra = encode4(a, bias, one, quiet);
    const rb = encode4(b, bias, one, quiet);
    v128.store(dst + (<usize>j << 1), i16x8.narrow_i32x4_u(ra, rb));
  }
  for (; j < n; j++) {
    const b = load<u32>(src + (<usize>j << 2));
    const r: u32 = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x0040 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    store<u16>(dst + (<usize>j << 1), <u16>r);
  }
}

// @ts-ignore: decorator
@inline
function encode4(a: v128, bias: v128, one: v128, quiet: v128): v128 {
  const hi = i32x4.shr_u(a, 16);
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(a, bias), v128.and(hi, one)), 16);
  // |bits| > 0x7f800000 exactly when the value is NaN: a float compare, one instruction
  const nan = f32x4.ne(a, a);
  // narrow_u saturates signed inputs to [0, 65535]: values here are already in range
  return v128.bitselect(v128.or(hi, quiet), rounded, nan);
}

/**
 * TIES' histogram pass for two models: for δᵢ = f32(xᵢ − base), adds 1 to hist[i·2¹⁶ + (|δᵢ| bits >> 15)]
 * (hist: 2·2¹⁶ u32 counters). The Bf16 variants of this and the loops below read base and models
 * as raw 16-bit words, widened as they are loaded (no decoded copy).
 */
// @ts-ignore: decorator
@inline
function histDeltas2Of<T>(base: usize, x0: usize, x1: usize, n: i32, hist: usize): void {
  const mask = i32x4.splat(KEY_MASK);
  const h1 = hist + (1 << 18);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b = ld4<T>(base, j);
    const k0 = i32x4.shr_u(v128.and(f32x4.sub(ld4<T>(x0, j), b), mask), HI_SHIFT);
    const k1 = i32x4.shr_u(v128.and(f32x4.sub(ld4<T>(x1, j), b), mask), HI_SHIFT);
    bump(hist, i32x4.extract_lane(k0, 0));
    bump(h1, i32x4.extract_lane(k1, 0));
    bump(hist, i32x4.extract_lane(k0, 1));
    bump(h1, i32x4.extract_lane(k1, 1));
    bump(hist, i32x4.extract_lane(k0, 2));
    bump(h1, i32x4.extract_lane(k1, 2));
    bump(hist, i32x4.extract_lane(k0, 3));
    bump(h1, i32x4.extract_lane(k1, 3));
  }
  for (; j < n; j++) {
    const b = ld1<T>(base, j);
    bump(hist, <i32>((reinterpret<u32>(ld1<T>(x0, j) - b) & KEY_MASK) >>> HI_SHIFT));
    bump(h1, <i32>((reinterpret<u32>(ld1<T>(x1, j) - b) & KEY_MASK) >>> HI_SHIFT));
  }
}

export function histDeltas2(base: usize, x0: usize, x1: usize, n: i32, hist: usize): void {
  histDeltas2Of<f32>(base, x0, x1, n, hist);
}

export function histDeltas2Bf16(base: usize, x0: usize, x1: usize, n: i32, hist: usize): void {
  histDeltas2Of<u16>(base, x0, x1, n, hist);
}

/** histDeltas2 for one model: hist[|δ| bits >> 15] (2¹⁶ counters). */
// @ts-ignore: decorator
@inline
function histDeltasOf<T>(base: usize, x: usize, n: i32, hist: usize): void {
  const mask = i32x4.splat(KEY_MASK);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k = i32x4.shr_u(v128.and(f32x4.sub(ld4<T>(x, j), ld4<T>(base, j)), mask), HI_SHIFT);
    bump(hist, i32x4.extract_lane(k, 0));
    bump(hist, i32x4.extract_lane(k, 1));
    bump(hist, i32x4.extract_lane(k, 2));
    bump(hist, i32x4.extract_lane(k, 3));
  }
  for (; j < n; j++) bump(hist, <i32>((reinterpret<u32>(ld1<T>(x, j) - ld1<T>(base, j)) & KEY_MASK) >>> HI_SHIFT));
}

export function histDeltas(base: usize, x: usize, n: i32, hist: usize): void {
  histDeltasOf<f32>(base, x, n, hist);
}

export function histDeltasBf16(base: usize, x: usize, n: i32, hist: usize): void {
  histDeltasOf<u16>(base, x, n, hist);
}

// @ts-ignore: decorator
@inline
function bump(hist: usize, b: i32): void {
  const p = hist + (<usize>b << 2);
  store<u32>(p, load<u32>(p) + 1);
}

/**
 * TIES' candidate pass for one model: for the δ whose high key bits equal t, adds 1 to
 * lo[key & 0x7fff] (lo: 2¹⁵ counters).
 */
// @ts-ignore: decorator
@inline
function lowDeltasOf<T>(base: usize, x: usize, n: i32, t: u32, lo: usize): void {
  const mask = i32x4.splat(KEY_MASK);
  const tv = i32x4.splat(t);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k = v128.and(f32x4.sub(ld4<T>(x, j), ld4<T>(base, j)), mask);
    const hit = i32x4.eq(i32x4.shr_u(k, HI_SHIFT), tv);
    if (!v128.any_true(hit)) continue;
    if (i32x4.extract_lane(hit, 0)) bump(lo, i32x4.extract_lane(k, 0) & LO_MASK);
    if (i32x4.extract_lane(hit, 1)) bump(lo, i32x4.extract_lane(k, 1) & LO_MASK);
    if (i32x4.extract_lane(hit, 2)) bump(lo, i32x4.extract_lane(k, 2) & LO_MASK);
    if (i32x4.extract_lane(hit, 3)) bump(lo, i32x4.extract_lane(k, 3) & LO_MASK);
  }
  for (; j < n; j++) {
    const d = reinterpret<u32>(ld1<T>(x, j) - ld1<T>(base, j)) & KEY_MASK;
    if (d >>> HI_SHIFT == t) bump(lo, <i32>(d & LO_MASK));
  }
}

/** lowDeltas for two models in one loop (the base is read once): lo0 for x0's cut t0, lo1 for x1's t1. */
// @ts-ignore: decorator
@inline
function lowDeltas2Of<T>(base: usize, x0: usize, x1: usize, n: i32, t0: u32, t1: u32, lo0: usize, lo1: usize): void {
  const mask = i32x4.splat(KEY_MASK);
  const tv0 = i32x4.splat(t0);
  const tv1 = i32x4.splat(t1);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b = ld4<T>(base, j);
    const k0 = v128.and(f32x4.sub(ld4<T>(x0, j), b), mask);
    const k1 = v128.and(f32x4.sub(ld4<T>(x1, j), b), mask);
    const hit0 = i32x4.eq(i32x4.shr_u(k0, HI_SHIFT), tv0);
    const hit1 = i32x4.eq(i32x4.shr_u(k1, HI_SHIFT), tv1);
    if (!v128.any_true(v128.or(hit0, hit1))) continue;
    if (i32x4.extract_lane(hit0, 0)) bump(lo0, i32x4.extract_lane(k0, 0) & LO_MASK);
    if (i32x4.extract_lane(hit0, 1)) bump(lo0, i32x4.extract_lane(k0, 1) & LO_MASK);
    if (i32x4.extract_lane(hit0, 2)) bump(lo0, i32x4.extract_lane(k0, 2) & LO_MASK);
    if (i32x4.extract_lane(hit0, 3)) bump(lo0, i32x4.extract_lane(k0, 3) & LO_MASK);
    if (i32x4.extract_lane(hit1, 0)) bump(lo1, i32x4.extract_lane(k1, 0) & LO_MASK);
    if (i32x4.extract_lane(hit1, 1)) bump(lo1, i32x4.extract_lane(k1, 1) & LO_MASK);
    if (i32x4.extract_lane(hit1, 2)) bump(lo1, i32x4.extract_lane(k1, 2) & LO_MASK);
    if (i32x4.extract_lane(hit1, 3)) bump(lo1, i32x4.extract_lane(k1, 3) & LO_MASK);
  }
  for (; j < n; j++) {
    const b = ld1<T>(base, j);
    const k0 = reinterpret<u32>(ld1<T>(x0, j) - b) & KEY_MASK;
    const k1 = reinterpret<u32>(ld1<T>(x1, j) - b) & KEY_MASK;
    if (k0 >>> HI_SHIFT == t0) bump(lo0, <i32>(k0 & LO_MASK));
    if (k1 >>> HI_SHIFT == t1) bump(lo1, <i32>(k1 & LO_MASK));
  }
}

export function lowDeltas(base: usize, x: usize, n: i32, t: u32, lo: usize): void {
  lowDeltasOf<f32>(base, x, n, t, lo);
}

export function lowDeltasBf16(base: usize, x: usize, n: i32, t: u32, lo: usize): void {
  lowDeltasOf<u16>(base, x, n, t, lo);
}

export function lowDeltas2(base: usize, x0: usize, x1: usize, n: i32, t0: u32, t1: u32, lo0: usize, lo1: usize): void {
  lowDeltas2Of<f32>(base, x0, x1, n, t0, t1, lo0, lo1);
}

export function lowDeltas2Bf16(base: usize, x0: usize, x1: usize, n: i32, t0: u32, t1: u32, lo0: usize, lo1: usize): void {
  lowDeltas2Of<u16>(base, x0, x1, n, t0, t1, lo0, lo1);
}

/**
 * The bucket of a 2¹⁶-bucket histogram where the count from the top first reaches `need`
 * (-1 if it never does): the block's own cut bucket. Runs of empty buckets are skipped 4 at a time.
 */
export function localBucket(hist: usize, need: u32): i32 {
  let cum: u32 = 0;
  for (let i = (1 << 16) - 4; i >= 0; i -= 4) {
    const p = hist + (<usize>i << 2);
    if (!v128.any_true(v128.load(p))) continue;
    for (let l = 3; l >= 0; l--) {
      cum += load<u32>(p + (<usize>l << 2));
      if (cum >= need) return i + l;
    }
  }
  return -1;
}

/**
 * A window counter's bump that also lists the counter when it leaves 0 (list: [length, indices…]),
 * so that takeTouched visits only the few thousand counters a block touched, not all of them.
 */
// @ts-ignore: decorator
@inline
function bumpT(counts: usize, b: i32, list: usize): void {
  const p = counts + (<usize>b << 2);
  const v = load<u32>(p);
  store<u32>(p, v + 1);
  if (v == 0) {
    const n = load<u32>(list);
    store<u32>(list + 4 + (<usize>n << 2), b);
    store<u32>(list, n + 1);
  }
}

/**
 * windowAbove2 for one model: its window's low bits, and how many keys lie above the window.
 */
// @ts-ignore: decorator
@inline
function windowAbove1Of<T>(base: usize, x: usize, n: i32, lo: u32, width: u32, counts: usize, list: usize, above: usize): void {
  const mask = i32x4.splat(KEY_MASK);
  const low = i32x4.splat(LO_MASK);
  const lov = i32x4.splat(lo);
  const wv = i32x4.splat(width);
  const spare = i32x4.splat(width << HI_SHIFT);
  let up = i32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k = v128.and(f32x4.sub(ld4<T>(x, j), ld4<T>(base, j)), mask);
    const rel = i32x4.sub(i32x4.shr_u(k, HI_SHIFT), lov);
    up = i32x4.sub(up, i32x4.ge_s(rel, wv));
    bumpHits(counts, list, rel, k, i32x4.lt_u(rel, wv), low, spare);
  }
  let a: u32 = i32x4.extract_lane(up, 0) + i32x4.extract_lane(up, 1) + i32x4.extract_lane(up, 2) + i32x4.extract_lane(up, 3);
  for (; j < n; j++) {
    const k = reinterpret<u32>(ld1<T>(x, j) - ld1<T>(base, j)) & KEY_MASK;
    const h = k >>> HI_SHIFT;
    if (h >= lo + width) a++;
    else if (h >= lo) bumpT(counts, <i32>(((h - lo) << HI_SHIFT) | (k & LO_MASK)), list);
  }
  store<u32>(above, a);
}

export function windowAbove1(base: usize, x: usize, n: i32, lo: u32, width: u32, counts: usize, list: usize, above: usize): void {
  windowAbove1Of<f32>(base, x, n, lo, width, counts, list, above);
}

export function windowAbove1Bf16(base: usize, x: usize, n: i32, lo: u32, width: u32, counts: usize, list: usize, above: usize): void {
  windowAbove1Of<u16>(base, x, n, lo, width, counts, list, above);
}

/**
 * The window loops' counting of a group of four: when any lane hits its window, all four
 * lanes bump (bucket − start, low bits), the misses into the spare counter at width·2¹⁵ (no branch
 * per lane to mispredict).
 */
// @ts-ignore: decorator
@inline
function bumpHits(counts: usize, list: usize, rel: v128, k: v128, hit: v128, low: v128, spare: v128): void {
  if (!v128.any_true(hit)) return;
  const idx = v128.bitselect(v128.or(i32x4.shl(rel, HI_SHIFT), v128.and(k, low)), spare, hit);
  bumpT(counts, i32x4.extract_lane(idx, 0), list);
  bumpT(counts, i32x4.extract_lane(idx, 1), list);
  bumpT(counts, i32x4.extract_lane(idx, 2), list);
  bumpT(counts, i32x4.extract_lane(idx, 3), list);
}

/**
 * Moves the listed counters (bumpT) to pairs (index, count) at out, zeroing them and the list, in
 * the order they were first touched; indices ≥ span (the spare counter) are zeroed, not paired.
 * Returns how many pairs.
 */
export function takeTouched(counts: usize, list: usize, span: u32, out: usize): i32 {
  const n = load<u32>(list);
  let k = 0;
  for (let i: u32 = 0; i < n; i++) {
    const b = load<u32>(list + 4 + (<usize>i << 2));
    const p = counts + (<usize>b << 2);
    const c = load<u32>(p);
    store<u32>(p, 0);
    if (b >= span) continue;
    store<u32>(out + (<usize>k << 3), b);
    store<u32>(out + (<usize>k << 3), c, 4);
    k++;
  }
  store<u32>(list, 0);
  return k;
}

/**
 * Moves the nonzero counters of hist[0..len) to pairs (index, count) at out, zeroing them;
 * returns how many pairs.
 */
export function takeCounts(hist: usize, len: i32, out: usize): i32 {
  let k = 0;
  const zero = i32x4.splat(0);
  for (let i = 0; i < len; i += 4) {
    const p = hist + (<usize>i << 2);
    const v = v128.load(p);
    if (!v128.any_true(v)) continue;
    for (let l = 0; l < 4; l++) {
      const c = load<u32>(p + (<usize>l << 2));
      if (c == 0) continue;
      store<u32>(out + (<usize>k << 3), i + l);
      store<u32>(out + (<usize>k << 3), c, 4);
      k++;
    }
    v128.store(p, zero);
  }
  return k;
}

/**
 * TIES' fused map for two models with sum consensus (ta-combine.ts combineThinnedSum, m = 2), in
 * f32 as the JS loop (every operation rounded to f32): δᵢ = xᵢ − b; vᵢ = fᵢ·(δᵢ·[gᵢ and not
 * |δᵢ| < lᵢ]); elected sign p = [v₀ + v₁ ≥ 0]; kᵢ = p ? [vᵢ > 0] : [vᵢ < 0]; s = v₀k₀ + v₁k₁;
 * out = b + λ·(s / (d + [d = 0])), d = w₀k₀ + w₁k₁ (or b + λ·s unnormalised).
 */
// @ts-ignore: decorator
@inline
function tiesMap2Of<T>(
  base: usize, x0: usize, x1: usize, out: usize, n: i32,
  f0: f32, f1: f32, l0: f32, l1: f32, g0: i32, g1: i32, w0: f32, w1: f32, norm: i32, lambda: f32, single: bool, plain: bool,
): void {
  const lv0 = f32x4.splat(l0);
  const lv1 = f32x4.splat(l1);
  const gm0 = i32x4.splat(g0 ? -1 : 0);
  const gm1 = i32x4.splat(g1 ? -1 : 0);
  const fv0 = f32x4.splat(f0);
  const fv1 = f32x4.splat(f1);
  const wv0 = f32x4.splat(w0);
  const wv1 = f32x4.splat(w1);
  const lam = f32x4.splat(lambda);
  const one = f32x4.splat(1);
  const zero = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b = ld4<T>(base, j);
    const x = thinnedOf(plain, fv0, f32x4.sub(ld4<T>(x0, j), b), lv0, gm0, one);
    // one model (single, a constant where inlined): a second that is +0 everywhere, so that the
    // vote and the sums are x + 0, as combine's loop computes them from 0
    const y = single ? zero : thinnedOf(plain, fv1, f32x4.sub(ld4<T>(x1, j), b), lv1, gm1, one);
    const p = f32x4.ge(f32x4.add(x, y), zero);
    const kx = agree(x, p, one, zero);
    const ky = agree(y, p, one, zero);
    const s = f32x4.add(f32x4.mul(x, kx), f32x4.mul(y, ky));
    const d = f32x4.add(f32x4.mul(wv0, kx), f32x4.mul(wv1, ky));
    v128.store(out + (<usize>j << 2), finishOf(plain, b, s, d, lam, one, zero, norm));
  }
  for (; j < n; j++) {
    const b = ld1<T>(base, j);
    const x = thinned1(f0, ld1<T>(x0, j) - b, l0, g0);
    const y = single ? <f32>0 : thinned1(f1, ld1<T>(x1, j) - b, l1, g1);
    const p = x + y >= 0;
    const kx = agree1(x, p);
    const ky = agree1(y, p);
    store<f32>(out + (<usize>j << 2), finish1(b, x * kx + y * ky, w0 * kx + w1 * ky, lambda, norm));
  }
}

export function tiesMap2(
  base: usize, x0: usize, x1: usize, out: usize, n: i32,
  f0: f32, f1: f32, l0: f32, l1: f32, g0: i32, g1: i32, w0: f32, w1: f32, norm: i32, lambda: f32,
): void {
  tiesMap2Of<f32>(base, x0, x1, out, n, f0, f1, l0, l1, g0, g1, w0, w1, norm, lambda, false, false);
}

/** tiesMap2 with BF16 inputs (base and models as raw 16-bit words, widened as they are loaded). */
export function tiesMap2Bf16(
  base: usize, x0: usize, x1: usize, out: usize, n: i32,
  f0: f32, f1: f32, l0: f32, l1: f32, g0: i32, g1: i32, w0: f32, w1: f32, norm: i32, lambda: f32,
): void {
  if (plainTies(f0, g0, norm, lambda) && plainTies(f1, g1, norm, lambda)) {
    tiesMap2Of<u16>(base, x0, x1, out, n, f0, f1, l0, l1, g0, g1, w0, w1, norm, lambda, false, true);
  } else tiesMap2Of<u16>(base, x0, x1, out, n, f0, f1, l0, l1, g0, g1, w0, w1, norm, lambda, false, false);
}

/** tiesMap2 for one model (combineThinnedSum, m = 1), and its BF16 variant. */
export function tiesMap1(base: usize, x0: usize, out: usize, n: i32, f0: f32, l0: f32, g0: i32, w0: f32, norm: i32, lambda: f32): void {
  tiesMap2Of<f32>(base, x0, x0, out, n, f0, 0, l0, 0, g0, 0, w0, 0, norm, lambda, true, false);
}

export function tiesMap1Bf16(base: usize, x0: usize, out: usize, n: i32, f0: f32, l0: f32, g0: i32, w0: f32, norm: i32, lambda: f32): void {
  if (plainTies(f0, g0, norm, lambda)) tiesMap2Of<u16>(base, x0, x0, out, n, f0, 0, l0, 0, g0, 0, w0, 0, norm, lambda, true, true);
  else tiesMap2Of<u16>(base, x0, x0, out, n, f0, 0, l0, 0, g0, 0, w0, 0, norm, lambda, true, false);
}

/** tiesMap2 for three models (combineThinnedSum, m = 3): the vote is (v₀ + v₁) + v₂. */
// @ts-ignore: decorator
@inline
function tiesMap3Of<T>(
  base: usize, x0: usize, x1: usize, x2: usize, out: usize, n: i32,
  f0: f32, f1: f32, f2: f32, l0: f32, l1: f32, l2: f32, g0: i32, g1: i32, g2: i32,
  w0: f32, w1: f32, w2: f32, norm: i32, lambda: f32, plain: bool,
): void {
  const lv0 = f32x4.splat(l0);
  const lv1 = f32x4.splat(l1);
  const lv2 = f32x4.splat(l2);
  const gm0 = i32x4.splat(g0 ? -1 : 0);
  const gm1 = i32x4.splat(g1 ? -1 : 0);
  const gm2 = i32x4.splat(g2 ? -1 : 0);
  const fv0 = f32x4.splat(f0);
  const fv1 = f32x4.splat(f1);
  const fv2 = f32x4.splat(f2);
  const wv0 = f32x4.splat(w0);
  const wv1 = f32x4.splat(w1);
  const wv2 = f32x4.splat(w2);
  const lam = f32x4.splat(lambda);
  const one = f32x4.splat(1);
  const zero = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b = ld4<T>(base, j);
    const x = thinnedOf(plain, fv0, f32x4.sub(ld4<T>(x0, j), b), lv0, gm0, one);
    const y = thinnedOf(plain, fv1, f32x4.sub(ld4<T>(x1, j), b), lv1, gm1, one);
    const z = thinnedOf(plain, fv2, f32x4.sub(ld4<T>(x2, j), b), lv2, gm2, one);
    const p = f32x4.ge(f32x4.add(f32x4.add(x, y), z), zero);
    const kx = agree(x, p, one, zero);
    const ky = agree(y, p, one, zero);
    const kz = agree(z, p, one, zero);
    const s = f32x4.add(f32x4.add(f32x4.mul(x, kx), f32x4.mul(y, ky)), f32x4.mul(z, kz));
    const d = f32x4.add(f32x4.add(f32x4.mul(wv0, kx), f32x4.mul(wv1, ky)), f32x4.mul(wv2, kz));
    v128.store(out + (<usize>j << 2), finishOf(plain, b, s, d, lam, one, zero, norm));
  }
  for (; j < n; j++) {
    const b = ld1<T>(base, j);
    const x = thinned1(f0, ld1<T>(x0, j) - b, l0, g0);
    const y = thinned1(f1, ld1<T>(x1, j) - b, l1, g1);
    const z = thinned1(f2, ld1<T>(x2, j) - b, l2, g2);
    const p = x + y + z >= 0;
    const kx = agree1(x, p);
    const ky = agree1(y, p);
    const kz = agree1(z, p);
    store<f32>(out + (<usize>j << 2), finish1(b, x * kx + y * ky + z * kz, w0 * kx + w1 * ky + w2 * kz, lambda, norm));
  }
}

export function tiesMap3(
  base: usize, x0: usize, x1: usize, x2: usize, out: usize, n: i32,
  f0: f32, f1: f32, f2: f32, l0: f32, l1: f32, l2: f32, g0: i32, g1: i32, g2: i32,
  w0: f32, w1: f32, w2: f32, norm: i32, lambda: f32,
): void {
  tiesMap3Of<f32>(base, x0, x1, x2, out, n, f0, f1, f2, l0, l1, l2, g0, g1, g2, w0, w1, w2, norm, lambda, false);
}

/** tiesMap3 with BF16 inputs. */
export function tiesMap3Bf16(
  base: usize, x0: usize, x1: usize, x2: usize, out: usize, n: i32,
  f0: f32, f1: f32, f2: f32, l0: f32, l1: f32, l2: f32, g0: i32, g1: i32, g2: i32,
  w0: f32, w1: f32, w2: f32, norm: i32, lambda: f32,
): void {
  if (plainTies(f0, g0, norm, lambda) && plainTies(f1, g1, norm, lambda) && plainTies(f2, g2, norm, lambda)) {
    tiesMap3Of<u16>(base, x0, x1, x2, out, n, f0, f1, f2, l0, l1, l2, g0, g1, g2, w0, w1, w2, norm, lambda, true);
  } else tiesMap3Of<u16>(base, x0, x1, x2, out, n, f0, f1, f2, l0, l1, l2, g0, g1, g2, w0, w1, w2, norm, lambda, false);
}

/** f·(δ·m) with the keep mask m as 0.0 / 1.0 (a multiply, so a dropped NaN or ±Inf becomes NaN, as in JS). */
// @ts-ignore: decorator
@inline
function thinned(f: v128, d: v128, l: v128, g: v128, one: v128): v128 {
  return f32x4.mul(f, f32x4.mul(d, v128.and(v128.andnot(g, f32x4.lt(f32x4.abs(d), l)), one)));
}

// @ts-ignore: decorator
@inline
function thinned1(f: f32, d: f32, l: f32, g: i32): f32 {
  return f * (d * (g != 0 && !(Mathf.abs(d) < l) ? <f32>1 : <f32>0));
}

/** kᵢ as 0.0 / 1.0: p ? vᵢ > 0 : vᵢ < 0 (model i agrees with the elected sign). */
// @ts-ignore: decorator
@inline
function agree(v: v128, p: v128, one: v128, zero: v128): v128 {
  return v128.and(v128.bitselect(f32x4.gt(v, zero), f32x4.lt(v, zero), p), one);
}

// @ts-ignore: decorator
@inline
function agree1(v: f32, p: bool): f32 {
  return (p ? v > 0 : v < 0) ? <f32>1 : <f32>0;
}

/** b + λ·(s / (d + [d = 0])), or b + λ·s unnormalised. */
// @ts-ignore: decorator
@inline
function finish(b: v128, s: v128, d: v128, lam: v128, one: v128, zero: v128, norm: i32): v128 {
  if (!norm) return f32x4.add(b, f32x4.mul(lam, s));
  return f32x4.add(b, f32x4.mul(lam, f32x4.div(s, f32x4.add(d, v128.and(f32x4.eq(d, zero), one)))));
}

/**
 * Plain TIES (mergekit's defaults: no rescale, every model thinned at a cut, λ = 1, normalised):
 * f = 1, g = 1 and λ = 1 drop out exactly (1·v is v, NaN included), which frees four vector
 * registers and five operations a group in the map loops (1.47 → 1.23 ns an element, two models).
 * Only the BF16 loops take this path; the f32 loops keep the general form the tests compare it to.
 */
// @ts-ignore: decorator
@inline
function plainTies(f: f32, g: i32, norm: i32, lambda: f32): bool {
  return f == 1 && g != 0 && norm != 0 && lambda == 1;
}

/** thinned, or with f = 1 and g = 1 (plain): δ·[not |δ| < l] */
// @ts-ignore: decorator
@inline
function thinnedOf(plain: bool, f: v128, d: v128, l: v128, g: v128, one: v128): v128 {
  if (plain) return f32x4.mul(d, v128.andnot(one, f32x4.lt(f32x4.abs(d), l)));
  return thinned(f, d, l, g, one);
}

/** finish, or with λ = 1 and normalised (plain): b + s / (d + [d = 0]) */
// @ts-ignore: decorator
@inline
function finishOf(plain: bool, b: v128, s: v128, d: v128, lam: v128, one: v128, zero: v128, norm: i32): v128 {
  if (plain) return f32x4.add(b, f32x4.div(s, f32x4.add(d, v128.and(f32x4.eq(d, zero), one))));
  return finish(b, s, d, lam, one, zero, norm);
}

// @ts-ignore: decorator
@inline
function finish1(b: f32, s: f32, d: f32, lambda: f32, norm: i32): f32 {
  if (!norm) return b + lambda * s;
  return b + lambda * (s / (d + (d == 0 ? <f32>1 : <f32>0)));
}

/**
 * The linear kernel's fused loops for one to four terms (linear.ts combine): each element is
 * computed in f64, ((c₀x₀ + c₁x₁) + …) + b, and rounded once to f32, two lanes at a time.
 */
// @ts-ignore: decorator
@inline
function linear4Of<T, O>(
  x0: usize, x1: usize, x2: usize, x3: usize, terms: i32, c0: f64, c1: f64, c2: f64, c3: f64, b: f64, out: usize, n: i32,
): void {
  const cv0 = f64x2.splat(c0);
  const cv1 = f64x2.splat(c1);
  const cv2 = f64x2.splat(c2);
  const cv3 = f64x2.splat(c3);
  const bv = f64x2.splat(b);
  let j = 0;
  if (sizeof<O>() == 2) {
    // eight at a time: two groups encoded into one 16-byte store, as encodeBf16
    const bias = i32x4.splat(0x7fff);
    const one = i32x4.splat(1);
    const quiet = i32x4.splat(0x0040);
    for (; j + 8 <= n; j += 8) {
      const ra = encode4(lin4<T>(x0, x1, x2, x3, terms, cv0, cv1, cv2, cv3, bv, j), bias, one, quiet);
      const rb = encode4(lin4<T>(x0, x1, x2, x3, terms, cv0, cv1, cv2, cv3, bv, j + 4), bias, one, quiet);
      v128.store(out + (<usize>j << 1), i16x8.narrow_i32x4_u(ra, rb));
    }
  } else {
    for (; j + 4 <= n; j += 4) v128.store(out + (<usize>j << 2), lin4<T>(x0, x1, x2, x3, terms, cv0, cv1, cv2, cv3, bv, j));
  }
  for (; j < n; j++) {
    let acc = c0 * <f64>ld1<T>(x0, j);
    if (terms > 1) acc += c1 * <f64>ld1<T>(x1, j);
    if (terms > 2) acc += c2 * <f64>ld1<T>(x2, j);
    if (terms > 3) acc += c3 * <f64>ld1<T>(x3, j);
    st1<O>(out, j, <f32>(acc + b));
  }
}

/** linear4's four elements from j: ((c₀x₀ + c₁x₁) + …) + b in f64, rounded to f32. */
// @ts-ignore: decorator
@inline
function lin4<T>(x0: usize, x1: usize, x2: usize, x3: usize, terms: i32, cv0: v128, cv1: v128, cv2: v128, cv3: v128, bv: v128, j: i32): v128 {
  const v0 = ld4<T>(x0, j);
  let lo = f64x2.mul(cv0, f64x2.promote_low_f32x4(v0));
  let hi = f64x2.mul(cv0, f64x2.promote_low_f32x4(i32x4.shuffle(v0, v0, 2, 3, 0, 1)));
  if (terms > 1) {
    const v = ld4<T>(x1, j);
    lo = f64x2.add(lo, f64x2.mul(cv1, f64x2.promote_low_f32x4(v)));
    hi = f64x2.add(hi, f64x2.mul(cv1, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1))));
  }
  if (terms > 2) {
    const v = ld4<T>(x2, j);
    lo = f64x2.add(lo, f64x2.mul(cv2, f64x2.promote_low_f32x4(v)));
    hi = f64x2.add(hi, f64x2.mul(cv2, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1))));
  }
  if (terms > 3) {
    const v = ld4<T>(x3, j);
    lo = f64x2.add(lo, f64x2.mul(cv3, f64x2.promote_low_f32x4(v)));
    hi = f64x2.add(hi, f64x2.mul(cv3, f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1))));
  }
  const rl = f32x4.demote_f64x2_zero(f64x2.add(lo, bv));
  const rh = f32x4.demote_f64x2_zero(f64x2.add(hi, bv));
  return i32x4.shuffle(rl, rh, 0, 1, 4, 5);
}

/**
 * linear4 over one or two BF16 inputs with no constant, in f32, when the caller has checked that
 * every coefficient c has |c| ≤ 1 and c·2¹⁶ an integer: a BF16 value has 8 significant bits, so
 * each product c·x then has at most 24 and none falls below 2⁻¹⁴⁹ or overflows, exact in f32 as
 * in f64; and a sum of two f32 values rounded once to f32 is the sum computed in f64 and then
 * rounded (53 ≥ 2·24 + 2: double rounding is innocuous for +). The same bits as linear4, eight
 * elements per step, four lanes of f32 instead of two of f64: a BF16 vector's even elements are
 * its 32-bit lanes shifted up 16, its odd ones the lanes with the low half cleared, and the
 * encoded results go back the same way. The final + 0 is linear4's + b: it makes −0 sums +0.
 */
// @ts-ignore: decorator
@inline
function linear2ExactOf<O>(x0: usize, x1: usize, terms: i32, c0: f32, c1: f32, out: usize, n: i32): void {
  const cv0 = f32x4.splat(c0);
  const cv1 = f32x4.splat(c1);
  const zero = f32x4.splat(0);
  const high = i32x4.splat(0xffff0000);
  const bias = i32x4.splat(0x7fff);
  const one = i32x4.splat(1);
  const quiet = i32x4.splat(0x0040);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const v0 = v128.load(x0 + (<usize>j << 1));
    let even = f32x4.mul(cv0, i32x4.shl(v0, 16));
    let odd = f32x4.mul(cv0, v128.and(v0, high));
    if (terms > 1) {
      const v1 = v128.load(x1 + (<usize>j << 1));
      even = f32x4.add(even, f32x4.mul(cv1, i32x4.shl(v1, 16)));
      odd = f32x4.add(odd, f32x4.mul(cv1, v128.and(v1, high)));
    }
    even = f32x4.add(even, zero);
    odd = f32x4.add(odd, zero);
    if (sizeof<O>() == 2) {
      const e = encode4(even, bias, one, quiet);
      const o = encode4(odd, bias, one, quiet);
      v128.store(out + (<usize>j << 1), v128.or(e, i32x4.shl(o, 16)));
    } else {
      // back in order: lanes (e0 o0 e1 o1) and (e2 o2 e3 o3)
      v128.store(out + (<usize>j << 2), i32x4.shuffle(even, odd, 0, 4, 1, 5));
      v128.store(out + (<usize>j << 2), i32x4.shuffle(even, odd, 2, 6, 3, 7), 16);
    }
  }
  for (; j < n; j++) {
    let acc = c0 * ld1<u16>(x0, j);
    if (terms > 1) acc += c1 * ld1<u16>(x1, j);
    st1<O>(out, j, acc + <f32>0);
  }
}

export function linear2ExactBf16(x0: usize, x1: usize, terms: i32, c0: f32, c1: f32, out: usize, n: i32): void {
  linear2ExactOf<f32>(x0, x1, terms, c0, c1, out, n);
}

export function linear2ExactBf16To16(x0: usize, x1: usize, terms: i32, c0: f32, c1: f32, out: usize, n: i32): void {
  linear2ExactOf<u16>(x0, x1, terms, c0, c1, out, n);
}

export function linear4(
  x0: usize, x1: usize, x2: usize, x3: usize, terms: i32, c0: f64, c1: f64, c2: f64, c3: f64, b: f64, out: usize, n: i32,
): void {
  linear4Of<f32, f32>(x0, x1, x2, x3, terms, c0, c1, c2, c3, b, out, n);
}

/** linear4 over BF16 inputs (raw 16-bit words, widened as they are loaded). */
export function linear4Bf16(
  x0: usize, x1: usize, x2: usize, x3: usize, terms: i32, c0: f64, c1: f64, c2: f64, c3: f64, b: f64, out: usize, n: i32,
): void {
  linear4Of<u16, f32>(x0, x1, x2, x3, terms, c0, c1, c2, c3, b, out, n);
}

/** linear4Bf16 that writes BF16 (each element rounded to f32, then encoded as encodeBf16 does). */
export function linear4Bf16To16(
  x0: usize, x1: usize, x2: usize, x3: usize, terms: i32, c0: f64, c1: f64, c2: f64, c3: f64, b: f64, out: usize, n: i32,
): void {
  linear4Of<u16, u16>(x0, x1, x2, x3, terms, c0, c1, c2, c3, b, out, n);
}

/**
 * TIES' windows for two cuts in one loop (the base read once): for δᵢ = xᵢ − base whose high key
 * bits h fall in [loᵢ, loᵢ + width), adds 1 to countsᵢ[(h − loᵢ)·2¹⁵ + (key & 0x7fff)] (bumpHits:
 * a group of four with any hit bumps all four lanes, the misses into a spare counter); and,
 * instead of histDeltas2's full histogram, how many keys lie above each window (h ≥ loᵢ + width),
 * counted four lanes at a time with no scatter: the block's histogram outside its windows is then
 * known only as "above" and "below". above: two u32 counts (callers that only want the windows
 * point it at scratch).
 */
// @ts-ignore: decorator
@inline
function windowAbove2Of<T>(
  base: usize, x0: usize, x1: usize, n: i32, lo0: u32, lo1: u32, width: u32, counts0: usize, counts1: usize,
  list0: usize, list1: usize, above: usize,
): void {
  const mask = i32x4.splat(KEY_MASK);
  const low = i32x4.splat(LO_MASK);
  const lov0 = i32x4.splat(lo0);
  const lov1 = i32x4.splat(lo1);
  const wv = i32x4.splat(width);
  const spare = i32x4.splat(width << HI_SHIFT);
  let up0 = i32x4.splat(0);
  let up1 = i32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const b = ld4<T>(base, j);
    const k0 = v128.and(f32x4.sub(ld4<T>(x0, j), b), mask);
    const k1 = v128.and(f32x4.sub(ld4<T>(x1, j), b), mask);
    // bucket − start: negative below the window (signed compare), ≥ width above it
    const rel0 = i32x4.sub(i32x4.shr_u(k0, HI_SHIFT), lov0);
    const rel1 = i32x4.sub(i32x4.shr_u(k1, HI_SHIFT), lov1);
    up0 = i32x4.sub(up0, i32x4.ge_s(rel0, wv));
    up1 = i32x4.sub(up1, i32x4.ge_s(rel1, wv));
    const hit0 = i32x4.lt_u(rel0, wv);
    const hit1 = i32x4.lt_u(rel1, wv);
    bumpHits(counts0, list0, rel0, k0, hit0, low, spare);
    bumpHits(counts1, list1, rel1, k1, hit1, low, spare);
  }
  let a0: u32 = i32x4.extract_lane(up0, 0) + i32x4.extract_lane(up0, 1) + i32x4.extract_lane(up0, 2) + i32x4.extract_lane(up0, 3);
  let a1: u32 = i32x4.extract_lane(up1, 0) + i32x4.extract_lane(up1, 1) + i32x4.extract_lane(up1, 2) + i32x4.extract_lane(up1, 3);
  for (; j < n; j++) {
    const b = ld1<T>(base, j);
    const k0 = reinterpret<u32>(ld1<T>(x0, j) - b) & KEY_MASK;
    const k1 = reinterpret<u32>(ld1<T>(x1, j) - b) & KEY_MASK;
    const h0 = k0 >>> HI_SHIFT;
    const h1 = k1 >>> HI_SHIFT;
    if (h0 >= lo0 + width) a0++;
    else if (h0 >= lo0) bumpT(counts0, <i32>(((h0 - lo0) << HI_SHIFT) | (k0 & LO_MASK)), list0);
    if (h1 >= lo1 + width) a1++;
    else if (h1 >= lo1) bumpT(counts1, <i32>(((h1 - lo1) << HI_SHIFT) | (k1 & LO_MASK)), list1);
  }
  store<u32>(above, a0);
  store<u32>(above, a1, 4);
}

export function windowAbove2(
  base: usize, x0: usize, x1: usize, n: i32, lo0: u32, lo1: u32, width: u32, counts0: usize, counts1: usize,
  list0: usize, list1: usize, above: usize,
): void {
  windowAbove2Of<f32>(base, x0, x1, n, lo0, lo1, width, counts0, counts1, list0, list1, above);
}

/** windowAbove2 with BF16 inputs (base and models as raw 16-bit words, widened as they are loaded). */
export function windowAbove2Bf16(
  base: usize, x0: usize, x1: usize, n: i32, lo0: u32, lo1: u32, width: u32, counts0: usize, counts1: usize,
  list0: usize, list1: usize, above: usize,
): void {
  windowAbove2Of<u16>(base, x0, x1, n, lo0, lo1, width, counts0, counts1, list0, list1, above);
}
