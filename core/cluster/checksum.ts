/** Chunk checksums of the data plane: CRC-32 (IEEE), native in Node's zlib, GB/s. */
import { crc32 } from 'node:zlib';

export function chunkChecksum(bytes: Uint8Array): number {
  return crc32(bytes) >>> 0;
}
