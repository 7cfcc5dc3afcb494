/**
 * A coordinator node: NATS control plane (worker registry, job state, event subject),
 * the scheduler, the job manager and the Coordinator gRPC service, wired together.
 * Lifecycle 'starting' → 'serving' → 'stopping' → 'stopped'. Stopping (SIGTERM) keeps
 * unfinished jobs' state in NATS and their staging on disk: the next coordinator resumes
 * them, exactly as after a crash.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { jobEventsSubject } from '../core/cluster/control-plane.js';
import { NatsLink } from '../core/cluster/nats-link.js';
import { COORDINATOR_SERVICE } from '../core/cluster/proto.js';
import { shutdownServer } from '../core/cluster/server-support.js';
import type { JobEventMsg } from '../core/cluster/wire-messages.js';
import { startCoordinatorServer, type CoordinatorServer } from './grpc-coordinator-server.js';
import { JobManager } from './job-manager.js';
import { JobStore } from './job-store.js';
import { TaskScheduler } from './task-scheduler.js';
import { WorkerChannels } from './worker-channels.js';
import { WorkerRegistry } from './worker-registry.js';

export type CoordinatorNodeState = 'starting' | 'serving' | 'stopping' | 'stopped';

export interface CoordinatorNodeOptions {
  readonly host: string;
  readonly port: number;
  readonly natsUrl: string;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly retainJobs?: number;
}

/** Event JSON on the NATS subject: the event's own fields, without bulky result bytes. */
function publicEvent(e: JobEventMsg): string {
  if (e.event === 'done') return JSON.stringify({ jobId: e.jobId, event: 'done', files: e.done.files.length });
  const { jobId, event } = e;
  return JSON.stringify({ jobId, event, ...(e as unknown as Record<string, unknown>)[event] as object });
}

export class CoordinatorNode {
  private stateValue: CoordinatorNodeState = 'starting';
  private stopping: Promise<void> | undefined;

  private constructor(
    private readonly link: NatsLink,
    private readonly registry: WorkerRegistry,
    private readonly scheduler: TaskScheduler,
    private readonly channels: WorkerChannels,
    private readonly store: JobStore,
    private readonly jobs: JobManager,
    private readonly server: CoordinatorServer,
    private readonly log: Logger,
  ) {}

  static async start(options: CoordinatorNodeOptions): Promise<CoordinatorNode> {
    const log = options.logger;
    const dataDir = resolve(options.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const link = await NatsLink.connect(options.natsUrl, { name: 'weightspace-coordinator', onState: (s) => log.info({ nats: s }, `nats ${s}`) });
    // the registry reports to the scheduler, which places tasks on the registry's workers
    const late: { scheduler?: TaskScheduler } = {};
    const channels = new WorkerChannels();
    const registry = await WorkerRegistry.open(link, { onChange: () => late.scheduler?.pump(), onLost: (id) => late.scheduler?.workerLost(id) }, log);
    const scheduler = new TaskScheduler(registry, channels, log);
    late.scheduler = scheduler;
    const store = await JobStore.open(link, log);
    const publish = (e: JobEventMsg): void => {
      if (link.state !== 'connected') return;
      try {
        link.nc.publish(jobEventsSubject(e.jobId), publicEvent(e));
      } catch {
        // observers only: never in the way of a job
      }
    };
    const jobs = await JobManager.open({
      store, scheduler, dataDir, log, publish, ...(options.retainJobs !== undefined ? { retainJobs: options.retainJobs } : {}),
    });
    const server = await startCoordinatorServer(jobs, registry, { host: options.host, port: options.port });
    const node = new CoordinatorNode(link, registry, scheduler, channels, store, jobs, server, log);
    node.stateValue = 'serving';
    log.info({ address: `${options.host}:${server.port}`, port: server.port, dataDir }, 'coordinator listening');
    return node;
  }

  get state(): CoordinatorNodeState {
    return this.stateValue;
  }

  get port(): number {
    return this.server.port;
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    this.stateValue = 'stopping';
    this.server.health.setStatus('', 'NOT_SERVING');
    this.server.health.setStatus(COORDINATOR_SERVICE, 'NOT_SERVING');
    this.jobs.suspendAll();
    this.scheduler.close();
    await shutdownServer(this.server.server, 1_000);
    this.registry.close();
    this.channels.close();
    await this.store.settle(3_000);
    this.store.close();
    await this.link.close();
    this.stateValue = 'stopped';
    this.log.info('coordinator stopped');
  }
}
