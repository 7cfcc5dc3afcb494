/**
 * Issue: foundation. `eval 'base + 0.5*(a - base) + 0.5*(b - base)'` on three ≥ 1 GB BF16
 * checkpoints, and on three checkpoints each holding one 1 GB tensor, against the I/O floor
 * (read the three inputs, write one output of the same size) measured in the same run.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureModel, fileSizes, ioFloor, row, timedCli } from './bench-tools.js';

export interface EvalBenchCase {
  readonly name: string;
  readonly ratio: number;
  readonly floorSeconds: number;
  readonly seconds: number;
  readonly maxRssMB: number;
  readonly gbPerInput: number;
}

const FAMILIES = {
  'llama-10-layers': ['--layers', '10', '--hidden', '2048', '--intermediate', '5632', '--vocab', '32000'],
  'one-1GB-tensor': ['--layers', '0', '--hidden', '2048', '--vocab', '262144', '--tie-embeddings'],
} as const;

export function evalBench(root: string, threads = 2, reps = 2): EvalBenchCase[] {
  const out: EvalBenchCase[] = [];
  for (const [name, shape] of Object.entries(FAMILIES)) {
    const dir = join(root, name);
    const base = join(dir, 'base');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    ensureModel(base, [...shape, '--seed', '0']);
    ensureModel(a, ['--like', base, '--seed', '1', '--delta-scale', '0.002']);
    ensureModel(b, ['--like', base, '--seed', '2', '--delta-scale', '0.002']);
    const size = fileSizes(base);
    const inputs = [base, a, b].map((d) => join(d, 'model.safetensors'));
    const result = join(dir, 'merged');
    let floor = Infinity;
    let best = { seconds: Infinity, maxRssMB: 0 };
    let rss = 0;
    for (let r = 0; r < reps; r++) {
      floor = Math.min(floor, ioFloor(inputs, join(dir, 'floor.bin'), size));
      rmSync(result, { recursive: true, force: true });
      const t = timedCli(['eval', 'base + 0.5*(a - base) + 0.5*(b - base)', '--model', `base=${base}`, '--model', `a=${a}`, '--model', `b=${b}`, '--out', result, '--threads', String(threads)]);
      rss = Math.max(rss, t.maxRssMB);
      if (t.seconds < best.seconds) best = t;
    }
    rmSync(result, { recursive: true, force: true });
    out.push({ name, ratio: best.seconds / floor, floorSeconds: floor, seconds: best.seconds, maxRssMB: rss, gbPerInput: size / 1e9 });
  }
  return out;
}

export function printEvalBench(cases: readonly EvalBenchCase[]): void {
  console.log('eval: base + 0.5*(a - base) + 0.5*(b - base), 2 threads, BF16');
  for (const c of cases) {
    console.log(row(`  ${c.name} (${c.gbPerInput.toFixed(2)} GB × 3)`, { floor_s: c.floorSeconds, eval_s: c.seconds, ratio: c.ratio, peak_rss_MB: c.maxRssMB }));
  }
}
