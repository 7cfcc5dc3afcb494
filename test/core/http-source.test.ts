import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEmbedded } from '../../client/embedded-runner.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import { WeightspaceError } from '../../core/errors.js';
import { family, synth, tmp } from '../helpers/models.js';
import { serveDirectory, type RangeServer } from '../helpers/range-server.js';

let fam: Awaited<ReturnType<typeof family>>;
let server: RangeServer;
let sharded: string;
beforeAll(async () => {
  fam = await family();
  sharded = await synth(join(fam.dir, 'sharded'), { like: fam.base, seed: 9, shardSize: 1_000_000 });
  server = await serveDirectory(fam.dir);
});
afterAll(() => server.close());

describe('http(s) checkpoints', () => {
  it('reads headers with range requests only, single-file and sharded', async () => {
    const single = await openCheckpoint(`${server.url}/a`);
    const local = await openCheckpoint(fam.a);
    expect([...single.tensors.keys()]).toEqual([...local.tensors.keys()]);
    const remote = await openCheckpoint(`${server.url}/sharded`);
    expect(remote.files.length).toBeGreaterThan(1);
    expect(remote.tensors.size).toBe(local.tensors.size);
    // nothing but the index and headers: every safetensors request is a small range
    const full = server.requests.filter((r) => /\.safetensors /.test(r) && !r.includes('bytes='));
    expect(full).toEqual([]);
  });

  it('computes the same bytes from URLs as from local paths', async () => {
    const d = tmp();
    await runEmbedded({ op: 'eval', expr: 'base + 0.5*(a - base) + 0.5*(b - base)', models: { base: `${server.url}/base`, a: `${server.url}/a`, b: `${server.url}/sharded` }, out: join(d, 'remote') }, { threads: 2 });
    await runEmbedded({ op: 'eval', expr: 'base + 0.5*(a - base) + 0.5*(b - base)', models: { base: fam.base, a: fam.a, b: sharded }, out: join(d, 'local') }, { threads: 2 });
    expect(readFileSync(join(d, 'remote', 'model.safetensors')).equals(readFileSync(join(d, 'local', 'model.safetensors')))).toBe(true);
    // config and tokenizer files come over http too
    expect(readFileSync(join(d, 'remote', 'config.json'), 'utf8')).toBe(readFileSync(join(fam.base, 'config.json'), 'utf8'));
  });

  it('a missing URL is not-found; a server without range support is a clear read error', async () => {
    await expect(openCheckpoint(`${server.url}/nope`)).rejects.toMatchObject({ code: 'not-found' });
    const plain = await serveDirectory(fam.dir, { ranges: false });
    try {
      const err = await openCheckpoint(`${plain.url}/a`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WeightspaceError);
      expect((err as WeightspaceError).code).toBe('read-failed');
      expect((err as WeightspaceError).message).toContain('expected HTTP 206');
    } finally {
      await plain.close();
    }
  });
});
