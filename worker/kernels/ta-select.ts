/**
 * Exact top-k membership over a whole tensor, block by block, with no sort and no
 * whole-tensor buffer: the selection behind TIES (`magnitude`), breadcrumbs
 * (`magnitude_outliers`) and SCE's variance mask.
 *
 * Elements are ordered by a non-negative f32 key (|δ|, a variance), larger first; equal keys
 * are ordered by flat index, lower first. A *cut* of rank r splits off the r first elements of
 * that order ("above the cut"). Because f32 bits of non-negative numbers sort like the numbers,
 * the cut value T is found by a radix select over the key bits, as reduce passes:
 *
 *   pass 0  histogram of the high 16 bits              → T's bucket, how many to take in it, and
 *                                                        how many keys the bucket holds (C)
 *   pass 1  the bucket's keys with their flat indices   → T exactly and the flat index of the last
 *           (when C ≤ candidateCap: the usual case,       key equal to T above the cut
 *           about 0.2% of a tensor), appended in block order
 *   fallback, only for cuts whose bucket is crowded (C > candidateCap, e.g. many equal keys):
 *   pass 2  histogram of the low 15 bits in that bucket → T exactly, m = how many keys equal to T are above
 *   pass 3  count of keys equal to T per block, folded in block order → the block holding the m-th
 *           of them, and how many of them that block keeps
 *
 * so an element is above the cut iff key > T, or key = T and it is among the first m such in flat
 * order. Passes a cut does not need are skipped (no block is read), so the usual case reads the
 * inputs twice before the map. Each pass is O(n); a block sends only the histogram buckets it
 * touched and its candidates, folded (added, appended) in block order, so the result does not
 * depend on which thread ran which block.
 */
import { WeightspaceError } from '../../core/errors.js';

export const SELECT_PASSES = 4;

const HI_SHIFT = 15;
const HI_BUCKETS = 1 << 16;
const LO_BUCKETS = 1 << 15;
const LO_MASK = LO_BUCKETS - 1;
const KEY_MASK = 0x7fffffff;

/** Tunables (tests lower candidateCap to exercise the counting fallback). */
export const SELECT_LIMITS = { candidateCap: 1 << 18 };

/** A cut: the `rank` first elements (in key order) of key source `source`. */
export interface Cut {
  readonly source: number;
  readonly rank: number;
}

export type CutKind = 'none' | 'all' | 'cut';

/** Plain data (sent to threads): per cut, what the passes so far have found. */
export interface SelectState {
  readonly kind: CutKind[];
  /** high 16 bits of T (after pass 0), then T (after pass 1 or 2) */
  readonly t: number[];
  /** keys still to take from the current bucket (after pass 0), then from those equal to T (after pass 2) */
  readonly need: number[];
  /** after pass 0: keys in T's bucket, and whether the cut resolves by candidates ('cand') or counts ('count') */
  readonly bucketCount: number[];
  readonly mode: ('cand' | 'count')[];
  /** after pass 1 ('cand'): flat index of the last key equal to T above the cut */
  readonly cutIndex: number[];
  /** after pass 3 ('count'): the block holding the last tie above the cut, and how many ties it keeps */
  readonly tieBlock: number[];
  readonly tieRank: number[];
}

/** Initial state: cuts of rank ≤ 0 keep nothing, cuts of rank ≥ n keep everything, without any pass. */
export function initSelect(cuts: readonly Cut[], n: number): SelectState {
  const kind: CutKind[] = cuts.map((c) => (c.rank <= 0 ? 'none' : c.rank >= n ? 'all' : 'cut'));
  return {
    kind,
    t: cuts.map(() => 0),
    need: cuts.map((c) => c.rank),
    bucketCount: cuts.map(() => 0),
    mode: cuts.map(() => 'count'),
    cutIndex: cuts.map(() => -1),
    tieBlock: cuts.map(() => -1),
    tieRank: cuts.map(() => 0),
  };
}

/** Whether any cut needs the select passes. */
export function needsSelect(cuts: readonly Cut[], n: number): boolean {
  return cuts.some((c) => c.rank > 0 && c.rank < n);
}

export function selectPartialLength(pass: number, cuts: readonly Cut[]): number {
  if (pass === 0 || pass === 1) return 0; // the reducer returns its own compact partial (selectTake)
  if (pass === 2) return cuts.length * LO_BUCKETS;
  return cuts.length * 4;
}

/** Where each candidate-mode cut's list starts in pass 1's accumulator: [count, (key, index)…]. */
function candidateOffsets(state: SelectState): number[] {
  const offs: number[] = [];
  let o = 0;
  for (let c = 0; c < state.kind.length; c++) {
    offs.push(o);
    if (state.kind[c] === 'cut' && state.mode[c] === 'cand') o += 1 + 2 * state.bucketCount[c]!;
  }
  offs.push(o);
  return offs;
}

