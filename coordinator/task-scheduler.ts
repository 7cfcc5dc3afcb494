/**
 * Places layer tasks on workers. One queue for every running job (first submitted, first
 * served; a job's tasks in plan order); each task goes to the eligible worker with the
 * least outstanding bytes per thread (task.inputBytes + task.outputBytes), and the queue
 * is pumped whenever a slot frees or a worker joins, so a worker that joins mid-job gets
 * work at once. A task whose worker is lost (stream error, missed heartbeats) goes back
 * to the front of the queue and runs elsewhere; tasks are idempotent, so a re-run writes
 * the same bytes at the same offsets. A coded error from a worker (bad input) fails the
 * job instead: running it elsewhere would fail the same way.
 */
import type * as grpc from '@grpc/grpc-js';
import { deserialize } from 'node:v8';
import type { Logger } from 'pino';
import { codedErrorOf, isTransportError } from '../core/cluster/grpc-errors.js';
import type { ExecuteTaskRequest, TaskChunkMsg, TaskDoneMsg, TaskMessageMsg, TaskProgressMsg, TaskWrittenMsg } from '../core/cluster/wire-messages.js';
import { WeightspaceError, q, toWeightspaceError } from '../core/errors.js';
import type { LayerTask } from '../core/plan.js';
import type { WorkerChannels } from './worker-channels.js';
import type { WorkerRegistry, WorkerView } from './worker-registry.js';

/** attempts of one task before the job fails with 'worker-lost' */
export const MAX_ATTEMPTS = 8;
/** how long a worker whose stream broke gets no new tasks */
const QUARANTINE_MS = 3_500;

/** What the scheduler reports to (a running job). Called only for a task's current attempt. */
export interface TaskOwner {
  readonly id: string;
  /** the shared staging a task's request offers (nothing: the worker sends chunks) */
  readonly staging: Pick<ExecuteTaskRequest, 'stagingDir' | 'stagingToken' | 'stagingSubdirs'>;
  onTaskStarted(task: LayerTask, workerId: string, attempt: number): void;
  /** throws 'checksum-mismatch' for a damaged chunk (the attempt is retried) */
  onChunk(task: LayerTask, chunk: TaskChunkMsg): void;
  /** bytes the worker wrote into the shared staging itself (checked when the task is done) */
  onWritten(task: LayerTask, note: TaskWrittenMsg): void;
  onTaskProgress(task: LayerTask, progress: TaskProgressMsg): void;
  /** throws 'checksum-mismatch' or 'cluster-protocol' when the output is not all there (the attempt is retried) */
  onTaskDone(task: LayerTask, workerId: string, attempt: number, results: ReadonlyMap<number, unknown>, done: TaskDoneMsg): Promise<void>;
  /** the attempt is void: forget its bytes (it will run again) */
  onTaskLost(task: LayerTask, workerId: string, reason: string): void;
  fail(err: WeightspaceError): void;
  warn(message: string): void;
}

interface Queued {
  readonly owner: TaskOwner;
  readonly task: LayerTask;
  attempts: number;
}

interface Attempt {
  readonly queued: Queued;
  readonly number: number;
  readonly worker: WorkerView;
  readonly bytes: number;
  call: grpc.ClientReadableStream<TaskMessageMsg> | undefined;
  abandoned: 'lost' | 'cancelled' | undefined;
}

export class TaskScheduler {
  private readonly queue: Queued[] = [];
  private readonly attempts = new Set<Attempt>();
  private readonly warnedIdle = new Set<string>();
  private closed = false;

  constructor(private readonly registry: WorkerRegistry, private readonly channels: WorkerChannels, private readonly log: Logger) {}

  enqueue(owner: TaskOwner, tasks: readonly LayerTask[]): void {
    for (const task of tasks) this.queue.push({ owner, task, attempts: 0 });
    this.pump();
  }

