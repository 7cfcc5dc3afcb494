import { describe, it, expect } from 'vitest';
import { matmulBackend, naiveMatmul, type MatmulBackend } from '../../../worker/linalg/matmul.js';
import { loadOnnxBackend } from '../../../worker/linalg/onnx-matmul.js';
import { randomF32 } from '../kernels/research-harness.js';

/** Reference: triple loop in f64 over whole arrays. */
function reference(transA: boolean, a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (transA ? a[p * m + i]! : a[i * k + p]!) * b[p * n + j]!;
      c[i * n + j] = s;
    }
  }
  return c;
}

const onnx = loadOnnxBackend(1);
const backends: MatmulBackend[] = [naiveMatmul, ...(onnx ? [onnx] : [])];

describe('matmul backends', () => {
  it('onnxruntime-node loads here (the fast backend is not silently missing)', () => {
    expect(onnx?.name).toBe('onnxruntime');
    expect(matmulBackend().name).toBe(process.env.WEIGHTSPACE_MATMUL === 'naive' ? 'naive' : 'onnxruntime');
  });

  for (const mm of backends) {
    it(`${mm.name}: hand-computed 2×2`, () => {
      const c = new Float32Array(4);
      mm.gemm(false, Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6, 7, 8), 2, 2, 2, c);
      expect(Array.from(c)).toEqual([19, 22, 43, 50]);
      mm.gemm(true, Float32Array.of(1, 2, 3, 4), Float32Array.of(5, 6, 7, 8), 2, 2, 2, c);
      expect(Array.from(c)).toEqual([26, 30, 38, 44]); // [[1,3],[2,4]]·[[5,6],[7,8]]
    });

    for (const transA of [false, true]) {
      it(`${mm.name}: random ${transA ? 'Aᵀ·B' : 'A·B'} against the reference, odd sizes`, () => {
        const [m, k, n] = [37, 129, 11];
        const a = randomF32(m * k, 1);
        const b = randomF32(k * n, 2);
        const c = new Float32Array(m * n);
        mm.gemm(transA, a, b, m, k, n, c);
        const ref = reference(transA, a, b, m, k, n);
        let worst = 0;
        for (let i = 0; i < m * n; i++) worst = Math.max(worst, Math.abs(c[i]! - ref[i]!));
        expect(worst).toBeLessThan(1e-4);
      });
    }

    it(`${mm.name}: accepts subarray views`, () => {
      const big = randomF32(100, 3);
      const a = big.subarray(10, 16); // [2, 3]
      const b = big.subarray(50, 56); // [3, 2]
      const c = new Float32Array(4);
      mm.gemm(false, a, b, 2, 3, 2, c);
      const ref = reference(false, Float32Array.from(a), Float32Array.from(b), 2, 3, 2);
      for (let i = 0; i < 4; i++) expect(c[i]).toBeCloseTo(ref[i]!, 5);
    });
  }
});
