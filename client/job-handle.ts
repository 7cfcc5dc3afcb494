/**
 * A job submitted to a coordinator: its events (async-iterable), its result, its output
 * (download) and cancel. If the event stream drops (a network blip, a coordinator
 * restarting on the same address), the handle re-attaches with WatchJob until the job
 * ends or `reconnectTimeoutMs` passes without contact. Lifecycle: 'running' → 'done' |
 * 'failed' (a cancelled job fails with code 'cancelled').
 */
import type * as grpc from '@grpc/grpc-js';
import { deserialize } from 'node:v8';
import { codedErrorOf } from '../core/cluster/grpc-errors.js';
import type { ByteRangeMsg, ClusterJobResult, DoneMsg, JobEventMsg, JobStatusReply, OutputFileMsg } from '../core/cluster/wire-messages.js';
import { WeightspaceError, isErrorCode, q } from '../core/errors.js';
import type { ClusterJobEvent } from './cluster-job-events.js';
import type { CoordinatorRpc } from './coordinator-rpc.js';
import type { JobResult } from './job-events.js';
import { OutputDownload, type DownloadOptions, type SharedDir, type TransferStats } from './output-download.js';

export type JobHandleState = 'running' | 'done' | 'failed';

type EventIterator = AsyncIterator<JobEventMsg>;

function iterate(stream: grpc.ClientReadableStream<JobEventMsg>): EventIterator {
  return (stream as AsyncIterable<JobEventMsg>)[Symbol.asyncIterator]();
}

export class JobHandle {
  private stateValue: JobHandleState = 'running';
  private readonly queue: ClusterJobEvent[] = [];
  private waiter: (() => void) | undefined;
  private done: DoneMsg | undefined;
  private error: WeightspaceError | undefined;
  private readonly finished: Promise<void>;
  private settle!: () => void;
  private planned = '';
  private readonly warnings = new Set<string>();
  /** the output's shards and the ranges finished tasks wrote: a download fetches them early */
  private shards: readonly OutputFileMsg[] = [];
  /** the job's staging dir on the coordinator: a download checks whether it is visible here */
  private staging: SharedDir | undefined;
  private readonly ranges: ByteRangeMsg[] = [];
  private readonly downloads = new Set<OutputDownload>();

