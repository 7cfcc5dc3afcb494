/**
 * Test helpers for the merge kernels: write f32 inputs to a temporary file, run one tensor job
 * through the real executor (reduce passes folded in block order, then map) on an inline
 * thread pool, and collect the output. Also seeded random data and a naive-reference toolkit.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KernelName } from '../../../core/kernel-contract.js';
import type { InputRef, TensorJob } from '../../../core/plan.js';
import { executeJobs, type BlockDispatcher } from '../../../worker/tensor-executor.js';
import { ThreadPool } from '../../../worker/thread-pool.js';

let pool: ThreadPool | undefined;

async function inlinePool(): Promise<ThreadPool> {
  pool ??= await ThreadPool.create(0);
  return pool;
}

export interface RunOptions {
  /** tensor name (RNG key) */
  readonly name?: string;
  /** a dispatcher other than the inline pool (e.g. one that runs blocks out of order) */
  readonly dispatcher?: BlockDispatcher;
}

/** Runs kernel `kernel` on `inputs` (each of `shape`) and returns output 0. */
export async function runKernel(
  kernel: KernelName, params: unknown, inputs: readonly Float32Array[], shape: readonly number[], options: RunOptions = {},
): Promise<Float32Array> {
  const numel = shape.reduce((a, b) => a * b, 1);
  const dir = mkdtempSync(join(tmpdir(), 'ws-kernel-'));
  try {
    const file = join(dir, 'inputs.bin');
    const refs: InputRef[] = [];
    const parts: Buffer[] = [];
    let offset = 0;
    for (const x of inputs) {
      if (x.length !== numel) throw new Error(`input of ${x.length} elements for shape [${shape.join(',')}]`);
      parts.push(Buffer.from(x.buffer, x.byteOffset, x.byteLength));
      refs.push({ file, offset, dtype: 'F32' });
      offset += x.byteLength;
    }
    writeFileSync(file, Buffer.concat(parts));
    const job: TensorJob = {
      id: 0,
      name: options.name ?? 'model.layers.0.mlp.down_proj.weight',
      shape,
      kernel,
      params,
      inputs: refs,
      outputs: [{ output: 0, file: 'out.safetensors', offset: 0, dtype: 'F32' }],
    };
    const out = new Float32Array(numel);
    const bytes = new Uint8Array(out.buffer);
    await executeJobs([job], options.dispatcher ?? (await inlinePool()), {
      onChunk: (c) => {
        bytes.set(c.bytes, c.offset);
      },
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A dispatcher that runs blocks on the inline pool but completes them in reverse order of arrival, in batches. */
export async function shuffledDispatcher(): Promise<BlockDispatcher> {
  const inner = await inlinePool();
  return {
    parallelism: 8,
    async run(req) {
      // delay by a pseudo-random amount so later blocks often finish first
      const wait = (req.block.index * 7919) % 5;
      await new Promise((r) => setTimeout(r, wait));
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

/** Gaussian f32 data (Box–Muller), mean `mean`, standard deviation `sd`. */
export function gaussian(n: number, seed: number, sd = 1, mean = 0): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + sd * m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = mean + sd * m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** `base + delta`, where delta is Gaussian with sd `scale`, quantised to multiples of `step` when given (to create ties). */
export function fineTune(base: Float32Array, seed: number, scale: number, step?: number): Float32Array {
  const d = gaussian(base.length, seed, scale);
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const di = step ? Math.round(d[i]! / step) * step : d[i]!;
    out[i] = base[i]! + di;
  }
  return out;
}

/** Largest |a − b| relative to max(1, |b|), NaN-aware (NaN must match NaN). */
export function maxRelError(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return Infinity;
      continue;
    }
    if (x === y) continue;
    worst = Math.max(worst, Math.abs(x - y) / Math.max(1, Math.abs(y)));
  }
  return worst;
}

/** Float32Array from numbers. */
export const f32 = (xs: readonly number[]): Float32Array => Float32Array.from(xs);
