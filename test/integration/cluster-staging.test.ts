/**
 * The two data paths with real processes. Shared staging (workers write into the
 * coordinator's staging directory, the client copies the finished files) and gRPC only
 * (workers with --no-shared-staging, the client with localCopy false or --no-local-copy)
 * both give what embedded mode gives. A worker that does not find the coordinator's token
 * sends chunks instead, in the middle of a job; a client that does not find it fetches; a
 * client whose copy is wrong and whose fetch is wrong too fails clearly, leaving nothing.
 * (SIGKILLed workers with shared staging: cluster-faults.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../client/local-cluster.js';
import { WeightspaceClient } from '../../client/weightspace-client.js';
import { OUTPUT_TOKEN_FILE, STAGING_TOKEN_FILE, newToken, writeToken } from '../../core/cluster/volume-token.js';
import type { JobSpec } from '../../core/job-spec.js';
import { removeDir, requireBuild, workDir } from './helpers/cluster-env.js';
import { expectLikeReference, faultFixture, moveAside, readyWorkers, SLOW_WORKERS, type FaultFixture } from './helpers/fault-setup.js';
import { JobWatch } from './helpers/job-watch.js';
import { waitFor } from './helpers/wait.js';

const BIN = fileURLToPath(new URL('../../bin/weightspace.js', import.meta.url));

/** Bytes of every file of the reference output. */
function outputSize(f: FaultFixture, dir: string): number {
  return Object.keys(f.reference.digest).reduce((a, rel) => a + statSync(join(dir, rel)).size, 0);
}

