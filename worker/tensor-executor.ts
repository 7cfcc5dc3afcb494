/**
 * Executes tensor jobs on a thread pool: splits each tensor into its fixed blocks, runs the
 * kernel's reduce passes (folding partials in block order, so results do not depend on
 * which thread ran what), then its map pass, then emit/result. Several tensors are in
 * flight at once so every thread stays busy; a huge tensor is spread over all threads.
 *
 * The same executor serves embedded mode (outputs written by the threads into files) and
 * worker nodes (outputs returned as chunks and streamed to the coordinator).
 */
import { WeightspaceError, toWeightspaceError } from '../core/errors.js';
import type { KernelDef, TensorInfo } from '../core/kernel-contract.js';
import { blocksOf, type Block, type TensorJob } from '../core/plan.js';
import type { BlockRequest, BlockResult, OutputChunk, SparsePartial } from './block-runner.js';
import { BlockRunner } from './block-runner.js';
import { kernelFor } from './kernels/registry.js';

export interface BlockDispatcher {
  readonly parallelism: number;
  run(req: BlockRequest): Promise<BlockResult>;
}

export interface ExecuteOptions {
  /** file sink: the directory of each output checkpoint (threads write by offset) */
  readonly outputDirs?: readonly string[];
  /** stream sink: called for every encoded chunk; awaited (backpressure) */
  readonly onChunk?: (chunk: OutputChunk) => Promise<void> | void;
  readonly onProgress?: (p: { bytesRead: number; bytesWritten: number; jobsDone: number }) => void;
  /** called when a job's outputs are complete */
  readonly onJobDone?: (job: TensorJob, result: unknown) => void;
  readonly signal?: AbortSignal;
}

interface ActiveJob {
  readonly job: TensorJob;
  readonly kernel: KernelDef;
  readonly info: TensorInfo;
  readonly blocks: Block[];
  readonly passes: number;
  /** current pass: 0..passes-1 reduce, passes = map */
  pass: number;
  state: unknown;
  nextBlock: number;
  done: number;
  acc: Float64Array | undefined;
  readonly partials: Map<number, Float64Array | SparsePartial>;
  nextFold: number;
}