export function selectAccumulatorLength(pass: number, cuts: readonly Cut[], sources: number, state: SelectState | undefined): number {
  if (pass === 0) return sources * HI_BUCKETS;
  if (pass === 1) return state ? candidateOffsets(state)[cuts.length]! : 0;
  return selectPartialLength(pass, cuts);
}

/** Passes no cut needs are skipped: pass 1 without candidate cuts, passes 2–3 without counting cuts. */
export function selectSkip(pass: number, state: SelectState | undefined): boolean {
  if (!state || pass === 0) return false;
  const want = pass === 1 ? 'cand' : 'count';
  return !state.kind.some((k, c) => k === 'cut' && state.mode[c] === want);
}

/** The fallback's low-bits histogram folds by sum (sparsely); the other passes have their own folds. */
export function selectFoldsBySum(pass: number): boolean {
  return pass === 2;
}

// pass 0's histogram of the block being reduced, per source, and the buckets it touched: a block
// touches a few thousand of the 2¹⁶ buckets, so only those are sent and reset
let hist = new Uint32Array(0);
let touched = new Int32Array(0);
let nTouched = 0;

function histScratch(sources: number): void {
  if (hist.length < sources * HI_BUCKETS) {
    hist = new Uint32Array(sources * HI_BUCKETS);
    touched = new Int32Array(sources * HI_BUCKETS);
    nTouched = 0;
  }
}

// pass 1's growing candidate list for the block being reduced: records [offset, count, (key, index)…]
let cand = new Float64Array(1 << 12);
let candLen = 0;
let candCut = -1;
let candCountAt = -1;

function candPush(x: number): void {
  if (candLen === cand.length) {
    const next = new Float64Array(cand.length * 2);
    next.set(cand);
    cand = next;
  }
  cand[candLen++] = x;
}

/**
 * Adds a run of elements starting at flat index `start` to the block's partial for select pass
 * `pass` (a block may be given in chunks, in order). `keys[s]` holds the f32 bits of source s's
 * keys (the sign bit is ignored, so raw δ bits give |δ|). Passes 0 and 1 collect into scratch
 * that `selectTake` hands over at the end of the block.
 */
export function selectReduce(
  pass: number, cuts: readonly Cut[], state: SelectState, keys: readonly Uint32Array[], n: number, partial: Float64Array, start = 0,
): void {
  if (pass === 0) {
    // one histogram per source that any live cut reads
    histScratch(keys.length);
    for (let s = 0; s < keys.length; s++) {
      let live = false;
      for (let c = 0; c < cuts.length; c++) if (cuts[c]!.source === s && state.kind[c] === 'cut') live = true;
      if (!live) continue;
      const k = keys[s]!;
      const off = s * HI_BUCKETS;
      for (let j = 0; j < n; j++) {
        const b = off + ((k[j]! & KEY_MASK) >>> HI_SHIFT);
        if (hist[b]!++ === 0) touched[nTouched++] = b;
      }
    }
    return;
  }
  if (pass === 1) {
    const offs = candidateOffsets(state);
    for (let c = 0; c < cuts.length; c++) {
      if (state.kind[c] !== 'cut' || state.mode[c] !== 'cand') continue;
      const k = keys[cuts[c]!.source]!;
      const t = state.t[c]!;
      if (candCut !== c) {
        // a new record for this cut (chunks of one block append to the same record in turn)
        candPush(offs[c]!);
        candCountAt = candLen;
        candPush(0);
        candCut = c;
      }
      let found = 0;
      for (let j = 0; j < n; j++) {
        const key = k[j]! & KEY_MASK;
        if (key >>> HI_SHIFT === t) {
          candPush(key & LO_MASK);
          candPush(start + j);
          found++;
        }
      }
      cand[candCountAt] = cand[candCountAt]! + found;
    }
    return;
  }
  for (let c = 0; c < cuts.length; c++) {
    if (state.kind[c] !== 'cut' || state.mode[c] !== 'count') continue;
    const k = keys[cuts[c]!.source]!;
    const t = state.t[c]!;
    if (pass === 2) {
      const off = c * LO_BUCKETS;
      for (let j = 0; j < n; j++) {
        const key = k[j]! & KEY_MASK;
        if (key >>> HI_SHIFT === t) partial[off + (key & LO_MASK)]!++;
      }
    } else {
      let ties = 0;
      for (let j = 0; j < n; j++) ties += +((k[j]! & KEY_MASK) === t);
      // accumulates: a block may be reduced in chunks
      partial[c * 4] = partial[c * 4]! + ties;
      partial[c * 4 + 1] = state.need[c]!;
    }
  }
}

