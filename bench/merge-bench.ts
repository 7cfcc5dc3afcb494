/**
 * Issue 3 (merges): `weightspace merge` with mergekit recipes, TIES (ρ = 0.5) and linear, on
 * three ≥ 1 GB BF16 checkpoints (a base and two fine-tunes), against the I/O floor (read the
 * three inputs, write one output of the same size) measured in the same run, and peak RSS.
 * TIES reads its inputs twice: the exact O(n) top-k's histogram pass, whose windows resolve the
 * cut on these checkpoints, then the map. A third case runs TIES with a rank-8 fine-tune, whose
 * cuts the windows do not resolve (three reads), without a target. Where the native AVX-512
 * loops run, the dense TIES runs once more with the WebAssembly loops only, for comparison.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PAIRS, compareToFloor, ensureModel, printComparison, type FloorComparison } from './bench-tools.js';
import { family } from './eval-bench.js';
import { NATIVE_LOOPS, nativeUnavailable, setNativeEnabled } from '../worker/simd/simd-module.js';

// every merge reads all three of its checkpoints, as the floor does (the linear recipe merged two
// of them until session 4, which read a third less than its floor)
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

/**
 * The same TIES recipe with a rank-8 fine-tune as its first model (a LoRA-trained one, merged):
 * its blocks' cuts scatter, so the windows of pass 0 do not resolve them (no target: it shows
 * what such models cost against dense ones).
 */
const LOW_RANK = 'ties ρ=0.5, a rank-8 model';

/**
 * The dense TIES recipe again with WEIGHTSPACE_NATIVE=0 (every loop in WebAssembly), where the
 * native AVX-512 loops run: what they gain, in the same run.
 */
const WASM_ONLY = 'ties ρ=0.5, wasm loops only';

/** Which loops the merges run: the native AVX-512 ones where this machine has them, else why not. */
export function kernelsInUse(): string {
  return setNativeEnabled(true) ? `native AVX-512 (${NATIVE_LOOPS.join(', ')}), WebAssembly SIMD for the rest` : `WebAssembly SIMD only (${nativeUnavailable})`;
}

export function mergeBench(root: string, threads = 2, only?: readonly string[]): FloorComparison[] {
  const f = family(root, 'llama-10-layers');
  const lowRank = join(f.dir, 'a-rank8');
  ensureModel(lowRank, ['--like', f.base, '--seed', '3', '--delta-scale', '0.002', '--delta-rank', '8']);
  const recipes = join(root, 'merge-recipes');
  mkdirSync(recipes, { recursive: true });
  const out: FloorComparison[] = [];
  const cases: [string, (base: string, a: string, b: string) => string, string][] = [
    ...Object.entries(RECIPES).map(([name, recipe]): [string, typeof recipe, string] => [name, recipe, f.a]),
    [LOW_RANK, RECIPES['ties ρ=0.5']!, lowRank],
  ];
  if (setNativeEnabled(true)) cases.push([WASM_ONLY, RECIPES['ties ρ=0.5']!, f.a]);
  for (const [name, recipe, a] of cases) {
    const method = name.split(/[ ,]/)[0]!;
    if (only && !only.includes(method)) continue;
    const file = join(recipes, `${name === LOW_RANK ? 'ties-rank8' : method}.yaml`);
    writeFileSync(file, recipe(f.base, a, f.b));
    const inputs = [f.base, a, f.b].map((d) => join(d, 'model.safetensors'));
    const env: Record<string, string> = name === WASM_ONLY ? { WEIGHTSPACE_NATIVE: '0' } : {};
    out.push(compareToFloor(name, inputs, f.size, ['merge', file, '--threads', String(threads)], join(f.dir, 'merged'), PAIRS, env));
  }
  return out;
}

export function printMergeBench(cases: readonly FloorComparison[], threads = 2): void {
  console.log(`merge: mergekit recipes on three BF16 checkpoints, ${threads} threads (ratio: median of ${PAIRS} runs, each over a floor measured just before it; pairs: floor:run seconds)`);
  console.log(`  loops: ${kernelsInUse()}`);
  for (const c of cases) printComparison(c);
}
