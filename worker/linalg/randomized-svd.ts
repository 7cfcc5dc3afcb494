/**
 * Randomized SVD done block-wise, so that a matrix A [m, n] (a weight or a task-vector
 * tensor) is only ever seen one row block at a time (Halko, Martinsson & Tropp 2011,
 * "Finding structure with randomness", algorithms 4.3/4.4, run on the right singular
 * subspace so the carried state is n × ℓ, not m × ℓ):
 *
 *   pass 0:        Z = AᵀA·Ω        Ω [n, ℓ] Gaussian; per row block Y_b = A_b·Ω, Z += A_bᵀ·Y_b
 *   passes 1..p:   Z = AᵀA·Q        Q = orth(Z) of the previous pass (power iterations)
 *   last pass:     G = (AQ)ᵀ(AQ)    per row block (A_b·Q)ᵀ(A_b·Q); or AQ itself, rows in place
 *   then           AQ = U·Σ·Ṽᵀ from G's eigen-decomposition, A ≈ U·Σ·(Q·Ṽ)ᵀ
 *
 * Partials are folded in block order by the executor, so results do not depend on which
 * thread ran which block. Products go through the matmul backend (f32 in, f32 out); every
 * accumulation across blocks, the orthonormalisation and the small eigenproblem are f64.
 *
 * What is exact and what is estimated:
 * - ‖A‖_F² is exact (f64 sum of squares), reduced in pass 0.
 * - σ̂₁ ≥ σ̂₂ ≥ … ≥ σ̂_ℓ are Ritz values, lower bounds of the true σᵢ (σᵢ(AQ) ≤ σᵢ(A)); with
 *   p power iterations the leading ones converge like (σ_{ℓ+1}/σᵢ)^(2p+2). When ℓ = min(m, n)
 *   the sketch spans the whole row space and the spectrum is exact up to rounding.
 * - energy at rank k = Σ_{i≤k} σ̂ᵢ² / ‖A‖_F²: a lower bound, defined for k ≤ ℓ only.
 * - stable rank = ‖A‖_F² / σ̂₁²: an upper bound, tight once σ₁ has converged.
 * - effective rank (Roy & Vetterli 2007) = exp(H(p)), pᵢ = σᵢ / Σⱼσⱼ, needs every σ: the tail
 *   beyond ℓ is modelled as flat, min(m, n) − ℓ values sharing the exact residual energy
 *   ‖A‖_F² − Σσ̂ᵢ². A flat tail has the largest L1 mass and entropy that energy allows, so the
 *   estimate errs high when the true tail decays; exact when ℓ = min(m, n).
 */
import type { MatmulBackend } from './matmul-backend.js';
import { fillGaussian } from './gaussian.js';
import { orthonormalizeColumns } from './qr.js';
import { scratchF32 } from './scratch.js';

/** Sketch width ℓ: target rank plus oversampling, at most min(m, n). */
export function sketchWidth(target: number, oversample: number, m: number, n: number): number {
  return Math.max(1, Math.min(target + oversample, m, n));
}

let omegaCache: { key: string; value: Float32Array } | undefined;

/** The Gaussian test matrix Ω [n, l] (f32) of a tensor: a pure function of (seed, key), cached per thread. */
export function testMatrix(seed: number, key: string, n: number, l: number): Float32Array {
  const id = `${seed}|${key}|${n}|${l}`;
  if (omegaCache?.key === id) return omegaCache.value;
  const value = new Float32Array(n * l);
  fillGaussian(value, seed, key);
  omegaCache = { key: id, value };
  return value;
}

/** partial[offset..offset+n·l) += A_bᵀ·(A_b·Q): A_b [rows, n], Q [n, l]. */
export function accumulateNormalProduct(
  mm: MatmulBackend, a: Float32Array, rows: number, n: number, q: Float32Array, l: number,
  partial: Float64Array, offset: number,
): void {
  if (rows === 0) return;
  const y = scratchF32('rsvd.y', rows * l);
  mm.gemm(false, a, q, rows, n, l, y);
  const z = scratchF32('rsvd.z', n * l);
  mm.gemm(true, a, y, n, rows, l, z);
  for (let i = 0; i < n * l; i++) partial[offset + i]! += z[i]!;
}