/** Returns each job's `result` (report kernels), by job id. */
export async function executeJobs(
  jobs: readonly TensorJob[],
  dispatcher: BlockDispatcher,
  options: ExecuteOptions = {},
): Promise<Map<number, unknown>> {
  if (!options.outputDirs && !options.onChunk && jobs.some((j) => j.outputs.length > 0)) {
    throw new WeightspaceError('internal', 'executeJobs needs outputDirs or onChunk for jobs with outputs');
  }
  const results = new Map<number, unknown>();
  const queue = [...jobs];
  const active: ActiveJob[] = [];
  // tensors open at once: enough to keep the blocks in flight, few enough that their
  // accumulators (TIES' histograms) stay few
  const maxActive = Math.max(2, Math.ceil(dispatcher.parallelism / 4));
  const inflight = new Set<Promise<void>>();
  const progress = { bytesRead: 0, bytesWritten: 0, jobsDone: 0 };
  const local = new BlockRunner();
  const accumulators = new AccumulatorPool();
  let failure: unknown;

  const activate = (): void => {
    while (active.length < maxActive && queue.length > 0) {
      const job = queue.shift()!;
      const kernel = kernelFor(job.kernel);
      const blocks = blocksOf(job.shape);
      const numel = job.shape.reduce((a, b) => a * b, 1);
      const info: TensorInfo = { tensor: job.name, shape: job.shape, numel, blockCount: blocks.length };
      const a: ActiveJob = {
        job, kernel, info, blocks, passes: kernel.passes(job.params, info), pass: 0, state: undefined,
        nextBlock: 0, done: 0, acc: undefined, partials: new Map(), nextFold: 0,
      };
      active.push(a);
      startPass(a);
    }
  };

  const startPass = (a: ActiveJob): void => {
    a.nextBlock = 0;
    a.done = 0;
    a.nextFold = 0;
    a.partials.clear();
    let skip = false;
    if (a.pass < a.passes) {
      const k = a.kernel;
      const len = k.accumulatorLength?.(a.pass, a.job.params, a.state, a.info) ?? k.partialLength?.(a.pass, a.job.params, a.state, a.info) ?? 0;
      const clears = k.releasesAccumulator === true && k.clearAccumulator !== undefined;
      a.acc = k.releasesAccumulator ? accumulators.take(len, clears) : new Float64Array(len);
      if (clears) k.clearAccumulator!(a.pass, a.job.params, a.state, a.acc, a.info);
      skip = k.skipPass?.(a.pass, a.job.params, a.state, a.info) ?? false;
    } else {
      a.acc = undefined;
    }
    if (skip || a.blocks.length === 0 || (a.pass === a.passes && !a.kernel.map)) finishPass(a);
  };

  const finishPass = (a: ActiveJob): void => {
    if (a.pass < a.passes) {
      a.state = a.kernel.finish ? a.kernel.finish(a.pass, a.job.params, a.state, a.acc!, a.info) : a.state;
      if (a.kernel.releasesAccumulator) accumulators.give(a.acc!);
      a.pass++;
      startPass(a);
      return;
    }
    // map done (or none): emit whole outputs, then the result
    if (a.kernel.emit && a.job.outputs.length > 0) {
      const outs = a.kernel.emit(a.job.params, a.state, a.info);
      const r = local.writeWhole({ job: a.job, outputDirs: options.outputDirs }, outs);
      progress.bytesWritten += r.bytesWritten;
      for (const c of r.chunks ?? []) pendingChunks.push(c);
    }
    const result = a.kernel.result?.(a.job.params, a.state, a.info);
    if (result !== undefined) results.set(a.job.id, result);
    active.splice(active.indexOf(a), 1);
    progress.jobsDone++;
    options.onJobDone?.(a.job, result);
    activate();
  };

  const pendingChunks: OutputChunk[] = [];

  const nextRequest = (): { a: ActiveJob; block: Block } | undefined => {
    for (let i = 0; i < active.length; i++) {
      const a = active[i]!;
      if (a.pass > a.passes) continue;
      if (a.pass === a.passes && !a.kernel.map) continue;
      if (a.nextBlock >= a.blocks.length) continue;
      const block = a.blocks[a.nextBlock++]!;
      if (a.pass < a.passes && a.kernel.skipBlock?.(a.pass, a.job.params, a.state, block.index, a.info)) {
        // not read: an empty partial in its place (this may finish the pass, or the job): look again
        blockDone(a, a.pass, block, undefined);
        i = -1;
        continue;
      }
      return { a, block };
    }
    return undefined;
  };

  /** A block's partial (of reduce pass `pass`) is in: folds what is in order, finishes the pass after its last block. */
  const blockDone = (a: ActiveJob, pass: number, block: Block, partial: Float64Array | SparsePartial | undefined): void => {
    if (pass < a.passes) {
      a.partials.set(block.index, partial ?? new Float64Array(0));
      while (a.partials.has(a.nextFold)) {
        const p = a.partials.get(a.nextFold)!;
        a.partials.delete(a.nextFold);
        foldPartial(a, pass, p, a.nextFold);
        a.nextFold++;
      }
    }
    a.done++;
    if (a.done === a.blocks.length) finishPass(a);
  };

  const handle = async (a: ActiveJob, pass: number, block: Block, r: BlockResult): Promise<void> => {
    progress.bytesRead += r.bytesRead;
    progress.bytesWritten += r.bytesWritten;
    if (options.onChunk) for (const c of r.chunks ?? []) await options.onChunk(c);
    blockDone(a, pass, block, r.sparse ?? r.partial);
    while (pendingChunks.length > 0 && options.onChunk) await options.onChunk(pendingChunks.shift()!);
    options.onProgress?.(progress);
  };

  try {
    activate();
    for (;;) {
      while (pendingChunks.length > 0 && options.onChunk) await options.onChunk(pendingChunks.shift()!);
      if (options.signal?.aborted) throw new WeightspaceError('cancelled', 'job cancelled');
      let next;
      while (failure === undefined && inflight.size < dispatcher.parallelism && (next = nextRequest())) {
        const { a, block } = next;
        const pass = a.pass;
        const req: BlockRequest = {
          job: a.job,
          pass: pass < a.passes ? pass : 'map',
          block,
          state: a.state,
          outputDirs: options.outputDirs,
        };
        const p: Promise<void> = dispatcher.run(req)
          .then((r) => handle(a, pass, block, r))
          .catch((err: unknown) => {
            failure ??= err;
          })
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      if (failure !== undefined) break;
      if (inflight.size === 0) {
        if (active.length === 0 && queue.length === 0) break;
        // jobs whose remaining passes need no blocks advance inside finishPass; nothing left is a bug
        throw new WeightspaceError('internal', 'executor stalled with work left');
      }
      await Promise.race(inflight);
    }
    if (failure !== undefined) {
      await Promise.allSettled(inflight);
      throw toWeightspaceError(failure);
    }
    return results;
  } finally {
    local.close();
  }
}


/**
 * Tests: accumulators a kernel clears itself (clearAccumulator) come filled with NaN, fresh or
 * reused, so that a read of a part it did not clear shows in the results.
 */
export const ACCUMULATOR_CHECKS = { poison: false };

/** Accumulators of kernels that release them, kept for the next pass or tensor (zeroed when taken, unless the kernel clears them). */
class AccumulatorPool {
  private readonly free: Float64Array[] = [];

  take(len: number, dirty = false): Float64Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const l = this.free[i]!.length;
      if (l >= len && (best < 0 || l < this.free[best]!.length)) best = i;
    }
    const acc = best < 0 ? new Float64Array(len) : this.free.splice(best, 1)[0]!.subarray(0, len);
    if (dirty && ACCUMULATOR_CHECKS.poison) acc.fill(NaN);
    else if (!dirty && best >= 0) acc.fill(0);
    return acc;
  }

  give(acc: Float64Array): void {
    // the whole buffer, whatever length it was taken at; a few of them (as many as jobs in flight, and passes)
    const whole = acc.byteOffset === 0 ? new Float64Array(acc.buffer) : acc;
    this.free.push(whole);
    if (this.free.length > 8) this.free.sort((x, y) => y.length - x.length).pop();
  }
}

let denseScratch = new Float64Array(0);

/** Folds one partial (dense or sparse) into the accumulator: the kernel's fold, or a sum. */
function foldPartial(a: ActiveJob, pass: number, p: Float64Array | SparsePartial, blockIndex: number): void {
  const { kernel } = a;
  const acc = a.acc!;
  const bySum = !kernel.fold || (kernel.foldsBySum?.(pass, a.job.params, a.info) ?? false);
  if (p instanceof Float64Array) {
    if (bySum) for (let i = 0; i < p.length; i++) acc[i]! += p[i]!;
    else kernel.fold!(pass, acc, p, blockIndex);
    return;
  }
  const { index, values } = p;
  if (bySum) {
    for (let k = 0; k < index.length; k++) acc[index[k]!]! += values[k]!;
    return;
  }
  // a custom fold of a sparse partial sees it dense (the scratch is zeroed again afterwards)
  if (denseScratch.length < p.length) denseScratch = new Float64Array(p.length);
  const dense = denseScratch.subarray(0, p.length);
  for (let k = 0; k < index.length; k++) dense[index[k]!] = values[k]!;
  kernel.fold!(pass, acc, dense, blockIndex);
  for (let k = 0; k < index.length; k++) dense[index[k]!] = 0;
}
