/**
 * What a worker node does with a layer task: checks its inputs are under the storage
 * roots, runs its tensor jobs through the shared executor and thread pool in stream-sink
 * mode, and hands every chunk (split to at most CHUNK_BYTES, each with its checksum), each
 * job's result and a final summary to a sink. With shared staging (the coordinator's
 * staging directory proven visible here by its token), the output bytes go into the
 * staging files instead and only `written` notes go to the sink; otherwise, per task,
 * chunks as before. The sink's promise is the backpressure: the executor dispatches no
 * further blocks while the transport is full, and a cancelled task stops dispatching at
 * once. Transport-free, so it is tested without gRPC.
 */
import { realpathSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { serialize } from 'node:v8';
import { isUrl } from '../core/byte-source.js';
import { chunkChecksum } from '../core/cluster/checksum.js';
import {
  CHUNK_BYTES, type PartialResultMsg, type TaskChunkMsg, type TaskDoneMsg, type TaskProgressMsg, type TaskWrittenMsg,
} from '../core/cluster/wire-messages.js';
import { DTYPE_SIZE } from '../core/dtypes.js';
import { WeightspaceError, q } from '../core/errors.js';
import type { LayerTask } from '../core/plan.js';
import type { BlockRequest, BlockResult } from './block-runner.js';
import { StagingWriter, type StagingTarget } from './staging-writer.js';
import { executeJobs, type BlockDispatcher, type ExecuteOptions } from './tensor-executor.js';
import { ThreadPool } from './thread-pool.js';

/** Lifecycle: takes tasks while 'ready'; 'draining' finishes running ones and takes no more. */
export type TaskServiceState = 'ready' | 'draining' | 'closed';

/** An outgoing task message, before encoding (oneof by field). */
export type TaskMessageOut =
  | { readonly chunk: TaskChunkMsg }
  | { readonly result: PartialResultMsg }
  | { readonly progress: TaskProgressMsg }
  | { readonly done: TaskDoneMsg }
  | { readonly written: TaskWrittenMsg };

export interface TaskSink {
  /** Sends a message; resolves when the transport takes more, rejects once the call is gone. */
  send(msg: TaskMessageOut): Promise<void>;
  /** Sends a small message without waiting (progress); dropped if the call is gone. */
  offer(msg: TaskMessageOut): void;
}

export interface TaskServiceOptions {
  readonly threads: number;
  /** tasks run at once (they share the thread pool) */
  readonly maxTasks: number;
  /** local paths tasks may read; '/' allows any. http(s) URLs are always allowed. */
  readonly roots: readonly string[];
  /**
   * Write output into the coordinator's staging files when a task offers them and their
   * token checks out (default true); false: always send chunks (--no-shared-staging).
   */
  readonly sharedStaging?: boolean;
  /** told when a task offered shared staging sends chunks instead, and why */
  readonly onStagingFallback?: (task: LayerTask, staging: StagingTarget, reason: string) => void;
  /** TEST ONLY (WEIGHTSPACE_TEST_BLOCK_DELAY_MS): sleep before each block, so tests can act mid-job */
  readonly blockDelayMs?: number;
}

const PROGRESS_INTERVAL_MS = 200;

export class TaskService {
  private stateValue: TaskServiceState = 'ready';
  private readonly runningTasks = new Set<Promise<unknown>>();
  private tasksDoneCount = 0;

  private constructor(
    private readonly pool: ThreadPool,
    readonly options: TaskServiceOptions,
    private readonly roots: readonly string[],
  ) {}

  static async create(options: TaskServiceOptions): Promise<TaskService> {
    if (!Number.isInteger(options.maxTasks) || options.maxTasks < 1) {
      throw new WeightspaceError('usage', `--max-tasks must be a whole number ≥ 1, got ${options.maxTasks}`);
    }
    const roots = options.roots.map((r) => {
      try {
        return realpathSync(r);
      } catch {
        throw new WeightspaceError('not-found', `storage root ${q(r)}: no such directory`);
      }
    });
    const pool = await ThreadPool.create(options.threads);
    return new TaskService(pool, options, roots);
  }

  get state(): TaskServiceState {
    return this.stateValue;
  }

  get running(): number {
    return this.runningTasks.size;
  }

  get tasksDone(): number {
    return this.tasksDoneCount;
  }

  /**
   * Runs one task to its end; throws a WeightspaceError (code 'cancelled' when `signal`
   * fired). `staging`: the coordinator's staging directory, written into if allowed.
   */
  async run(task: LayerTask, sink: TaskSink, signal: AbortSignal, staging?: StagingTarget): Promise<void> {
    if (this.stateValue !== 'ready') {
      throw new WeightspaceError('cluster-unavailable', 'worker is draining: it takes no new tasks');
    }
    const p = this.execute(task, sink, signal, staging);
    this.runningTasks.add(p);
    try {
      await p;
      this.tasksDoneCount++;
    } finally {
      this.runningTasks.delete(p);
    }
  }

  /** Stops taking tasks; resolves when the running ones have ended. */
  async drain(): Promise<void> {
    if (this.stateValue === 'ready') this.stateValue = 'draining';
    while (this.runningTasks.size > 0) await Promise.allSettled([...this.runningTasks]);
  }

  async close(): Promise<void> {
    this.stateValue = 'closed';
    await this.pool.close();
  }

  private async execute(task: LayerTask, sink: TaskSink, signal: AbortSignal, staging: StagingTarget | undefined): Promise<void> {
    this.checkRoots(task);
    const writer = this.stagingWriter(task, staging);
    try {
      await this.executeInto(task, sink, signal, writer);
    } catch (err) {
      // a failed or cancelled task's staging may be deleted: the threads let go of it too
      if (writer) void this.pool.closeOutputsAndWait().catch(() => undefined);
      throw err;
    } finally {
      writer?.close();
    }
  }

  /** A writer into the coordinator's staging files, or undefined (chunks) when not allowed or not possible. */
  private stagingWriter(task: LayerTask, staging: StagingTarget | undefined): StagingWriter | undefined {
    if (!staging || staging.dir === '' || this.options.sharedStaging === false) return undefined;
    const opened = StagingWriter.open(staging, task);
    if (opened instanceof StagingWriter) return opened;
    this.options.onStagingFallback?.(task, staging, opened.fallback);
    return undefined;
  }

  private async executeInto(task: LayerTask, sink: TaskSink, signal: AbortSignal, writer: StagingWriter | undefined): Promise<void> {
    const delay = this.options.blockDelayMs ?? 0;
    const dispatcher: BlockDispatcher = delay > 0
      ? {
        parallelism: this.pool.parallelism,
        run: async (req: BlockRequest): Promise<BlockResult> => {
          await new Promise((r) => setTimeout(r, delay));
          return this.pool.run(req);
        },
      }
      : this.pool;
    let last = { bytesRead: 0, bytesWritten: 0, tensorsDone: 0 };
    let lastSent = 0;
    const sinkOptions: ExecuteOptions = writer
      ? {
        // the threads write into the staging files as in embedded mode; each finished
        // tensor's ranges are read back for their notes (small: sent without waiting)
        outputDirs: writer.outputDirs,
        onJobDone: (job) => {
          const numel = job.shape.reduce((a, b) => a * b, 1);
          for (const o of job.outputs) {
            for (const written of writer.notes(o.output, o.file, o.offset, o.nbytes ?? numel * DTYPE_SIZE[o.dtype])) sink.offer({ written });
          }
        },
      }
      : {
        onChunk: async (c) => {
          for (let at = 0; at < c.bytes.length; at += CHUNK_BYTES) {
            const bytes = c.bytes.subarray(at, Math.min(c.bytes.length, at + CHUNK_BYTES));
            await sink.send({ chunk: { output: c.output, file: c.file, offset: c.offset + at, bytes, crc32: chunkChecksum(bytes) } });
          }
        },
      };
    const results = await executeJobs(task.jobs, dispatcher, {
      signal,
      ...sinkOptions,
      onProgress: (p) => {
        last = { bytesRead: p.bytesRead, bytesWritten: p.bytesWritten, tensorsDone: p.jobsDone };
        const now = performance.now();
        if (now - lastSent >= PROGRESS_INTERVAL_MS) {
          lastSent = now;
          sink.offer({ progress: last });
        }
      },
    });
    if (writer) {
      // every file is closed before done is sent (the threads' too): on NFS, close-to-open
      // consistency makes the bytes visible to the coordinator, which reads them back then
      await this.pool.closeOutputsAndWait();
      writer.close();
    }
    const ids = [...results.keys()].sort((a, b) => a - b);
    for (const id of ids) await sink.send({ result: { jobId: id, valueV8: serialize(results.get(id)) } });
    await sink.send({ done: { ...last, tensorsDone: task.jobs.length, results: ids.length } });
  }

  /** Every local input must be under a storage root: a worker reads only what it was given. */
  private checkRoots(task: LayerTask): void {
    if (this.roots.includes(sep)) return;
    for (const job of task.jobs) {
      for (const input of job.inputs) {
        if (isUrl(input.file)) continue;
        let path: string;
        try {
          path = realpathSync(input.file);
        } catch {
          path = resolve(input.file);
        }
        if (!this.roots.some((r) => path === r || path.startsWith(r.endsWith(sep) ? r : r + sep))) {
          throw new WeightspaceError('read-failed', `${q(input.file)}: outside this worker's storage roots (${this.roots.join(', ')})`);
        }
      }
    }
  }
}
