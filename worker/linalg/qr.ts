/**
 * Orthonormalisation of a tall matrix's columns in f64: modified Gram–Schmidt applied twice
 * ("twice is enough", Giraud et al. 2005), which gives columns orthonormal to working
 * precision even when the input columns are nearly dependent, as the columns of a power
 * iteration's sketch become. A column that vanishes (the matrix has lower rank than the
 * sketch) is set to zero rather than invented: it then carries a zero singular value.
 */

/**
 * Orthonormalises the columns of `a` ([rows, cols], row-major) in place: on return the
 * non-zero columns are orthonormal and span the same space as the input's leading columns.
 * Returns the number of non-zero columns.
 */
export function orthonormalizeColumns(a: Float64Array, rows: number, cols: number): number {
  // work column-major: columns are contiguous
  const q = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) q[j * rows + i] = a[i * cols + j]!;
  let kept = 0;
  for (let j = 0; j < cols; j++) {
    const cj = j * rows;
    let original = 0;
    for (let i = 0; i < rows; i++) original += q[cj + i]! * q[cj + i]!;
    original = Math.sqrt(original);
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        const cp = p * rows;
        let d = 0;
        for (let i = 0; i < rows; i++) d += q[cp + i]! * q[cj + i]!;
        if (d !== 0) for (let i = 0; i < rows; i++) q[cj + i]! -= d * q[cp + i]!;
      }
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += q[cj + i]! * q[cj + i]!;
    norm = Math.sqrt(norm);
    // a column reduced to rounding noise relative to its input is dependent on the earlier ones
    if (!(norm > 1e-12 * original) || norm === 0 || !Number.isFinite(norm)) {
      for (let i = 0; i < rows; i++) q[cj + i] = 0;
      continue;
    }
    for (let i = 0; i < rows; i++) q[cj + i]! /= norm;
    kept++;
  }
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) a[i * cols + j] = q[j * rows + i]!;
  return kept;
}
