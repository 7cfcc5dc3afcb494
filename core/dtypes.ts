/**
 * safetensors dtypes and the codecs between them and f32.
 *
 * Kernels compute in f32 whatever the storage dtype; the executor decodes blocks with
 * `decodeBlock` and encodes results with `encodeBlock`. Encoding rounds to nearest,
 * ties to even, like torch's `.to(dtype)`; NaN stays NaN (quiet), ±Inf stays ±Inf,
 * subnormals are kept. Typed-array views assume a little-endian host (checked once).
 */
import { WeightspaceError, q } from './errors.js';

/** Every dtype name the safetensors reference knows (sub-byte ones are listed so they get a clear "unsupported"). */
export const SAFETENSORS_DTYPES = [
  'BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'I16', 'U16', 'F16', 'BF16',
  'I32', 'U32', 'F32', 'F64', 'I64', 'U64', 'C64', 'F4', 'F6_E2M3', 'F6_E3M2',
] as const;
export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

/** The dtypes weightspace can hold in a file: byte-sized ones. */
export type DType =
  | 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'F8_E8M0' | 'I16' | 'U16' | 'F16' | 'BF16'
  | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64' | 'C64';

/** Floating-point dtypes that weightspace decodes to f32. */
export type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2';
/** Floating-point dtypes weightspace can write. */
export type WritableFloatDType = 'F32' | 'F16' | 'BF16';

export const DTYPE_SIZE: Record<DType, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8, C64: 8,
};

const SUB_BYTE = new Set<string>(['F4', 'F6_E2M3', 'F6_E3M2']);
const FLOAT_DTYPES = new Set<string>(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);
const WRITABLE = new Set<string>(['F32', 'F16', 'BF16']);

export function isKnownSafetensorsDType(s: string): s is SafetensorsDType {
  return (SAFETENSORS_DTYPES as readonly string[]).includes(s);
}
export function isSubByteDType(s: string): boolean {
  return SUB_BYTE.has(s);
}
export function isFloatDType(d: DType): d is FloatDType {
  return FLOAT_DTYPES.has(d);
}
export function isWritableFloatDType(d: string): d is WritableFloatDType {
  return WRITABLE.has(d);
}

/** Parses a user's dtype word (`bf16`, `bfloat16`, `float16`, `fp32`, `F32`, ...). */
export function parseDTypeName(word: string): WritableFloatDType {
  const w = word.trim().toLowerCase();
  const table: Record<string, WritableFloatDType> = {
    bf16: 'BF16', bfloat16: 'BF16',
    f16: 'F16', fp16: 'F16', float16: 'F16', half: 'F16',
    f32: 'F32', fp32: 'F32', float32: 'F32', float: 'F32',
  };
  const d = table[w];
  if (!d) {
    throw new WeightspaceError('unsupported-dtype', `unsupported output dtype ${q(word)}: expected one of bf16, f16, f32`);
  }
  return d;
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new WeightspaceError('internal', 'weightspace needs a little-endian host');
}

// ---------------------------------------------------------------------------------------
// scalar conversions (also the reference for the bulk codecs' tests)

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToBits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}
export function bitsToF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** f32 bits → bf16 bits, round to nearest even; NaN → quiet NaN with the same sign. */
export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 bits → f16 bits, round to nearest even, overflow to ±Inf, gradual underflow. */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++; // a carry rounds up the exponent, to Inf at the top
  return sign | r;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** OCP FP8 E4M3 (the "fn" variant torch uses): bias 7, no infinities, S.1111.111 is NaN, max 448. */
export function e4m3ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

/** OCP FP8 E5M2: bias 15, IEEE-like with infinities and NaNs. */
export function e5m2ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 2) & 0x1f;
  const mant = b & 0x3;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * 2 ** -16;
  return sign * (1 + mant / 4) * 2 ** (exp - 15);
}

// ---------------------------------------------------------------------------------------
// bulk codecs

let f16Table: Float32Array | undefined;
let e4m3Table: Float32Array | undefined;
let e5m2Table: Float32Array | undefined;

