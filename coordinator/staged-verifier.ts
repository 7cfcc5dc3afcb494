/**
 * Shared staging, the coordinator's side: the ranges a worker says it wrote into the
 * staging files are checked once its task is done (it closed its files before saying so).
 * Each file is opened afresh (on NFS, close-to-open consistency: an open after the
 * writer's close sees its bytes), each range read back (from the page cache, on one
 * host) and its CRC-32 compared with the worker's. The checked bytes feed the shard's
 * progressive sha256 from memory, so the common case reads them once. A mismatch, or a
 * file shorter than the range, is a 'checksum-mismatch': the task runs again, and the
 * re-run rewrites the same bytes at the same offsets.
 */
import { closeSync, openSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { readAt } from '../core/byte-source.js';
import { chunkChecksum } from '../core/cluster/checksum.js';
import { STAGED_PIECE_BYTES, type TaskWrittenMsg } from '../core/cluster/wire-messages.js';
import { WeightspaceError, q } from '../core/errors.js';

/** Where checked ranges go: the assembler (shard paths, progressive hashes). */
export interface StagedShards {
  shardPath(output: number, file: string): string;
  writtenBytes(output: number, file: string, offset: number, bytes: Uint8Array): void;
}

/** Milliseconds of checking per event-loop turn: the scheduler's streams keep flowing meanwhile. */
const TURN_MS = 4;

/**
 * Shared by every check: each range is read, checked and hashed within one turn, so
 * interleaved checks of several tasks never see each other's bytes in it.
 */
let buffer: Buffer | undefined;

/**
 * Reads back and checks `notes` (one task's); resolves when all match, rejects at the
 * first that does not. Between turns, `alive()` false (the job ended meanwhile: its
 * staging may be gone) stops it with 'cancelled'.
 */
export async function verifyStaged(shards: StagedShards, layer: string, notes: readonly TaskWrittenMsg[], alive: () => boolean): Promise<void> {
  const sorted = [...notes].sort((a, b) => a.output - b.output || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.offset - b.offset);
  let turn = performance.now();
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i]!;
    const path = shards.shardPath(first.output, first.file);
    const fd = openSync(path, 'r');
    try {
      for (; i < sorted.length && sorted[i]!.output === first.output && sorted[i]!.file === first.file; i++) {
        const n = sorted[i]!;
        if (n.length > STAGED_PIECE_BYTES) {
          throw new WeightspaceError('cluster-protocol', `task ${q(layer)}: a written note of ${q(n.file)} covers ${n.length} bytes, more than ${STAGED_PIECE_BYTES}`);
        }
        buffer ??= Buffer.allocUnsafe(STAGED_PIECE_BYTES);
        const bytes = buffer.subarray(0, n.length);
        const got = readAt(fd, bytes, n.offset);
        if (got < n.length) throw new WeightspaceError('checksum-mismatch', `task ${q(layer)}: staged ${q(n.file)} ends at ${n.offset + got}, before its written range ${n.offset}+${n.length}`);
        const sum = chunkChecksum(bytes);
        if (sum !== n.crc32 >>> 0) {
          throw new WeightspaceError('checksum-mismatch', `task ${q(layer)}: staged ${q(n.file)} at ${n.offset}+${n.length} has crc32 ${sum}, the worker wrote ${n.crc32 >>> 0}`);
        }
        shards.writtenBytes(n.output, n.file, n.offset, bytes);
        if (performance.now() - turn >= TURN_MS) {
          await nextTurn();
          if (!alive()) throw new WeightspaceError('cancelled', `task ${q(layer)}: its job ended while its staged bytes were checked`);
          turn = performance.now();
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}
