/**
 * Test helpers for the merge kernels: run one tensor job (test/helpers/kernel-runner.ts)
 * through the real executor (reduce passes folded in block order, then map) on an inline
 * thread pool, and collect the output. Also seeded random data and a naive-reference toolkit.
 */
import type { KernelName } from '../../../core/kernel-contract.js';
import type { BlockDispatcher } from '../../../worker/tensor-executor.js';
import { rng, runKernel as runJob, shuffledDispatcher } from '../../helpers/kernel-runner.js';

export { rng, shuffledDispatcher };

export interface RunOptions {
  /** tensor name (RNG key) */
  readonly name?: string;
  /** a dispatcher other than the inline pool (e.g. one that runs blocks out of order) */
  readonly dispatcher?: BlockDispatcher;
  /** how the inputs are stored (default F32) */
  readonly dtype?: 'F32' | 'BF16';
}

/** Runs kernel `kernel` on `inputs` (each of `shape`) and returns output 0. */
export async function runKernel(
  kernel: KernelName, params: unknown, inputs: readonly Float32Array[], shape: readonly number[], options: RunOptions = {},
): Promise<Float32Array> {
  const numel = shape.reduce((a, b) => a * b, 1);
  for (const x of inputs) {
    if (x.length !== numel) throw new Error(`input of ${x.length} elements for shape [${shape.join(',')}]`);
  }
  const r = await runJob({
    kernel, params, shape, inputs,
    name: options.name ?? 'model.layers.0.mlp.down_proj.weight',
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    ...(options.dtype ? { dtype: options.dtype } : {}),
  });
  return r.outputs[0]!;
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
