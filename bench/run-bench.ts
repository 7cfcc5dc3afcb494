/**
 * `npm run bench`: every benchmark, printing ratios against the I/O floor and peak RSS.
 * Models are generated once under .bench/ (kept between runs; delete it to regenerate).
 * BENCH=eval,merge,... picks some.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { evalBench, printEvalBench } from './eval-bench.js';

const root = resolve(process.env['BENCH_DIR'] ?? '.bench');
mkdirSync(root, { recursive: true });
const only = (process.env['BENCH'] ?? '').split(',').filter(Boolean);
const want = (name: string): boolean => only.length === 0 || only.includes(name);

if (want('eval')) printEvalBench(evalBench(root));
