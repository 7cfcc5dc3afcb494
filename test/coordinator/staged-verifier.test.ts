/**
 * The coordinator's check of staged bytes: ranges that read back with the worker's CRC-32
 * pass and reach the shard's hash (from memory when they continue its prefix); a damaged
 * byte, a file shorter than a range, a note larger than a piece are refused with codes the
 * scheduler re-runs; a job that ends mid-check stops it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProgressiveHash } from '../../coordinator/progressive-hash.js';
import { verifyStaged, type StagedShards } from '../../coordinator/staged-verifier.js';
import { chunkChecksum } from '../../core/cluster/checksum.js';
import { STAGED_PIECE_BYTES, type TaskWrittenMsg } from '../../core/cluster/wire-messages.js';
import { tmp } from '../helpers/models.js';

const SIZE = 9 * (1 << 20) + 777;

function shard(): { path: string; data: Buffer; shards: StagedShards & { hash: ProgressiveHash; fromMemory: number } } {
  const data = randomBytes(SIZE);
  const path = join(tmp('ws-staged-'), 'model.safetensors');
  writeFileSync(path, data);
  const hash = new ProgressiveHash(path, SIZE);
  const shards = {
    hash,
    fromMemory: 0,
    shardPath: () => path,
    writtenBytes(_o: number, _f: string, offset: number, bytes: Uint8Array) {
      this.fromMemory += bytes.length;
      hash.writtenBytes(offset, bytes);
    },
  };
  return { path, data, shards };
}

/** Notes as a worker would send them: pieces of at most STAGED_PIECE_BYTES, in a scrambled order. */
function notes(data: Buffer): TaskWrittenMsg[] {
  const out: TaskWrittenMsg[] = [];
  for (let at = 0; at < data.length; at += STAGED_PIECE_BYTES) {
    const bytes = data.subarray(at, Math.min(data.length, at + STAGED_PIECE_BYTES));
    out.push({ output: 0, file: 'model.safetensors', offset: at, length: bytes.length, crc32: chunkChecksum(bytes) });
  }
  return [out[1]!, out[2]!, out[0]!];
}

describe('verifyStaged', () => {
  it('passes ranges that read back as written and hashes them from memory', async () => {
    const { data, shards } = shard();
    await verifyStaged(shards, 'layer.0', notes(data), () => true);
    expect(shards.fromMemory).toBe(SIZE);
    expect(shards.hash.digest()).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('refuses a range whose bytes differ from what the worker wrote', async () => {
    const { path, data, shards } = shard();
    const damaged = Buffer.from(data);
    damaged[5 << 20]! ^= 1;
    writeFileSync(path, damaged);
    await expect(verifyStaged(shards, 'layer.3', notes(data), () => true))
      .rejects.toMatchObject({ code: 'checksum-mismatch', message: expect.stringContaining("task 'layer.3': staged 'model.safetensors' at 4194304+4194304 has crc32") });
  });

  it('refuses a file shorter than a written range', async () => {
    const { path, data, shards } = shard();
    truncateSync(path, SIZE - 10);
    await expect(verifyStaged(shards, 'layer.1', notes(data), () => true)).rejects.toMatchObject({ code: 'checksum-mismatch' });
  });

  it('refuses a note larger than a piece', async () => {
    const { data, shards } = shard();
    const big = data.subarray(0, STAGED_PIECE_BYTES + 1);
    const note = { output: 0, file: 'model.safetensors', offset: 0, length: big.length, crc32: chunkChecksum(big) };
    await expect(verifyStaged(shards, 'embed', [note], () => true)).rejects.toMatchObject({ code: 'cluster-protocol' });
  });

  it('stops when the job ends while it checks', async () => {
    const { data, shards } = shard();
    // many small notes: the check yields between turns, and sees the job gone
    const small: TaskWrittenMsg[] = [];
    for (let at = 0; at < data.length; at += 4096) {
      const bytes = data.subarray(at, Math.min(data.length, at + 4096));
      small.push({ output: 0, file: 'model.safetensors', offset: at, length: bytes.length, crc32: chunkChecksum(bytes) });
    }
    let alive = true;
    setTimeout(() => { alive = false; }, 1);
    await expect(verifyStaged(shards, 'head', small, () => alive)).rejects.toMatchObject({ code: 'cancelled' });
  });
});
