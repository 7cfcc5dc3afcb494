/**
 * The last step of generalized task arithmetic, per element: the thinned, rescaled, weighted
 * task vectors vᵢ = wᵢ·sᵢ·mᵢ·δᵢ (f32, as mergekit's weighted deltas) are summed, with sign
 * consensus when asked (keep the vᵢ whose sign is the elected one; 0 is never kept), divided by
 * the sum of the kept weights when normalising, scaled by λ and added to the base. Specialised
 * loops for two and three models (the common merges), a general one beyond.
 *
 * A NaN or ±Inf vᵢ left out by the consensus still poisons the sum (it adds 0·vᵢ), as mergekit's
 * `(weighted_deltas * mask).sum()` does; a NaN vote elects −1 (a NaN comparison is false).
 */

export interface CombineArgs {
  readonly vs: readonly Float32Array[];
  readonly weights: readonly number[];
  readonly base: Float32Array;
  readonly out: Float32Array;
  readonly n: number;
  readonly consensus: 'none' | 'sum' | 'count';
  readonly normalize: boolean;
  readonly lambda: number;
}

const DIVISOR_EPS = 1e-8;

let vote = new Float64Array(0);
let mixed = new Float64Array(0);
let divs = new Float64Array(0);

const sign = (v: number): number => (v > 0 ? 1 : v < 0 ? -1 : v === 0 ? 0 : NaN);

export function combine(a: CombineArgs): void {
  const { vs, weights, base, out, n, lambda } = a;
  const m = vs.length;
  if (m === 0) {
    out.set(base.subarray(0, n));
    return;
  }
  if (a.consensus === 'none') {
    let div = 0;
    for (const w of weights) div += w;
    if (!a.normalize || Math.abs(div) < DIVISOR_EPS) div = 1;
    const f = lambda / div;
    if (m === 1) {
      const v0 = vs[0]!;
      for (let j = 0; j < n; j++) out[j] = base[j]! + f * v0[j]!;
    } else if (m === 2) {
      const v0 = vs[0]!, v1 = vs[1]!;
      for (let j = 0; j < n; j++) out[j] = base[j]! + f * (v0[j]! + v1[j]!);
    } else if (m === 3) {
      const v0 = vs[0]!, v1 = vs[1]!, v2 = vs[2]!;
      for (let j = 0; j < n; j++) out[j] = base[j]! + f * (v0[j]! + v1[j]! + v2[j]!);
    } else {
      for (let j = 0; j < n; j++) out[j] = 0;
      for (const v of vs) for (let j = 0; j < n; j++) out[j] = out[j]! + v[j]!;
      for (let j = 0; j < n; j++) out[j] = base[j]! + f * out[j]!;
    }
    return;
  }
  const bySum = a.consensus === 'sum';
  const norm = a.normalize;
  // branch-free forms (signs are random, so branches mispredict): with p = [vote ≥ 0] and
  // pᵢ = [vᵢ > 0], nᵢ = [vᵢ < 0], model i agrees iff kᵢ = nᵢ + p·(pᵢ − nᵢ) = 1
  if (m === 2 && bySum) {
    const v0 = vs[0]!, v1 = vs[1]!;
    const w0 = weights[0]!, w1 = weights[1]!;
    for (let j = 0; j < n; j++) {
      const x = v0[j]!;
      const y = v1[j]!;
      const p = +(x + y >= 0);
      const nx = +(x < 0), ny = +(y < 0);
      const kx = nx + p * (+(x > 0) - nx);
      const ky = ny + p * (+(y > 0) - ny);
      const s = x * kx + y * ky;
      if (norm) {
        const d = w0 * kx + w1 * ky;
        out[j] = base[j]! + lambda * (s / (d + +(d === 0)));
      } else out[j] = base[j]! + lambda * s;
    }
    return;
  }
  if (m === 3 && bySum) {
    const v0 = vs[0]!, v1 = vs[1]!, v2 = vs[2]!;
    const w0 = weights[0]!, w1 = weights[1]!, w2 = weights[2]!;
    for (let j = 0; j < n; j++) {
      const x = v0[j]!;
      const y = v1[j]!;
      const z = v2[j]!;
      const p = +(x + y + z >= 0);
      const nx = +(x < 0), ny = +(y < 0), nz = +(z < 0);
      const kx = nx + p * (+(x > 0) - nx);
      const ky = ny + p * (+(y > 0) - ny);
      const kz = nz + p * (+(z > 0) - nz);
      const s = x * kx + y * ky + z * kz;
      if (norm) {
        const d = w0 * kx + w1 * ky + w2 * kz;
        out[j] = base[j]! + lambda * (s / (d + +(d === 0)));
      } else out[j] = base[j]! + lambda * s;
    }
    return;
  }
  // any number of models, any consensus: model by model over scratch rows
  if (vote.length < n) {
    vote = new Float64Array(n);
    mixed = new Float64Array(n);
    divs = new Float64Array(n);
  }
  vote.fill(0, 0, n);
  mixed.fill(0, 0, n);
  divs.fill(0, 0, n);
  for (const v of vs) {
    if (bySum) for (let j = 0; j < n; j++) vote[j]! += v[j]!;
    else for (let j = 0; j < n; j++) vote[j]! += sign(v[j]!);
  }
  for (let i = 0; i < m; i++) {
    const v = vs[i]!;
    const w = weights[i]!;
    for (let j = 0; j < n; j++) {
      const x = v[j]!;
      if (vote[j]! >= 0 ? x > 0 : x < 0) {
        mixed[j]! += x;
        divs[j]! += w;
      } else mixed[j]! += 0 * x;
    }
  }
  for (let j = 0; j < n; j++) {
    const d = divs[j]!;
    out[j] = base[j]! + lambda * (norm ? mixed[j]! / (d === 0 ? 1 : d) : mixed[j]!);
  }
}

