/**
 * DELLA's MagPrune keep probabilities (Deep et al. 2024, arXiv 2406.11617; mergekit
 * `della_magprune`): within each row, the elements ranked by |δ| ascending get keep
 * probabilities spread linearly from ρ−ε (smallest) to ρ+ε (largest):
 *
 *   p = (ρ − ε) + 2ε · rank / (L − 1),   rank ∈ 0..L−1
 *
 * Equal magnitudes are ranked by position, lower first (mergekit's argsort leaves their order
 * to torch); NaN ranks above every number, as in torch's sort. A row of one element gets p = ρ
 * (mergekit divides 0 by 0 there). Ranks come from a stable LSD radix sort of the magnitude
 * bits (four 8-bit digits, digits shared by the whole row skipped): O(L) per row.
 */

let keys = new Uint32Array(0);
let order = new Uint32Array(0);
let spare = new Uint32Array(0);
const counts = new Uint32Array(256);

/**
 * Writes the keep probability of each of the `len` elements of `bits` (f32 bits of δ, one row)
 * to probs[0..len).
 */
export function dellaRowProbs(bits: Uint32Array, len: number, density: number, epsilon: number, probs: Float64Array): void {
  if (len === 1) {
    probs[0] = density;
    return;
  }
  if (keys.length < len) {
    keys = new Uint32Array(len);
    order = new Uint32Array(len);
    spare = new Uint32Array(len);
  }
  let a = order;
  let b = spare;
  for (let j = 0; j < len; j++) {
    keys[j] = bits[j]! & 0x7fffffff;
    a[j] = j;
  }
  for (let shift = 0; shift < 32; shift += 8) {
    counts.fill(0);
    for (let j = 0; j < len; j++) counts[(keys[j]! >>> shift) & 255]!++;
    // a digit every element shares does not reorder anything
    if (counts[(keys[0]! >>> shift) & 255] === len) continue;
    let sum = 0;
    for (let d = 0; d < 256; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
    for (let r = 0; r < len; r++) {
      const j = a[r]!;
      b[counts[(keys[j]! >>> shift) & 255]!++] = j;
    }
    const t = a;
    a = b;
    b = t;
  }
  const lo = density - epsilon;
  const step = (2 * epsilon) / (len - 1);
  for (let r = 0; r < len; r++) probs[a[r]!] = lo + step * r;
}
