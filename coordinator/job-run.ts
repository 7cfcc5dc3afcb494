/**
 * One job on the coordinator, from spec to finished output. Plans with the same planner as
 * embedded mode, stages the output with the same OutputAssembler in the data dir, hands
 * its layer tasks to the scheduler, writes every verified chunk at its offset, keeps each
 * finished task's results (and a marker) in the staging dir, combines the results in
 * job-id order, calls op.report and finalizes. Its state lives in NATS (JobStore) and its
 * bytes in the staging dir, so a restarted coordinator resumes it: same plan (checked by
 * digest), same staging, only unfinished tasks run again.
 *
 * Shared staging: the staging dir holds a token file, and tasks carry its path and token,
 * so a worker that sees the same directory writes its output there itself and sends only
 * `written` notes. A task's bytes count as delivered only when it is done: then its notes
 * are read back and checked (staged-verifier.ts); a killed attempt's half-written ranges
 * are simply written again by the re-run. When the job is done, the output dir gets a
 * token file too, and Done names it, so a client on the same volume copies the files.
 *
 * Lifecycle: 'planning' → 'running' → 'finalizing' → 'done' | 'failed' | 'cancelled'.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { Logger } from 'pino';
import { chunkChecksum } from '../core/cluster/checksum.js';
import { TERMINAL_JOB_STATES, type JobRecord, type JobState } from '../core/cluster/control-plane.js';
import { OUTPUT_TOKEN_FILE, STAGING_TOKEN_FILE, newToken, removeToken, writeToken } from '../core/cluster/volume-token.js';
import type {
  ByteRangeMsg, ClusterJobResult, DoneMsg, ExecuteTaskRequest, JobEventMsg, JobStatusReply, OutputFileMsg, TaskChunkMsg, TaskDoneMsg,
  TaskProgressMsg, TaskWrittenMsg,
} from '../core/cluster/wire-messages.js';
import { WeightspaceError, q, toWeightspaceError } from '../core/errors.js';
import type { JobSpec } from '../core/job-spec.js';
import { DTYPE_SIZE } from '../core/dtypes.js';
import type { LayerTask, Plan } from '../core/plan.js';
import type { JobStore } from './job-store.js';
import { opFor } from './ops/registry.js';
import { OutputAssembler } from './output-assembler.js';
import { describeOutputFiles } from './output-files.js';
import { verifyStaged } from './staged-verifier.js';
import type { TaskOwner, TaskScheduler } from './task-scheduler.js';

export type JobListener = (e: JobEventMsg) => void;

export interface JobRunDeps {
  readonly store: JobStore;
  readonly scheduler: TaskScheduler;
  readonly dataDir: string;
  readonly log: Logger;
  /** every event, for the NATS progress subject */
  readonly publish: (e: JobEventMsg) => void;
}

interface TaskEntry {
  readonly task: LayerTask;
  state: 'pending' | 'running' | 'done';
  /** bytes and tensors of the current attempt (dropped if it is lost) */
  inflightWritten: number;
  inflightRead: number;
  inflightTensors: number;
  /** the current attempt's written notes (shared staging), checked when it is done */
  staged: TaskWrittenMsg[];
  /** the current attempt's bytes that came as chunks */
  streamed: number;
  read: number;
  written: number;
}

/** What a finished task leaves in the staging dir: its results and its byte counts. */
interface TaskRecord {
  readonly taskId: string;
  readonly results: readonly (readonly [number, unknown])[];
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

const PROGRESS_INTERVAL_MS = 100;

export function planDigest(plan: Plan): string {
  return createHash('sha256').update(JSON.stringify(plan)).digest('hex');
}

/** The shard bytes a task writes, adjacent ranges merged (final once the task is done). */
export function taskRanges(task: LayerTask): ByteRangeMsg[] {
  const ranges: ByteRangeMsg[] = [];
  for (const job of task.jobs) {
    const numel = job.shape.reduce((a, b) => a * b, 1);
    // an output's own size (nbytes) where the plan gives it: it may differ from the job's shape
    for (const o of job.outputs) ranges.push({ output: o.output, file: o.file, offset: o.offset, length: o.nbytes ?? numel * DTYPE_SIZE[o.dtype] });
  }
  ranges.sort((a, b) => a.output - b.output || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.offset - b.offset);
  const merged: ByteRangeMsg[] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && last.output === r.output && last.file === r.file && last.offset + last.length === r.offset) {
      merged[merged.length - 1] = { ...last, length: last.length + r.length };
    } else if (r.length > 0) {
      merged.push(r);
    }
  }
  return merged;
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

