/**
 * Faults with real processes: (b) SIGKILL of a worker at several points of a job — early,
 * in the middle, near the end: the job completes, byte-identical to embedded mode, no
 * tensor missing or duplicated, the lost tasks re-run elsewhere (the workers write into
 * the shared staging, so a killed one leaves half-written ranges there, which the re-run
 * writes again); (c) a worker that joins in the middle of a job receives work.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../client/local-cluster.js';
import { WeightspaceClient } from '../../client/weightspace-client.js';
import { WeightspaceError } from '../../core/errors.js';
import { removeDir, requireBuild, workDir } from './helpers/cluster-env.js';
import { expectLikeReference, faultFixture, moveAside, processOf, readyWorkers, SLOW_WORKERS, type FaultFixture } from './helpers/fault-setup.js';
import { DropProxy } from './helpers/drop-proxy.js';
import { JobWatch } from './helpers/job-watch.js';
import { waitFor } from './helpers/wait.js';
import { workerCapacity } from './helpers/worker-capacity.js';

describe('cluster faults: workers killed and joining mid-job', () => {
  let work: string;
  let f: FaultFixture;

  beforeAll(async () => {
    requireBuild();
    work = workDir('faults');
    f = await faultFixture(work);
  });

  afterAll(() => removeDir(work));

  describe('(b) a worker SIGKILLed mid-job', () => {
    let cluster: LocalCluster | undefined;
    let client: WeightspaceClient | undefined;

    beforeAll(async () => {
      cluster = await LocalCluster.start({ workers: 3, threadsPerWorker: 1, maxTasks: 1, dir: join(work, 'cluster-b'), workerEnv: SLOW_WORKERS });
      client = await WeightspaceClient.connect(cluster.coordinatorAddress);
    });

    afterAll(async () => {
      client?.close();
      await cluster?.stop();
    });

    const points: { name: string; when: (w: JobWatch) => boolean }[] = [
      { name: 'as the first tasks start', when: (w) => w.started.size >= 1 },
      { name: 'with half the tasks done', when: (w) => w.tasks > 0 && w.finished >= Math.floor(w.tasks / 2) },
      { name: 'with all but two tasks done', when: (w) => w.tasks > 0 && w.finished >= w.tasks - 2 },
    ];

    // tasks the kills took from their workers and others finished, over the three points
    let reruns = 0;

    for (const [i, point] of points.entries()) {
      it(`completes byte-identical when the kill comes ${point.name}`, async () => {
        await readyWorkers(client!, 3);
        const handle = await client!.submit(f.spec);
        const watch = new JobWatch(handle);
        await watch.until(point.name, () => point.when(watch));
        // the victim: a worker with a task in flight right now; its process is found first, so
        // that the tasks it runs are read just before the kill (a task may finish meanwhile)
        let victim = '';
        let lostTasks: string[] = [];
        let proc: Awaited<ReturnType<typeof processOf>> | undefined;
        while (lostTasks.length === 0) {
          await watch.until('a worker with a running task', () => {
            victim = [...watch.workersUsed()].find((id) => watch.runningOn(id).length > 0) ?? '';
            return victim !== '';
          });
          proc = await processOf(cluster!, client!, victim);
          lostTasks = watch.runningOn(victim);
        }
        proc!.kill('SIGKILL');
        expect(await proc!.exited).not.toBe(0);

        const result = await handle.download(f.out);
        await watch.ended;
        expect(result.outputs).toHaveLength(1);
        await expectLikeReference(f, moveAside(f, `kill${i}`));
        // the victim's tasks were finished by others, but for one whose end the victim reported in
        // the instant between the read above and the kill; the coordinator counted the re-runs
        const rerun = lostTasks.filter((t) => watch.finishedBy.get(t) !== victim);
        reruns += rerun.length;
        for (const t of lostTasks) expect(watch.finishedBy.get(t)).toBeDefined();
        const status = await handle.status();
        expect(status.status).toBe('done');
        expect(status.retries).toBeGreaterThanOrEqual(rerun.length);
        expect(status.tasksDone).toBe(watch.tasks);
        // every byte went through the shared staging, the victim's included
        expect(status.stagedBytes).toBe(status.bytesWritten);
        expect(status.streamedBytes).toBe(0);
        // back to three workers for the next point
        await cluster!.startWorker();
      });
    }

    it('had tasks to re-run: the kills took running tasks from their workers', () => {
      expect(reruns).toBeGreaterThan(0);
    });

    it('drains a worker on SIGTERM: its running tasks finish there, it deregisters and exits 0', async () => {
      await readyWorkers(client!, 3);
      const handle = await client!.submit(f.spec);
      const watch = new JobWatch(handle);
      let target = '';
      await watch.until('a worker with a running task, two tasks done', () => {
        target = watch.finished >= 2 ? [...watch.workersUsed()].find((id) => watch.runningOn(id).length > 0) ?? '' : '';
        return target !== '';
      });
      const inFlight = watch.runningOn(target);
      const proc = await processOf(cluster!, client!, target);
      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(0);
      // the job's events reach this watch after the worker has gone: wait for those tasks' ends
      await waitFor('the drained worker\'s tasks to be reported finished', () => (inFlight.every((t) => watch.finishedBy.has(t)) ? true : undefined));
      for (const t of inFlight) expect(watch.finishedBy.get(t)).toBe(target);
      await waitFor('the drained worker to leave the registry', async () => ((await client!.workers()).some((w) => w.id === target) ? undefined : true));

      await handle.download(f.out);
      await watch.ended;
      await expectLikeReference(f, moveAside(f, 'drained'));
      expect((await handle.status()).status).toBe('done');
    });
  });

  describe('(c) a worker joining mid-job', () => {
    let cluster: LocalCluster | undefined;
    let client: WeightspaceClient | undefined;

    beforeAll(async () => {
      cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, maxTasks: 1, dir: join(work, 'cluster-c'), workerEnv: SLOW_WORKERS });
      client = await WeightspaceClient.connect(cluster.coordinatorAddress);
    });

    afterAll(async () => {
      client?.close();
      await cluster?.stop();
    });

    it('receives tasks of the running job', async () => {
      await readyWorkers(client!, 1);
      const handle = await client!.submit(f.spec);
      const watch = new JobWatch(handle);
      await watch.until('the first task to finish', () => watch.finished >= 1);
      const joined = await cluster!.startWorker();
      const id = await waitFor('the new worker in the registry', async () => (await client!.workers()).find((w) => w.address === joined.address)?.id);
      const pendingWhenJoined = watch.tasks - watch.finished;
      expect(pendingWhenJoined).toBeGreaterThan(2);

      await handle.download(f.out);
      await watch.ended;
      await expectLikeReference(f, moveAside(f, 'joined'));
      const byNew = [...watch.finishedBy.values()].filter((w) => w === id).length;
      expect(byNew).toBeGreaterThanOrEqual(1);
      expect(watch.workersUsed().size).toBe(2);
    });

    it("fetches finished tasks' bytes while the job runs, through a dropped connection", async () => {
      await readyWorkers(client!, 2);
      const proxy = await DropProxy.start(cluster!.coordinatorAddress);
      const viaProxy = await WeightspaceClient.connect(proxy.address, { reconnectTimeoutMs: 20_000 });
      try {
        const handle = await viaProxy.submit(f.spec);
        const watch = new JobWatch(handle);
        // over gRPC: a local copy (same host) would not cross the proxy
        const downloading = handle.download(f.out, { localCopy: false });
        await watch.until('two finished tasks', () => watch.finished >= 2);
        proxy.armDrop(64 << 10);
        const result = await downloading;
        await watch.ended;
        expect(proxy.drops).toBe(1);
        expect(result.transfer.early).toBeGreaterThan(0);
        const total = Object.keys(f.reference.digest).reduce((a, rel) => a + statSync(join(f.out, rel)).size, 0);
        expect(result.transfer.bytes).toBe(total);
        await expectLikeReference(f, moveAside(f, 'early'));
      } finally {
        viaProxy.close();
        await proxy.close();
      }
    });

    it('cancels a running job cleanly: workers stop, staging is removed, the next job runs', async () => {
      await readyWorkers(client!, 2);
      const handle = await client!.submit(f.spec);
      const watch = new JobWatch(handle);
      await watch.until('a task to finish', () => watch.finished >= 1);
      await handle.cancel();
      const err = await handle.result().then(() => undefined, (e: unknown) => e as WeightspaceError);
      expect(err).toBeInstanceOf(WeightspaceError);
      expect(err!.code).toBe('cancelled');
      expect(err!.message).toBe('job cancelled');
      await watch.ended;
      expect((await handle.status()).status).toBe('cancelled');
      expect(existsSync(join(cluster!.dataDir, 'jobs', handle.id))).toBe(false);
      expect(existsSync(f.out)).toBe(false);
      // the worker processes themselves stopped the tasks (the calls were cancelled)
      for (const w of cluster!.workers.filter((p) => p.state !== 'exited')) {
        await waitFor(`worker ${w.address} to stop its tasks`, async () => ((await workerCapacity(w.address)).runningTasks === 0 ? true : undefined), 5_000);
      }

      const next = await client!.submit(f.spec);
      await next.download(f.out);
      await expectLikeReference(f, moveAside(f, 'after-cancel'));
    });
  });
});
