/**
 * The last step of generalized task arithmetic, per element: the thinned, rescaled, weighted
 * task vectors vᵢ = wᵢ·sᵢ·mᵢ·δᵢ (f32, as mergekit's weighted deltas) are summed, with sign
 * consensus when asked (keep the vᵢ whose sign is the elected one; 0 is never kept), divided by
 * the sum of the kept weights when normalising, scaled by λ and added to the base. Specialised
 * loops for two and three models (the common merges), a general one beyond.
 *
 * With sign consensus (TIES and its kin) the loops compute in f32, every operation rounded to
 * f32 (Math.fround after each step; weights and λ rounded to f32 first), as torch computes
 * mergekit's f32 merges: the SIMD backend's f32x4 loops then give the same bits, and f32
 * division runs four lanes at a time where f64 would run two at twice the latency. Without
 * consensus the sum keeps f64 intermediates and is rounded once.
 *
 * A NaN or ±Inf vᵢ left out by the consensus still poisons the sum (it adds 0·vᵢ), as mergekit's
 * `(weighted_deltas * mask).sum()` does; a NaN vote elects −1 (a NaN comparison is false).
 */
import type { RawBf16 } from '../../core/kernel-contract.js';
import { simdFor, simdUse } from '../simd/simd-module.js';

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

let vote = new Float32Array(0);
let mixed = new Float32Array(0);
let divs = new Float32Array(0);

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
    const fr = Math.fround;
    const v0 = vs[0]!, v1 = vs[1]!;
    const w0 = fr(weights[0]!), w1 = fr(weights[1]!);
    const lam = fr(lambda);
    for (let j = 0; j < n; j++) {
      const x = v0[j]!;
      const y = v1[j]!;
      const p = +(fr(x + y) >= 0);
      const nx = +(x < 0), ny = +(y < 0);
      const kx = nx + p * (+(x > 0) - nx);
      const ky = ny + p * (+(y > 0) - ny);
      const s = fr(x * kx + y * ky);
      if (norm) {
        const d = fr(w0 * kx + w1 * ky);
        out[j] = fr(base[j]! + fr(lam * fr(s / (d + +(d === 0)))));
      } else out[j] = fr(base[j]! + fr(lam * s));
    }
    return;
  }
  if (m === 3 && bySum) {
    const fr = Math.fround;
    const v0 = vs[0]!, v1 = vs[1]!, v2 = vs[2]!;
    const w0 = fr(weights[0]!), w1 = fr(weights[1]!), w2 = fr(weights[2]!);
    const lam = fr(lambda);
    for (let j = 0; j < n; j++) {
      const x = v0[j]!;
      const y = v1[j]!;
      const z = v2[j]!;
      const p = +(fr(fr(x + y) + z) >= 0);
      const nx = +(x < 0), ny = +(y < 0), nz = +(z < 0);
      const kx = nx + p * (+(x > 0) - nx);
      const ky = ny + p * (+(y > 0) - ny);
      const kz = nz + p * (+(z > 0) - nz);
      const s = fr(fr(x * kx + y * ky) + z * kz);
      if (norm) {
        const d = fr(fr(w0 * kx + w1 * ky) + w2 * kz);
        out[j] = fr(base[j]! + fr(lam * fr(s / (d + +(d === 0)))));
      } else out[j] = fr(base[j]! + fr(lam * s));
    }
    return;
  }
  // any number of models, any consensus: model by model over f32 scratch rows (each += rounds to f32)
  if (vote.length < n) {
    vote = new Float32Array(n);
    mixed = new Float32Array(n);
    divs = new Float32Array(n);
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
    const w = Math.fround(weights[i]!);
    for (let j = 0; j < n; j++) {
      const x = v[j]!;
      if (vote[j]! >= 0 ? x > 0 : x < 0) {
        mixed[j]! += x;
        divs[j]! += w;
      } else mixed[j]! += 0 * x;
    }
  }
  const fr = Math.fround;
  const lam = fr(lambda);
  for (let j = 0; j < n; j++) {
    const d = divs[j]!;
    out[j] = fr(base[j]! + fr(lam * (norm ? fr(mixed[j]! / (d === 0 ? 1 : d)) : mixed[j]!)));
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
  /** the inputs as undecoded BF16: the SIMD loop reads them raw, other paths decode them first */
  readonly bf16?: RawBf16;
}

