/**
 * The matrix-product seam: C = op(A)·B in f32, with op(A) = A or Aᵀ. Randomized SVD (LoRA
 * extraction, spectra) and LoRA merging are dominated by these products, so they go through
 * a backend: onnxruntime-node's CPU MatMul/Gemm (MLAS, about 100 GFLOP/s on one AVX-512
 * core) when it loads, else a naive loop (about 1 GFLOP/s). `WEIGHTSPACE_MATMUL=naive`
 * forces the fallback. Results differ between backends in the last bits (summation order),
 * so every node of a cluster must use the same backend for byte-identical outputs.
 */
import type { MatmulBackend } from './matmul-backend.js';
import { loadOnnxBackend } from './onnx-matmul.js';
import { scratchF64 } from './scratch.js';

export type { MatmulBackend };

/** Plain loops, accumulating in f64: the reference and the fallback. */
export const naiveMatmul: MatmulBackend = {
  name: 'naive',
  gemm(transA, a, b, m, k, n, c) {
    const acc = scratchF64('matmul.naive', m * n);
    acc.fill(0);
    if (!transA) {
      for (let i = 0; i < m; i++) {
        const ai = i * k;
        const ci = i * n;
        for (let p = 0; p < k; p++) {
          const x = a[ai + p]!;
          if (x === 0) continue;
          const bp = p * n;
          for (let j = 0; j < n; j++) acc[ci + j]! += x * b[bp + j]!;
        }
      }
    } else {
      for (let p = 0; p < k; p++) {
        const ap = p * m;
        const bp = p * n;
        for (let i = 0; i < m; i++) {
          const x = a[ap + i]!;
          if (x === 0) continue;
          const ci = i * n;
          for (let j = 0; j < n; j++) acc[ci + j]! += x * b[bp + j]!;
        }
      }
    }
    for (let i = 0; i < m * n; i++) c[i] = acc[i]!;
  },
};

let chosen: MatmulBackend | undefined;

/** The backend of this thread: chosen once (env `WEIGHTSPACE_MATMUL` = auto | onnxruntime | naive). */
export function matmulBackend(): MatmulBackend {
  if (chosen) return chosen;
  const want = process.env.WEIGHTSPACE_MATMUL ?? 'auto';
  if (want === 'naive') return (chosen = naiveMatmul);
  const threads = Number(process.env.WEIGHTSPACE_MATMUL_THREADS ?? '1');
  const onnx = loadOnnxBackend(Number.isInteger(threads) && threads > 0 ? threads : 1);
  if (!onnx && want === 'onnxruntime') throw new Error('WEIGHTSPACE_MATMUL=onnxruntime but onnxruntime-node could not be loaded');
  return (chosen = onnx ?? naiveMatmul);
}
