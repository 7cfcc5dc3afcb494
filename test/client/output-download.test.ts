/**
 * The download's local copy, without processes (a fake coordinator: a directory laid out
 * as its data dir, and a FetchOutput that serves the true bytes): whole files copied from
 * the finished output; ranges copied from the staging while the job runs; a copy that
 * fails its sha256 fetched again over gRPC; a token that does not match, or localCopy
 * false, fetch everything; bytes that are wrong on both paths fail clearly, leaving
 * nothing at the destination.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CoordinatorRpc } from '../../client/coordinator-rpc.js';
import { OutputDownload, type SharedDir } from '../../client/output-download.js';
import { chunkChecksum } from '../../core/cluster/checksum.js';
import { OUTPUT_TOKEN_FILE, STAGING_TOKEN_FILE, newToken, writeToken } from '../../core/cluster/volume-token.js';
import type { ClusterJobResult, FetchOutputRequest, OutputChunkMsg, OutputFileMsg } from '../../core/cluster/wire-messages.js';
import { tmp } from '../helpers/models.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A FetchOutput over in-memory files, 1 MiB chunks with their CRC-32; counts the bytes it served. */
function fakeRpc(files: Map<string, Buffer>): CoordinatorRpc & { served: number } {
  const rpc = {
    served: 0,
    closed: false,
    address: 'fake:0',
    fetchOutput(req: FetchOutputRequest) {
      const data = files.get(req.file)!;
      const end = req.length > 0 ? req.offset + req.length : data.length;
      let cancelled = false;
      async function* chunks(): AsyncGenerator<OutputChunkMsg> {
        for (let at = req.offset; at < end && !cancelled; at += 1 << 20) {
          const bytes = data.subarray(at, Math.min(end, at + (1 << 20)));
          rpc.served += bytes.length;
          yield {
            output: req.output, subdir: '', file: req.file, offset: at, bytes, crc32: chunkChecksum(bytes), fileSize: data.length,
            fileSha256: at + bytes.length === data.length ? sha256(data) : '',
          };
        }
      }
      return Object.assign(chunks(), { cancel: () => { cancelled = true; } });
    },
  };
  return rpc as unknown as CoordinatorRpc & { served: number };
}

interface Fixture {
  readonly work: string;
  readonly staging: string;
  readonly outDir: string;
  readonly token: string;
  readonly truth: Map<string, Buffer>;
  readonly files: OutputFileMsg[];
  readonly shards: OutputFileMsg[];
  readonly result: ClusterJobResult;
}

/** A coordinator's job dir: two shards (header + data) and a small file, staged, with their true bytes. */
function fixture(): Fixture {
  const work = tmp('ws-download-');
  const staging = join(work, 'data', 'jobs', 'j', '.out.weightspace-tmp-1');
  const outDir = join(work, 'data', 'jobs', 'j', 'out');
  mkdirSync(staging, { recursive: true });
  const truth = new Map<string, Buffer>([
    ['model-00001-of-00002.safetensors', randomBytes(3 * (1 << 20) + 11)],
    ['model-00002-of-00002.safetensors', randomBytes(2 * (1 << 20) + 5)],
    ['weightspace.json', Buffer.from('{"tool":"weightspace"}\n')],
  ]);
  for (const [name, data] of truth) writeFileSync(join(staging, name), data);
  const files = [...truth].map(([file, data]) => ({ output: 0, subdir: '', file, size: data.length, sha256: sha256(data) }));
  const shards = files.filter((f) => f.file.endsWith('.safetensors')).map((f) => ({ ...f, sha256: '', headerLength: 4096 }));
  const result: ClusterJobResult = {
    op: 'eval', outputs: [{ subdir: '', label: 'out', shards: files.filter((f) => f.file.endsWith('.safetensors')) }], seconds: 0, bytesRead: 0, bytesWritten: 0,
  };
  return { work, staging, outDir, token: newToken(), truth, files, shards, result };
}