  /** Drops a job's queued tasks and cancels its running attempts (job failed, cancelled, or coordinator stopping). */
  cancel(owner: TaskOwner): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.owner === owner) this.queue.splice(i, 1);
    for (const a of this.attempts) {
      if (a.queued.owner === owner) this.abandon(a, 'cancelled');
    }
    this.warnedIdle.delete(owner.id);
  }

  /** A worker missed its heartbeats or left: its attempts run again elsewhere. */
  workerLost(workerId: string): void {
    for (const a of this.attempts) {
      if (a.worker.id === workerId) this.abandon(a, 'lost');
    }
  }

  running(owner: TaskOwner): number {
    let n = 0;
    for (const a of this.attempts) if (a.queued.owner === owner) n++;
    return n;
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    for (const a of this.attempts) this.abandon(a, 'cancelled');
  }

  /** Starts as many queued tasks as eligible workers take. */
  pump(): void {
    if (this.closed) return;
    while (this.queue.length > 0) {
      const workers = this.registry.eligible();
      if (workers.length === 0) break;
      const queued = this.queue.shift()!;
      const bytes = queued.task.inputBytes + queued.task.outputBytes;
      let best = workers[0]!;
      let bestScore = Infinity;
      for (const w of workers) {
        const score = (w.load + bytes) / Math.max(1, w.record.threads);
        if (score < bestScore || (score === bestScore && w.id < best.id)) {
          best = w;
          bestScore = score;
        }
      }
      this.start(queued, best, bytes);
    }
    if (this.queue.length > 0 && this.registry.liveCount() === 0) {
      for (const q2 of this.queue) {
        if (this.warnedIdle.has(q2.owner.id)) continue;
        this.warnedIdle.add(q2.owner.id);
        q2.owner.warn('no live workers: tasks wait until a worker registers');
      }
    }
  }

  private start(queued: Queued, worker: WorkerView, bytes: number): void {
    queued.attempts++;
    const attempt: Attempt = { queued, number: queued.attempts, worker, bytes, call: undefined, abandoned: undefined };
    worker.running++;
    worker.load += bytes;
    this.attempts.add(attempt);
    const { owner, task } = queued;
    this.log.debug({ jobId: owner.id, taskId: task.id, layer: task.layer, workerId: worker.id, attempt: attempt.number }, 'task assigned');
    owner.onTaskStarted(task, worker.id, attempt.number);
    attempt.call = this.channels.executeTask(worker.record.address, { jobId: owner.id, taskJson: JSON.stringify(task), attempt: attempt.number, ...owner.staging });
    void this.follow(attempt, attempt.call);
  }

  private abandon(a: Attempt, why: 'lost' | 'cancelled'): void {
    if (a.abandoned) return;
    a.abandoned = why;
    a.call?.cancel();
  }

  private async follow(attempt: Attempt, call: grpc.ClientReadableStream<TaskMessageMsg>): Promise<void> {
    const { owner, task } = attempt.queued;
    const results = new Map<number, unknown>();
    let done: TaskDoneMsg | undefined;
    let error: unknown;
    try {
      for await (const msg of call as AsyncIterable<TaskMessageMsg>) {
        if (attempt.abandoned) break;
        if (msg.message === 'chunk') owner.onChunk(task, msg.chunk);
        else if (msg.message === 'written') owner.onWritten(task, msg.written);
        else if (msg.message === 'result') results.set(msg.result.jobId, deserialize(msg.result.valueV8));
        else if (msg.message === 'progress') owner.onTaskProgress(task, msg.progress);
        else if (msg.message === 'done') done = msg.done;
      }
      if (!done && !attempt.abandoned) throw new WeightspaceError('worker-lost', `worker ${q(attempt.worker.id)} ended task ${q(task.layer)} without finishing it`);
    } catch (err) {
      error = err;
    } finally {
      if (!done) call.cancel();
      this.attempts.delete(attempt);
      attempt.worker.running--;
      attempt.worker.load -= attempt.bytes;
    }

    if (attempt.abandoned === 'cancelled' || this.closed) {
      // the job is over (or the coordinator is stopping): nothing to report
    } else if (done && !attempt.abandoned) {
      // the worker's slot is free now, while its output is still being checked
      this.pump();
      try {
        await owner.onTaskDone(task, attempt.worker.id, attempt.number, results, done);
        attempt.worker.tasksDone++;
      } catch (err) {
        const e = toWeightspaceError(err);
        // output that did not arrive whole (bytes missing, a staged range that does not read
        // back as written) is the attempt's fault, not the job's: run it again
        if (e.code === 'checksum-mismatch' || e.code === 'cluster-protocol') this.retryOrFail(attempt, e);
        else owner.fail(e);
      }
    } else {
      this.retryOrFail(attempt, error);
    }
    this.pump();
  }

  private retryOrFail(attempt: Attempt, error: unknown): void {
    const { owner, task } = attempt.queued;
    const coded = codedErrorOf(error) ?? (error instanceof WeightspaceError ? error : undefined);
    // a worker that says the input is bad would say so anywhere: the job fails with its words
    if (coded && (coded.kind === 'input' || coded.kind === 'usage' || coded.kind === 'internal') && coded.code !== 'checksum-mismatch') {
      owner.fail(coded);
      return;
    }
    const reason = attempt.abandoned === 'lost'
      ? 'worker lost (missed heartbeats or left)'
      : coded ? `${coded.code}: ${coded.message}` : (error as Error | undefined)?.message ?? 'stream ended';
    if (attempt.abandoned !== 'lost' && (isTransportError(error) || coded?.kind === 'cluster')) {
      this.registry.quarantine(attempt.worker.id, QUARANTINE_MS);
    }
    owner.onTaskLost(task, attempt.worker.id, reason);
    this.log.warn({ jobId: owner.id, taskId: task.id, layer: task.layer, workerId: attempt.worker.id, attempt: attempt.number, reason }, 'task attempt lost; re-running');
    if (attempt.queued.attempts >= MAX_ATTEMPTS) {
      owner.fail(new WeightspaceError('worker-lost', `task ${q(task.layer)} failed on ${MAX_ATTEMPTS} attempts; last: ${reason}`));
      return;
    }
    this.queue.unshift(attempt.queued);
  }
}
