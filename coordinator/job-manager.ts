/**
 * The coordinator's jobs: submits, finds, cancels and reports them; on start, reloads
 * every job from NATS, resumes the unfinished ones and keeps serving the finished ones'
 * output; prunes the oldest finished jobs beyond `retainJobs`.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { TERMINAL_JOB_STATES } from '../core/cluster/control-plane.js';
import type { JobEventMsg, JobStatusReply, OutputFileMsg } from '../core/cluster/wire-messages.js';
import { WeightspaceError, q } from '../core/errors.js';
import { parseJobSpec } from '../core/job-spec.js';
import type { JobStore } from './job-store.js';
import { JobRun, type JobRunDeps } from './job-run.js';
import type { TaskScheduler } from './task-scheduler.js';

export interface JobManagerOptions {
  readonly store: JobStore;
  readonly scheduler: TaskScheduler;
  readonly dataDir: string;
  readonly log: Logger;
  readonly publish: (e: JobEventMsg) => void;
  /** finished jobs whose output is kept for fetching (default 32) */
  readonly retainJobs?: number;
}

export class JobManager {
  private readonly runs = new Map<string, JobRun>();

  private constructor(private readonly options: JobManagerOptions) {}

  /** Reloads every job from NATS; unfinished ones resume in the background. */
  static async open(options: JobManagerOptions): Promise<JobManager> {
    const m = new JobManager(options);
    const records = await options.store.list();
    for (const rec of records.sort((a, b) => a.updatedAt - b.updatedAt)) {
      let spec;
      try {
        spec = parseJobSpec(rec.spec, `job ${q(rec.id)}`);
      } catch (err) {
        options.log.warn({ jobId: rec.id, err: (err as Error).message }, 'job record with an invalid spec dropped');
        options.store.delete(rec.id);
        continue;
      }
      const run = JobRun.fromRecord(rec, spec, m.deps());
      m.runs.set(rec.id, run);
      if (!TERMINAL_JOB_STATES.includes(rec.state)) void run.resume();
    }
    m.prune();
    return m;
  }

  /** Validates a spec (JSON text) and starts it. */
  submit(specJson: string): JobRun {
    let value: unknown;
    try {
      value = JSON.parse(specJson);
    } catch (err) {
      throw new WeightspaceError('invalid-spec', `job spec: not valid JSON: ${(err as Error).message}`);
    }
    const spec = parseJobSpec(value);
    const run = JobRun.create(randomUUID(), spec, this.deps());
    this.runs.set(run.id, run);
    void run.start();
    this.prune();
    return run;
  }

  get(jobId: string): JobRun {
    const run = this.runs.get(jobId);
    if (!run) throw new WeightspaceError('job-not-found', `job ${q(jobId)} not found on this coordinator`);
    return run;
  }

  cancel(jobId: string): string {
    const run = this.get(jobId);
    run.cancel();
    return run.state;
  }

  status(jobId: string): JobStatusReply {
    return this.get(jobId).status();
  }

  outputFile(jobId: string, output: number, file: string): OutputFileMsg & { paths: string[] } {
    return this.get(jobId).outputFile(output, file);
  }

  /** The coordinator is stopping: unfinished jobs keep their state for the next one. */
  suspendAll(): void {
    for (const run of this.runs.values()) run.suspend();
  }

  private deps(): JobRunDeps {
    const o = this.options;
    return { store: o.store, scheduler: o.scheduler, dataDir: o.dataDir, log: o.log, publish: o.publish };
  }

  private prune(): void {
    const keep = this.options.retainJobs ?? 32;
    const finished = [...this.runs.values()].filter((r) => TERMINAL_JOB_STATES.includes(r.state)).sort((a, b) => a.updatedAt - b.updatedAt);
    for (const run of finished.slice(0, Math.max(0, finished.length - keep))) {
      run.removeFiles();
      this.options.store.delete(run.id);
      this.runs.delete(run.id);
    }
  }
}
