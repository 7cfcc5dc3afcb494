/**
 * The executor's decode and encode steps, on the SIMD backend when both buffers live in its
 * memory (bf16, the common checkpoint dtype), else core/dtypes.ts's loops: the same bits.
 */
import { decodeBlock, encodeBlock, type FloatDType, type WritableFloatDType } from '../../core/dtypes.js';
import { simdFor } from './simd-module.js';

export function decodeInto(dtype: FloatDType, src: Uint8Array, dst: Float32Array, n: number): void {
  const k = dtype === 'BF16' ? simdFor(src, dst) : undefined;
  if (k) k.decodeBf16(src.byteOffset, dst.byteOffset, n);
  else decodeBlock(dtype, src, dst, n);
}

export function encodeFrom(dtype: WritableFloatDType, src: Float32Array, dst: Uint8Array, n: number): void {
  const k = dtype === 'BF16' ? simdFor(src, dst) : undefined;
  if (k) k.encodeBf16(src.byteOffset, dst.byteOffset, n);
  else encodeBlock(dtype, src, dst, n);
}
