/**
 * The client side with real processes: (f) connections dropped during a download over
 * gRPC (the download resumes from the last verified offset and the output verifies) and during a
 * job's event stream (the handle re-attaches); (g) a corrupt input fails with the same
 * error (code and message) as embedded mode, through the SDK and the CLI, and the
 * cluster serves the next job; an input a worker may not read fails the job with the
 * worker's error, and again the next job runs.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEmbedded } from '../../client/embedded-runner.js';
import { LocalCluster } from '../../client/local-cluster.js';
import { WeightspaceClient } from '../../client/weightspace-client.js';
import { WeightspaceError } from '../../core/errors.js';
import { parseJobSpec, type JobSpec } from '../../core/job-spec.js';
import { removeDir, requireBuild, workDir } from './helpers/cluster-env.js';
import { DropProxy } from './helpers/drop-proxy.js';
import { expectLikeReference, faultFixture, moveAside, readyWorkers, type FaultFixture } from './helpers/fault-setup.js';
import { JobWatch } from './helpers/job-watch.js';

const BIN = fileURLToPath(new URL('../../bin/weightspace.js', import.meta.url));

async function errorOf(p: Promise<unknown>): Promise<WeightspaceError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(WeightspaceError);
    return err as WeightspaceError;
  }
  throw new Error('expected the job to fail');
}

describe('cluster client: dropped connections and failing jobs', () => {
  let work: string;
  let f: FaultFixture;
  let cluster: LocalCluster | undefined;
  let client: WeightspaceClient | undefined;

  beforeAll(async () => {
    requireBuild();
    work = workDir('client');
    f = await faultFixture(work);
    // workers may read only the models directory
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dir: join(work, 'cluster'), roots: join(work, 'models') });
    client = await WeightspaceClient.connect(cluster.coordinatorAddress);
    await readyWorkers(client, 2);
  });

  afterAll(async () => {
    client?.close();
    await cluster?.stop();
    removeDir(work);
  });

  describe('(f) dropped connections', () => {
    let proxy: DropProxy | undefined;
    let viaProxy: WeightspaceClient | undefined;

    beforeAll(async () => {
      proxy = await DropProxy.start(cluster!.coordinatorAddress);
      viaProxy = await WeightspaceClient.connect(proxy.address, { reconnectTimeoutMs: 20_000 });
    });

    afterAll(async () => {
      viaProxy?.close();
      await proxy?.close();
    });

    it('resumes a download from the last verified offset; the output verifies', async () => {
      const handle = await viaProxy!.submit(f.spec);
      const done = await handle.result();
      const total = done.outputs.flatMap((o) => o.shards).reduce((a, s) => a + s.size, 0);
      expect(total).toBeGreaterThan(2 << 20);
      proxy!.armDrop(1 << 20);
      // over gRPC: a local copy (same host) would not cross the proxy
      const result = await handle.download(f.out, { concurrency: 1, localCopy: false });
      expect(proxy!.drops).toBe(1);
      expect(result.transfer.resumes).toBeGreaterThanOrEqual(1);
      // nothing fetched twice: every byte of every file arrived once
      const files = Object.keys(f.reference.digest);
      const size = files.reduce((a, rel) => a + statSync(join(f.out, rel)).size, 0);
      expect(result.transfer.bytes).toBe(size);
      await expectLikeReference(f, moveAside(f, 'resumed-download'));
    });

    // One CI run (of five) saw this test hang for its whole timeout (not reproduced since, with or
    // without CPU load): a retry in a fresh output directory keeps CI honest while it is tracked.
    let attempt = 0;
    it('re-attaches a job whose event stream dropped', { retry: 1, timeout: 60_000 }, async () => {
      const out = join(work, 'out', `reattached-${++attempt}`);
      const dropsBefore = proxy!.drops;
      const handle = await viaProxy!.submit(f.spec);
      proxy!.armDrop(0);
      const watch = new JobWatch(handle);
      await handle.download(out);
      await watch.ended;
      expect(proxy!.drops).toBe(dropsBefore + 1);
      expect(handle.state).toBe('done');
      await expectLikeReference(f, out);
    });
  });

  it('runs two jobs at once, both byte-identical', async () => {
    const second = join(work, 'out', 'second');
    const [h1, h2] = await Promise.all([client!.submit(f.spec), client!.submit(f.spec)]);
    expect(h1.id).not.toBe(h2.id);
    await Promise.all([h1.download(f.out), h2.download(second)]);
    await expectLikeReference(f, moveAside(f, 'concurrent'));
    await expectLikeReference(f, second);
  });

  describe('(g) failing jobs', () => {
    let corrupt: string;
    let outside: string;

    beforeAll(() => {
      // a checkpoint cut short, as by an interrupted copy
      corrupt = join(work, 'models', 'corrupt');
      cpSync(f.fx.ft1, corrupt, { recursive: true });
      const file = join(corrupt, 'model.safetensors');
      truncateSync(file, statSync(file).size - 1000);
      // a good checkpoint outside the workers' storage roots
      mkdirSync(join(work, 'elsewhere'));
      outside = join(work, 'elsewhere', 'ft1');
      cpSync(f.fx.ft1, outside, { recursive: true });
    });

    const evalOf = (a: string, out: string): JobSpec => parseJobSpec({ op: 'eval', expr: 'base + 0.5*(a - base)', models: { base: f.fx.base, a }, out });

    it('fails a corrupt input with the error of embedded mode, then serves the next job', async () => {
      const spec = evalOf(corrupt, join(work, 'out', 'corrupt'));
      const embedded = await errorOf(runEmbedded(spec, { threads: 1 }));
      const handle = await client!.submit(spec);
      const clustered = await errorOf(handle.result());
      expect(clustered.code).toBe(embedded.code);
      expect(clustered.message).toBe(embedded.message);
      expect(embedded.kind).toBe('input');
      expect((await handle.status()).status).toBe('failed');

      const next = await client!.submit(f.spec);
      await next.download(f.out);
      await expectLikeReference(f, moveAside(f, 'after-corrupt'));
    });

    it('prints the same error and exit code from the CLI in both modes', () => {
      const args = ['diff', corrupt, f.fx.base, '--out', join(work, 'out', 'cli-corrupt')];
      const embedded = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
      const clustered = spawnSync(process.execPath, [BIN, ...args, '--cluster', cluster!.coordinatorAddress], { encoding: 'utf8', timeout: 60_000 });
      expect(embedded.status).toBe(3);
      expect(embedded.stderr).toMatch(/^weightspace: error: /);
      expect(clustered.status).toBe(embedded.status);
      expect(clustered.stderr).toBe(embedded.stderr);
    });

    it("fails a job whose input a worker may not read with the worker's error, then serves the next job", async () => {
      const handle = await client!.submit(evalOf(outside, join(work, 'out', 'outside')));
      const err = await errorOf(handle.result());
      expect(err.code).toBe('read-failed');
      expect(err.message).toContain("outside this worker's storage roots");
      expect(err.message).toContain(outside);

      const next = await client!.submit(f.spec);
      await next.download(f.out);
      await expectLikeReference(f, moveAside(f, 'after-outside'));
    });
  });
});