export class JobRun implements TaskOwner {
  private stateValue: JobState;
  private plan: Plan | undefined;
  private assembler: OutputAssembler | undefined;
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly taskResults = new Map<string, TaskRecord>();
  private readonly listeners = new Set<JobListener>();
  private accepted: JobEventMsg;
  private planned: JobEventMsg | undefined;
  private readonly warnings: JobEventMsg[] = [];
  private lastProgress: JobEventMsg | undefined;
  private terminal: JobEventMsg | undefined;
  private lastProgressAt = 0;
  private tasksDone = 0;
  private attempts = 0;
  private started = performance.now();
  private done: DoneMsg | undefined;
  private record: JobRecord;
  /** the token of the staging dir's token file (shared staging); '' without one */
  private stagingToken = '';
  /** output bytes of finished tasks, by how they came */
  private stagedBytes = 0;
  private streamedBytes = 0;

  private constructor(readonly id: string, readonly spec: JobSpec, record: JobRecord, private readonly deps: JobRunDeps) {
    this.record = record;
    this.stateValue = record.state;
    this.accepted = { jobId: id, event: 'accepted', accepted: { resumed: record.resumes > 0 } };
  }

  /** A new job (state 'planning'); `start()` runs it. */
  static create(id: string, spec: JobSpec, deps: JobRunDeps): JobRun {
    const record: JobRecord = {
      id, spec, state: 'planning', op: spec.op, tasks: 0, tasksDone: 0, resumes: 0, tasksKeptOnResume: 0, retries: 0, updatedAt: Date.now(),
    };
    const run = new JobRun(id, spec, record, deps);
    deps.store.put(record);
    return run;
  }

  /** A job known from its record: finished ones answer status and serve output; others are resumed with `resume()`. */
  static fromRecord(record: JobRecord, spec: JobSpec, deps: JobRunDeps): JobRun {
    const run = new JobRun(record.id, spec, record, deps);
    if (record.state === 'done') {
      const saved = run.loadDone();
      if (saved) {
        run.done = saved;
        run.terminal = { jobId: run.id, event: 'done', done: saved };
      } else {
        run.stateValue = 'failed';
        run.record = { ...record, state: 'failed', error: { code: 'job-not-found', message: `job ${q(record.id)}: its output is no longer in the coordinator's data dir` } };
      }
    }
    if (run.stateValue === 'failed' || run.stateValue === 'cancelled') {
      const error = run.record.error ?? { code: 'internal', message: 'job failed' };
      run.terminal = { jobId: run.id, event: 'failed', failed: error };
    }
    return run;
  }

  get state(): JobState {
    return this.stateValue;
  }

  get updatedAt(): number {
    return this.record.updatedAt;
  }

  get jobDir(): string {
    return join(this.deps.dataDir, 'jobs', this.id);
  }

  private get outDir(): string {
    return join(this.jobDir, 'out');
  }

  private get tasksDir(): string {
    return join(this.jobDir, 'tasks');
  }

  private get resultPath(): string {
    return join(this.jobDir, 'result.v8');
  }

