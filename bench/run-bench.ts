/**
 * `npm run bench`: every benchmark, printing ratios against the I/O floor and peak RSS.
 * Models are generated once under .bench/ (kept between runs; delete it to regenerate).
 * BENCH=eval,merge,lora,cluster picks some.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evalBench, printEvalBench } from './eval-bench.js';
import { mergeBench, printMergeBench } from './merge-bench.js';

const root = resolve(process.env['BENCH_DIR'] ?? '.bench');
mkdirSync(root, { recursive: true });
const only = (process.env['BENCH'] ?? '').split(',').filter(Boolean);
const want = (name: string): boolean => only.length === 0 || only.includes(name);

/** Benchmarks that are scripts of their own (they start processes or pools themselves). */
function script(name: string): void {
  const file = fileURLToPath(new URL(`./${name}-bench.js`, import.meta.url));
  if (!existsSync(file)) return;
  const r = spawnSync(process.execPath, [file], { stdio: 'inherit', env: { ...process.env, BENCH_DIR: root } });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}

if (want('eval')) printEvalBench(evalBench(root));
if (want('merge')) printMergeBench(mergeBench(root));
if (want('lora')) script('lora');
if (want('cluster')) script('cluster');
