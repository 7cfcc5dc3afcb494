import { describe, it, expect } from 'vitest';
import { svdFromGram, symmetricEigen } from '../../../worker/linalg/svd-small.js';
import { randomNormal } from '../kernels/research-harness.js';

describe('symmetricEigen', () => {
  it('hand-computed 2×2: [[2, 1], [1, 2]] has eigenvalues 3 and 1', () => {
    const { values, vectors } = symmetricEigen(Float64Array.of(2, 1, 1, 2), 2);
    expect(values[0]).toBeCloseTo(3, 14);
    expect(values[1]).toBeCloseTo(1, 14);
    expect(Math.abs(vectors[0]!)).toBeCloseTo(Math.SQRT1_2, 14);
    expect(vectors[0]! * vectors[2]!).toBeGreaterThan(0); // (1, 1)/√2
  });

  it('A·V = V·Λ with orthonormal V for a random symmetric matrix, eigenvalues descending', () => {
    const n = 30;
    const x = randomNormal(n * n, 9);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = x[i * n + j]! + x[j * n + i]!;
    const { values, vectors } = symmetricEigen(a, n);
    for (let k = 1; k < n; k++) expect(values[k - 1]!).toBeGreaterThanOrEqual(values[k]!);
    let worst = 0;
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) {
      let av = 0;
      for (let j = 0; j < n; j++) av += a[i * n + j]! * vectors[j * n + k]!;
      worst = Math.max(worst, Math.abs(av - values[k]! * vectors[i * n + k]!));
    }
    expect(worst).toBeLessThan(1e-10);
    let orth = 0;
    for (let p = 0; p < n; p++) for (let q = 0; q < n; q++) {
      let d = 0;
      for (let i = 0; i < n; i++) d += vectors[i * n + p]! * vectors[i * n + q]!;
      orth = Math.max(orth, Math.abs(d - (p === q ? 1 : 0)));
    }
    expect(orth).toBeLessThan(1e-12);
  });

  it('handles a zero matrix and tied eigenvalues', () => {
    expect(Array.from(symmetricEigen(new Float64Array(9), 3).values)).toEqual([0, 0, 0]);
    const { values } = symmetricEigen(Float64Array.of(5, 0, 0, 0, 5, 0, 0, 0, 1), 3);
    expect(Array.from(values)).toEqual([5, 5, 1]);
  });
});

describe('svdFromGram', () => {
  it('singular values of B = diag(3, 2) padded: √ of BᵀB eigenvalues; negatives clamped', () => {
    const { sigma } = svdFromGram(Float64Array.of(9, 0, 0, 4), 2);
    expect(Array.from(sigma)).toEqual([3, 2]);
    expect(Array.from(svdFromGram(Float64Array.of(-1e-20, 0, 0, 0), 2).sigma)).toEqual([0, 0]);
  });
});
