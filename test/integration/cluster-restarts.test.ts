/**
 * The control plane's faults with real processes: (d) the coordinator SIGKILLed and
 * restarted mid-job: the new coordinator resumes the job from its state in NATS and its
 * staging dir, re-running only the unfinished tasks; (e) nats-server SIGKILLed and
 * restarted mid-job (same port, same store, down longer than the heartbeat timeout): the
 * job completes with no task re-run, heartbeats resume, job state reaches NATS, and the
 * cluster serves the next job.
 */
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../client/local-cluster.js';
import { WeightspaceClient } from '../../client/weightspace-client.js';
import { JOBS_BUCKET, type JobRecord } from '../../core/cluster/control-plane.js';
import { removeDir, requireBuild, workDir } from './helpers/cluster-env.js';
import { expectLikeReference, faultFixture, moveAside, readyWorkers, SLOW_WORKERS, type FaultFixture } from './helpers/fault-setup.js';
import { JobWatch } from './helpers/job-watch.js';
import { sleep, waitFor } from './helpers/wait.js';

describe('cluster restarts: coordinator and nats-server', () => {
  let work: string;
  let f: FaultFixture;

  beforeAll(async () => {
    requireBuild();
    work = workDir('restarts');
    f = await faultFixture(work);
  });

  afterAll(() => removeDir(work));

  describe('(d) coordinator killed and restarted mid-job', () => {
    let cluster: LocalCluster | undefined;

    beforeAll(async () => {
      cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, maxTasks: 1, dir: join(work, 'cluster-d'), workerEnv: SLOW_WORKERS });
    });

    afterAll(async () => {
      await cluster?.stop();
    });

    it('resumes the job, re-running only unfinished tasks', async () => {
      const first = await WeightspaceClient.connect(cluster!.coordinatorAddress, { reconnectTimeoutMs: 5_000 });
      await readyWorkers(first, 2);
      const handle = await first.submit(f.spec);
      const watch = new JobWatch(handle);
      await watch.until('three finished tasks', () => watch.finished >= 3);
      const finishedBeforeKill = watch.finished;
      cluster!.coordinator.kill('SIGKILL');
      await cluster!.coordinator.exited;
      first.close();

      await cluster!.startCoordinator();
      const second = await WeightspaceClient.connect(cluster!.coordinatorAddress);
      try {
        const resumed = await second.attach(handle.id);
        expect(resumed.resumed).toBe(true);
        const rewatch = new JobWatch(resumed);
        const result = await resumed.download(f.out);
        await rewatch.ended;
        expect(result.outputs).toHaveLength(1);
        await expectLikeReference(f, moveAside(f, 'resumed'));
        const status = await resumed.status();
        expect(status.status).toBe('done');
        expect(status.resumes).toBe(1);
        // finished tasks were kept (their bytes and results are in the staging dir) ...
        expect(status.tasksKeptOnResume).toBeGreaterThanOrEqual(finishedBeforeKill);
        // ... and only the others ran again (no worker was lost meanwhile)
        expect(status.retries).toBe(0);
        expect(status.attempts).toBe(status.tasks - status.tasksKeptOnResume);
        expect(rewatch.started.size).toBeLessThanOrEqual(status.attempts);
        // the resumed staging got a new token, which the workers found: no chunk over gRPC
        expect(status.streamedBytes).toBe(0);
        expect(status.stagedBytes).toBeGreaterThan(0);
      } finally {
        second.close();
      }
    });
  });

  describe('(e) nats-server restarted mid-job', () => {
    let cluster: LocalCluster | undefined;
    let client: WeightspaceClient | undefined;

    beforeAll(async () => {
      cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, maxTasks: 1, dir: join(work, 'cluster-e'), workerEnv: SLOW_WORKERS });
      client = await WeightspaceClient.connect(cluster.coordinatorAddress);
    });

    afterAll(async () => {
      client?.close();
      await cluster?.stop();
    });

    it('recovers: the job completes, heartbeats resume, state reaches NATS, the next job runs', async () => {
      await readyWorkers(client!, 2);
      const handle = await client!.submit(f.spec);
      const watch = new JobWatch(handle);
      await watch.until('two finished tasks', () => watch.finished >= 2);
      cluster!.nats.kill('SIGKILL');
      await cluster!.nats.exited;
      // down for longer than the heartbeat timeout: workers must not be taken for lost
      await sleep(4_000);
      await cluster!.startNats();

      await handle.download(f.out);
      await watch.ended;
      await expectLikeReference(f, moveAside(f, 'nats-restart'));
      const status = await handle.status();
      expect(status.status).toBe('done');
      expect(status.retries).toBe(0);
      expect(status.stagedBytes).toBe(status.bytesWritten);

      // heartbeats resumed: both workers ready with fresh beats
      await waitFor('fresh heartbeats from both workers', async () => {
        const ws = await client!.workers();
        return ws.filter((w) => w.state === 'ready' && w.heartbeatAgeMs < 2_000).length === 2 ? true : undefined;
      });

      // the job's final state reached NATS (written behind while it was away)
      const nc = await connect({ servers: cluster!.natsUrl });
      try {
        const kv = await new Kvm(nc).open(JOBS_BUCKET);
        const rec = await waitFor('the job record in NATS', async () => {
          const e = await kv.get(handle.id);
          const r = e?.json<JobRecord>();
          return r?.state === 'done' ? r : undefined;
        });
        expect(rec.tasksDone).toBe(watch.tasks);
      } finally {
        await nc.close();
      }

      // and the cluster serves the next job
      const next = await client!.submit(f.spec);
      await next.download(f.out);
      await expectLikeReference(f, moveAside(f, 'after-nats-restart'));
    });
  });
});
