/**
 * A worker node: the Worker gRPC service over a TaskService, registered in NATS with its
 * capacity and a heartbeat. Lifecycle 'starting' → 'ready' → 'draining' → 'stopped':
 * draining (SIGTERM) stops taking tasks, finishes the running ones, deregisters and
 * closes, so a rolling update loses no work.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { workerIdFor } from '../core/cluster/control-plane.js';
import { NatsLink } from '../core/cluster/nats-link.js';
import { WORKER_SERVICE } from '../core/cluster/proto.js';
import { shutdownServer } from '../core/cluster/server-support.js';
import { startWorkerServer, type WorkerServer } from './grpc-worker-server.js';
import { TaskService, type TaskServiceOptions } from './task-service.js';
import { WorkerRegistration } from './worker-registration.js';

export type WorkerNodeState = 'starting' | 'ready' | 'draining' | 'stopped';

export interface WorkerNodeOptions extends TaskServiceOptions {
  readonly host: string;
  readonly port: number;
  /** host:port the coordinator dials (default: host, or 127.0.0.1 for a wildcard host, and the bound port) */
  readonly advertise?: string;
  readonly natsUrl: string;
  readonly logger: Logger;
}

export class WorkerNode {
  private stateValue: WorkerNodeState = 'starting';
  private draining: Promise<void> | undefined;

  private constructor(
    readonly id: string,
    readonly address: string,
    private readonly service: TaskService,
    private readonly server: WorkerServer,
    private readonly link: NatsLink,
    private readonly registration: WorkerRegistration,
    private readonly log: Logger,
  ) {}

  static async start(options: WorkerNodeOptions): Promise<WorkerNode> {
    const log = options.logger;
    // one line per job: a job whose staging this worker cannot see falls back on every task
    const fellBack = new Set<string>();
    const service = await TaskService.create({
      ...options,
      onStagingFallback: (task, staging, reason) => {
        if (fellBack.has(staging.dir)) return;
        if (fellBack.size > 256) fellBack.clear();
        fellBack.add(staging.dir);
        log.warn({ taskId: task.id, layer: task.layer, stagingDir: staging.dir, reason }, 'shared staging not usable here: sending chunks over gRPC');
      },
    });
    let id = '';
    let server: WorkerServer | undefined;
    let link: NatsLink | undefined;
    try {
      server = await startWorkerServer(service, { host: options.host, port: options.port, workerId: () => id });
      const advertise = options.advertise ?? `${options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host}:${server.port}`;
      id = workerIdFor(hostname(), server.port, randomBytes(3).toString('hex'));
      log.info({ address: advertise, port: server.port, workerId: id }, 'worker listening');
      link = await NatsLink.connect(options.natsUrl, {
        name: `weightspace-worker-${id}`,
        onState: (s) => log.info({ nats: s }, `nats ${s}`),
      });
      const registration = await WorkerRegistration.register(
        link,
        { id, address: advertise, threads: options.threads, maxTasks: options.maxTasks },
        (err, failures) => {
          if (failures === 1 || failures % 30 === 0) log.warn({ err: (err as Error).message, failures }, 'heartbeat failed');
        },
      );
      const node = new WorkerNode(id, advertise, service, server, link, registration, log);
      node.stateValue = 'ready';
      log.info({
        workerId: id, address: advertise, threads: options.threads, maxTasks: options.maxTasks, sharedStaging: options.sharedStaging !== false,
      }, 'worker registered');
      return node;
    } catch (err) {
      if (server) server.server.forceShutdown();
      await link?.close();
      await service.close();
      throw err;
    }
  }

  get state(): WorkerNodeState {
    return this.stateValue;
  }

  get port(): number {
    return this.server.port;
  }

  /** Stops taking tasks, finishes running ones, deregisters, closes. Idempotent. */
  drain(): Promise<void> {
    this.draining ??= this.doDrain();
    return this.draining;
  }

  private async doDrain(): Promise<void> {
    this.stateValue = 'draining';
    this.log.info({ running: this.service.running }, 'worker draining');
    this.server.health.setStatus('', 'NOT_SERVING');
    this.server.health.setStatus(WORKER_SERVICE, 'NOT_SERVING');
    const announced = this.registration.setState('draining');
    await this.service.drain();
    await announced;
    await this.registration.deregister();
    await shutdownServer(this.server.server, 2_000);
    await this.service.close();
    await this.link.close();
    this.stateValue = 'stopped';
    this.log.info('worker stopped');
  }
}
