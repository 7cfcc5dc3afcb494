/**
 * Issue: foundation. `eval 'base + 0.5*(a - base) + 0.5*(b - base)'` on three ≥ 1 GB BF16
 * checkpoints, and on three checkpoints each holding one 1 GB tensor, against the I/O floor
 * (read the three inputs, write one output of the same size) measured in the same run.
 */
import { join } from 'node:path';
import { PAIRS, compareToFloor, ensureModel, fileSizes, printComparison, type FloorComparison } from './bench-tools.js';

/** The bench model families (shared with the merge bench). */
export const FAMILIES = {
  'llama-10-layers': ['--layers', '10', '--hidden', '2048', '--intermediate', '5632', '--vocab', '32000'],
  'one-1GB-tensor': ['--layers', '0', '--hidden', '2048', '--vocab', '262144', '--tie-embeddings'],
} as const;

/** base, a, b of a family under `root` (generated once). */
export function family(root: string, name: keyof typeof FAMILIES): { dir: string; base: string; a: string; b: string; size: number; inputs: string[] } {
  const dir = join(root, name);
  const base = join(dir, 'base');
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  ensureModel(base, [...FAMILIES[name], '--seed', '0']);
  ensureModel(a, ['--like', base, '--seed', '1', '--delta-scale', '0.002']);
  ensureModel(b, ['--like', base, '--seed', '2', '--delta-scale', '0.002']);
  return { dir, base, a, b, size: fileSizes(base), inputs: [base, a, b].map((d) => join(d, 'model.safetensors')) };
}

export function evalBench(root: string, threads = 2): FloorComparison[] {
  return (Object.keys(FAMILIES) as (keyof typeof FAMILIES)[]).map((name) => {
    const f = family(root, name);
    const args = ['eval', 'base + 0.5*(a - base) + 0.5*(b - base)', '--model', `base=${f.base}`, '--model', `a=${f.a}`, '--model', `b=${f.b}`, '--threads', String(threads)];
    return compareToFloor(name, f.inputs, f.size, args, join(f.dir, 'merged'));
  });
}

export function printEvalBench(cases: readonly FloorComparison[]): void {
  console.log(`eval: base + 0.5*(a - base) + 0.5*(b - base), 2 threads, BF16 (ratio: median of ${PAIRS} runs, each over a floor measured just before it; pairs: floor:run seconds)`);
  for (const c of cases) printComparison(c);
}
