/**
 * The weightspace SDK: submit jobs to a coordinator, follow them, fetch their output.
 *
 *   const client = await WeightspaceClient.connect('127.0.0.1:7070');
 *   const job = await client.submit({ op: 'eval', expr: 'base + 0.5*(ft - base)', models: { base, ft }, out: 'merged' });
 *   for await (const e of job.events) if (e.type === 'progress') console.log(e.bytesWritten);
 *   const result = await job.download('merged');
 *   client.close();
 *
 * Specs are validated here (the same schema as the CLI and embedded mode) and again by
 * the coordinator; errors arrive as WeightspaceError with the coordinator's code and message.
 */
import type { ClusterJobResult, JobStatusReply, WorkerInfoMsg } from '../core/cluster/wire-messages.js';
import { parseJobSpec, type JobSpec } from '../core/job-spec.js';
import { CoordinatorRpc } from './coordinator-rpc.js';
import { JobHandle } from './job-handle.js';

export interface ClientOptions {
  /** how long connect() waits for the coordinator (default 10 s) */
  readonly connectTimeoutMs?: number;
  /** how long a job handle re-attaches, or a download resumes, after the connection drops (default 60 s) */
  readonly reconnectTimeoutMs?: number;
}

export type WorkerInfo = WorkerInfoMsg;
export type { ClusterJobResult, JobStatusReply };

export class WeightspaceClient {
  private constructor(private readonly rpc: CoordinatorRpc, private readonly reconnectTimeoutMs: number) {}

  static async connect(address: string, options: ClientOptions = {}): Promise<WeightspaceClient> {
    const rpc = await CoordinatorRpc.connect(address, options.connectTimeoutMs ?? 10_000);
    return new WeightspaceClient(rpc, options.reconnectTimeoutMs ?? 60_000);
  }

  get address(): string {
    return this.rpc.address;
  }

  /** Submits a job spec; resolves once the coordinator accepted it. */
  async submit(spec: JobSpec | Record<string, unknown>): Promise<JobHandle> {
    const parsed = parseJobSpec(spec);
    return JobHandle.open(this.rpc, this.rpc.submit(JSON.stringify(parsed)), this.reconnectTimeoutMs);
  }

  /** A handle on a job submitted earlier (by id), e.g. after a coordinator restarted elsewhere. */
  async attach(jobId: string): Promise<JobHandle> {
    return JobHandle.open(this.rpc, this.rpc.watch(jobId), this.reconnectTimeoutMs);
  }

  async workers(): Promise<WorkerInfo[]> {
    return [...(await this.rpc.workers()).workers];
  }

  status(jobId: string): Promise<JobStatusReply> {
    return this.rpc.status(jobId);
  }

  close(): void {
    this.rpc.close();
  }
}