function table(kind: 'f16' | 'e4m3' | 'e5m2'): Float32Array {
  if (kind === 'f16') {
    if (!f16Table) {
      f16Table = new Float32Array(65536);
      for (let i = 0; i < 65536; i++) f16Table[i] = f16BitsToF32(i);
    }
    return f16Table;
  }
  if (kind === 'e4m3') {
    if (!e4m3Table) {
      e4m3Table = new Float32Array(256);
      for (let i = 0; i < 256; i++) e4m3Table[i] = e4m3ToF32(i);
    }
    return e4m3Table;
  }
  if (!e5m2Table) {
    e5m2Table = new Float32Array(256);
    for (let i = 0; i < 256; i++) e5m2Table[i] = e5m2ToF32(i);
  }
  return e5m2Table;
}

/**
 * Decodes `n` elements of `dtype` from `src` (byte offset 0 of `src` must be aligned to the
 * element size) into `dst[0..n)`.
 */
export function decodeBlock(dtype: FloatDType, src: Uint8Array, dst: Float32Array, n: number): void {
  switch (dtype) {
    case 'F32': {
      if (src.byteOffset % 4 === 0) {
        dst.set(new Float32Array(src.buffer, src.byteOffset, n));
      } else {
        new Uint8Array(dst.buffer, dst.byteOffset, n * 4).set(src.subarray(0, n * 4));
      }
      return;
    }
    case 'BF16': {
      const d = new Uint32Array(dst.buffer, dst.byteOffset, n);
      if (src.byteOffset % 4 === 0) {
        // two bf16 per 32-bit load (little-endian: the first value is the low half)
        const half = n >>> 1;
        const w = new Uint32Array(src.buffer, src.byteOffset, half);
        for (let k = 0, i = 0; k < half; k++, i += 2) {
          const x = w[k]!;
          d[i] = x << 16;
          d[i + 1] = x & 0xffff0000;
        }
        if (n & 1) d[n - 1] = (src[2 * n - 2]! | (src[2 * n - 1]! << 8)) << 16;
        return;
      }
      const s = aligned16(src, n);
      for (let i = 0; i < n; i++) d[i] = s[i]! << 16;
      return;
    }
    case 'F16': {
      const s = aligned16(src, n);
      const t = table('f16');
      for (let i = 0; i < n; i++) dst[i] = t[s[i]!]!;
      return;
    }
    case 'F64': {
      const s = src.byteOffset % 8 === 0
        ? new Float64Array(src.buffer, src.byteOffset, n)
        : new Float64Array(src.slice(0, n * 8).buffer);
      for (let i = 0; i < n; i++) dst[i] = s[i]!;
      return;
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const t = table(dtype === 'F8_E4M3' ? 'e4m3' : 'e5m2');
      for (let i = 0; i < n; i++) dst[i] = t[src[i]!]!;
      return;
    }
  }
}

function aligned16(src: Uint8Array, n: number): Uint16Array {
  return src.byteOffset % 2 === 0
    ? new Uint16Array(src.buffer, src.byteOffset, n)
    : new Uint16Array(src.slice(0, n * 2).buffer);
}

/** Encodes `n` f32 values into `dst` as `dtype` (round to nearest even). `dst` must be 4-byte aligned. */
export function encodeBlock(dtype: WritableFloatDType, src: Float32Array, dst: Uint8Array, n: number): void {
  switch (dtype) {
    case 'F32':
      new Float32Array(dst.buffer, dst.byteOffset, n).set(src.subarray(0, n));
      return;
    case 'BF16': {
      const s = new Uint32Array(src.buffer, src.byteOffset, n);
      const d = new Uint16Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const b = s[i]!;
        d[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x0040 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
      return;
    }
    case 'F16': {
      const s = new Uint32Array(src.buffer, src.byteOffset, n);
      const d = new Uint16Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) d[i] = f32BitsToF16(s[i]!);
      return;
    }
  }
}

/** Rounds f32 values in place to what `dtype` can hold (encode then decode). */
export function roundTo(dtype: WritableFloatDType, x: Float32Array): void {
  if (dtype === 'F32') return;
  const bytes = new Uint8Array(x.length * 2);
  encodeBlock(dtype, x, bytes, x.length);
  decodeBlock(dtype, bytes, x, x.length);
}
