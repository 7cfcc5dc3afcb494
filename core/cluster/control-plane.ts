/**
 * The control plane's names and records: what coordinator and workers keep in NATS.
 * JetStream KV buckets hold the worker registry and job state; a subject per job carries
 * its events for anyone watching. nats-server 2.9 has no per-key TTL, so liveness is a
 * heartbeat: each worker rewrites its record every second and the coordinator counts a
 * record whose revision has not moved for HEARTBEAT_TIMEOUT_MS as lost.
 */

export const WORKERS_BUCKET = 'weightspace-workers';
export const JOBS_BUCKET = 'weightspace-jobs';

export const HEARTBEAT_INTERVAL_MS = 1_000;
export const HEARTBEAT_TIMEOUT_MS = 3_000;

/** Subject of a job's events (JSON of the client's JobEvent shapes), for observers. */
export function jobEventsSubject(jobId: string): string {
  return `weightspace.jobs.${jobId}.events`;
}

/** Worker lifecycle as the registry shows it. */
export type WorkerState = 'ready' | 'draining';

export interface WorkerRecord {
  readonly id: string;
  /** host:port the coordinator dials */
  readonly address: string;
  readonly threads: number;
  /** tasks it runs at once */
  readonly maxTasks: number;
  readonly state: WorkerState;
  /** heartbeat counter (the revision moves anyway; this makes a beat visible in the record) */
  readonly beat: number;
  readonly version: string;
}

/** Job lifecycle. */
export type JobState = 'planning' | 'running' | 'finalizing' | 'done' | 'failed' | 'cancelled';

export const TERMINAL_JOB_STATES: readonly JobState[] = ['done', 'failed', 'cancelled'];

export interface JobRecord {
  readonly id: string;
  /** the job spec as submitted (validated) */
  readonly spec: unknown;
  readonly state: JobState;
  readonly op: string;
  readonly tasks: number;
  readonly tasksDone: number;
  /** sha256 of the plan: a resumed job re-plans and keeps its staging only if this matches */
  readonly planDigest?: string;
  /** the output assembler's temporary directory in the coordinator's data dir */
  readonly stagingTmp?: string;
  readonly resumes: number;
  readonly tasksKeptOnResume: number;
  readonly retries: number;
  readonly error?: { readonly code: string; readonly message: string };
  /** ms since the epoch: lets a coordinator prune old finished jobs (never in any output) */
  readonly updatedAt: number;
}

/** A worker id that is also a valid KV key. */
export function workerIdFor(host: string, port: number, nonce: string): string {
  return `${host.replace(/[^A-Za-z0-9_-]/g, '_')}-${port}-${nonce}`;
}