/** The job finishes: the staging dir becomes the output dir, which gets its token. */
function finish(fx: Fixture): SharedDir {
  renameSync(fx.staging, fx.outDir);
  writeToken(fx.outDir, OUTPUT_TOKEN_FILE, fx.token);
  return { dir: fx.outDir, token: fx.token };
}

function expectTruth(fx: Fixture, dest: string): void {
  for (const [name, data] of fx.truth) expect(Buffer.compare(readFileSync(join(dest, name)), data), name).toBe(0);
}

describe('OutputDownload: local copy', () => {
  let fx: Fixture;
  let dest: string;

  beforeEach(() => {
    fx = fixture();
    dest = join(fx.work, 'client', 'merged');
  });

  it('copies every file from the finished output when its token matches; nothing crosses gRPC', async () => {
    const rpc = fakeRpc(fx.truth);
    const dl = OutputDownload.start(rpc, 'j', dest, { reconnectTimeoutMs: 5_000 });
    const got = await dl.complete(fx.result, fx.files, finish(fx));
    expectTruth(fx, dest);
    expect(rpc.served).toBe(0);
    expect(got.transfer).toMatchObject({ bytes: 0, copied: [...fx.truth.values()].reduce((a, b) => a + b.length, 0), copyFallbacks: 0, files: 3 });
    expect(existsSync(join(dest, OUTPUT_TOKEN_FILE))).toBe(false);
  });

  it('hard-links the finished files when they are read-only on this filesystem: nothing copied, fetched or re-hashed early', async () => {
    writeToken(fx.staging, STAGING_TOKEN_FILE, fx.token);
    const rpc = fakeRpc(fx.truth);
    const dl = OutputDownload.start(rpc, 'j', dest, { reconnectTimeoutMs: 5_000 });
    dl.addShards(fx.shards, { dir: fx.staging, token: fx.token });
    dl.addRanges([{ output: 0, file: 'model-00001-of-00002.safetensors', offset: 4096, length: 2 << 20 }]);
    const local = finish(fx);
    for (const name of fx.truth.keys()) chmodSync(join(fx.outDir, name), 0o444);
    const got = await dl.complete(fx.result, fx.files, local);
    expectTruth(fx, dest);
    expect(rpc.served).toBe(0);
    expect(got.transfer).toMatchObject({ early: 0, copied: 0, linked: [...fx.truth.values()].reduce((a, b) => a + b.length, 0), copyFallbacks: 0 });
    for (const name of fx.truth.keys()) expect(statSync(join(dest, name)).ino).toBe(statSync(join(fx.outDir, name)).ino);
  });

  it('copies instead of linking with link false, or when the finished file is writable (the first test)', async () => {
    const local = finish(fx);
    for (const name of fx.truth.keys()) chmodSync(join(fx.outDir, name), 0o444);
    const got = await OutputDownload.start(fakeRpc(fx.truth), 'j', dest, { reconnectTimeoutMs: 5_000, link: false }).complete(fx.result, fx.files, local);
    expectTruth(fx, dest);
    expect(got.transfer).toMatchObject({ linked: 0, copied: [...fx.truth.values()].reduce((a, b) => a + b.length, 0) });
    for (const name of fx.truth.keys()) expect(statSync(join(dest, name)).ino).not.toBe(statSync(join(fx.outDir, name)).ino);
  });

  it("copies finished tasks' ranges from the staging while the job runs, the rest when it is done", async () => {
    writeToken(fx.staging, STAGING_TOKEN_FILE, fx.token);
    const rpc = fakeRpc(fx.truth);
    const dl = OutputDownload.start(rpc, 'j', dest, { reconnectTimeoutMs: 5_000, link: false });
    dl.addShards(fx.shards, { dir: fx.staging, token: fx.token });
    dl.addRanges([{ output: 0, file: 'model-00001-of-00002.safetensors', offset: 4096, length: 2 << 20 }]);
    await new Promise((r) => setTimeout(r, 50));
    const got = await dl.complete(fx.result, fx.files, finish(fx));
    expectTruth(fx, dest);
    expect(rpc.served).toBe(0);
    expect(got.transfer.early).toBe(2 * 4096 + (2 << 20));
  });

  it('fetches a file over gRPC when its copy fails its sha256, and the output is right', async () => {
    const local = finish(fx);
    const bad = join(fx.outDir, 'model-00002-of-00002.safetensors');
    const damaged = readFileSync(bad);
    damaged[1000]! ^= 0xff;
    writeFileSync(bad, damaged);
    const rpc = fakeRpc(fx.truth);
    const got = await OutputDownload.start(rpc, 'j', dest, { reconnectTimeoutMs: 5_000 }).complete(fx.result, fx.files, local);
    expectTruth(fx, dest);
    expect(got.transfer.copyFallbacks).toBe(1);
    expect(rpc.served).toBe(fx.truth.get('model-00002-of-00002.safetensors')!.length);
  });

  it('re-fetches from scratch a shard whose early copy from the staging turns out wrong', async () => {
    writeToken(fx.staging, STAGING_TOKEN_FILE, fx.token);
    const shard = join(fx.staging, 'model-00001-of-00002.safetensors');
    const damaged = readFileSync(shard);
    damaged[4096 + 10]! ^= 0xff;
    writeFileSync(shard, damaged);
    const rpc = fakeRpc(fx.truth);
    const dl = OutputDownload.start(rpc, 'j', dest, { reconnectTimeoutMs: 5_000, link: false });
    dl.addShards(fx.shards, { dir: fx.staging, token: fx.token });
    dl.addRanges([{ output: 0, file: 'model-00001-of-00002.safetensors', offset: 4096, length: 1 << 20 }]);
    await new Promise((r) => setTimeout(r, 50));
    // the finished copy is right; the early bytes were not: the file is fetched whole
    const local = finish(fx);
    writeFileSync(join(fx.outDir, 'model-00001-of-00002.safetensors'), fx.truth.get('model-00001-of-00002.safetensors')!);
    const got = await dl.complete(fx.result, fx.files, local);
    expectTruth(fx, dest);
    expect(got.transfer.copyFallbacks).toBe(1);
    expect(rpc.served).toBe(fx.truth.get('model-00001-of-00002.safetensors')!.length);
  });

  it('fetches everything when the token is not the one in the directory, or with localCopy false', async () => {
    const local = finish(fx);
    const total = [...fx.truth.values()].reduce((a, b) => a + b.length, 0);
    const other = fakeRpc(fx.truth);
    const got = await OutputDownload.start(other, 'j', dest, { reconnectTimeoutMs: 5_000 }).complete(fx.result, fx.files, { ...local, token: newToken() });
    expectTruth(fx, dest);
    expect(got.transfer).toMatchObject({ bytes: total, copied: 0 });
    const off = fakeRpc(fx.truth);
    const dest2 = join(fx.work, 'client', 'grpc');
    const got2 = await OutputDownload.start(off, 'j', dest2, { reconnectTimeoutMs: 5_000, localCopy: false }).complete(fx.result, fx.files, local);
    expectTruth(fx, dest2);
    expect(got2.transfer).toMatchObject({ bytes: total, copied: 0 });
  });

  it('fails with checksum-mismatch when the bytes are wrong on both paths, leaving nothing behind', async () => {
    const local = finish(fx);
    const name = 'model-00001-of-00002.safetensors';
    const damaged = Buffer.from(fx.truth.get(name)!);
    damaged[77]! ^= 1;
    writeFileSync(join(fx.outDir, name), damaged);
    const served = new Map(fx.truth);
    served.set(name, damaged);
    const dl = OutputDownload.start(fakeRpc(served), 'j', dest, { reconnectTimeoutMs: 5_000 });
    await expect(dl.complete(fx.result, fx.files, local)).rejects.toMatchObject({
      code: 'checksum-mismatch', message: expect.stringContaining(`output '${name}': sha256 ${sha256(damaged)}, expected ${sha256(fx.truth.get(name)!)}`),
    });
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(join(fx.work, 'client'))).toBe(false);
  });
});