/**
 * TIES' whole map, for one to three models with sum consensus (one loop on the SIMD backend): per element, δᵢ,
 * vᵢ = f32(f32(fᵢ)·(δᵢ·[|δᵢ| above the cut])) (the mask first, as mergekit thins before it weights:
 * a dropped finite δ gives ±0 even where fᵢ·δᵢ would overflow), then `combine`'s sign election and sum, in f32 with
 * the same operations in the same order, so the same bits as thinning each vector (with the
 * factor rounded to f32) and then calling `combine`. Returns false (nothing written) for other
 * model counts.
 */
export function combineThinnedSum(a: ThinnedSumArgs): boolean {
  const { inputs, thresholds, weights, out, n } = a;
  const m = inputs.length - 1;
  if (m < 1 || m > 3) return false;
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
  const fr = Math.fround;
  const f = a.factors.map(fr);
  const w = weights.map(fr);
  const lam = fr(a.lambda);
  const norm = a.normalize;
  const raw = a.bf16?.raw;
  if (raw) {
    // the result as f32, encoded by the runner: a BF16 encode inside these loops (tried) was 10–17%
    // slower than the loop plus encodeBf16 on its own (the loops already use every vector register)
    const k = simdFor(out, ...raw);
    if (k) {
      simdUse.rawBf16++;
      const at = out.byteOffset;
      if (m === 1) k.tiesMap1Bf16(raw[0]!.byteOffset, raw[1]!.byteOffset, at, n, f[0]!, lo[0]!, g[0]!, w[0]!, +norm, lam);
      else if (m === 3) {
        k.tiesMap3Bf16(
          raw[0]!.byteOffset, raw[1]!.byteOffset, raw[2]!.byteOffset, raw[3]!.byteOffset, at, n,
          f[0]!, f[1]!, f[2]!, lo[0]!, lo[1]!, lo[2]!, g[0]!, g[1]!, g[2]!, w[0]!, w[1]!, w[2]!, +norm, lam,
        );
      } else {
        k.tiesMap2Bf16(raw[0]!.byteOffset, raw[1]!.byteOffset, raw[2]!.byteOffset, at, n, f[0]!, f[1]!, lo[0]!, lo[1]!, g[0]!, g[1]!, w[0]!, w[1]!, +norm, lam);
      }
      return true;
    }
  }
  a.bf16?.decode();
  const base = inputs[0]!;
  const x0 = inputs[1]!;
  if (m === 1) {
    const k = simdFor(base, x0, out);
    if (k) {
      k.tiesMap1(base.byteOffset, x0.byteOffset, out.byteOffset, n, f[0]!, lo[0]!, g[0]!, w[0]!, +norm, lam);
      return true;
    }
  } else if (m === 2) {
    const x1 = inputs[2]!;
    const k = simdFor(base, x0, x1, out);
    if (k) {
      // one loop on the SIMD backend (the same f32 operations in the same order as below, so the same bits)
      k.tiesMap2(base.byteOffset, x0.byteOffset, x1.byteOffset, out.byteOffset, n, f[0]!, f[1]!, lo[0]!, lo[1]!, g[0]!, g[1]!, w[0]!, w[1]!, +norm, lam);
      return true;
    }
  } else {
    const x1 = inputs[2]!;
    const x2 = inputs[3]!;
    const k = simdFor(base, x0, x1, x2, out);
    if (k) {
      k.tiesMap3(
        base.byteOffset, x0.byteOffset, x1.byteOffset, x2.byteOffset, out.byteOffset, n,
        f[0]!, f[1]!, f[2]!, lo[0]!, lo[1]!, lo[2]!, g[0]!, g[1]!, g[2]!, w[0]!, w[1]!, w[2]!, +norm, lam,
      );
      return true;
    }
  }
  // JavaScript: the thinned vectors into scratch rows, then combine's sum-consensus loop
  while (thin.length < m || thin[0]!.length < n) thin = Array.from({ length: 3 }, () => new Float32Array(Math.max(n, thin[0]?.length ?? 0)));
  for (let i = 0; i < m; i++) {
    const x = inputs[i + 1]!;
    const v = thin[i]!;
    const fi = f[i]!, li = lo[i]!, gi = g[i]!;
    for (let j = 0; j < n; j++) {
      const d = fr(x[j]! - base[j]!);
      v[j] = fi * (d * (gi & +!(Math.abs(d) < li)));
    }
  }
  combine({ vs: thin.slice(0, m), weights, base, out, n, consensus: 'sum', normalize: norm, lambda: a.lambda });
  return true;
}

// combineThinnedSum's JavaScript rows: vᵢ for up to three models
let thin: Float32Array[] = [];

const thFloat = new Float32Array(1);
const thBits = new Uint32Array(thFloat.buffer);