describe('cluster data paths: shared staging and gRPC', () => {
  let work: string;
  let f: FaultFixture;

  beforeAll(async () => {
    requireBuild();
    work = workDir('staging');
    f = await faultFixture(work);
  });

  afterAll(() => removeDir(work));

  describe('workers with shared staging (the default)', () => {
    let cluster: LocalCluster | undefined;
    let client: WeightspaceClient | undefined;

    beforeAll(async () => {
      cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dir: join(work, 'cluster-shared') });
      client = await WeightspaceClient.connect(cluster.coordinatorAddress);
      await readyWorkers(client, 2);
    });

    afterAll(async () => {
      client?.close();
      await cluster?.stop();
    });

    it('writes through the staging and links the output (read-only): byte-identical, no output byte over gRPC', async () => {
      const handle = await client!.submit(f.spec);
      const result = await handle.download(f.out);
      const status = await handle.status();
      expect(status.stagedBytes).toBe(status.bytesWritten);
      expect(status.streamedBytes).toBe(0);
      expect(result.transfer.bytes).toBe(0);
      expect(result.transfer.linked).toBe(outputSize(f, f.out));
      expect(result.transfer.copied).toBe(0);
      expect(result.transfer.copyFallbacks).toBe(0);
      await expectLikeReference(f, moveAside(f, 'shared'));
    });

    it('copies the output with link false (an independent, writable file): byte-identical', async () => {
      const handle = await client!.submit(f.spec);
      const result = await handle.download(f.out, { link: false });
      expect(result.transfer.bytes).toBe(0);
      expect(result.transfer.linked).toBe(0);
      expect(result.transfer.copied).toBe(outputSize(f, f.out));
      expect(result.transfer.copyFallbacks).toBe(0);
      await expectLikeReference(f, moveAside(f, 'copied'));
      // token files stay the coordinator's
      expect(existsSync(join(cluster!.dataDir, 'jobs', handle.id, 'out', OUTPUT_TOKEN_FILE))).toBe(true);
    });

    it('fetches over gRPC with localCopy false, and from the CLI with --no-local-copy: byte-identical', async () => {
      const handle = await client!.submit(f.spec);
      const result = await handle.download(f.out, { localCopy: false });
      expect(result.transfer.copied).toBe(0);
      expect(result.transfer.bytes).toBe(outputSize(f, f.out));
      await expectLikeReference(f, moveAside(f, 'fetched'));

      const spec = f.spec as Extract<JobSpec, { op: 'eval' }>;
      const models = Object.entries(spec.models).flatMap(([k, v]) => ['--model', `${k}=${v}`]);
      const r = spawnSync(process.execPath, [BIN, 'eval', spec.expr, ...models, '--out', f.out, '--cluster', cluster!.coordinatorAddress, '--no-local-copy'], {
        encoding: 'utf8', timeout: 60_000,
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      await expectLikeReference(f, moveAside(f, 'cli-fetched'));
    });

    it("fetches over gRPC when the output dir's token is not the one the coordinator named", async () => {
      const handle = await client!.submit(f.spec);
      await handle.result();
      // as if another directory had the same path here
      writeToken(join(cluster!.dataDir, 'jobs', handle.id, 'out'), OUTPUT_TOKEN_FILE, newToken());
      const result = await handle.download(f.out);
      expect(result.transfer.copied).toBe(0);
      expect(result.transfer.bytes).toBe(outputSize(f, f.out));
      await expectLikeReference(f, moveAside(f, 'token-mismatch'));
    });

    it('fails clearly when the copy and the fetch are both wrong (the coordinator\'s file is damaged)', async () => {
      const handle = await client!.submit(f.spec);
      await handle.result();
      const outDir = join(cluster!.dataDir, 'jobs', handle.id, 'out');
      const shard = readdirSync(outDir).find((n) => n.endsWith('.safetensors'))!;
      const bytes = readFileSync(join(outDir, shard));
      bytes[bytes.length - 3]! ^= 0x40;
      writeFileSync(join(outDir, shard), bytes);
      const err = await handle.download(f.out).then(() => undefined, (e: unknown) => e as { code: string; message: string });
      expect(err?.code).toBe('checksum-mismatch');
      expect(err?.message).toContain(`output '${shard}': sha256 `);
      expect(existsSync(f.out)).toBe(false);
      expect(readdirSync(join(f.out, '..')).filter((n) => n.includes('weightspace-tmp'))).toEqual([]);
    });
  });

  describe('workers with --no-shared-staging', () => {
    let cluster: LocalCluster | undefined;
    let client: WeightspaceClient | undefined;

    beforeAll(async () => {
      cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dir: join(work, 'cluster-grpc'), sharedStaging: false });
      client = await WeightspaceClient.connect(cluster.coordinatorAddress);
      await readyWorkers(client, 2);
    });

    afterAll(async () => {
      client?.close();
      await cluster?.stop();
    });

    it('streams every output byte over gRPC both ways: byte-identical', async () => {
      const handle = await client!.submit(f.spec);
      const result = await handle.download(f.out, { localCopy: false });
      const status = await handle.status();
      expect(status.streamedBytes).toBe(status.bytesWritten);
      expect(status.stagedBytes).toBe(0);
      expect(result.transfer.copied).toBe(0);
      expect(result.transfer.bytes).toBe(outputSize(f, f.out));
      await expectLikeReference(f, moveAside(f, 'grpc-only'));
    });
  });

  describe('a staging token that stops matching mid-job', () => {
    let cluster: LocalCluster | undefined;
    let client: WeightspaceClient | undefined;

    beforeAll(async () => {
      cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, maxTasks: 1, dir: join(work, 'cluster-token'), workerEnv: SLOW_WORKERS });
      client = await WeightspaceClient.connect(cluster.coordinatorAddress);
      await readyWorkers(client, 2);
    });

    afterAll(async () => {
      client?.close();
      await cluster?.stop();
    });

    it('makes the workers send chunks for the tasks they start afterwards; the output is byte-identical', async () => {
      const handle = await client!.submit(f.spec);
      const watch = new JobWatch(handle);
      const downloading = handle.download(f.out);
      await watch.until('a task to start', () => watch.started.size >= 1);
      const jobDir = join(cluster!.dataDir, 'jobs', handle.id);
      const staging = await waitFor('the staging dir', () => readdirSync(jobDir).find((n) => n.includes('.weightspace-tmp-')));
      // as if the workers saw another directory at the coordinator's staging path
      writeToken(join(jobDir, staging), STAGING_TOKEN_FILE, newToken());
      await downloading;
      await watch.ended;
      await expectLikeReference(f, moveAside(f, 'staging-token-mismatch'));
      const status = await handle.status();
      expect(status.streamedBytes).toBeGreaterThan(0);
      expect(status.stagedBytes + status.streamedBytes).toBe(status.bytesWritten);
      const logs = cluster!.workers.map((w) => readFileSync(w.logPath, 'utf8')).join('');
      expect(logs).toContain('shared staging not usable here: sending chunks over gRPC');
    });
  });
});