/** partial[offset..offset+l·l) += (A_b·Q)ᵀ(A_b·Q). */
export function accumulateGram(
  mm: MatmulBackend, a: Float32Array, rows: number, n: number, q: Float32Array, l: number,
  partial: Float64Array, offset: number,
): void {
  if (rows === 0) return;
  const y = scratchF32('rsvd.y', rows * l);
  mm.gemm(false, a, q, rows, n, l, y);
  // ℓ×ℓ from rows×ℓ in f64 (rows·ℓ² multiply-adds, small next to the product above)
  for (let r = 0; r < rows; r++) {
    const yr = r * l;
    for (let i = 0; i < l; i++) {
      const yi = y[yr + i]!;
      if (yi === 0) continue;
      const gi = offset + i * l;
      for (let j = i; j < l; j++) partial[gi + j]! += yi * y[yr + j]!;
    }
  }
}

/** Writes the rows of A_b·Q into out[offset + rowStart·l ...] (f64), for an m × ℓ accumulator. */
export function projectRows(
  mm: MatmulBackend, a: Float32Array, rows: number, n: number, q: Float32Array, l: number,
  out: Float64Array, offset: number,
): void {
  if (rows === 0) return;
  const y = scratchF32('rsvd.y', rows * l);
  mm.gemm(false, a, q, rows, n, l, y);
  for (let i = 0; i < rows * l; i++) out[offset + i] = y[i]!;
}

/** Q = orth(Z) for the next power pass, as f32 for the products. `z` is [n, l] (copied). */
export function basisFrom(z: Float64Array, n: number, l: number): Float32Array {
  const work = Float64Array.from(z);
  orthonormalizeColumns(work, n, l);
  return Float32Array.from(work);
}

/** Completes an upper-triangle Gram accumulator into a full symmetric matrix (in place). */
export function symmetrizeUpper(g: Float64Array, l: number): void {
  for (let i = 0; i < l; i++) for (let j = i + 1; j < l; j++) g[j * l + i] = g[i * l + j]!;
}

export interface SpectrumSummary {
  /** σ̂₁..σ̂_ℓ (descending) */
  readonly top: number[];
  /** ‖A‖_F² (exact) */
  readonly frobenius2: number;
  /** true when the sketch spans the whole row space (ℓ = min(m, n)) */
  readonly exact: boolean;
  /** ‖A‖_F² / σ̂₁² (0 for a zero matrix) */
  readonly stableRank: number;
  /** exp(entropy of σ/Σσ), tail modelled flat when not exact */
  readonly effectiveRank: number;
  /** energy captured at rank k, by k; null when k > ℓ and not exact */
  readonly energy: Record<string, number | null>;
}

/** The spectrum statistics from Ritz values and the exact Frobenius norm (see the file comment). */
export function summarizeSpectrum(sigma: ArrayLike<number>, frobenius2: number, m: number, n: number, ranks: readonly number[]): SpectrumSummary {
  const l = sigma.length;
  const d = Math.min(m, n);
  const exact = l >= d;
  const top = Array.from(sigma);
  let captured = 0;
  for (const s of top) captured += s * s;
  const s1 = top[0] ?? 0;
  const stableRank = s1 > 0 ? frobenius2 / (s1 * s1) : 0;
  // effective rank
  const tailCount = exact ? 0 : d - l;
  const tailEnergy = Math.max(0, frobenius2 - captured);
  const tailSigma = tailCount > 0 ? Math.sqrt(tailEnergy / tailCount) : 0;
  let l1 = tailCount * tailSigma;
  for (const s of top) l1 += s;
  let entropy = 0;
  if (l1 > 0) {
    for (const s of top) if (s > 0) entropy -= (s / l1) * Math.log(s / l1);
    if (tailSigma > 0) entropy -= tailCount * (tailSigma / l1) * Math.log(tailSigma / l1);
  }
  const effectiveRank = l1 > 0 ? Math.exp(entropy) : 0;
  const energy: Record<string, number | null> = {};
  for (const k of ranks) {
    if (k > l && !exact) {
      energy[String(k)] = null;
      continue;
    }
    let e = 0;
    for (let i = 0; i < Math.min(k, l); i++) e += top[i]! * top[i]!;
    energy[String(k)] = frobenius2 > 0 ? Math.min(1, e / frobenius2) : 0;
  }
  return { top, frobenius2, exact, stableRank, effectiveRank, energy };
}

