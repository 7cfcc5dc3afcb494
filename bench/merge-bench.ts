/**
 * Issue 3 (merges): `weightspace merge` with mergekit recipes, TIES (ρ = 0.5) and linear, on
 * three ≥ 1 GB BF16 checkpoints (a base and two fine-tunes), against the I/O floor (read the
 * three inputs, write one output of the same size) measured in the same run, and peak RSS.
 * TIES reads its inputs four times (three reduce passes of the exact O(n) top-k, then the
 * map), so its floor-relative cost is bounded below by the re-reads from the page cache.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureModel, fileSizes, ioFloor, row, timedCli } from './bench-tools.js';

export interface MergeBenchCase {
  readonly name: string;
  readonly ratio: number;
  readonly floorSeconds: number;
  readonly seconds: number;
  readonly maxRssMB: number;
  readonly gbPerInput: number;
}

const SHAPE = ['--layers', '10', '--hidden', '2048', '--intermediate', '5632', '--vocab', '32000'];

const RECIPES: Record<string, (base: string, a: string, b: string) => string> = {
  linear: (_base, a, b) => `merge_method: linear
models:
  - model: ${a}
    parameters: {weight: 0.5}
  - model: ${b}
    parameters: {weight: 0.5}
dtype: bfloat16
`,
  'ties ρ=0.5': (base, a, b) => `merge_method: ties
base_model: ${base}
models:
  - model: ${a}
    parameters: {weight: 0.5, density: 0.5}
  - model: ${b}
    parameters: {weight: 0.5, density: 0.5}
dtype: bfloat16
`,
};

export function mergeBench(root: string, threads = 2, reps = 2, only?: readonly string[]): MergeBenchCase[] {
  const dir = join(root, 'llama-10-layers');
  const base = join(dir, 'base');
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  ensureModel(base, [...SHAPE, '--seed', '0']);
  ensureModel(a, ['--like', base, '--seed', '1', '--delta-scale', '0.002']);
  ensureModel(b, ['--like', base, '--seed', '2', '--delta-scale', '0.002']);
  const size = fileSizes(base);
  const inputs = [base, a, b].map((d) => join(d, 'model.safetensors'));
  const recipes = join(root, 'merge-recipes');
  mkdirSync(recipes, { recursive: true });
  const out: MergeBenchCase[] = [];
  for (const [name, recipe] of Object.entries(RECIPES)) {
    if (only && !only.includes(name.split(' ')[0]!)) continue;
    const file = join(recipes, `${name.split(' ')[0]}.yaml`);
    writeFileSync(file, recipe(base, a, b));
    const result = join(dir, 'merged');
    let floor = Infinity;
    let best = { seconds: Infinity, maxRssMB: 0 };
    let rss = 0;
    for (let r = 0; r < reps; r++) {
      floor = Math.min(floor, ioFloor(inputs, join(dir, 'floor.bin'), size));
      rmSync(result, { recursive: true, force: true });
      const t = timedCli(['merge', file, '--out', result, '--threads', String(threads)]);
      rss = Math.max(rss, t.maxRssMB);
      if (t.seconds < best.seconds) best = t;
    }
    rmSync(result, { recursive: true, force: true });
    out.push({ name, ratio: best.seconds / floor, floorSeconds: floor, seconds: best.seconds, maxRssMB: rss, gbPerInput: size / 1e9 });
  }
  return out;
}

export function printMergeBench(cases: readonly MergeBenchCase[], threads = 2): void {
  console.log(`merge: mergekit recipes on three BF16 checkpoints, ${threads} threads`);
  for (const c of cases) {
    console.log(row(`  ${c.name} (${c.gbPerInput.toFixed(2)} GB × 3)`, { floor_s: c.floorSeconds, merge_s: c.seconds, ratio: c.ratio, peak_rss_MB: c.maxRssMB }));
  }
}

// `node dist/bench/merge-bench.js [DIR] [linear,ties]`: this benchmark alone
if (process.argv[1]?.endsWith('merge-bench.js')) {
  const root = process.argv[2] ?? '.bench';
  const only = process.argv[3]?.split(',');
  printMergeBench(mergeBench(root, 2, 2, only));
}
