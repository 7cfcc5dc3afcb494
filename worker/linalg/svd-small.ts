/**
 * Small dense decompositions in f64: the cyclic Jacobi eigenvalue method for a symmetric
 * matrix (Golub & Van Loan, Matrix Computations §8.5), and from it the singular values and
 * right singular vectors of a tall matrix B given its Gram matrix BᵀB. Sizes here are
 * the sketch width ℓ (tens to a few hundred), where Jacobi's simplicity and accuracy win.
 */

export interface SymmetricEigen {
  /** eigenvalues, descending */
  readonly values: Float64Array;
  /** eigenvectors as columns of an [n, n] row-major matrix, in the order of `values` */
  readonly vectors: Float64Array;
}

/** Eigen-decomposition of the symmetric [n, n] row-major matrix `a` (not modified). */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  const m = Float64Array.from(a.subarray(0, n * n));
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale = Math.max(scale, Math.abs(m[i]!));
  for (let sweep = 0; sweep < 100 && scale > 0; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off = Math.max(off, Math.abs(m[p * n + q]!));
    if (off <= 1e-15 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (Math.abs(apq) <= 1e-300) continue;
        const app = m[p * n + p]!;
        const aqq = m[q * n + q]!;
        // rotation angle that zeroes a_pq: tan(2θ) = 2a_pq / (a_qq − a_pp)
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k * n + p]!;
          const akq = m[k * n + q]!;
          m[k * n + p] = c * akp - s * akq;
          m[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p * n + k]!;
          const aqk = m[q * n + k]!;
          m[p * n + k] = c * apk - s * aqk;
          m[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => m[y * n + y]! - m[x * n + x]! || x - y);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = m[src * n + src]!;
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!;
  });
  return { values, vectors };
}

export interface GramSvd {
  /** singular values of B, descending (√ of the Gram eigenvalues, negatives from rounding clamped to 0) */
  readonly sigma: Float64Array;
  /** right singular vectors of B as columns of an [ℓ, ℓ] row-major matrix */
  readonly v: Float64Array;
}

/**
 * Singular values and right singular vectors of B from G = BᵀB ([l, l]). Squaring loses
 * relative accuracy for singular values below about 1e-7·σ₁ in f64, far below the precision
 * of the f32 (or bf16) weights they come from.
 */
export function svdFromGram(gram: Float64Array, l: number): GramSvd {
  const { values, vectors } = symmetricEigen(gram, l);
  const sigma = new Float64Array(l);
  for (let i = 0; i < l; i++) sigma[i] = Math.sqrt(Math.max(0, values[i]!));
  // a deterministic sign: the largest-magnitude component of each vector is positive
  for (let j = 0; j < l; j++) {
    let best = 0;
    for (let k = 0; k < l; k++) if (Math.abs(vectors[k * l + j]!) > Math.abs(vectors[best * l + j]!)) best = k;
    if (vectors[best * l + j]! < 0) for (let k = 0; k < l; k++) vectors[k * l + j] = -vectors[k * l + j]!;
  }
  return { sigma, v: vectors };
}
