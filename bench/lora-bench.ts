/**
 * LoRA extraction time for one 4096 × 4096 ΔW at rank 64: the lora-extract kernel through the
 * real executor (block reads from a file, reduce passes folded in block order, emit).
 *
 *   npm run build && node dist/bench/lora-bench.js [--threads N] [--size 4096] [--rank 64]
 *
 * WEIGHTSPACE_MATMUL=naive measures the fallback backend. Prints one JSON line per run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { TensorJob } from '../core/plan.js';
import type { LoraExtractResult } from '../worker/kernels/lora-extract.js';
import { fillGaussian } from '../worker/linalg/gaussian.js';
import { matmulBackend } from '../worker/linalg/matmul.js';
import { executeJobs } from '../worker/tensor-executor.js';
import { ThreadPool } from '../worker/thread-pool.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '0' },
    size: { type: 'string', default: '4096' },
    rank: { type: 'string', default: '64' },
    'power-iters': { type: 'string', default: '2' },
  },
});
const n = Number(values.size);
const rank = Number(values.rank);
const threads = Number(values.threads);
const powerIters = Number(values['power-iters']);

// ΔW with a decaying spectrum (rank-256 signal, σ_k ∝ 0.97^k) plus noise, like a fine-tune's update
const k = 256;
const mm = matmulBackend();
const u = new Float32Array(n * k);
const v = new Float32Array(k * n);
fillGaussian(u, 1, 'u');
fillGaussian(v, 2, 'v');
for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) u[i * k + j]! *= Math.pow(0.97, j) / Math.sqrt(n);
const delta = new Float32Array(n * n);
mm.gemm(false, u, v, n, k, n, delta);
const noise = new Float32Array(n * n);
fillGaussian(noise, 3, 'noise');
const base = new Float32Array(n * n);
fillGaussian(base, 4, 'base');
const ft = new Float32Array(n * n);
for (let i = 0; i < n * n; i++) {
  base[i]! *= 0.02;
  ft[i] = base[i]! + delta[i]! + 1e-3 * noise[i]!;
}

const dir = mkdtempSync(join(tmpdir(), 'ws-lora-bench-'));
try {
  const file = join(dir, 'weights.bin');
  writeFileSync(file, Buffer.concat([Buffer.from(ft.buffer), Buffer.from(base.buffer)]));
  const job: TensorJob = {
    id: 0,
    name: 'model.layers.0.self_attn.q_proj.weight',
    shape: [n, n],
    kernel: 'lora-extract',
    params: { rank, seed: 0, powerIters },
    inputs: [{ file, offset: 0, dtype: 'F32' }, { file, offset: n * n * 4, dtype: 'F32' }],
    outputs: [{ output: 0, file: 'a', offset: 0, dtype: 'F32' }, { output: 0, file: 'b', offset: 0, dtype: 'F32' }],
  };
  const pool = await ThreadPool.create(threads);
  try {
    for (let run = 0; run < 2; run++) {
      const t0 = performance.now();
      const results = await executeJobs([job], pool, { onChunk: () => {} });
      const seconds = (performance.now() - t0) / 1000;
      const r = results.get(0) as LoraExtractResult;
      console.log(JSON.stringify({
        bench: 'lora-extract', size: [n, n], rank, powerIters, threads, backend: mm.name, run, seconds: Number(seconds.toFixed(3)),
        relativeResidual: Number(Math.sqrt(r.residual2 / r.frobenius2).toFixed(5)),
      }));
    }
  } finally {
    await pool.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