  private constructor(private readonly rpc: CoordinatorRpc, readonly id: string, readonly resumed: boolean, private readonly reconnectTimeoutMs: number) {
    this.finished = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** Waits for the job's `accepted` event on `stream`, then follows the rest in the background. */
  static async open(rpc: CoordinatorRpc, stream: grpc.ClientReadableStream<JobEventMsg>, reconnectTimeoutMs: number): Promise<JobHandle> {
    const it = iterate(stream);
    let first: IteratorResult<JobEventMsg>;
    try {
      first = await it.next();
    } catch (err) {
      throw rpc.errorOf(err);
    }
    if (first.done || first.value.event !== 'accepted') {
      stream.cancel();
      throw new WeightspaceError('cluster-protocol', `coordinator ${q(rpc.address)} did not accept the job`);
    }
    const handle = new JobHandle(rpc, first.value.jobId, first.value.accepted.resumed, reconnectTimeoutMs);
    handle.push({ type: 'accepted', jobId: handle.id, resumed: first.value.accepted.resumed });
    void handle.follow(it);
    return handle;
  }

  get state(): JobHandleState {
    return this.stateValue;
  }

  /** The job's events until it ends (iterate once). */
  get events(): AsyncIterable<ClusterJobEvent> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<ClusterJobEvent>> => {
          for (;;) {
            const e = this.queue.shift();
            if (e) return { value: e, done: false };
            if (this.stateValue !== 'running') return { value: undefined, done: true };
            await new Promise<void>((resolve) => {
              this.waiter = resolve;
            });
          }
        },
      }),
    };
  }

  /** The finished job (outputs relative to its `out`, the report of report operations). */
  async result(): Promise<ClusterJobResult> {
    const done = await this.whenDone();
    return done.resultV8.length > 0 ? deserialize(done.resultV8) as ClusterJobResult : JSON.parse(done.resultJson) as ClusterJobResult;
  }

  /**
   * Fetches the job's output into `dir` (written under a temporary name, verified, renamed
   * when complete). Call it right after submit: finished tasks' bytes are fetched while the
   * job runs. Resumes after dropped connections. Where the coordinator's data dir is
   * visible (same host, a shared volume), the finished files are copied from it instead,
   * and checked the same way; `{ localCopy: false }` always fetches them over gRPC.
   * Rejects with the job's error if it fails.
   */
  async download(dir: string, options: DownloadOptions = {}): Promise<JobResult & { transfer: TransferStats }> {
    const started = performance.now();
    const dl = OutputDownload.start(this.rpc, this.id, dir, { ...options, reconnectTimeoutMs: options.reconnectTimeoutMs ?? this.reconnectTimeoutMs });
    this.downloads.add(dl);
    try {
      dl.addShards(this.shards, this.staging);
      dl.addRanges(this.ranges);
      const done = await this.whenDone();
      const result = await this.result();
      const local = done.localDir && done.localToken ? { dir: done.localDir, token: done.localToken } : undefined;
      const got = await dl.complete(result, done.files, local);
      return {
        op: result.op,
        outputs: got.outputs,
        ...(result.report !== undefined ? { report: result.report } : {}),
        seconds: (performance.now() - started) / 1000,
        bytesRead: result.bytesRead,
        bytesWritten: result.bytesWritten,
        transfer: got.transfer,
      };
    } catch (err) {
      dl.abort();
      throw err;
    } finally {
      this.downloads.delete(dl);
    }
  }

  async cancel(): Promise<void> {
    await this.rpc.cancel(this.id);
  }

  status(): Promise<JobStatusReply> {
    return this.rpc.status(this.id);
  }

  private async whenDone(): Promise<DoneMsg> {
    await this.finished;
    if (this.error) throw this.error;
    return this.done!;
  }

  private push(e: ClusterJobEvent): void {
    this.queue.push(e);
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private end(state: JobHandleState, error?: WeightspaceError): void {
    if (this.stateValue !== 'running') return;
    this.stateValue = state;
    this.error = error;
    this.settle();
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private handle(m: JobEventMsg): void {
    switch (m.event) {
      case 'accepted':
        return;
      case 'planned': {
        const p = m.planned;
        const key = JSON.stringify(p);
        if (key === this.planned) return;
        this.planned = key;
        this.shards = p.shards;
        this.staging = p.stagingDir ? { dir: p.stagingDir, token: p.stagingToken } : undefined;
        for (const dl of this.downloads) dl.addShards(p.shards, this.staging);
        this.push({ type: 'planned', op: p.op, tasks: p.tasks, tensors: p.tensors, inputBytes: p.inputBytes, outputBytes: p.outputBytes, outputs: p.outputs });
        return;
      }
      case 'taskStarted':
        this.push({ type: 'task-started', ...m.taskStarted });
        return;
      case 'taskFinished': {
        const { ranges, ...t } = m.taskFinished;
        this.ranges.push(...ranges);
        for (const dl of this.downloads) dl.addRanges(ranges);
        this.push({ type: 'task-finished', ...t });
        return;
      }
      case 'progress': {
        const p = m.progress;
        this.push({ type: 'progress', bytesRead: p.bytesRead, bytesWritten: p.bytesWritten, tensorsDone: p.tensorsDone, tensors: p.tensors });
        return;
      }
      case 'warning':
        if (this.warnings.has(m.warning.message)) return;
        this.warnings.add(m.warning.message);
        this.push({ type: 'warning', message: m.warning.message });
        return;
      case 'done':
        this.done = m.done;
        this.end('done');
        return;
      case 'failed': {
        const code = isErrorCode(m.failed.code) ? m.failed.code : 'internal';
        this.end('failed', new WeightspaceError(code, m.failed.message));
        return;
      }
    }
  }

  /** Follows the event stream; re-attaches after transport failures. */
  private async follow(first: EventIterator): Promise<void> {
    let it: EventIterator = first;
    let lastContact = performance.now();
    let backoff = 100;
    for (;;) {
      try {
        for (;;) {
          const r = await it.next();
          if (r.done) break;
          lastContact = performance.now();
          backoff = 100;
          this.handle(r.value);
          if (this.stateValue !== 'running') return;
        }
        if (this.stateValue !== 'running') return;
      } catch (err) {
        if (this.stateValue !== 'running') return;
        const coded = codedErrorOf(err);
        if (coded) {
          this.end('failed', coded);
          return;
        }
      }
      // the stream ended or broke before the job did: re-attach
      if (this.rpc.closed) {
        this.end('failed', new WeightspaceError('cluster-unavailable', `job ${q(this.id)}: the client was closed before the job ended`));
        return;
      }
      if (performance.now() - lastContact > this.reconnectTimeoutMs) {
        this.end('failed', new WeightspaceError('cluster-unavailable', `job ${q(this.id)}: lost contact with coordinator ${q(this.rpc.address)} for ${Math.round(this.reconnectTimeoutMs / 1000)} s`));
        return;
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(2_000, backoff * 2);
      try {
        it = iterate(this.rpc.watch(this.id));
      } catch (err) {
        this.end('failed', this.rpc.errorOf(err));
        return;
      }
    }
  }
}
