/**
 * Gram matrices of task vectors, the whole-tensor statistic behind model_stock, multislerp and
 * karcher: G[i][k] = Σⱼ vᵢ[j]·vₖ[j] with vᵢ = xᵢ − base (or xᵢ without a base), accumulated per
 * block in f64 from f32 task vectors (the values mergekit works on) and folded in block order.
 */

let vecs: Float32Array[] = [];

/** The task vectors of a range of elements, rounded to f32, in per-thread scratch. */
export function taskVectors(xs: readonly Float32Array[], base: Float32Array | undefined, from: number, to: number): Float32Array[] {
  const len = to - from;
  if (vecs.length < xs.length || (vecs[0]?.length ?? 0) < len) {
    const size = Math.max(len, vecs[0]?.length ?? 0);
    vecs = xs.map(() => new Float32Array(size));
  }
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const v = vecs[i]!;
    if (base) for (let j = 0; j < len; j++) v[j] = x[from + j]! - base[from + j]!;
    else for (let j = 0; j < len; j++) v[j] = x[from + j]!;
  }
  return vecs;
}

/** Adds Σⱼ vᵢ[j]·vₖ[j] (j < len) to g[i·n + k] for i ≤ k (n = vs.length used: `count`). */
export function addGram(vs: readonly Float32Array[], count: number, len: number, g: Float64Array, offset = 0): void {
  for (let i = 0; i < count; i++) {
    const a = vs[i]!;
    for (let k = i; k < count; k++) {
      const b = vs[k]!;
      let s = 0;
      for (let j = 0; j < len; j++) s += a[j]! * b[j]!;
      g[offset + i * count + k]! += s;
    }
  }
}

/** The full symmetric matrix from an upper triangle (a copy). */
export function symmetric(g: Float64Array, n: number, offset = 0): number[][] {
  const m: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row: number[] = [];
    for (let k = 0; k < n; k++) row.push(i <= k ? g[offset + i * n + k]! : g[offset + k * n + i]!);
    m.push(row);
  }
  return m;
}

/** cᵀ G d */
export function quad(g: readonly (readonly number[])[], c: readonly number[], d: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < c.length; i++) {
    if (c[i] === 0) continue;
    let r = 0;
    for (let k = 0; k < d.length; k++) r += g[i]![k]! * d[k]!;
    s += c[i]! * r;
  }
  return s;
}