/**
 * The block's compact partial of passes 0 and 1, to return from reduce once per block, after all
 * chunks (a fresh array: it is transferred): pass 0 (bucket, count) pairs of the touched buckets;
 * pass 1 the candidate records. Other passes fill the dense partial: undefined.
 */
export function selectTake(pass: number): Float64Array | undefined {
  if (pass === 0) {
    const out = new Float64Array(2 * nTouched);
    for (let k = 0; k < nTouched; k++) {
      const b = touched[k]!;
      out[2 * k] = b;
      out[2 * k + 1] = hist[b]!;
      hist[b] = 0;
    }
    nTouched = 0;
    return out;
  }
  if (pass === 1) {
    const out = cand.slice(0, candLen);
    candLen = 0;
    candCut = -1;
    return out;
  }
  return undefined;
}

/**
 * Folds one block's partial, in block order. Pass 0 adds its (bucket, count) pairs, pass 2 sums. Pass 1 appends each record's
 * candidates to its cut's list. Pass 3 finds the block where the m-th tie lies; fold sees no
 * state, so each partial carries m next to its tie count: partial per cut [ties in the block,
 * m, 0, 0], acc per cut [ties before, found, block, ties kept there].
 */
export function selectFold(pass: number, acc: Float64Array, partial: Float64Array, blockIndex: number): void {
  if (pass === 0) {
    for (let p = 0; p < partial.length; p += 2) acc[partial[p]!]! += partial[p + 1]!;
    return;
  }
  if (pass === 2) {
    for (let i = 0; i < partial.length; i++) acc[i]! += partial[i]!;
    return;
  }
  if (pass === 1) {
    for (let p = 0; p < partial.length;) {
      const off = partial[p]!;
      const count = partial[p + 1]!;
      const have = acc[off]!;
      acc.set(partial.subarray(p + 2, p + 2 + 2 * count), off + 1 + 2 * have);
      acc[off] = have + count;
      p += 2 + 2 * count;
    }
    return;
  }
  for (let o = 0; o < partial.length; o += 4) {
    const seen = acc[o]!;
    const here = partial[o]!;
    const m = partial[o + 1]!;
    if (acc[o + 1] === 0 && seen + here >= m) {
      acc[o + 1] = 1;
      acc[o + 2] = blockIndex;
      acc[o + 3] = m - seen;
    }
    acc[o] = seen + here;
  }
}

/** From the largest bucket down: the bucket where the running count first reaches `need`, and the count above it. */
function bucketOf(acc: Float64Array, off: number, buckets: number, need: number): { d: number; above: number } {
  let cum = 0;
  let d = buckets - 1;
  for (; d >= 0; d--) {
    const h = acc[off + d]!;
    if (cum + h >= need) break;
    cum += h;
  }
  if (d < 0) throw new WeightspaceError('internal', `select: rank ${need} beyond the histogram`);
  return { d, above: cum };
}

/** Turns a select pass's folded accumulator into the next state. */
export function selectFinish(pass: number, cuts: readonly Cut[], state: SelectState, acc: Float64Array): SelectState {
  const t = [...state.t];
  const need = [...state.need];
  const bucketCount = [...state.bucketCount];
  const mode = [...state.mode];
  const cutIndex = [...state.cutIndex];
  const tieBlock = [...state.tieBlock];
  const tieRank = [...state.tieRank];
  const offs = pass === 1 ? candidateOffsets(state) : [];
  let lo: Float64Array | undefined;
  for (let c = 0; c < cuts.length; c++) {
    if (state.kind[c] !== 'cut') continue;
    if (pass === 0) {
      const off = cuts[c]!.source * HI_BUCKETS;
      const { d, above } = bucketOf(acc, off, HI_BUCKETS, need[c]!);
      need[c] = need[c]! - above;
      t[c] = d;
      bucketCount[c] = acc[off + d]!;
      mode[c] = bucketCount[c]! <= SELECT_LIMITS.candidateCap ? 'cand' : 'count';
      continue;
    }
    if (pass === 1) {
      if (mode[c] !== 'cand') continue;
      // T's low bits from a histogram of the candidates, then the m-th candidate equal to T in
      // flat order (candidates were appended in block order, so they are in flat order)
      const off = offs[c]!;
      const count = acc[off]!;
      if (count !== bucketCount[c]) throw new WeightspaceError('internal', `select: ${count} candidates, the histogram said ${bucketCount[c]}`);
      lo ??= new Float64Array(LO_BUCKETS);
      lo.fill(0);
      for (let k = 0; k < count; k++) lo[acc[off + 1 + 2 * k]!]!++;
      const { d, above } = bucketOf(lo, 0, LO_BUCKETS, need[c]!);
      let m = need[c]! - above;
      let at = -1;
      for (let k = 0; k < count && m > 0; k++) {
        if (acc[off + 1 + 2 * k] === d && --m === 0) at = acc[off + 2 + 2 * k]!;
      }
      if (at < 0) throw new WeightspaceError('internal', `select: tie ${need[c]! - above} of bucket ${d} not found`);
      t[c] = (t[c]! << HI_SHIFT) | d;
      cutIndex[c] = at;
      continue;
    }
    if (mode[c] !== 'count') continue;
    if (pass === 3) {
      if (acc[c * 4 + 1] !== 1) throw new WeightspaceError('internal', `select: tie ${need[c]} of value ${t[c]} not found`);
      tieBlock[c] = acc[c * 4 + 2]!;
      tieRank[c] = acc[c * 4 + 3]!;
      continue;
    }
    const { d, above } = bucketOf(acc, c * LO_BUCKETS, LO_BUCKETS, need[c]!);
    need[c] = need[c]! - above;
    t[c] = (t[c]! << HI_SHIFT) | d;
  }
  return { kind: state.kind, t, need, bucketCount, mode, cutIndex, tieBlock, tieRank };
}

