/**
 * Embedded mode: the coordinator's planner and assembler and the worker's executor and
 * thread pool, wired into one process. No NATS, no gRPC, nothing to start. The one place
 * that imports both coordinator/ and worker/.
 */
import { availableParallelism } from 'node:os';
import type { JobSpec } from '../core/job-spec.js';
import type { TensorJob } from '../core/plan.js';
import { OutputAssembler } from '../coordinator/output-assembler.js';
import { opFor } from '../coordinator/ops/registry.js';
import { ThreadPool } from '../worker/thread-pool.js';
import { executeJobs } from '../worker/tensor-executor.js';
import type { JobEvent, JobResult } from './job-events.js';

export interface EmbeddedOptions {
  /** threads for the kernels (default: the machine's parallelism; 0 runs inline) */
  readonly threads?: number;
  readonly onEvent?: (e: JobEvent) => void;
  readonly signal?: AbortSignal;
}

export async function runEmbedded(spec: JobSpec, options: EmbeddedOptions = {}): Promise<JobResult> {
  const started = performance.now();
  const op = opFor(spec);
  // the threads start (load their modules, compile the SIMD kernels) while this one plans
  const starting = ThreadPool.create(options.threads ?? availableParallelism());
  starting.catch(() => undefined); // its error, if any, is thrown below, after the plan's
  let assembler: OutputAssembler | undefined;
  try {
    const plan = await op.plan(spec);
    const jobs = inFileOrder(plan.tasks.flatMap((t) => t.jobs));
    options.onEvent?.({
      type: 'planned',
      op: plan.op,
      tasks: plan.tasks.length,
      tensors: jobs.length,
      inputBytes: plan.totalInputBytes,
      outputBytes: plan.totalOutputBytes,
      outputs: plan.outputs.map((o) => o.label),
    });
    for (const w of plan.warnings) options.onEvent?.({ type: 'warning', message: w });

    const out = (spec as { out?: string }).out;
    assembler = plan.outputs.length > 0 && out !== undefined
      ? OutputAssembler.prepare(plan, out, { force: (spec as { force?: boolean }).force ?? false })
      : undefined;
    const pool = await starting;
    let last = { bytesRead: 0, bytesWritten: 0 };
    const results = await executeJobs(jobs, pool, {
      ...(assembler ? { outputDirs: assembler.outputDirs } : {}),
      // a finished tensor's bytes are final: its shards' hashes advance while the rest computes
      onJobDone: (job) => {
        for (const o of job.outputs) if (o.nbytes !== undefined) assembler?.written(o.output, o.file, o.offset, o.nbytes);
      },
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (p) => {
        last = p;
        options.onEvent?.({ type: 'progress', bytesRead: p.bytesRead, bytesWritten: p.bytesWritten, tensorsDone: p.jobsDone, tensors: jobs.length });
      },
    });
    pool.closeOutputs();
    const report = op.report?.(plan, results);
    const outputs = assembler ? await assembler.finalize(report !== undefined ? { report } : {}) : [];
    return {
      op: plan.op,
      outputs,
      ...(report !== undefined ? { report } : {}),
      seconds: (performance.now() - started) / 1000,
      bytesRead: last.bytesRead,
      bytesWritten: last.bytesWritten,
    };
  } catch (err) {
    assembler?.abort();
    throw err;
  } finally {
    await (await starting.catch(() => undefined))?.close();
  }
}

/**
 * Jobs in the order their outputs lie in the shards (the layout sorts tensors by name, so
 * `lm_head` comes before the layers, while tasks go by layer): each shard's sha256 then
 * advances while the threads compute, instead of all at the end once the head is written.
 * Jobs without outputs (reports) come first, in plan order; the bytes do not depend on the order.
 */
function inFileOrder(jobs: readonly TensorJob[]): TensorJob[] {
  const key = (j: TensorJob): [number, string, number] => {
    const o = j.outputs[0];
    return o ? [o.output, o.file, o.offset] : [-1, '', j.id];
  };
  return [...jobs].sort((a, b) => {
    const [oa, fa, pa] = key(a);
    const [ob, fb, pb] = key(b);
    return oa - ob || (fa < fb ? -1 : fa > fb ? 1 : 0) || pa - pb;
  });
}
