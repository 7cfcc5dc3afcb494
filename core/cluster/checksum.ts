/** Chunk checksums of the data plane: CRC-32 (IEEE), native in Node's zlib, GB/s. */
import { crc32 } from 'node:zlib';

/** CRC-32 of `bytes`; with `previous` (the CRC-32 of the bytes just before), of both together. */
export function chunkChecksum(bytes: Uint8Array, previous = 0): number {
  return crc32(bytes, previous) >>> 0;
}
