import { describe, expect, it } from 'vitest';
import {
  bitsToF32, decodeBlock, e4m3ToF32, e5m2ToF32, encodeBlock, f16BitsToF32, f32BitsToBf16, f32BitsToF16, f32ToBits, parseDTypeName,
} from '../../core/dtypes.js';
import { WeightspaceError } from '../../core/errors.js';

const bf16 = (x: number): number => f32BitsToBf16(f32ToBits(x));
const f16 = (x: number): number => f32BitsToF16(f32ToBits(x));

describe('bf16 encode (round to nearest, ties to even)', () => {
  it('hand vectors', () => {
    expect(bf16(1)).toBe(0x3f80);
    expect(bf16(-2)).toBe(0xc000);
    expect(bf16(0)).toBe(0x0000);
    expect(bf16(-0)).toBe(0x8000);
    // 1 + 2^-8 is exactly half way between 1 (0x3f80, even) and 1 + 2^-7 (0x3f81): ties to even → 0x3f80
    expect(bf16(1 + 2 ** -8)).toBe(0x3f80);
    // 1 + 3·2^-8 is half way between 0x3f81 (odd) and 0x3f82 (even) → 0x3f82
    expect(bf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    // just above half way rounds up
    expect(f32BitsToBf16(0x3f808001)).toBe(0x3f81);
    // just below half way rounds down
    expect(f32BitsToBf16(0x3f807fff)).toBe(0x3f80);
  });
  it('infinities, NaN, overflow and subnormals', () => {
    expect(bf16(Infinity)).toBe(0x7f80);
    expect(bf16(-Infinity)).toBe(0xff80);
    expect(bf16(NaN) & 0x7f80).toBe(0x7f80);
    expect(bf16(NaN) & 0x007f).not.toBe(0);
    // a NaN whose payload lives only in the low 16 bits must stay NaN, not become Inf
    expect(f32BitsToBf16(0x7f800001)).toBe(0x7fc0);
    expect(f32BitsToBf16(0xff800001)).toBe(0xffc0);
    // the largest f32 rounds up to Inf in bf16 (RNE)
    expect(f32BitsToBf16(0x7f7fffff)).toBe(0x7f80);
    // the largest bf16 stays
    expect(f32BitsToBf16(0x7f7f0000)).toBe(0x7f7f);
    // subnormals are kept and rounded
    expect(f32BitsToBf16(0x00010000)).toBe(0x0001);
    expect(f32BitsToBf16(0x00008000)).toBe(0x0000); // half of the smallest: tie to even (0)
    expect(f32BitsToBf16(0x00018000)).toBe(0x0002); // 1.5 × smallest: tie to even (2)
  });
});

describe('f16 encode (round to nearest, ties to even)', () => {
  it('hand vectors', () => {
    expect(f16(1)).toBe(0x3c00);
    expect(f16(-2)).toBe(0xc000);
    expect(f16(65504)).toBe(0x7bff);
    expect(f16(65520)).toBe(0x7c00); // half way to the next binade rounds to Inf
    expect(f16(65519.99)).toBe(0x7bff);
    expect(f16(1e6)).toBe(0x7c00);
    expect(f16(-1e6)).toBe(0xfc00);
    expect(f16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f16(2 ** -25)).toBe(0x0000); // half of it: tie to even
    expect(f16(3 * 2 ** -25)).toBe(0x0002); // 1.5 × smallest: tie to even
    expect(f16(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f16(1 + 2 ** -11)).toBe(0x3c00); // tie to even (down)
    expect(f16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie to even (up)
    expect(f16(Infinity)).toBe(0x7c00);
    expect(f16(NaN) & 0x7c00).toBe(0x7c00);
    expect(f16(NaN) & 0x03ff).not.toBe(0);
    expect(f16(-0)).toBe(0x8000);
  });
  it('agrees with a naive reference on every f16 value and midpoints', () => {
    for (let h = 0; h < 0x7c00; h++) {
      const x = f16BitsToF32(h);
      expect(f16(x)).toBe(h);
      expect(f16(-x)).toBe(h | 0x8000);
    }
  });
});

describe('decoders', () => {
  it('f16', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Number.isNaN(f16BitsToF32(0x7e00))).toBe(true);
  });
  it('fp8 e4m3 (fn): max 448, no infinity, one NaN per sign', () => {
    expect(e4m3ToF32(0x7e)).toBe(448);
    expect(e4m3ToF32(0x38)).toBe(1);
    expect(e4m3ToF32(0x01)).toBe(2 ** -9);
    expect(Number.isNaN(e4m3ToF32(0x7f))).toBe(true);
    expect(Number.isNaN(e4m3ToF32(0xff))).toBe(true);
    expect(e4m3ToF32(0x78)).toBe(256); // exponent 15 with mantissa 0 is a number, not Inf
    expect(e4m3ToF32(0xb8)).toBe(-1);
  });
  it('fp8 e5m2: IEEE-like with infinities', () => {
    expect(e5m2ToF32(0x3c)).toBe(1);
    expect(e5m2ToF32(0x7b)).toBe(57344);
    expect(e5m2ToF32(0x7c)).toBe(Infinity);
    expect(Number.isNaN(e5m2ToF32(0x7d))).toBe(true);
    expect(e5m2ToF32(0x01)).toBe(2 ** -16);
  });
  it('bulk decode matches scalar decode for every dtype', () => {
    const n = 4096;
    const bytes = new Uint8Array(n * 8);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
    const out = new Float32Array(n);
    decodeBlock('BF16', bytes, out, n);
    const u16 = new Uint16Array(bytes.buffer);
    for (let i = 0; i < n; i++) expect(Object.is(out[i], bitsToF32(u16[i]! << 16)) || (Number.isNaN(out[i]) && Number.isNaN(bitsToF32(u16[i]! << 16)))).toBe(true);
    decodeBlock('F16', bytes, out, n);
    for (let i = 0; i < n; i++) {
      const ref = Math.fround(f16BitsToF32(u16[i]!));
      expect(Number.isNaN(ref) ? Number.isNaN(out[i]) : out[i] === ref).toBe(true);
    }
    decodeBlock('F8_E4M3', bytes, out, n);
    for (let i = 0; i < n; i++) {
      const ref = e4m3ToF32(bytes[i]!);
      expect(Number.isNaN(ref) ? Number.isNaN(out[i]) : out[i] === ref).toBe(true);
    }
    const f64 = new Float64Array([1.5, -2.25, 1e300, 1 + 2 ** -30]);
    const o = new Float32Array(4);
    decodeBlock('F64', new Uint8Array(f64.buffer), o, 4);
    expect([...o]).toEqual([1.5, -2.25, Infinity, 1]);
  });
  it('decodes from unaligned byte offsets', () => {
    const buf = new Uint8Array(9);
    new DataView(buf.buffer).setUint16(1, 0x3f80, true);
    new DataView(buf.buffer).setFloat32(5, 3.5, true);
    const o = new Float32Array(1);
    decodeBlock('BF16', buf.subarray(1, 3), o, 1);
    expect(o[0]).toBe(1);
    decodeBlock('F32', buf.subarray(5, 9), o, 1);
    expect(o[0]).toBe(3.5);
  });
});

describe('bulk encode', () => {
  it('matches the scalar reference on random bit patterns, NaN and Inf', () => {
    const n = 1 << 16;
    const x = new Float32Array(n);
    const u = new Uint32Array(x.buffer);
    for (let i = 0; i < n; i++) u[i] = Math.imul(i, 2654435761) >>> 0;
    u[0] = 0x7f800001; // NaN with low payload
    u[1] = 0x7f800000;
    u[2] = 0x7f7fffff;
    const out = new Uint8Array(n * 2);
    const o16 = new Uint16Array(out.buffer);
    encodeBlock('BF16', x, out, n);
    for (let i = 0; i < n; i++) expect(o16[i]).toBe(f32BitsToBf16(u[i]!));
    encodeBlock('F16', x, out, n);
    for (let i = 0; i < n; i++) expect(o16[i]).toBe(f32BitsToF16(u[i]!));
    const o32 = new Uint8Array(n * 4);
    encodeBlock('F32', x, o32, n);
    expect(Buffer.from(o32).equals(Buffer.from(x.buffer))).toBe(true);
  });
});

describe('parseDTypeName', () => {
  it('reads the usual spellings and rejects others with a clear code', () => {
    expect(parseDTypeName('bfloat16')).toBe('BF16');
    expect(parseDTypeName('fp16')).toBe('F16');
    expect(parseDTypeName('F32')).toBe('F32');
    expect(() => parseDTypeName('int8')).toThrow(WeightspaceError);
    try {
      parseDTypeName('int8');
    } catch (e) {
      expect((e as WeightspaceError).code).toBe('unsupported-dtype');
      expect((e as WeightspaceError).exitCode).toBe(3);
    }
  });
});
