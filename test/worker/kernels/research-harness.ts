/**
 * Test helpers for the research kernels (monitor, project, analyze, lora-extract, lora-apply):
 * write f32 inputs (block, 'rows' or 'whole' mode) to a temporary file, run one tensor job
 * through the real executor on an inline thread pool (reduce passes folded in block order,
 * map, emit, result), and collect every output and the result. Plus seeded random data and
 * naive dense helpers used by the independent references.
 */
import { inlinePool, rng, runKernel, shuffledDispatcher, type KernelInput, type KernelOutcome, type KernelRun } from '../../helpers/kernel-runner.js';

export { inlinePool, rng, runKernel, shuffledDispatcher, type KernelInput, type KernelOutcome, type KernelRun };

/** Uniform(-scale, scale) f32 data. */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * r() - 1) * scale;
  return out;
}

/** Standard normal f64 data (Box–Muller over mulberry32). */
export function randomNormal(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = r() || 1e-12;
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}
