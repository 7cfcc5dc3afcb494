/**
 * Issue 3 (merges): `weightspace merge` with mergekit recipes, TIES (ρ = 0.5) and linear, on
 * three ≥ 1 GB BF16 checkpoints (a base and two fine-tunes), against the I/O floor (read the
 * three inputs, write one output of the same size) measured in the same run, and peak RSS.
 * TIES reads its inputs twice: the exact O(n) top-k's histogram pass, whose windows resolve the
 * cut on these checkpoints, then the map.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PAIRS, compareToFloor, printComparison, type FloorComparison } from './bench-tools.js';
import { family } from './eval-bench.js';

// both merges read all three checkpoints, as the floor does (the linear recipe merged two of
// them until session 4, which read a third less than its floor)
const RECIPES: Record<string, (base: string, a: string, b: string) => string> = {
  'linear, ⅓ each': (base, a, b) => `merge_method: linear
models:
  - model: ${base}
    parameters: {weight: 1}
  - model: ${a}
    parameters: {weight: 1}
  - model: ${b}
    parameters: {weight: 1}
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

export function mergeBench(root: string, threads = 2, only?: readonly string[]): FloorComparison[] {
  const f = family(root, 'llama-10-layers');
  const recipes = join(root, 'merge-recipes');
  mkdirSync(recipes, { recursive: true });
  const out: FloorComparison[] = [];
  for (const [name, recipe] of Object.entries(RECIPES)) {
    const method = name.split(/[ ,]/)[0]!;
    if (only && !only.includes(method)) continue;
    const file = join(recipes, `${method}.yaml`);
    writeFileSync(file, recipe(f.base, f.a, f.b));
    out.push(compareToFloor(name, f.inputs, f.size, ['merge', file, '--threads', String(threads)], join(f.dir, 'merged')));
  }
  return out;
}

export function printMergeBench(cases: readonly FloorComparison[], threads = 2): void {
  console.log(`merge: mergekit recipes on three BF16 checkpoints, ${threads} threads (ratio: median of ${PAIRS} runs, each over a floor measured just before it; pairs: floor:run seconds)`);
  for (const c of cases) printComparison(c);
}
