/** The contract of a matrix-product backend (worker/linalg/matmul.ts chooses one). */
export interface MatmulBackend {
  readonly name: 'onnxruntime' | 'naive';
  /**
   * C[m×n] = op(A)·B, all row-major f32. op(A) = A with A stored [m, k] when `transA` is
   * false; op(A) = Aᵀ with A stored [k, m] when true. B is [k, n]. Writes c[0..m·n).
   */
  gemm(transA: boolean, a: Float32Array, b: Float32Array, m: number, k: number, n: number, c: Float32Array): void;
}