  /** Listens from now on, after a replay of what a late listener needs. Returns the unsubscribe. */
  subscribe(listener: JobListener): () => void {
    listener(this.accepted);
    if (this.planned) listener(this.planned);
    for (const w of this.warnings) listener(w);
    if (this.lastProgress) listener(this.lastProgress);
    if (this.terminal) {
      listener(this.terminal);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Plans, stages and schedules a new job. */
  async start(): Promise<void> {
    try {
      const plan = await opFor(this.spec).plan(this.spec);
      if (this.isTerminal()) return;
      mkdirSync(this.tasksDir, { recursive: true });
      const assembler = plan.outputs.length > 0 ? OutputAssembler.prepare(plan, this.outDir) : undefined;
      this.launch(plan, assembler, new Set());
    } catch (err) {
      this.fail(toWeightspaceError(err));
    }
  }

  /** Resumes a job a previous coordinator left unfinished. */
  async resume(): Promise<void> {
    const prev = this.record;
    try {
      this.log().info({ jobId: this.id, state: prev.state }, 'resuming job');
      const plan = await opFor(this.spec).plan(this.spec);
      if (this.isTerminal()) return;
      const digest = planDigest(plan);
      const same = prev.planDigest === digest;
      const saved = same ? this.loadDone() : undefined;
      if (saved) {
        // finished just before the restart; only the record was behind
        this.plan = plan;
        this.finish(saved);
        return;
      }
      let assembler: OutputAssembler | undefined;
      let kept = new Set<string>();
      if (same && (plan.outputs.length === 0 || (prev.stagingTmp !== undefined && existsSync(prev.stagingTmp)))) {
        if (plan.outputs.length > 0) assembler = OutputAssembler.reopen(plan, this.outDir, prev.stagingTmp!);
        kept = this.loadTaskRecords(plan);
      } else if (same && plan.outputs.length > 0 && existsSync(this.outDir)) {
        // the staging dir was already renamed into place: every task is done, finish from it
        kept = this.loadTaskRecords(plan);
        if (kept.size === plan.tasks.length) {
          this.plan = plan;
          this.record = { ...this.record, resumes: prev.resumes + 1, tasksKeptOnResume: kept.size };
          this.accepted = { jobId: this.id, event: 'accepted', accepted: { resumed: true } };
          await this.complete(undefined);
          return;
        }
        kept = new Set();
      }
      if (!assembler && plan.outputs.length > 0) {
        // nothing usable: start over in a clean staging dir
        rmSync(this.jobDir, { recursive: true, force: true });
        kept = new Set();
        this.taskResults.clear();
        assembler = OutputAssembler.prepare(plan, this.outDir);
      }
      mkdirSync(this.tasksDir, { recursive: true });
      this.record = { ...this.record, resumes: prev.resumes + 1, tasksKeptOnResume: kept.size };
      this.accepted = { jobId: this.id, event: 'accepted', accepted: { resumed: true } };
      this.emit(this.accepted);
      this.launch(plan, assembler, kept);
    } catch (err) {
      this.fail(toWeightspaceError(err));
    }
  }

  cancel(): void {
    this.fail(new WeightspaceError('cancelled', 'job cancelled'));
  }

  /** The coordinator is stopping: stop the work, keep the state for the next coordinator. */
  suspend(): void {
    if (this.isTerminal()) return;
    this.deps.scheduler.cancel(this);
    this.listeners.clear();
  }

  status(): JobStatusReply {
    const error = this.terminal?.event === 'failed' ? this.terminal.failed : null;
    return {
      jobId: this.id,
      status: this.stateValue,
      op: this.spec.op,
      tasks: this.plan?.tasks.length ?? this.record.tasks,
      tasksDone: this.plan ? this.tasksDone : this.record.tasksDone,
      bytesWritten: this.progressTotals().bytesWritten,
      error,
      resumes: this.record.resumes,
      tasksKeptOnResume: this.record.tasksKeptOnResume,
      retries: this.record.retries,
      attempts: this.attempts,
      stagedBytes: this.stagedBytes,
      streamedBytes: this.streamedBytes,
    };
  }

  /**
   * What a task's request says about shared staging: the staging dir (absolute, as this
   * coordinator sees it), its token and each output's subdir. Nothing without outputs.
   */
  get staging(): Pick<ExecuteTaskRequest, 'stagingDir' | 'stagingToken' | 'stagingSubdirs'> {
    if (!this.assembler || !this.stagingToken || !this.plan) return {};
    return { stagingDir: this.assembler.tmp, stagingToken: this.stagingToken, stagingSubdirs: this.plan.outputs.map((o) => o.subdir) };
  }

  /**
   * An output file for FetchOutput: a finished job's file (with its sha256), or, while the
   * job runs, a shard of its staging (where finished tasks' ranges are final). `paths` are
   * tried in order: a running job's staging is renamed into place when it finishes.
   */
  outputFile(output: number, file: string): OutputFileMsg & { paths: string[] } {
    if (this.done) {
      const f = this.done.files.find((x) => x.output === output && x.file === file);
      if (!f) throw new WeightspaceError('not-found', `job ${q(this.id)} has no output file ${q(file)} in output ${output}`);
      return { ...f, paths: [join(this.outDir, f.subdir, f.file)] };
    }
    const o = this.plan?.outputs[output];
    const shard = o?.shards.find((s) => s.file === file);
    if ((this.stateValue !== 'running' && this.stateValue !== 'finalizing') || !o || !shard || !this.assembler) {
      if (!this.isTerminal() && this.plan && o && !shard) {
        throw new WeightspaceError('not-found', `job ${q(this.id)} has no shard ${q(file)} in output ${output} (other files come when it is done)`);
      }
      throw new WeightspaceError('job-not-found', `job ${q(this.id)} has no output to fetch: it is ${this.stateValue}`);
    }
    return {
      output, subdir: o.subdir, file, size: shard.size, sha256: '',
      paths: [join(this.assembler.tmp, o.subdir, file), join(this.outDir, o.subdir, file)],
    };
  }

  /** Removes the job's files (pruning finished jobs). */
  removeFiles(): void {
    rmSync(this.jobDir, { recursive: true, force: true });
  }

  // --- TaskOwner: called by the scheduler -----------------------------------------------

  onTaskStarted(task: LayerTask, workerId: string, attempt: number): void {
    const e = this.tasks.get(task.id);
    if (!e || this.stateValue !== 'running') return;
    e.state = 'running';
    e.inflightRead = e.inflightWritten = e.inflightTensors = 0;
    e.staged = [];
    e.streamed = 0;
    this.attempts++;
    this.emit({ jobId: this.id, event: 'taskStarted', taskStarted: { taskId: task.id, layer: task.layer, workerId, attempt } });
  }

  onChunk(task: LayerTask, chunk: TaskChunkMsg): void {
    if (this.stateValue !== 'running') return;
    const sum = chunkChecksum(chunk.bytes);
    if (sum !== chunk.crc32) {
      throw new WeightspaceError('checksum-mismatch', `task ${q(task.layer)}: chunk of ${q(chunk.file)} at ${chunk.offset} has crc32 ${sum}, expected ${chunk.crc32}`);
    }
    if (!this.assembler) throw new WeightspaceError('internal', `task ${q(task.layer)} sent a chunk for a job without outputs`);
    this.assembler.writeChunk(chunk);
    const e = this.tasks.get(task.id);
    if (e) {
      e.inflightWritten += chunk.bytes.length;
      e.streamed += chunk.bytes.length;
    }
    this.maybeProgress();
  }

  /** A range the worker wrote into the staging files itself: noted now, checked when the task is done. */
  onWritten(task: LayerTask, note: TaskWrittenMsg): void {
    if (this.stateValue !== 'running') return;
    if (!this.assembler) throw new WeightspaceError('internal', `task ${q(task.layer)} wrote into the staging of a job without outputs`);
    const size = this.plan?.outputs[note.output]?.shards.find((s) => s.file === note.file)?.size;
    if (size === undefined || note.offset + note.length > size || note.length <= 0) {
      throw new WeightspaceError('cluster-protocol', `task ${q(task.layer)} says it wrote output ${note.output} file ${q(note.file)} at ${note.offset}+${note.length}: outside the plan`);
    }
    const e = this.tasks.get(task.id);
    if (!e) return;
    e.staged.push(note);
    e.inflightWritten += note.length;
    this.maybeProgress();
  }

  onTaskProgress(task: LayerTask, p: TaskProgressMsg): void {
    const e = this.tasks.get(task.id);
    if (!e || this.stateValue !== 'running') return;
    e.inflightRead = p.bytesRead;
    e.inflightTensors = p.tensorsDone;
    this.maybeProgress();
  }

  /**
   * The worker finished the task: its output is complete (every planned byte came, as
   * chunks or written notes, and every note reads back with its CRC-32) before it counts.
   * Throws 'checksum-mismatch' or 'cluster-protocol' when not: the task runs again.
   */
  async onTaskDone(task: LayerTask, workerId: string, attempt: number, results: ReadonlyMap<number, unknown>, done: TaskDoneMsg): Promise<void> {
    const e = this.tasks.get(task.id);
    if (!e || this.stateValue !== 'running' || e.state === 'done') return;
    const staged = e.staged.reduce((a, n) => a + n.length, 0);
    const planned = taskRanges(task).reduce((a, r) => a + r.length, 0);
    if (staged + e.streamed !== planned) {
      throw new WeightspaceError('cluster-protocol', `task ${q(task.layer)}: worker ${q(workerId)} delivered ${staged + e.streamed} output bytes, the plan has ${planned}`);
    }
    if (e.staged.length > 0) {
      const notes = e.staged;
      try {
        await verifyStaged(this.assembler!, task.layer, notes, () => this.stateValue === 'running');
      } catch (err) {
        // a job that ended meanwhile has nothing left to check
        if (this.stateValue !== 'running') return;
        throw err;
      }
      if (this.stateValue !== 'running' || e.staged !== notes) return;
    }
    if (e.streamed > 0) {
      // the chunks this coordinator wrote reach the volume before the task is announced,
      // as a worker's own writes do: a client on another host copies its ranges from there
      await this.assembler?.closeWrites();
      if (this.stateValue !== 'running') return;
    }
    this.stagedBytes += staged;
    this.streamedBytes += e.streamed;
    const rec: TaskRecord = {
      taskId: task.id,
      results: [...results.entries()].sort((a, b) => a[0] - b[0]),
      bytesRead: done.bytesRead,
      bytesWritten: done.bytesWritten,
    };
    // the marker is written after every chunk of the task: a resumed job trusts it
    writeAtomic(join(this.tasksDir, `${task.id}.v8`), serialize(rec));
    this.taskResults.set(task.id, rec);
    e.state = 'done';
    e.read = rec.bytesRead;
    e.written = rec.bytesWritten;
    e.inflightRead = e.inflightWritten = e.inflightTensors = 0;
    this.tasksDone++;
    this.persist({ tasksDone: this.tasksDone });
    const tasks = this.plan!.tasks.length;
    this.emit({
      jobId: this.id,
      event: 'taskFinished',
      taskFinished: { taskId: task.id, layer: task.layer, workerId, attempt, tasksDone: this.tasksDone, tasks, ranges: taskRanges(task) },
    });
    this.emitProgress();
    if (this.tasksDone === tasks) await this.complete(this.assembler);
  }

  onTaskLost(task: LayerTask, _workerId: string, _reason: string): void {
    const e = this.tasks.get(task.id);
    if (!e || this.isTerminal()) return;
    e.state = 'pending';
    e.inflightRead = e.inflightWritten = e.inflightTensors = 0;
    e.staged = [];
    e.streamed = 0;
    this.persist({ retries: this.record.retries + 1 });
  }

  warn(message: string): void {
    const w: JobEventMsg = { jobId: this.id, event: 'warning', warning: { message } };
    this.warnings.push(w);
    this.emit(w);
  }

  fail(err: WeightspaceError): void {
    if (this.isTerminal()) return;
    const state: JobState = err.code === 'cancelled' ? 'cancelled' : 'failed';
    this.log().warn({ jobId: this.id, code: err.code, message: err.message }, `job ${state}`);
    this.stateValue = state;
    this.deps.scheduler.cancel(this);
    try {
      this.assembler?.abort();
    } catch {
      // best effort
    }
    rmSync(this.jobDir, { recursive: true, force: true });
    const error = { code: err.code, message: err.message };
    this.persist({ state, error });
    this.terminal = { jobId: this.id, event: 'failed', failed: error };
    this.emit(this.terminal);
    this.listeners.clear();
  }

  // --- internals ---------------------------------------------------------------------------

  private launch(plan: Plan, assembler: OutputAssembler | undefined, kept: ReadonlySet<string>): void {
    this.plan = plan;
    this.assembler = assembler;
    this.started = performance.now();
    if (assembler) {
      // a fresh token on every (re)open: workers of an earlier coordinator hold the old one
      this.stagingToken = newToken();
      writeToken(assembler.tmp, STAGING_TOKEN_FILE, this.stagingToken);
    }
    for (const task of plan.tasks) {
      const rec = this.taskResults.get(task.id);
      const done = kept.has(task.id) && rec !== undefined;
      this.tasks.set(task.id, {
        task, state: done ? 'done' : 'pending', inflightRead: 0, inflightWritten: 0, inflightTensors: 0, staged: [], streamed: 0,
        read: rec?.bytesRead ?? 0, written: rec?.bytesWritten ?? 0,
      });
    }
    this.tasksDone = [...this.tasks.values()].filter((t) => t.state === 'done').length;
    this.stateValue = 'running';
    this.persist({
      state: 'running', op: plan.op, tasks: plan.tasks.length, tasksDone: this.tasksDone, planDigest: planDigest(plan),
      ...(assembler ? { stagingTmp: assembler.tmp } : {}),
    });
    const jobs = plan.tasks.reduce((a, t) => a + t.jobs.length, 0);
    this.planned = {
      jobId: this.id,
      event: 'planned',
      planned: {
        op: plan.op, tasks: plan.tasks.length, tensors: jobs, inputBytes: plan.totalInputBytes, outputBytes: plan.totalOutputBytes,
        outputs: plan.outputs.map((o) => o.label), tasksDone: this.tasksDone,
        shards: plan.outputs.flatMap((o, i) => o.shards.map((sh) => ({
          output: i, subdir: o.subdir, file: sh.file, size: sh.size, sha256: '', headerLength: Buffer.byteLength(sh.headerBase64, 'base64'),
        }))),
        stagingDir: assembler ? assembler.tmp : '',
        stagingToken: assembler ? this.stagingToken : '',
      },
    };
    this.emit(this.planned);
    for (const w of plan.warnings) this.warn(w);
    this.emitProgress();
    const pending = plan.tasks.filter((t) => this.tasks.get(t.id)!.state !== 'done');
    this.log().info({ jobId: this.id, op: plan.op, tasks: plan.tasks.length, pending: pending.length }, 'job planned');
    if (pending.length === 0) void this.complete(assembler);
    else this.deps.scheduler.enqueue(this, pending);
  }

  /** Every task is done: combine results in job-id order, report, finalize. */
  private async complete(assembler: OutputAssembler | undefined): Promise<void> {
    if (this.isTerminal() || !this.plan) return;
    const plan = this.plan;
    this.stateValue = 'finalizing';
    this.persist({ state: 'finalizing' });
    try {
      const pairs = [...this.taskResults.values()].flatMap((r) => r.results).sort((a, b) => a[0] - b[0]);
      const results = new Map<number, unknown>(pairs);
      const report = opFor(this.spec).report?.(plan, results);
      // the staging token never becomes part of the output; late writers of a lost attempt
      // (same bytes, same offsets) find no token from now on and send chunks
      if (assembler) removeToken(assembler.tmp, STAGING_TOKEN_FILE);
      const finished = assembler ? await assembler.finalize(report !== undefined ? { report } : {}) : undefined;
      if (this.isTerminal()) return;
      const files = plan.outputs.length > 0 ? await describeOutputFiles(plan, this.outDir, finished) : [];
      // finished outputs never change: read-only, so a client's hard link (local copy) and this copy cannot change each other
      if (plan.outputs.length > 0) makeReadOnly(this.outDir);
      // local copy: a client that reads this token in the output dir sees these very files
      const localToken = plan.outputs.length > 0 ? newToken() : '';
      if (localToken) writeToken(this.outDir, OUTPUT_TOKEN_FILE, localToken);
      const totals = this.progressTotals();
      const result: ClusterJobResult = {
        op: plan.op,
        outputs: plan.outputs.map((o, i) => ({
          subdir: o.subdir,
          label: o.label,
          shards: o.shards.map((s) => {
            const f = files.find((x) => x.output === i && x.file === s.file);
            return { file: s.file, sha256: f?.sha256 ?? '', size: s.size };
          }),
        })),
        ...(report !== undefined ? { report } : {}),
        seconds: (performance.now() - this.started) / 1000,
        bytesRead: totals.bytesRead,
        bytesWritten: totals.bytesWritten,
      };
      const done: DoneMsg = {
        resultJson: JSON.stringify(result), resultV8: serialize(result), files, ...(localToken ? { localDir: this.outDir, localToken } : {}),
      };
      writeAtomic(this.resultPath, serialize(done));
      this.finish(done);
    } catch (err) {
      this.fail(toWeightspaceError(err));
    }
  }

  private finish(done: DoneMsg): void {
    this.done = done;
    this.stateValue = 'done';
    rmSync(this.tasksDir, { recursive: true, force: true });
    this.persist({ state: 'done', tasksDone: this.plan?.tasks.length ?? this.record.tasks });
    this.emitProgress();
    this.terminal = { jobId: this.id, event: 'done', done };
    this.log().info({ jobId: this.id, files: done.files.length }, 'job done');
    this.emit(this.terminal);
    this.listeners.clear();
  }

  private loadDone(): DoneMsg | undefined {
    if (!existsSync(this.resultPath)) return undefined;
    try {
      const d = deserialize(readFileSync(this.resultPath)) as DoneMsg;
      for (const f of d.files) if (!existsSync(join(this.outDir, f.subdir, f.file))) return undefined;
      return d;
    } catch {
      return undefined;
    }
  }

  /** Finished tasks of this plan in the staging dir: their results are loaded, their ids returned. */
  private loadTaskRecords(plan: Plan): Set<string> {
    const ids = new Set(plan.tasks.map((t) => t.id));
    const kept = new Set<string>();
    if (!existsSync(this.tasksDir)) return kept;
    for (const name of readdirSync(this.tasksDir)) {
      if (!name.endsWith('.v8')) continue;
      try {
        const rec = deserialize(readFileSync(join(this.tasksDir, name))) as TaskRecord;
        if (!ids.has(rec.taskId)) continue;
        this.taskResults.set(rec.taskId, rec);
        kept.add(rec.taskId);
      } catch {
        // a marker cut short: the task runs again
      }
    }
    return kept;
  }

  private progressTotals(): { bytesRead: number; bytesWritten: number; tensorsDone: number } {
    let bytesRead = 0;
    let bytesWritten = 0;
    let tensorsDone = 0;
    for (const e of this.tasks.values()) {
      if (e.state === 'done') {
        bytesRead += e.read;
        bytesWritten += e.written;
        tensorsDone += e.task.jobs.length;
      } else {
        bytesRead += e.inflightRead;
        bytesWritten += e.inflightWritten;
        tensorsDone += e.inflightTensors;
      }
    }
    return { bytesRead, bytesWritten, tensorsDone };
  }

  private maybeProgress(): void {
    if (performance.now() - this.lastProgressAt >= PROGRESS_INTERVAL_MS) this.emitProgress();
  }

  private emitProgress(): void {
    if (!this.plan) return;
    this.lastProgressAt = performance.now();
    const t = this.progressTotals();
    const tensors = this.plan.tasks.reduce((a, x) => a + x.jobs.length, 0);
    this.lastProgress = {
      jobId: this.id,
      event: 'progress',
      progress: { ...t, tensors, tasksDone: this.tasksDone, tasks: this.plan.tasks.length },
    };
    this.emit(this.lastProgress);
  }

  private emit(e: JobEventMsg): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log().warn({ err: (err as Error).message }, 'job listener failed');
      }
    }
    this.deps.publish(e);
  }

  private persist(change: Partial<JobRecord>): void {
    this.record = { ...this.record, ...change, updatedAt: Date.now() };
    this.deps.store.put(this.record);
  }

  private isTerminal(): boolean {
    return TERMINAL_JOB_STATES.includes(this.stateValue);
  }

  private log(): Logger {
    return this.deps.log;
  }
}

/** Every regular file under `dir` read-only (a finished output). */
function makeReadOnly(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) chmodSync(join(e.parentPath, e.name), 0o444);
  }
}
