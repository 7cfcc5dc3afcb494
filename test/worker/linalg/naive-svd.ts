/**
 * Independent reference for tests: singular values of a dense matrix by one-sided Jacobi
 * (Hestenes 1958) on whole arrays in f64 — a different algorithm from the source's Gram
 * eigen-decomposition, so the two cannot share a mistake.
 */
export function jacobiSingularValues(a: ArrayLike<number>, m: number, n: number): number[] {
  // work on columns of the thinner orientation: columns = min(m, n)
  const t = n > m;
  const rows = t ? n : m;
  const cols = t ? m : n;
  const u: Float64Array[] = [];
  for (let j = 0; j < cols; j++) {
    const c = new Float64Array(rows);
    for (let i = 0; i < rows; i++) c[i] = t ? a[j * n + i]! : a[i * n + j]!;
    u.push(c);
  }
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < cols; p++) {
      for (let q = p + 1; q < cols; q++) {
        const up = u[p]!;
        const uq = u[q]!;
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < rows; i++) {
          alpha += up[i]! * up[i]!;
          beta += uq[i]! * uq[i]!;
          gamma += up[i]! * uq[i]!;
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const tt = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + tt * tt);
        const s = c * tt;
        for (let i = 0; i < rows; i++) {
          const x = up[i]!;
          const y = uq[i]!;
          up[i] = c * x - s * y;
          uq[i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  return u.map((c) => Math.sqrt(c.reduce((s, x) => s + x * x, 0))).sort((x, y) => y - x);
}

/** A realistic task-vector-like matrix: Σ_k s_k·u_k·v_kᵀ with decaying s_k, plus small noise. */
export function lowRankPlusNoise(m: number, n: number, rank: number, noise: number, normal: (n: number, seed: number) => Float64Array, seed: number): Float32Array {
  const u = normal(m * rank, seed);
  const v = normal(n * rank, seed + 1);
  const e = normal(m * n, seed + 2);
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let x = 0;
      for (let k = 0; k < rank; k++) x += Math.pow(0.8, k) * u[i * rank + k]! * v[j * rank + k]!;
      out[i * n + j] = (x / Math.sqrt(n)) + noise * e[i * n + j]!;
    }
  }
  return out;
}
