/**
 * Runs one tensor job through the real executor on an inline thread pool (reduce passes
 * folded in block order, map, emit, result) from f32 inputs written to a temporary file
 * (block, 'rows' or 'whole' mode), and collects every output and the result; a dispatcher
 * whose blocks complete out of order; a seeded PRNG. Shared by the kernel tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBlock } from '../../core/dtypes.js';
import type { KernelName } from '../../core/kernel-contract.js';
import type { InputMode, InputRef, TensorJob } from '../../core/plan.js';
import { executeJobs, type BlockDispatcher } from '../../worker/tensor-executor.js';
import { ThreadPool } from '../../worker/thread-pool.js';

let pool: ThreadPool | undefined;

export async function inlinePool(): Promise<ThreadPool> {
  pool ??= await ThreadPool.create(0);
  return pool;
}

export interface KernelInput {
  readonly data: Float32Array;
  readonly mode?: InputMode;
  /** the input's own shape ('rows' and 'whole') */
  readonly shape?: readonly number[];
}

export interface KernelRun {
  readonly kernel: KernelName;
  readonly params: unknown;
  readonly shape: readonly number[];
  readonly inputs: readonly (Float32Array | KernelInput)[];
  /** element counts of the outputs (default: one output shaped like the tensor; [] for report kernels) */
  readonly outputs?: readonly number[];
  readonly name?: string;
  readonly dispatcher?: BlockDispatcher;
  /** how the block-mode inputs are stored (default F32; BF16 rounds them to nearest even) */
  readonly dtype?: 'F32' | 'BF16';
}

export interface KernelOutcome {
  readonly outputs: Float32Array[];
  readonly result: unknown;
}

export async function runKernel(run: KernelRun): Promise<KernelOutcome> {
  return (await runKernels([run], run.dispatcher))[0]!;
}

/**
 * Several tensor jobs through one executor call (as a real plan runs them: tensors in flight
 * together, scratch and accumulators reused from one to the next); outcomes in the order given.
 */
export async function runKernels(runs: readonly KernelRun[], dispatcher?: BlockDispatcher): Promise<KernelOutcome[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ws-kernel-'));
  try {
    const jobs: TensorJob[] = [];
    const outs: Float32Array[][] = [];
    runs.forEach((run, id) => {
      const numel = run.shape.reduce((a, b) => a * b, 1);
      const file = join(dir, `inputs${id}.bin`);
      const refs: InputRef[] = [];
      const parts: Buffer[] = [];
      let offset = 0;
      for (const raw of run.inputs) {
        const x: KernelInput = raw instanceof Float32Array ? { data: raw } : raw;
        if (run.dtype === 'BF16' && (x.mode ?? 'block') === 'block') {
          const bytes = new Uint8Array(2 * x.data.length);
          encodeBlock('BF16', x.data, bytes, x.data.length);
          parts.push(Buffer.from(bytes.buffer));
          refs.push({ file, offset, dtype: 'BF16' });
          offset += bytes.length;
          continue;
        }
        parts.push(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength));
        refs.push(x.mode && x.mode !== 'block' ? { file, offset, dtype: 'F32', mode: x.mode, shape: x.shape ?? [x.data.length] } : { file, offset, dtype: 'F32' });
        offset += x.data.byteLength;
      }
      writeFileSync(file, Buffer.concat(parts));
      const sizes = run.outputs ?? [numel];
      jobs.push({
        id,
        name: run.name ?? 'model.layers.0.self_attn.o_proj.weight',
        shape: run.shape,
        kernel: run.kernel,
        params: run.params,
        inputs: refs,
        outputs: sizes.map((_, k) => ({ output: id, file: `out${k}.bin`, offset: 0, dtype: 'F32' })),
      });
      outs.push(sizes.map((n) => new Float32Array(n)));
    });
    const results = await executeJobs(jobs, dispatcher ?? (await inlinePool()), {
      onChunk: (c) => {
        const k = Number(/^out(\d+)\.bin$/.exec(c.file)![1]);
        new Uint8Array(outs[c.output]![k]!.buffer).set(c.bytes, c.offset);
      },
    });
    return outs.map((outputs, id) => ({ outputs, result: results.get(id) }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A dispatcher whose blocks complete out of order (folds must still happen in block order). */
export async function shuffledDispatcher(): Promise<BlockDispatcher> {
  const inner = await inlinePool();
  return {
    parallelism: 6,
    async run(req) {
      await new Promise((r) => setTimeout(r, (req.block.index * 7919) % 4));
      return inner.run(req);
    },
  };
}

/** mulberry32: a small seeded PRNG for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

