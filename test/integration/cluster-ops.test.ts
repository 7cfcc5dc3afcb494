/**
 * (a) Every operation registered in coordinator/ops/registry.ts gives byte-identical output
 * (every file: shards, index, weightspace.json, copied files) and the same report in
 * cluster mode, on 2 and on 3 worker processes, as in embedded mode; and the CLI's
 * --cluster writes what embedded mode writes. On 2 workers every byte takes the shared
 * staging path (workers write into the coordinator's staging, the client copies); the
 * third worker has --no-shared-staging and the client fetches over gRPC, so both data
 * paths carry every operation.
 */
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../client/local-cluster.js';
import { WeightspaceClient } from '../../client/weightspace-client.js';
import { OPS } from '../../coordinator/ops/registry.js';
import type { JobSpec } from '../../core/job-spec.js';
import { makeFamily, tensorNames, treeDigest, type Family } from './helpers/checkpoints.js';
import { removeDir, requireBuild, runClusterAside, runEmbeddedAside, workDir } from './helpers/cluster-env.js';
import { waitFor } from './helpers/wait.js';
import { OP_SPECS } from './op-specs.js';

const BIN = fileURLToPath(new URL('../../bin/weightspace.js', import.meta.url));

describe('cluster mode vs embedded mode, every operation', () => {
  let work: string;
  let fx: Family;
  let cluster: LocalCluster | undefined;
  let client: WeightspaceClient | undefined;
  const specs: { op: string; spec: JobSpec; embedded: { dir: string | undefined; digest: Record<string, string>; report: unknown; tensors: string[] } }[] = [];

  beforeAll(async () => {
    requireBuild();
    work = workDir('ops');
    fx = await makeFamily(join(work, 'models'));
    // maxTasks 1: the first tasks of a job go to distinct workers, so every worker is used
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, maxTasks: 1, dir: join(work, 'cluster') });
    client = await WeightspaceClient.connect(cluster.coordinatorAddress);
  });

  afterAll(async () => {
    client?.close();
    await cluster?.stop();
    removeDir(work);
  });

  it('has a spec builder for every registered operation', () => {
    const missing = Object.keys(OPS).filter((op) => !(op in OP_SPECS));
    expect(missing, `operations without a spec builder in test/integration/op-specs.ts: ${missing.join(', ')}`).toEqual([]);
  });

  it('runs every operation embedded (the reference)', async () => {
    for (const op of Object.keys(OPS)) {
      const build = OP_SPECS[op];
      if (!build) throw new Error(`operation '${op}' has no spec builder in test/integration/op-specs.ts`);
      for (const spec of build(fx, join(work, 'out', op))) {
        const { dir, result } = await runEmbeddedAside(spec);
        const digest = dir ? treeDigest(dir) : {};
        specs.push({ op, spec, embedded: { dir, digest, report: result.report, tensors: dir ? await tensorNames(dir) : [] } });
      }
    }
    expect(specs.length).toBeGreaterThanOrEqual(Object.keys(OPS).length);
  });

  for (const workers of [2, 3]) {
    it(`gives the same bytes on ${workers} workers`, async () => {
      expect(specs.length).toBeGreaterThan(0);
      while (cluster!.workers.length < workers) await cluster!.startWorker({ sharedStaging: false });
      await waitFor(`${workers} ready workers`, async () => {
        const seen = await client!.workers();
        if (seen.filter((w) => w.state === 'ready').length === workers) return true;
        // what the coordinator sees goes into the timeout's message
        throw new Error(`the coordinator sees ${seen.map((w) => `${w.id} ${w.state} (beat ${w.heartbeatAgeMs} ms ago)`).join(', ') || 'no workers'}`);
      });
      const shared = workers === 2;
      for (const s of specs) {
        const { dir, result, watch, jobId } = await runClusterAside(client!, s.spec, `cluster${workers}`, { localCopy: shared });
        const status = await client!.status(jobId);
        if (shared) expect(status.streamedBytes, `${s.op}: bytes streamed with shared staging`).toBe(0);
        else if (dir && watch.tasks >= workers) expect(status.streamedBytes, `${s.op}: bytes streamed by the worker without shared staging`).toBeGreaterThan(0);
        // an operation writes a checkpoint, or a report, or both: whatever it gives, it gives the same
        expect(dir !== undefined || s.embedded.report !== undefined, `${s.op}: gives something`).toBe(true);
        expect(dir === undefined, `${s.op}: output on both sides`).toBe(s.embedded.dir === undefined);
        if (dir) {
          const digest = treeDigest(dir);
          expect(Object.keys(digest).length, `${s.op}: files`).toBeGreaterThan(0);
          expect(digest, `${s.op} on ${workers} workers`).toEqual(s.embedded.digest);
          expect(await tensorNames(dir), `${s.op}: tensors`).toEqual(s.embedded.tensors);
        }
        expect(result.report, `${s.op}: report`).toEqual(s.embedded.report);
        expect(watch.finished, `${s.op}: tasks finished`).toBe(watch.tasks);
        expect(watch.workersUsed().size, `${s.op}: workers used`).toBe(Math.min(workers, watch.tasks));
      }
    });
  }

  it("writes with the CLI's --cluster what embedded mode writes", () => {
    const s = specs.find((x) => x.op === 'eval');
    expect(s).toBeDefined();
    const spec = s!.spec as Extract<JobSpec, { op: 'eval' }>;
    const models = Object.entries(spec.models).flatMap(([k, v]) => ['--model', `${k}=${v}`]);
    const r = spawnSync(process.execPath, [BIN, 'eval', spec.expr, ...models, '--out', spec.out, '--cluster', cluster!.coordinatorAddress], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`wrote ${spec.out}`);
    expect(treeDigest(spec.out)).toEqual(s!.embedded.digest);
    rmSync(spec.out, { recursive: true, force: true });
  });

  it("'cluster up' starts a working cluster and stops it all on SIGTERM", async () => {
    const s = specs.find((x) => x.op === 'eval')!;
    const spec = s.spec as Extract<JobSpec, { op: 'eval' }>;
    const up = spawn(process.execPath, [BIN, 'cluster', 'up', '--workers', '2', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const info = await new Promise<{ coordinator: string; workers: string[] }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('cluster up did not report within 30 s')), 30_000);
        let buf = '';
        up.stdout.on('data', (d: Buffer) => {
          buf += d.toString('utf8');
          const line = buf.split('\n').find((l) => l.includes('"cluster-up"'));
          if (line) {
            clearTimeout(timer);
            resolve(JSON.parse(line) as { coordinator: string; workers: string[] });
          }
        });
        up.once('exit', (code) => reject(new Error(`cluster up exited with ${code}`)));
      });
      expect(info.workers).toHaveLength(2);
      const models = Object.entries(spec.models).flatMap(([k, v]) => ['--model', `${k}=${v}`]);
      const r = spawnSync(process.execPath, [BIN, 'eval', spec.expr, ...models, '--out', spec.out, '--cluster', info.coordinator], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(treeDigest(spec.out)).toEqual(s.embedded.digest);
      rmSync(spec.out, { recursive: true, force: true });

      const exited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
      up.kill('SIGTERM');
      expect(await exited).toBe(0);
      // nothing listens any more where the coordinator and the workers were
      for (const address of [info.coordinator, ...info.workers]) {
        const port = Number(address.slice(address.lastIndexOf(':') + 1));
        const refused = await new Promise<boolean>((resolve) => {
          const sock = connect(port, '127.0.0.1');
          sock.once('connect', () => { sock.destroy(); resolve(false); });
          sock.once('error', () => resolve(true));
        });
        expect(refused, `${address} still listening`).toBe(true);
      }
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
    }
  });
});