/** How many keys equal to T a block keeps: all, none, or (in the block holding the cut) a count. */
function tiesKept(state: SelectState, c: number, blockIndex: number, start: number, n: number): number {
  if (state.mode[c] === 'cand') {
    const at = state.cutIndex[c]!;
    if (at < start) return 0;
    if (at >= start + n) return Infinity;
    return -1; // decided per element by flat index
  }
  const tb = state.tieBlock[c]!;
  return blockIndex < tb ? Infinity : blockIndex > tb ? 0 : state.tieRank[c]!;
}

/**
 * Writes 1 to mask[j] for the block's elements above cut `c`, 0 for the others (after the select
 * passes). `keys` are the f32 bits of the cut's source for the block, which starts at flat `start`.
 */
export function aboveCut(state: SelectState, c: number, keys: Uint32Array, n: number, blockIndex: number, mask: Uint8Array, start: number): void {
  const kind = state.kind[c]!;
  if (kind !== 'cut') {
    mask.fill(kind === 'all' ? 1 : 0, 0, n);
    return;
  }
  const t = state.t[c]!;
  const kept = tiesKept(state, c, blockIndex, start, n);
  if (kept < 0) {
    const last = state.cutIndex[c]! - start;
    for (let j = 0; j < n; j++) {
      const key = keys[j]! & KEY_MASK;
      mask[j] = key > t || (key === t && j <= last) ? 1 : 0;
    }
    return;
  }
  let tiesLeft = kept;
  for (let j = 0; j < n; j++) {
    const key = keys[j]! & KEY_MASK;
    if (key > t) mask[j] = 1;
    else if (key < t) mask[j] = 0;
    else if (tiesLeft > 0) {
      mask[j] = 1;
      tiesLeft--;
    } else mask[j] = 0;
  }
}

/**
 * Thins in place by cut `c`: v[j] ← f·v[j] above the cut, 0·v[j] below (the fused form of
 * aboveCut and a multiply, for TIES' map). `bits` is the f32 bit view of `v` (|v| is the key).
 */
export function keepAboveCut(state: SelectState, c: number, v: Float32Array, bits: Uint32Array, n: number, blockIndex: number, f: number, start: number): void {
  const kind = state.kind[c]!;
  if (kind === 'none') {
    for (let j = 0; j < n; j++) v[j] = 0 * v[j]!;
    return;
  }
  if (kind === 'all') {
    for (let j = 0; j < n; j++) v[j] = f * v[j]!;
    return;
  }
  const t = state.t[c]!;
  const kept = tiesKept(state, c, blockIndex, start, n);
  // keys and T are below 2³¹, so (T − key − 1) >>> 31 is 1 exactly when key ≥ T: a branch-free mask.
  // A multiply by 0 keeps NaN and ±Inf as NaN, as mergekit's tensor·mask does.
  if (kept === Infinity) {
    // every tie at T in this block is above the cut
    for (let j = 0; j < n; j++) v[j] = f * v[j]! * ((t - (bits[j]! & KEY_MASK) - 1) >>> 31);
  } else if (kept === 0) {
    for (let j = 0; j < n; j++) v[j] = f * v[j]! * ((t - (bits[j]! & KEY_MASK)) >>> 31);
  } else if (kept < 0) {
    const last = state.cutIndex[c]! - start;
    for (let j = 0; j < n; j++) {
      const key = bits[j]! & KEY_MASK;
      v[j] = key > t || (key === t && j <= last) ? f * v[j]! : 0 * v[j]!;
    }
  } else {
    let tiesLeft = kept;
    for (let j = 0; j < n; j++) {
      const key = bits[j]! & KEY_MASK;
      v[j] = key > t || (key === t && tiesLeft-- > 0) ? f * v[j]! : 0 * v[j]!;
    }
  }
}
