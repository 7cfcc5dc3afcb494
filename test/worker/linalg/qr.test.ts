import { describe, it, expect } from 'vitest';
import { orthonormalizeColumns } from '../../../worker/linalg/qr.js';
import { randomNormal } from '../kernels/research-harness.js';

function gram(q: Float64Array, rows: number, cols: number): Float64Array {
  const g = new Float64Array(cols * cols);
  for (let a = 0; a < cols; a++) for (let b = 0; b < cols; b++) {
    let s = 0;
    for (let i = 0; i < rows; i++) s += q[i * cols + a]! * q[i * cols + b]!;
    g[a * cols + b] = s;
  }
  return g;
}

describe('orthonormalizeColumns', () => {
  it('hand-computed: [[3, 1], [4, 2]]', () => {
    const a = Float64Array.of(3, 1, 4, 2);
    expect(orthonormalizeColumns(a, 2, 2)).toBe(2);
    expect(a[0]).toBeCloseTo(0.6, 14);
    expect(a[2]).toBeCloseTo(0.8, 14);
    // second column: [1,2] minus its projection on [0.6, 0.8] (= 2.2) → [-0.32, 0.24] → [-0.8, 0.6]
    expect(a[1]).toBeCloseTo(-0.8, 14);
    expect(a[3]).toBeCloseTo(0.6, 14);
  });

  it('gives orthonormal columns spanning the input, even for nearly dependent columns', () => {
    const rows = 500;
    const cols = 20;
    const a = randomNormal(rows * cols, 5);
    // make column 7 nearly a copy of column 3
    for (let i = 0; i < rows; i++) a[i * cols + 7] = a[i * cols + 3]! + 1e-9 * a[i * cols + 7]!;
    const orig = Float64Array.from(a);
    orthonormalizeColumns(a, rows, cols);
    const g = gram(a, rows, cols);
    for (let x = 0; x < cols; x++) for (let y = 0; y < cols; y++) expect(Math.abs(g[x * cols + y]! - (x === y ? 1 : 0))).toBeLessThan(1e-12);
    // span: each original column is reproduced by its projection on Q
    for (const j of [0, 7, 19]) {
      let err = 0;
      let nrm = 0;
      const coef = new Float64Array(cols);
      for (let c = 0; c < cols; c++) for (let i = 0; i < rows; i++) coef[c]! += a[i * cols + c]! * orig[i * cols + j]!;
      for (let i = 0; i < rows; i++) {
        let p = 0;
        for (let c = 0; c < cols; c++) p += a[i * cols + c]! * coef[c]!;
        err += (p - orig[i * cols + j]!) ** 2;
        nrm += orig[i * cols + j]! ** 2;
      }
      expect(Math.sqrt(err / nrm)).toBeLessThan(1e-10);
    }
  });

  it('zeroes exactly dependent and zero columns', () => {
    const a = Float64Array.of(1, 2, 0, 2, 4, 0); // [[1,2,0],[2,4,0]]: column 1 = 2·column 0, column 2 = 0
    expect(orthonormalizeColumns(a, 2, 3)).toBe(1);
    expect(Array.from(a, (x) => Math.abs(x) < 1e-15 ? 0 : x).filter((x, i) => i % 3 !== 0)).toEqual([0, 0, 0, 0]);
  });
});