export interface ThinnedSumArgs {
  /** base, then the models: δᵢ = f32(xᵢ − base) */
  readonly inputs: readonly Float32Array[];
  /** fᵢ = wᵢ·sᵢ, the weight and rescale of model i */
  readonly factors: readonly number[];
  /** model i keeps δ iff |δ|'s f32 bits exceed thᵢ (−1: all; T − 1 or T: above a cut, ties in or out) */
  readonly thresholds: readonly number[];
  readonly weights: readonly number[];
  readonly out: Float32Array;
  readonly n: number;
  readonly normalize: boolean;
  readonly lambda: number;
}

// the divisor for each agreement pattern k = Σ kᵢ·2ⁱ: Σ wᵢ·kᵢ, 1 where that is 0 (computed as combine does)
const divisors = new Float64Array(8);

function fillDivisors(weights: readonly number[], m: number): void {
  for (let k = 0; k < 1 << m; k++) {
    let dw = weights[0]! * (k & 1);
    for (let i = 1; i < m; i++) dw += weights[i]! * ((k >> i) & 1);
    divisors[k] = dw + +(dw === 0);
  }
}

/**
 * TIES' whole map in one loop, for two or three models with sum consensus: per element, δᵢ,
 * vᵢ = f32(fᵢ·δᵢ·[|δᵢ| above the cut]), then `combine`'s sign election and sum, with the same
 * f32 roundings and the same operations in the same order, so the same bytes as thinning each
 * vector and then calling `combine`. Returns false (nothing written) for other model counts.
 */
export function combineThinnedSum(a: ThinnedSumArgs): boolean {
  const { inputs, factors, thresholds, weights, out, n, lambda } = a;
  const m = inputs.length - 1;
  if (m !== 2 && m !== 3) return false;
  // key > thᵢ (f32 bits of |δ|, integers) ⟺ |δ| ≥ Fᵢ, the float whose bits are thᵢ + 1, or δ is
  // NaN: compared as floats, δ never goes through memory to get its bits. A threshold in the NaN
  // range has no such float: the general path handles it.
  const lo: number[] = [];
  // gᵢ = 0 keeps nothing (thᵢ = 2³¹ − 1: no key exceeds it; the multiply by 0 still turns NaN δ into NaN)
  const g: number[] = [];
  for (let i = 0; i < m; i++) {
    const next = thresholds[i]! + 1;
    if (next > 0x7fffffff) {
      lo.push(0);
      g.push(0);
      continue;
    }
    if (next > 0x7f800000) return false;
    thBits[0] = next;
    lo.push(thFloat[0]!);
    g.push(1);
  }
  const base = inputs[0]!;
  const norm = a.normalize;
  const dt = divisors;
  fillDivisors(weights, m);
  const fr = Math.fround;
  if (m === 2) {
    const x0 = inputs[1]!, x1 = inputs[2]!;
    const f0 = factors[0]!, f1 = factors[1]!;
    const l0 = lo[0]!, l1 = lo[1]!;
    const g0 = g[0]!, g1 = g[1]!;
    for (let j = 0; j < n; j++) {
      const b = base[j]!;
      const d0 = fr(x0[j]! - b);
      const d1 = fr(x1[j]! - b);
      const x = fr(f0 * d0 * (g0 & +!(Math.abs(d0) < l0)));
      const y = fr(f1 * d1 * (g1 & +!(Math.abs(d1) < l1)));
      const p = +(x + y >= 0);
      const nx = +(x < 0), ny = +(y < 0);
      const kx = nx + p * (+(x > 0) - nx);
      const ky = ny + p * (+(y > 0) - ny);
      const s = x * kx + y * ky;
      out[j] = norm ? b + lambda * (s / dt[kx + 2 * ky]!) : b + lambda * s;
    }
    return true;
  }
  const x0 = inputs[1]!, x1 = inputs[2]!, x2 = inputs[3]!;
  const f0 = factors[0]!, f1 = factors[1]!, f2 = factors[2]!;
  const l0 = lo[0]!, l1 = lo[1]!, l2 = lo[2]!;
  const g0 = g[0]!, g1 = g[1]!, g2 = g[2]!;
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    const d0 = fr(x0[j]! - b);
    const d1 = fr(x1[j]! - b);
    const d2 = fr(x2[j]! - b);
    const x = fr(f0 * d0 * (g0 & +!(Math.abs(d0) < l0)));
    const y = fr(f1 * d1 * (g1 & +!(Math.abs(d1) < l1)));
    const z = fr(f2 * d2 * (g2 & +!(Math.abs(d2) < l2)));
    const p = +(x + y + z >= 0);
    const nx = +(x < 0), ny = +(y < 0), nz = +(z < 0);
    const kx = nx + p * (+(x > 0) - nx);
    const ky = ny + p * (+(y > 0) - ny);
    const kz = nz + p * (+(z > 0) - nz);
    const s = x * kx + y * ky + z * kz;
    out[j] = norm ? b + lambda * (s / dt[kx + 2 * ky + 4 * kz]!) : b + lambda * s;
  }
  return true;
}

const thFloat = new Float32Array(1);
const thBits = new Uint32Array(thFloat.buffer);
