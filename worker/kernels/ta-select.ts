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
 *           and, with the SIMD backend, speculative       how many keys the bucket holds (C); when
 *           windows: the low bits of the keys within      every block's window holds T's bucket, T
 *           ±2 buckets of each block's own cut bucket     exactly and the tie block from the windows
 *           (a block that reuses the windows of the       alone: passes 1 and 2 are skipped
 *           block before sends its histogram lumped
 *           outside them, exact only inside all windows)
 *           (a tensor whose blocks miss the windows of the block before twice on a thread, as
 *           low-rank deltas' blocks do, counts the rest of its blocks' histograms in full there,
 *           with windows around where the thread's blocks so far put the cut: with no block
 *           lumped, pass 2 then finds T among the keys of its bucket, reading only the blocks
 *           whose windows did not hold it)
 *   pass 1  only when a lumped histogram was needed outside the windows: the histogram again, and
 *           one window for every block, around where the blocks' windows were; when it holds T's
 *           bucket (the lumped histogram put T near the true one), it resolves the cut as pass 0's
 *           would have, and pass 2 is skipped
 *   pass 2  per block, the bucket's distinct low 15 bits → T exactly, m = how many keys equal to T
 *           with their counts, appended in block order     are above, the block holding the m-th of
 *           (a few dozen pairs a block, however many        them and how many of them it keeps
 *           keys tie: BF16 deltas tie at the cut by the
 *           thousand; after an exact pass-0 histogram, only the blocks whose pass-0 windows missed
 *           T's bucket are read: the others' pairs came with their windows, SelectState.readBlocks)
 *   fallback, only for cuts whose records overflow the accumulator's room (more than
 *   candidateCap / 2 pairs in all, e.g. f32 keys spread over a crowded bucket):
 *   pass 3  histogram of the low 15 bits in that bucket → T exactly, m
 *   pass 4  count of keys equal to T per block, folded in block order → the block holding the m-th
 *           of them, and how many of them that block keeps
 *
 * so an element is above the cut iff key > T, or key = T and it is among the first m such in flat
 * order. Passes a cut does not need are skipped (no block is read), so the usual case reads the
 * inputs once before the map (the windows resolve the cut), else twice, rarely three times. Each
 * pass is O(n); a block sends only the histogram buckets it touched and its records, folded
 * (added, appended) in block order, so the result does not depend on which thread ran which block.
 */
import { WeightspaceError } from '../../core/errors.js';
import type { RawBf16 } from '../../core/kernel-contract.js';
import { simdFor, simdUse, simdWords, type SimdKernels } from '../simd/simd-module.js';

export const SELECT_PASSES = 5;

const HI_SHIFT = 15;
const HI_BUCKETS = 1 << 16;
const LO_BUCKETS = 1 << 15;
const LO_MASK = LO_BUCKETS - 1;
const KEY_MASK = 0x7fffffff;

/**
 * Tunables (tests lower candidateCap to exercise the counting fallback, and raise spreadMisses and
 * set lumpUntrusted to keep blocks that drift lumping their histograms: see tensorSeen). A cut's
 * pass-1 records get min(4·C, 2·candidateCap) accumulator slots (a record of k pairs takes
 * 2 + 2k ≤ 4k slots, so C ≤ candidateCap / 2 never overflows); candidateCap 0 skips pass 1 for
 * the counting passes.
 */
export const SELECT_LIMITS = { candidateCap: 1 << 18, windowRoomCap: 1 << 21, windows: true, pass1Windows: true, spreadMisses: 2, lumpUntrusted: false, estimateWindows: true };

/**
 * How often pass 0's windows resolved a cut, blocks lumped their histogram, cuts needed pass 1's
 * true histogram, and blocks of spread tensors counted theirs alone: tests check the paths ran.
 */
export const SELECT_STATS = {
  resolvedByWindows: 0, fusedWindowBlocks: 0, histogramPasses: 0, resolvedByPass1Windows: 0, spreadBlocks: 0,
  /** spread blocks that collected windows around their thread's estimate of the tensor's cut */
  estimateWindowBlocks: 0,
  /** pass 2's blocks not read, their keys in T's bucket known from pass 0's windows */
  candidateBlocksSkipped: 0,
};

// pass 0's speculative windows: ±WIN_HALF high buckets around each block's own cut bucket
const WIN_HALF = 2;
const WIN_WIDTH = 2 * WIN_HALF + 1;
// pass 1's windows (after windows that missed): one for all blocks, around where pass 0 put the cut
const WIN1_WIDTH = 16;
// spread blocks' windows, around their thread's estimate of the cut (estimateWindows): on the
// bench's rank-8 merge (one thread) 4, 8, 16 and 32 buckets left 33%, 21%, 14% and 11% of pass 2's
// 2,154 blocks to read
const EST_WIDTH = 16;
const WIN_MAX = Math.max(WIN1_WIDTH, EST_WIDTH);

/** Where pass 0's accumulator and partial put a tensor's windows (task arithmetic gives it; SCE does not). */
export interface WindowLayout {
  /** histogram sources (the models) */
  readonly sources: number;
  readonly numel: number;
  /** blocks of the tensor (finish checks that every block reported its window) */
  readonly blockCount: number;
}

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
  /** after pass 0: keys in T's bucket, and whether the cut resolves by pass 1's records ('cand') or counts ('count') */
  readonly bucketCount: number[];
  readonly mode: ('cand' | 'count' | 'done' | 'rehist')[];
  /** after pass 0 ('cand'): accumulator slots for the cut's pass-1 records */
  readonly room: number[];
  /** after pass 1 ('cand') or 3 ('count'): the block holding the last tie above the cut, and how many ties it keeps */
  readonly tieBlock: number[];
  readonly tieRank: number[];
  /** after pass 0 ('rehist'): the first bucket of the window pass 1 collects in every block (−1: none) */
  readonly win: number[];
  /**
   * after pass 0 ('cand'), when pass 0's histogram was exact and some blocks' windows held T's
   * bucket: the blocks pass 2 must read for the cut (the others are not read for it), and the
   * bucket's keys of the blocks it need not read, from their window records, as (block, low
   * bits, count) triples in block order (a typed array: the state goes with every block's
   * request); null: every block. Dropped after pass 2.
   */
  readonly readBlocks: (number[] | null)[];
  readonly known: (Float64Array | null)[];
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
    room: cuts.map(() => 0),
    tieBlock: cuts.map(() => -1),
    tieRank: cuts.map(() => 0),
    win: cuts.map(() => -1),
    readBlocks: cuts.map(() => null),
    known: cuts.map(() => null),
  };
}

/** Whether a histogram pass counts cut c's keys: pass 0 for every live cut, pass 1 for those whose pass 0 was not exact where it mattered. */
function histogramLive(pass: number, state: SelectState, c: number): boolean {
  return state.kind[c] === 'cut' && (pass === 0 || state.mode[c] === 'rehist');
}

/** Whether any cut needs the select passes. */
export function needsSelect(cuts: readonly Cut[], n: number): boolean {
  return cuts.some((c) => c.rank > 0 && c.rank < n);
}

export function selectPartialLength(pass: number, cuts: readonly Cut[]): number {
  if (pass <= 2) return 0; // the reducer returns its own compact partial (selectTake)
  if (pass === 3) return cuts.length * LO_BUCKETS;
  return cuts.length * 4;
}

/**
 * Where each candidate-mode cut's region starts in pass 1's accumulator: [used (−1: overflowed),
 * records…], a record being [block index, k, (low bits, count)×k] for a block with k > 0.
 */
function candidateOffsets(state: SelectState): number[] {
  const offs: number[] = [];
  let o = 0;
  for (let c = 0; c < state.kind.length; c++) {
    offs.push(o);
    if (state.kind[c] === 'cut' && state.mode[c] === 'cand') o += 1 + state.room[c]!;
  }
  offs.push(o);
  return offs;
}

/** The room for one cut's window records in pass 0's accumulator. */
function windowRoom(numel: number): number {
  return Math.min(SELECT_LIMITS.windowRoomCap, Math.max(1 << 12, Math.ceil(numel / 16)));
}

/**
 * Where each live cut's window region starts in pass 0's (and pass 1's) accumulator (after the
 * histograms), and the end: [blocks seen, highest window start, lowest window end, used (−1:
 * overflowed), lowest window start, highest window end, records…], a record being [block index,
 * window start, k, (index, count)×k], index = (bucket − start)·2¹⁵ + low bits.
 */
const WIN_HEADER = 6;

function windowOffsets(cuts: readonly Cut[], sources: number, numel: number): number[] {
  const offs: number[] = [];
  // the slot after the histograms counts the blocks that lumped their histogram outside their windows
  let o = sources * HI_BUCKETS + 1;
  for (let c = 0; c < cuts.length; c++) {
    offs.push(o);
    // the live cuts (initSelect's kind 'cut') have a region
    const rank = cuts[c]!.rank;
    if (rank > 0 && rank < numel) o += WIN_HEADER + windowRoom(numel);
  }
  offs.push(o);
  return offs;
}

/** Whether pass `pass` collects windows: pass 0 when they are on, pass 1 for the cuts whose pass-0 windows missed (SelectState.win). */
function windowedPass(pass: number, state: SelectState | undefined): boolean {
  return pass === 0 ? SELECT_LIMITS.windows : pass === 1 && (state?.win.some((w) => w >= 0) ?? false);
}

export function selectAccumulatorLength(
  pass: number, cuts: readonly Cut[], sources: number, state: SelectState | undefined, layout?: WindowLayout,
): number {
  if (pass === 0 || pass === 1) return layout && windowedPass(pass, state) ? windowOffsets(cuts, layout.sources, layout.numel)[cuts.length]! : sources * HI_BUCKETS;
  if (pass === 2) return state ? candidateOffsets(state)[cuts.length]! : 0;
  return selectPartialLength(pass, cuts);
}

/**
 * Zeroes what a reused accumulator (selectAccumulatorLength's) must hold before pass `pass`'s
 * folds: the histograms and each window region's header, or each candidate region's count of
 * used slots. The records after them are read only up to that count, so they may keep whatever
 * the last tensor left: zeroing them cost more than the rest of the main thread's folding
 * (about 650 MB per merge of three 1.16 GB checkpoints), as was zeroing those of the passes skipped.
 */
export function selectClearAccumulator(
  pass: number, cuts: readonly Cut[], state: SelectState | undefined, layout: WindowLayout | undefined, acc: Float64Array,
): void {
  // a pass no cut needs (selectSkip) has no blocks, and its finish reads nothing of it
  if (selectSkip(pass, state)) return;
  if ((pass === 0 || pass === 1) && layout && windowedPass(pass, state)) {
    const offs = windowOffsets(cuts, layout.sources, layout.numel);
    acc.fill(0, 0, offs[0]!);
    for (let c = 0; c < cuts.length; c++) if (offs[c + 1]! > offs[c]!) acc.fill(0, offs[c]!, offs[c]! + WIN_HEADER);
    return;
  }
  if (pass === 2 && state) {
    const offs = candidateOffsets(state);
    for (let c = 0; c < cuts.length; c++) if (offs[c + 1]! > offs[c]!) acc[offs[c]!] = 0;
    return;
  }
  acc.fill(0);
}

/** Passes no cut needs are skipped: pass 1 without cuts to histogram again, pass 2 without candidate cuts, passes 3–4 without counting cuts. */
export function selectSkip(pass: number, state: SelectState | undefined): boolean {
  if (!state || pass === 0) return false;
  const want = pass === 1 ? 'rehist' : pass === 2 ? 'cand' : 'count';
  return !state.kind.some((k, c) => k === 'cut' && state.mode[c] === want);
}

/** Pass 2 need not read a block whose keys in T's bucket pass 0's windows gave for every cut it looks for (SelectState.readBlocks). */
export function selectSkipBlock(pass: number, state: SelectState | undefined, blockIndex: number): boolean {
  if (pass !== 2 || !state) return false;
  for (let c = 0; c < state.kind.length; c++) {
    if (state.kind[c] !== 'cut' || state.mode[c] !== 'cand') continue;
    const read = state.readBlocks[c];
    if (!read || read.includes(blockIndex)) return false;
  }
  SELECT_STATS.candidateBlocksSkipped++;
  return true;
}

/** The fallback's low-bits histogram folds by sum (sparsely); the other passes have their own folds. */
export function selectFoldsBySum(pass: number): boolean {
  return pass === 3;
}

// pass 0's histogram of the block being reduced, per source, and the buckets it touched: a block
// touches a few thousand of the 2¹⁶ buckets, so only those are sent and reset
let hist = new Uint32Array(0);
let touched = new Int32Array(0);
let nTouched = 0;

function histScratch(sources: number): void {
  // one more counter: pass 0's count of blocks that lumped their histogram (windowOffsets)
  if (hist.length < sources * HI_BUCKETS + 1) {
    hist = new Uint32Array(sources * HI_BUCKETS + 1);
    touched = new Int32Array(sources * HI_BUCKETS + 1);
    nTouched = 0;
  }
}

// pass 1's histograms of the low bits in T's bucket for the block being reduced, one per cut, and
// the entries each touched; the cuts seen in the block, in order, with their region and room
let loHist = new Uint32Array(0);
let loTouched = new Int32Array(0);
const loCount: number[] = [];
const candCuts: number[] = [];
const candOff: number[] = [];
const candRoom: number[] = [];

function candScratch(cuts: number): void {
  if (loHist.length < cuts * LO_BUCKETS) {
    loHist = new Uint32Array(cuts * LO_BUCKETS);
    loTouched = new Int32Array(cuts * LO_BUCKETS);
  }
  while (loCount.length < cuts) loCount.push(0);
}

/** Registers cut c in the block's pass-1 record list (once per block: chunks of a block add to the same record). */
function candBegin(state: SelectState, c: number, offs: readonly number[]): void {
  if (candCuts.includes(c)) return;
  candCuts.push(c);
  candOff[c] = offs[c]!;
  candRoom[c] = state.room[c]!;
  loCount[c] = 0;
}

// the f32 bits of one δ: a store and a load, no array of δ
const one = new Float32Array(1);
const oneBits = new Uint32Array(one.buffer);
const two = new Float32Array(2);
const twoBits = new Uint32Array(two.buffer);

/**
 * Adds a run of a block's elements to its partial for select pass `pass` (a block may be given
 * in chunks, in order). `keys[s]` holds the f32 bits of source s's
 * keys (the sign bit is ignored, so raw δ bits give |δ|). Passes 0 and 1 collect into scratch
 * that `selectTake` hands over at the end of the block.
 */
export function selectReduce(
  pass: number, cuts: readonly Cut[], state: SelectState, keys: readonly Uint32Array[], n: number, partial: Float64Array,
): void {
  if (pass === 0 || pass === 1) {
    // one histogram per source that any live cut reads (pass 1: that needs it again)
    histScratch(keys.length);
    for (let s = 0; s < keys.length; s++) {
      let live = false;
      for (let c = 0; c < cuts.length; c++) if (cuts[c]!.source === s && histogramLive(pass, state, c)) live = true;
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
  if (pass === 2) {
    const offs = candidateOffsets(state);
    candScratch(cuts.length);
    for (let c = 0; c < cuts.length; c++) {
      if (state.kind[c] !== 'cut' || state.mode[c] !== 'cand') continue;
      candBegin(state, c, offs);
      const k = keys[cuts[c]!.source]!;
      const t = state.t[c]!;
      const h = loHist;
      const tc = loTouched;
      const off = c * LO_BUCKETS;
      let nt = loCount[c]!;
      for (let j = 0; j < n; j++) {
        const key = k[j]! & KEY_MASK;
        if (key >>> HI_SHIFT === t) {
          const b = off + (key & LO_MASK);
          if (h[b]!++ === 0) tc[off + nt++] = b;
        }
      }
      loCount[c] = nt;
    }
    return;
  }
  for (let c = 0; c < cuts.length; c++) {
    if (state.kind[c] !== 'cut' || state.mode[c] !== 'count') continue;
    const k = keys[cuts[c]!.source]!;
    const t = state.t[c]!;
    if (pass === 3) {
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
  if (pass === 0 || pass === 1) {
    addToRun();
    const out = new Float64Array(2 * nTouched + winLen);
    for (let k = 0; k < nTouched; k++) {
      const b = touched[k]!;
      out[2 * k] = b;
      out[2 * k + 1] = hist[b]!;
      hist[b] = 0;
    }
    out.set(winRecords.subarray(0, winLen), 2 * nTouched);
    nTouched = 0;
    winLen = 0;
    return out;
  }
  if (pass === 2) {
    // per cut seen: [region offset, room, k, (low bits, count)×k]
    let len = 0;
    for (const c of candCuts) len += 3 + 2 * loCount[c]!;
    const out = new Float64Array(len);
    let o = 0;
    for (const c of candCuts) {
      const k = loCount[c]!;
      const off = c * LO_BUCKETS;
      out[o++] = candOff[c]!;
      out[o++] = candRoom[c]!;
      out[o++] = k;
      for (let i = 0; i < k; i++) {
        const b = loTouched[off + i]!;
        out[o++] = b - off;
        out[o++] = loHist[b]!;
        loHist[b] = 0;
      }
      loCount[c] = 0;
    }
    candCuts.length = 0;
    return out;
  }
  return undefined;
}

/**
 * selectReduce for passes 0 to 2 with keys |δₛ|, δₛ = f32(xₛ − base), computed as they are read
 * (no δ array): `inputs` are [base, x₀, x₁, …], source s being xₛ. With `bf16` (the runner left
 * the BF16 blocks undecoded), the SIMD histogram and candidate loops read them as they are; the
 * window loops and the JavaScript ones decode them first. The counting fallback (passes 3 and 4)
 * takes key arrays through selectReduce.
 */
export function selectReduceDeltas(
  pass: 0 | 1 | 2, cuts: readonly Cut[], state: SelectState, inputs: readonly Float32Array[], n: number, windows?: WindowBlock, bf16?: RawBf16,
): void {
  const base = inputs[0]!;
  if (pass === 0 || pass === 1) {
    const sources = inputs.length - 1;
    histScratch(sources);
    const live: boolean[] = [];
    for (let s = 0; s < sources; s++) live.push(cuts.some((c, i) => c.source === s && histogramLive(pass, state, i)));
    const k = simdScratch(sources * HI_BUCKETS, inputs);
    if (k) {
      // the SIMD backend counts into a dense histogram of its own, then hands over the touched buckets
      const h = simdCounts.byteOffset;
      // with the tensor given, pass 0 also collects speculative windows (accumulatorLength made room)
      const w = windows && windowedPass(pass, state) && windowScratch(cuts.length) ? windows : undefined;
      const seen = pass === 0 && w ? tensorSeen(w) : undefined;
      const fused = seen && (seen.trusted || SELECT_LIMITS.lumpUntrusted) && !spread(seen) ? fusedWindows(cuts, state, w!.tensor) : undefined;
      if (w && fused) {
        if (lumpedWindows(k, cuts, state, inputs, n, w, fused, bf16)) {
          SELECT_STATS.fusedWindowBlocks++;
          return;
        }
        seen!.misses++;
        seen!.trusted = false;
      }
      // the histogram and window loops read BF16 as it is where the pass gets it raw (widened as
      // loaded: the decoded values, so the same counts)
      const raw = bf16?.raw;
      if (!raw) bf16?.decode();
      const at = (i: number): number => (raw ? raw[i]! : inputs[i]!).byteOffset;
      if (sources === 2 && live[0] && live[1]) (raw ? k.histDeltas2Bf16 : k.histDeltas2)(at(0), at(1), at(2), n, h);
      else for (let s = 0; s < sources; s++) if (live[s]) (raw ? k.histDeltasBf16 : k.histDeltas)(at(0), at(s + 1), n, h + 4 * s * HI_BUCKETS);
      if (raw) simdUse.rawHistogram++;
      if (seen) {
        if (!spread(seen)) {
          const before = recentWindows.get(w!.tensor);
          const los = collectWindows(k, cuts, state, raw ?? inputs, raw !== undefined, n, w!);
          // a block whose own windows sit where the block before put its own (its cut in their
          // middle three buckets) lets the next blocks lump; one whose windows moved is a miss
          if (before && nearWindows(before, los)) seen.trusted = true;
          else if (before && !fused) seen.misses++;
        } else {
          SELECT_STATS.spreadBlocks++;
          const los = SELECT_LIMITS.estimateWindows ? estimateWindows(cuts, state, seen, w!.numel) : undefined;
          if (los) {
            scanWindows(k, cuts, los, EST_WIDTH, raw ?? inputs, raw !== undefined, n, w!.numel);
            SELECT_STATS.estimateWindowBlocks++;
          }
        }
        // from the tensor's first miss on, the blocks counted in full feed its run (selectTake)
        if (seen.misses > 0) pendingRun = { seen, sources, n };
      } else if (w) collectPass1Windows(k, cuts, state, inputs, n, w); // pass 1: decoded (readsRawBf16)
      nTouched = takeSimdCounts(k, 0, sources * HI_BUCKETS, 0, hist, touched, nTouched);
      return;
    }
    bf16?.decode();
    if (sources === 2 && live[0] && live[1]) {
      // both models in one loop: the base is read once
      nTouched = histDeltas2(base, inputs[1]!, inputs[2]!, n, hist, touched, nTouched);
      return;
    }
    for (let s = 0; s < sources; s++) {
      if (live[s]) nTouched = histDeltas(base, inputs[s + 1]!, n, s * HI_BUCKETS, hist, touched, nTouched);
    }
    return;
  }
  const offs = candidateOffsets(state);
  candScratch(cuts.length);
  const live: number[] = [];
  for (let c = 0; c < cuts.length; c++) if (state.kind[c] === 'cut' && state.mode[c] === 'cand') live.push(c);
  const k = simdScratch(cuts.length * LO_BUCKETS, inputs);
  // the SIMD loops read BF16 blocks as they are; the JavaScript ones the decoded copies
  const raw = k ? bf16?.raw : undefined;
  if (!raw) bf16?.decode();
  else simdUse.rawCandidates++;
  const at = (i: number): number => (raw ? raw[i]! : inputs[i]!).byteOffset;
  if (live.length === 2 && cuts[live[0]!]!.source !== cuts[live[1]!]!.source) {
    // two models' cuts in one loop: the base is read once
    const [c0, c1] = live as [number, number];
    candBegin(state, c0, offs);
    candBegin(state, c1, offs);
    const s0 = cuts[c0]!.source + 1;
    const s1 = cuts[c1]!.source + 1;
    if (!k) {
      lowDeltas2(base, inputs[s0]!, inputs[s1]!, n, state.t[c0]!, state.t[c1]!, c0, c1);
      return;
    }
    const off0 = c0 * LO_BUCKETS;
    const off1 = c1 * LO_BUCKETS;
    (raw ? k.lowDeltas2Bf16 : k.lowDeltas2)(at(0), at(s0), at(s1), n, state.t[c0]!, state.t[c1]!, simdCounts.byteOffset + 4 * off0, simdCounts.byteOffset + 4 * off1);
    loCount[c0] = takeSimdCounts(k, off0, LO_BUCKETS, off0, loHist, loTouched.subarray(off0), loCount[c0]!);
    loCount[c1] = takeSimdCounts(k, off1, LO_BUCKETS, off1, loHist, loTouched.subarray(off1), loCount[c1]!);
    return;
  }
  for (const c of live) {
    candBegin(state, c, offs);
    const x = inputs[cuts[c]!.source + 1]!;
    const off = c * LO_BUCKETS;
    if (k) {
      (raw ? k.lowDeltasBf16 : k.lowDeltas)(at(0), at(cuts[c]!.source + 1), n, state.t[c]!, simdCounts.byteOffset + 4 * off);
      loCount[c] = takeSimdCounts(k, off, LO_BUCKETS, off, loHist, loTouched.subarray(off), loCount[c]!);
      continue;
    }
    loCount[c] = lowDeltas(base, x, n, state.t[c]!, off, loHist, loTouched, loCount[c]!);
  }
}

// pass 0's window records of the block being reduced, in the partial's form (selectTake appends them)
let winRecords = new Float64Array(0);
let winLen = 0;
let simdWindow = new Uint32Array(0);
let simdWindowPairs = new Uint32Array(0);
let simdAbove = new Uint32Array(0);

/** A block's tensor, for pass 0's windows (task arithmetic gives it; SCE does not). */
export interface WindowBlock {
  readonly tensor: string;
  readonly numel: number;
  /** the block's index in the tensor (a lower one than the thread saw last starts a new pass) */
  readonly index: number;
}

// per cut: the window's counters and one spare counter that the two-model loops' misses go to,
// then the list of the counters the block touched ([length, indices…], see takeTouched)
const WIN_SPAN = WIN_MAX << HI_SHIFT;
const WIN_AREA = WIN_SPAN + 4;
const WIN_CUT = WIN_AREA + 1 + WIN_AREA;

/** The window counters for `cuts` cuts, in the SIMD memory (false when it has no room). */
function windowScratch(cuts: number): boolean {
  if (simdWindow.length < cuts * WIN_CUT) {
    simdWindow = simdWords(cuts * WIN_CUT);
    simdWindowPairs = simdWords(2 * WIN_SPAN);
    simdAbove = simdWords(cuts);
  }
  return simdFor(simdWindow, simdWindowPairs, simdAbove) !== undefined;
}

const windowAt = (c: number): number => simdWindow.byteOffset + 4 * c * WIN_CUT;
const listAt = (c: number): number => windowAt(c) + 4 * WIN_AREA;

/** Moves cut c's touched window counters (zeroing them) to (index, count) pairs in simdWindowPairs; returns how many. */
const takeWindow = (k: SimdKernels, c: number, width: number): number => k.takeTouched(windowAt(c), listAt(c), width << HI_SHIFT, simdWindowPairs.byteOffset);

/**
 * Per cut (of those live), the start of its window in this block: WIN_HALF buckets below the
 * bucket where the block's share of the rank, rank·n/numel, falls in the block's own histogram
 * (still in simdCounts).
 */
function ownWindows(k: SimdKernels, cuts: readonly Cut[], state: SelectState, n: number, numel: number): Map<number, number> {
  const los = new Map<number, number>();
  for (let c = 0; c < cuts.length; c++) {
    if (state.kind[c] !== 'cut') continue;
    const cut = cuts[c]!;
    const need = Math.min(n, Math.max(1, Math.round((cut.rank * n) / numel)));
    const b = k.localBucket(simdCounts.byteOffset + 4 * cut.source * HI_BUCKETS, need);
    if (b >= 0) los.set(c, Math.max(0, b - WIN_HALF)); // b < 0 cannot happen (need ≤ n): no window then, and pass 1 runs
  }
  return los;
}

// the windows each tensor's latest block chose on this thread (a guess for its next block)
const recentWindows = new Map<string, Map<number, number>>();

/**
 * Pass 0 on this thread, per tensor: the last block index seen, how many blocks missed the windows
 * of the block before, and whether blocks may lump.
 *
 * A block lumps its histogram only after a block counted in full put its windows where the block
 * before it had put its own (`trusted`; a miss takes it back): one lucky lump among scattered
 * blocks would send the whole tensor to pass 1. Blocks whose own cuts scatter (low-rank deltas,
 * whose rows differ in scale: a rank-8 fine-tune's block medians spread over some 60 buckets
 * where a dense one's share one) miss block after block, and each miss costs a histogram and new
 * windows. After `spreadMisses` misses the rest of the tensor's blocks on this thread count the
 * histogram in full, with windows around where the blocks counted since the first miss put the
 * cut (their sum, `run`: estimateWindows) instead of around their own cut. No block lumped, so
 * the histogram is exact: T's bucket is known after pass 0, and pass 2 finds T among the keys of
 * that bucket in the blocks whose windows missed it (a few: the first ones, whose estimate came
 * from few blocks), instead of pass 1 counting the whole histogram again.
 *
 * A new record (a new pass or job) also forgets the tensor's windows: a block 0 judged by another
 * job's windows would count a miss that is not its own.
 */
interface TensorSeen {
  last: number;
  misses: number;
  /** the last block counted in full put its windows where the one before had its own: blocks may lump */
  trusted: boolean;
  /**
   * after a miss: the sum of the histograms of the tensor's blocks counted in full on this thread
   * since (per source), the highest bucket it holds per source, and how many elements it counts:
   * where spread blocks centre their windows (estimateWindows)
   */
  run?: Uint32Array;
  runTop?: Int32Array;
  runElements: number;
}
const seenTensors = new Map<string, TensorSeen>();

/** This thread's record of the block's tensor in pass 0; a block index not above the last one seen starts a new one (a new pass, or a new job). */
function tensorSeen(w: WindowBlock): TensorSeen {
  let t = seenTensors.get(w.tensor);
  if (!t || w.index <= t.last) {
    if (seenTensors.size >= 64) seenTensors.clear();
    recentWindows.delete(w.tensor);
    t = { last: -1, misses: 0, trusted: false, runElements: 0 };
    seenTensors.set(w.tensor, t);
  }
  t.last = w.index;
  return t;
}

function spread(t: TensorSeen): boolean {
  return t.misses >= SELECT_LIMITS.spreadMisses;
}

/** Two blocks' windows (start bucket per cut) that agree: the same cuts, starts at most a bucket apart. */
function nearWindows(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [c, lo] of a) {
    const other = b.get(c);
    if (other === undefined || Math.abs(other - lo) > 1) return false;
  }
  return true;
}

function rememberWindows(k: SimdKernels, cuts: readonly Cut[], state: SelectState, n: number, w: WindowBlock): Map<number, number> {
  const los = ownWindows(k, cuts, state, n, w.numel);
  if (recentWindows.size >= 64) recentWindows.clear();
  recentWindows.set(w.tensor, los);
  return los;
}

/** Two models' cuts, one each, with windows remembered from an earlier block: [c0, c1, start0, start1]. */
function fusedWindows(cuts: readonly Cut[], state: SelectState, tensor: string): [number, number][] | undefined {
  const los = recentWindows.get(tensor);
  if (!los) return undefined;
  const sides: [number, number][] = [];
  const sources = new Set<number>();
  for (let c = 0; c < cuts.length; c++) {
    if (state.kind[c] !== 'cut') continue;
    const lo = los.get(c);
    // one cut per model (a histogram lumped around two windows would count its keys twice)
    if (lo === undefined || sources.has(cuts[c]!.source)) return undefined;
    sources.add(cuts[c]!.source);
    sides.push([c, lo]);
  }
  return sides.length > 0 ? sides : undefined;
}

/**
 * Pass 0's speculation, on the SIMD backend: for each live cut, the low bits of the keys within
 * a window of WIN_WIDTH high buckets around the block's own cut bucket (ownWindows), read from
 * the block after its histogram (later blocks of the tensor on the same thread take the windows
 * of the one before, histogram and windows in one read: fusedWindows). If every block's window
 * holds the cut bucket that pass 0 finds for the whole tensor, these records resolve the cut and
 * pass 1 is skipped; if not (or they overflow their room), pass 1 runs as without them. Either
 * way the cut is exact, whatever windows the blocks chose.
 */
function collectWindows(
  k: SimdKernels, cuts: readonly Cut[], state: SelectState, inputs: readonly ArrayBufferView[], bf16: boolean, n: number, w: WindowBlock,
): Map<number, number> {
  const los = rememberWindows(k, cuts, state, n, w);
  scanWindows(k, cuts, los, WIN_WIDTH, inputs, bf16, n, w.numel);
  return los;
}

/** Collects the windows `los` (start bucket per cut) of `width` buckets from the block and appends their records. */
function scanWindows(
  k: SimdKernels, cuts: readonly Cut[], los: ReadonlyMap<number, number>, width: number, inputs: readonly ArrayBufferView[], bf16: boolean, n: number, numel: number,
): void {
  const live = [...los.keys()];
  const base = inputs[0]!.byteOffset;
  const x = (c: number): number => inputs[cuts[c]!.source + 1]!.byteOffset;
  // the window loops also count the keys above each window: not needed here, they land in simdAbove
  if (live.length === 2) {
    const [c0, c1] = live as [number, number];
    (bf16 ? k.windowAbove2Bf16 : k.windowAbove2)(
      base, x(c0), x(c1), n, los.get(c0)!, los.get(c1)!, width, windowAt(c0), windowAt(c1), listAt(c0), listAt(c1), simdAbove.byteOffset,
    );
  } else for (const c of live) (bf16 ? k.windowAbove1Bf16 : k.windowAbove1)(base, x(c), n, los.get(c)!, width, windowAt(c), listAt(c), simdAbove.byteOffset);
  windowRecords(k, cuts, live, live.map((c) => los.get(c)!), width, inputs.length - 1, numel);
}

/**
 * A spread block's windows (its own cut scatters too far from the tensor's for its own windows to
 * hold it): per live cut, EST_WIDTH buckets centred where the blocks this thread counted since
 * the tensor's first miss put the cut (TensorSeen.run); undefined before any such block. The
 * blocks whose windows hold T's bucket need no pass 2 (SelectState.readBlocks).
 */
function estimateWindows(cuts: readonly Cut[], state: SelectState, seen: TensorSeen, numel: number): Map<number, number> | undefined {
  const run = seen.run;
  if (!run || seen.runElements === 0) return undefined;
  const los = new Map<number, number>();
  for (let c = 0; c < cuts.length; c++) {
    if (state.kind[c] !== 'cut') continue;
    const s = cuts[c]!.source;
    const need = Math.max(1, Math.round((cuts[c]!.rank * seen.runElements) / numel));
    const off = s * HI_BUCKETS;
    let b = seen.runTop![s]!;
    for (let cum = 0; b > 0; b--) {
      cum += run[off + b]!;
      if (cum >= need) break;
    }
    los.set(c, Math.max(0, b - (EST_WIDTH >> 1)));
  }
  return los;
}

// the block whose full histogram selectTake adds to its tensor's run, and its elements; the
// tensors that hold a run on this thread, oldest first (a few: each is 256 KiB a model)
let pendingRun: { seen: TensorSeen; sources: number; n: number } | undefined;
const RUN_KEEP = 4;
const runHolders: TensorSeen[] = [];

/** Adds the block's histogram (hist, at the touched buckets) to its tensor's run (pendingRun). */
function addToRun(): void {
  const p = pendingRun;
  pendingRun = undefined;
  if (!p) return;
  const seen = p.seen;
  if (!seen.run) {
    seen.run = new Uint32Array(p.sources * HI_BUCKETS);
    seen.runTop = new Int32Array(p.sources).fill(-1);
    runHolders.push(seen);
    if (runHolders.length > RUN_KEEP) {
      const old = runHolders.shift()!;
      old.run = undefined;
      old.runTop = undefined;
      old.runElements = 0;
    }
  }
  const run = seen.run;
  const top = seen.runTop!;
  for (let i = 0; i < nTouched; i++) {
    const b = touched[i]!;
    if (b >= run.length) continue;
    run[b] = run[b]! + hist[b]!;
    const s = b >>> 16;
    if ((b & 0xffff) > top[s]!) top[s] = b & 0xffff;
  }
  seen.runElements += p.n;
}

/** Pass 1's windows: the same for every block of the tensor (SelectState.win), for the cuts that pass 0's windows missed. */
function collectPass1Windows(k: SimdKernels, cuts: readonly Cut[], state: SelectState, inputs: readonly Float32Array[], n: number, w: WindowBlock): void {
  const live: number[] = [];
  for (let c = 0; c < cuts.length; c++) if (histogramLive(1, state, c) && state.win[c]! >= 0) live.push(c);
  const base = inputs[0]!.byteOffset;
  const x = (c: number): number => inputs[cuts[c]!.source + 1]!.byteOffset;
  if (live.length === 2 && cuts[live[0]!]!.source !== cuts[live[1]!]!.source) {
    const [c0, c1] = live as [number, number];
    k.windowAbove2(base, x(c0), x(c1), n, state.win[c0]!, state.win[c1]!, WIN1_WIDTH, windowAt(c0), windowAt(c1), listAt(c0), listAt(c1), simdAbove.byteOffset);
  } else for (const c of live) k.windowAbove1(base, x(c), n, state.win[c]!, WIN1_WIDTH, windowAt(c), listAt(c), simdAbove.byteOffset);
  const offs = windowOffsets(cuts, inputs.length - 1, w.numel);
  for (const c of live) appendWindowRecord(offs[c]!, w.numel, state.win[c]!, WIN1_WIDTH, takeWindow(k, c, WIN1_WIDTH));
}

/** Hands the live cuts' window counters over as records of the block's partial (selectTake appends them). */
function windowRecords(k: SimdKernels, cuts: readonly Cut[], live: readonly number[], los: readonly number[], width: number, sources: number, numel: number): void {
  const offs = windowOffsets(cuts, sources, numel);
  live.forEach((c, i) => appendWindowRecord(offs[c]!, numel, los[i]!, width, takeWindow(k, c, width)));
}

/**
 * A block whose windows an earlier block of the tensor chose on this thread (fusedWindows): one read
 * collects the low bits in each window and how many keys lie above it, with no histogram scatter
 * (windowAbove2). When the block's own share of each cut falls in the middle three buckets of its
 * window (as good as its own window), the block sends its histogram lumped: exact per bucket inside
 * the window, the keys above it counted at the bucket just above, those below at the bucket just
 * below. The sum of such histograms is exact between the highest window start and the lowest
 * window end, which is where the windows must hold T's bucket to resolve the cut; selectFinish
 * sends the cut to pass 1 (a true histogram) otherwise. Returns false, with nothing sent and the
 * counters cleared, when a window is off: the caller counts the full histogram and its own windows.
 */
function lumpedWindows(
  k: SimdKernels, cuts: readonly Cut[], state: SelectState, inputs: readonly Float32Array[], n: number, w: WindowBlock,
  windows: readonly [number, number][], bf16: RawBf16 | undefined,
): boolean {
  // the BF16 blocks as they are, when the runner left them undecoded (they are in the SIMD memory)
  const at = (i: number): number => (bf16 ? bf16.raw[i]! : inputs[i]!).byteOffset;
  const x = (c: number): number => at(cuts[c]!.source + 1);
  if (bf16) simdUse.rawBf16++;
  if (windows.length === 2) {
    // two models in one loop: the base is read once
    const [[c0, lo0], [c1, lo1]] = windows as [[number, number], [number, number]];
    (bf16 ? k.windowAbove2Bf16 : k.windowAbove2)(at(0), x(c0), x(c1), n, lo0, lo1, WIN_WIDTH,
      windowAt(c0), windowAt(c1), listAt(c0), listAt(c1), simdAbove.byteOffset,
    );
  } else {
    windows.forEach(([c, lo], i) => (bf16 ? k.windowAbove1Bf16 : k.windowAbove1)(at(0), x(c), n, lo, WIN_WIDTH, windowAt(c), listAt(c), simdAbove.byteOffset + 4 * i));
  }
  const sides = windows.map(([c, lo], i): [number, number, number] => [c, lo, simdAbove[i]!]);
  const sources = inputs.length - 1;
  const offs = windowOffsets(cuts, sources, w.numel);
  const savedRecords = winLen;
  const savedTouched = nTouched;
  const counts = new Array<number>(WIN_WIDTH);
  for (let i = 0; i < sides.length; i++) {
    const [c, lo, above] = sides[i]!;
    const m = takeWindow(k, c, WIN_WIDTH);
    counts.fill(0);
    let inside = 0;
    for (let j = 0; j < m; j++) {
      counts[simdWindowPairs[2 * j]! >>> HI_SHIFT]! += simdWindowPairs[2 * j + 1]!;
      inside += simdWindowPairs[2 * j + 1]!;
    }
    // the block's own cut bucket, from the top: where the count reaches its share of the rank
    const need = Math.min(n, Math.max(1, Math.round((cuts[c]!.rank * n) / w.numel)));
    let own = -1;
    for (let r = WIN_WIDTH - 1, cum = above; r >= 0 && above < need; r--) {
      cum += counts[r]!;
      if (cum >= need) {
        own = r;
        break;
      }
    }
    // near: in the middle three buckets, or the lowest ones when the window starts at bucket 0
    // (keys of 0, e.g. most deltas of a tiny fine-tune, put the cut there: no window lies lower)
    if (own < (lo === 0 ? 0 : 1) || own > WIN_WIDTH - 2) {
      // undo: the records and lumps of the cut before, the counters of the cut after
      winLen = savedRecords;
      for (let t = savedTouched; t < nTouched; t++) hist[touched[t]!] = 0;
      nTouched = savedTouched;
      for (let r = i + 1; r < sides.length; r++) takeWindow(k, sides[r]![0], WIN_WIDTH);
      return false;
    }
    appendWindowRecord(offs[c]!, w.numel, lo, WIN_WIDTH, m);
    const off = cuts[c]!.source * HI_BUCKETS;
    for (let r = 0; r < WIN_WIDTH; r++) if (lo + r < HI_BUCKETS) lump(off + lo + r, counts[r]!);
    // no key lies above the last bucket or below the first: those counts are then 0
    if (lo + WIN_WIDTH < HI_BUCKETS) lump(off + lo + WIN_WIDTH, above);
    if (lo > 0) lump(off + lo - 1, n - above - inside);
  }
  lump(sources * HI_BUCKETS, 1);
  // the next block keeps these windows (recentWindows): windows that agree leave the tensor's cut
  // their whole width in common, where windows recentred on every block would drift apart
  return true;
}

/** Adds to the block's sparse histogram (selectTake hands it over). */
function lump(b: number, count: number): void {
  if (count === 0) return;
  if (hist[b] === 0) touched[nTouched++] = b;
  hist[b] = hist[b]! + count;
}

/** Appends cut c's window record (its m (index, count) pairs, in simdWindowPairs) to the block's partial. */
function appendWindowRecord(region: number, numel: number, lo: number, width: number, m: number): void {
  // a record: [−(region + 1), room, window start, width, k, (index, count)×k]; the sign tells it from a histogram pair
  const len = 5 + 2 * m;
  if (winRecords.length < winLen + len) {
    const grown = new Float64Array(Math.max(2 * winRecords.length, winLen + len));
    grown.set(winRecords.subarray(0, winLen));
    winRecords = grown;
  }
  const r = winRecords;
  let o = winLen;
  r[o++] = -(region + 1);
  r[o++] = windowRoom(numel);
  r[o++] = lo;
  r[o++] = width;
  r[o++] = m;
  const p = simdWindowPairs;
  for (let j = 0; j < 2 * m; j++) r[o++] = p[j]!;
  winLen = o;
}

// the SIMD backend's dense counters (a histogram, or the cuts' low-bit histograms) and the
// (index, count) pairs it hands them over in
let simdCounts = new Uint32Array(0);
let simdPairs = new Uint32Array(0);

/** The SIMD kernels when the inputs and `counters` counters can live in its memory. */
function simdScratch(counters: number, inputs: readonly Float32Array[]): SimdKernels | undefined {
  if (!simdFor(...inputs)) return undefined;
  if (simdCounts.length < counters) {
    simdCounts = simdWords(counters);
    simdPairs = simdWords(2 * counters);
  }
  return simdFor(simdCounts, simdPairs, ...inputs);
}

/**
 * Moves the SIMD counters [from, from + len) (zeroing them) into a sparse JS histogram: h[off + i] += count,
 * recording in tc the entries that were 0. Returns the new touched count.
 */
function takeSimdCounts(k: SimdKernels, from: number, len: number, off: number, h: Uint32Array, tc: Int32Array, nt: number): number {
  const m = k.takeCounts(simdCounts.byteOffset + 4 * from, len, simdPairs.byteOffset);
  const p = simdPairs;
  for (let i = 0; i < m; i++) {
    const b = off + p[2 * i]!;
    if (h[b] === 0) tc[nt++] = b;
    h[b] = h[b]! + p[2 * i + 1]!;
  }
  return nt;
}

function histDeltas(base: Float32Array, x: Float32Array, n: number, off: number, h: Uint32Array, tc: Int32Array, nt: number): number {
  const f = one;
  const u = oneBits;
  for (let j = 0; j < n; j++) {
    f[0] = x[j]! - base[j]!;
    const b = off + ((u[0]! & KEY_MASK) >>> HI_SHIFT);
    if (h[b]!++ === 0) tc[nt++] = b;
  }
  return nt;
}

function histDeltas2(base: Float32Array, x0: Float32Array, x1: Float32Array, n: number, h: Uint32Array, tc: Int32Array, nt: number): number {
  const f = two;
  const u = twoBits;
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    f[0] = x0[j]! - b;
    f[1] = x1[j]! - b;
    const b0 = (u[0]! & KEY_MASK) >>> HI_SHIFT;
    const b1 = HI_BUCKETS + ((u[1]! & KEY_MASK) >>> HI_SHIFT);
    if (h[b0]!++ === 0) tc[nt++] = b0;
    if (h[b1]!++ === 0) tc[nt++] = b1;
  }
  return nt;
}

function lowDeltas2(base: Float32Array, x0: Float32Array, x1: Float32Array, n: number, t0: number, t1: number, c0: number, c1: number): void {
  const f = two;
  const u = twoBits;
  const h = loHist;
  const tc = loTouched;
  const off0 = c0 * LO_BUCKETS;
  const off1 = c1 * LO_BUCKETS;
  let n0 = loCount[c0]!;
  let n1 = loCount[c1]!;
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    f[0] = x0[j]! - b;
    f[1] = x1[j]! - b;
    const k0 = u[0]! & KEY_MASK;
    const k1 = u[1]! & KEY_MASK;
    if (k0 >>> HI_SHIFT === t0) {
      const i = off0 + (k0 & LO_MASK);
      if (h[i]!++ === 0) tc[off0 + n0++] = i;
    }
    if (k1 >>> HI_SHIFT === t1) {
      const i = off1 + (k1 & LO_MASK);
      if (h[i]!++ === 0) tc[off1 + n1++] = i;
    }
  }
  loCount[c0] = n0;
  loCount[c1] = n1;
}

function lowDeltas(base: Float32Array, x: Float32Array, n: number, t: number, off: number, h: Uint32Array, tc: Int32Array, nt: number): number {
  const f = one;
  const u = oneBits;
  for (let j = 0; j < n; j++) {
    f[0] = x[j]! - base[j]!;
    const key = u[0]! & KEY_MASK;
    if (key >>> HI_SHIFT === t) {
      const b = off + (key & LO_MASK);
      if (h[b]!++ === 0) tc[off + nt++] = b;
    }
  }
  return nt;
}

/**
 * Folds one block's partial, in block order. Pass 0 adds its (bucket, count) pairs, pass 2 sums. Pass 1 appends each
 * cut's record [block, k, pairs] to its region, or marks the region overflowed (−1). Pass 3 finds the block where the m-th tie lies; fold sees no
 * state, so each partial carries m next to its tie count: partial per cut [ties in the block,
 * m, 0, 0], acc per cut [ties before, found, block, ties kept there].
 */
export function selectFold(pass: number, acc: Float64Array, partial: Float64Array, blockIndex: number): void {
  if (pass === 0 || pass === 1) {
    for (let p = 0; p < partial.length;) {
      const i = partial[p]!;
      if (i >= 0) {
        acc[i]! += partial[p + 1]!;
        p += 2;
        continue;
      }
      // a window record (collectWindows): the windows' common part, then the record itself
      const off = -i - 1;
      const room = partial[p + 1]!;
      const lo = partial[p + 2]!;
      const hi = lo + partial[p + 3]! - 1;
      const k = partial[p + 4]!;
      if (acc[off] === 0) {
        acc[off + 1] = acc[off + 4] = lo;
        acc[off + 2] = acc[off + 5] = hi;
      } else {
        acc[off + 1] = Math.max(acc[off + 1]!, lo);
        acc[off + 2] = Math.min(acc[off + 2]!, hi);
        acc[off + 4] = Math.min(acc[off + 4]!, lo);
        acc[off + 5] = Math.max(acc[off + 5]!, hi);
      }
      acc[off]!++;
      const used = acc[off + 3]!;
      if (used >= 0) {
        if (used + 4 + 2 * k > room) acc[off + 3] = -1;
        else {
          const r = off + WIN_HEADER + used;
          acc[r] = blockIndex;
          acc[r + 1] = lo;
          acc[r + 2] = hi - lo + 1;
          acc[r + 3] = k;
          acc.set(partial.subarray(p + 5, p + 5 + 2 * k), r + 4);
          acc[off + 3] = used + 4 + 2 * k;
        }
      }
      p += 5 + 2 * k;
    }
    return;
  }
  if (pass === 3) {
    for (let i = 0; i < partial.length; i++) acc[i]! += partial[i]!;
    return;
  }
  if (pass === 2) {
    for (let p = 0; p < partial.length;) {
      const off = partial[p]!;
      const room = partial[p + 1]!;
      const k = partial[p + 2]!;
      const used = acc[off]!;
      if (k > 0 && used >= 0) {
        if (used + 2 + 2 * k > room) acc[off] = -1;
        else {
          acc[off + 1 + used] = blockIndex;
          acc[off + 2 + used] = k;
          acc.set(partial.subarray(p + 3, p + 3 + 2 * k), off + 3 + used);
          acc[off] = used + 2 + 2 * k;
        }
      }
      p += 3 + 2 * k;
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

/** The keys of T's bucket as (block, low bits, count) triples, in block order, one per block and low bits. */
type BucketEntries = number[];

/** Pass 0's window records for T's bucket `d`, in block order, when every block's window holds `d` and none overflowed. */
function windowEntries(acc: Float64Array, off: number, d: number, layout: WindowLayout): BucketEntries | undefined {
  const used = acc[off + 3]!;
  if (acc[off] !== layout.blockCount || used < 0 || acc[off + 1]! > d || acc[off + 2]! < d) return undefined;
  return knownEntries(acc, off, d, layout)?.known;
}

/**
 * From pass 0's window records (none overflowed): the keys in T's bucket `d` of every block whose
 * window held it, in block order, and the blocks whose did not (or that sent no window), which
 * pass 2 must read; undefined when no block's window held it. A block sends at most one record a
 * cut in pass 0, and its window's counters are exact: its keys in `d` are the record's pairs there.
 */
function knownEntries(acc: Float64Array, off: number, d: number, layout: WindowLayout): { known: BucketEntries; read: number[] } | undefined {
  const used = acc[off + 3]!;
  if (used < 0) return undefined;
  const known: BucketEntries = [];
  const held = new Uint8Array(layout.blockCount);
  let blocksHeld = 0;
  for (let r = off + WIN_HEADER; r < off + WIN_HEADER + used; r += 4 + 2 * acc[r + 3]!) {
    const lo = acc[r + 1]!;
    if (d < lo || d >= lo + acc[r + 2]!) continue;
    const block = acc[r]!;
    held[block] = 1;
    blocksHeld++;
    const rel = (d - lo) << HI_SHIFT;
    const k = acc[r + 3]!;
    for (let i = 0; i < k; i++) {
      const idx = acc[r + 4 + 2 * i]!;
      if (idx < rel || idx >= rel + LO_BUCKETS) continue;
      known.push(block, idx - rel, acc[r + 5 + 2 * i]!);
    }
  }
  if (blocksHeld === 0) return undefined;
  const read: number[] = [];
  for (let b = 0; b < layout.blockCount; b++) if (!held[b]) read.push(b);
  return { known, read };
}

let loScratch = new Float64Array(0);

/**
 * T's low bits d from the bucket's keys (BucketEntries), m = how many keys equal to T are above the
 * cut, and the block holding the m-th of them with how many of them it keeps.
 */
function resolveBucket(e: ArrayLike<number>, need: number, bucketCount: number): { d: number; m: number; block: number; rank: number } {
  if (loScratch.length < LO_BUCKETS) loScratch = new Float64Array(LO_BUCKETS);
  const lo = loScratch;
  lo.fill(0);
  let total = 0;
  for (let i = 0; i < e.length; i += 3) {
    lo[e[i + 1]!]! += e[i + 2]!;
    total += e[i + 2]!;
  }
  if (total !== bucketCount) throw new WeightspaceError('internal', `select: ${total} keys in the records, the histogram said ${bucketCount}`);
  const { d, above } = bucketOf(lo, 0, LO_BUCKETS, need);
  const m = need - above;
  let seen = 0;
  for (let i = 0; i < e.length; i += 3) {
    if (e[i + 1] !== d) continue;
    const here = e[i + 2]!;
    if (seen + here >= m) return { d, m, block: e[i]!, rank: m - seen };
    seen += here;
  }
  throw new WeightspaceError('internal', `select: tie ${m} of bucket ${d} not found`);
}

/** Turns a select pass's folded accumulator into the next state. */
export function selectFinish(pass: number, cuts: readonly Cut[], state: SelectState, acc: Float64Array, layout?: WindowLayout): SelectState {
  const t = [...state.t];
  const need = [...state.need];
  const bucketCount = [...state.bucketCount];
  const mode = [...state.mode];
  const room = [...state.room];
  const tieBlock = [...state.tieBlock];
  const tieRank = [...state.tieRank];
  const win = [...state.win];
  // pass 0 may narrow pass 2 to some blocks; after pass 2 that is dropped (the map does not need it)
  const readBlocks = pass === 2 ? state.readBlocks.map(() => null) : [...state.readBlocks];
  const known = pass === 2 ? state.known.map(() => null) : [...state.known];
  const offs = pass === 2 ? candidateOffsets(state) : [];
  // pass 0's windows, and pass 1's (one for all blocks) where pass 0's missed
  const windowed = windowedPass(pass, state);
  const woffs = windowed && layout ? windowOffsets(cuts, layout.sources, layout.numel) : [];
  // blocks that sent their histogram only as counts above and below their windows: it is exact
  // between the highest window start and the lowest window end, and nowhere else
  const lumped = pass === 0 && layout !== undefined && windowed && acc[layout.sources * HI_BUCKETS]! > 0;
  for (let c = 0; c < cuts.length; c++) {
    if (state.kind[c] !== 'cut') continue;
    if (pass === 0 || (pass === 1 && mode[c] === 'rehist')) {
      const off = cuts[c]!.source * HI_BUCKETS;
      const { d, above } = bucketOf(acc, off, HI_BUCKETS, need[c]!);
      const w = layout && windowed && SELECT_LIMITS.candidateCap > 0 && (pass === 0 || win[c]! >= 0) ? windowEntries(acc, woffs[c]!, d, layout) : undefined;
      if (!w && lumped) {
        // T's bucket is outside some block's window, where that block's histogram is lumped: pass 1
        // counts it again, with one window for every block around where the blocks' windows were
        // (the lumped histogram's T is near the true one), so that pass 2 is not needed either
        mode[c] = 'rehist';
        const r = woffs[c]!;
        const span = acc[r + 5]! - acc[r + 4]! + 3;
        win[c] = !SELECT_LIMITS.pass1Windows ? -1 : acc[r] === 0 || span > WIN1_WIDTH ? Math.max(0, d - WIN1_WIDTH / 2) : Math.max(0, acc[r + 4]! - 1);
        SELECT_STATS.histogramPasses++;
        continue;
      }
      need[c] = need[c]! - above;
      t[c] = d;
      bucketCount[c] = acc[off + d]!;
      const cap = SELECT_LIMITS.candidateCap;
      mode[c] = cap > 0 ? 'cand' : 'count';
      room[c] = cap > 0 ? Math.min(4 * bucketCount[c]!, 2 * cap) : 0;
      if (w) {
        // every block's window held T's bucket: pass 0's records resolve the cut, pass 1 is skipped
        const r = resolveBucket(w, need[c]!, bucketCount[c]!);
        tieBlock[c] = r.block;
        tieRank[c] = r.rank;
        need[c] = r.m;
        t[c] = (d << HI_SHIFT) | r.d;
        mode[c] = 'done';
        if (pass === 0) SELECT_STATS.resolvedByWindows++;
        else SELECT_STATS.resolvedByPass1Windows++;
      } else if (pass === 0 && mode[c] === 'cand' && layout && windowed) {
        // the histogram is exact (no block lumped): the blocks whose windows held T's bucket gave
        // their keys there, and pass 2 reads only the others (low-rank deltas' spread blocks take
        // windows around their thread's estimate of the cut, so most blocks are among the first)
        const part = knownEntries(acc, woffs[c]!, d, layout);
        if (part) {
          readBlocks[c] = part.read;
          known[c] = Float64Array.from(part.known);
        }
      }
      continue;
    }
    if (pass === 1) continue;
    if (pass === 2) {
      if (mode[c] !== 'cand') continue;
      const off = offs[c]!;
      const used = acc[off]!;
      if (used < 0) {
        // the records overflowed: the counting passes resolve the cut from pass 0's state
        mode[c] = 'count';
        continue;
      }
      // T's low bits from the sum of the blocks' low-bit histograms, then, in block order, the
      // block where the m-th key equal to T lies
      // (a block read for another cut's sake also sent its records for this one: those pass 0 gave are kept)
      const read = state.readBlocks[c];
      const e: BucketEntries = [];
      const prior = state.known[c];
      let q = 0;
      const takePrior = (before: number): void => {
        for (; prior && q < prior.length && prior[q]! < before; q += 3) e.push(prior[q]!, prior[q + 1]!, prior[q + 2]!);
      };
      for (let r = off + 1; r < off + 1 + used; r += 2 + 2 * acc[r + 1]!) {
        const block = acc[r]!;
        if (read && !read.includes(block)) continue;
        takePrior(block);
        const k = acc[r + 1]!;
        for (let i = 0; i < k; i++) e.push(block, acc[r + 2 + 2 * i]!, acc[r + 3 + 2 * i]!);
      }
      takePrior(Infinity);
      const { d, m, block, rank } = resolveBucket(e, need[c]!, bucketCount[c]!);
      tieBlock[c] = block;
      tieRank[c] = rank;
      need[c] = m;
      t[c] = (t[c]! << HI_SHIFT) | d;
      continue;
    }
    if (mode[c] !== 'count') continue;
    if (pass === 4) {
      if (acc[c * 4 + 1] !== 1) throw new WeightspaceError('internal', `select: tie ${need[c]} of value ${t[c]} not found`);
      tieBlock[c] = acc[c * 4 + 2]!;
      tieRank[c] = acc[c * 4 + 3]!;
      continue;
    }
    const { d, above } = bucketOf(acc, c * LO_BUCKETS, LO_BUCKETS, need[c]!);
    need[c] = need[c]! - above;
    t[c] = (t[c]! << HI_SHIFT) | d;
  }
  return { kind: state.kind, t, need, bucketCount, mode, room, tieBlock, tieRank, win, readBlocks, known };
}

/** How many keys equal to T a block keeps: all, none, or (in the block holding the cut) a count. */
export function tiesKept(state: SelectState, c: number, blockIndex: number): number {
  const tb = state.tieBlock[c]!;
  return blockIndex < tb ? Infinity : blockIndex > tb ? 0 : state.tieRank[c]!;
}

/**
 * The index just past the `kept`-th key equal to T in the block, keys being |f32(x − base)|: in the
 * block holding a cut's last kept tie, the ties before it are above the cut and those after it are not.
 */
export function tieEnd(t: number, kept: number, base: Float32Array, x: Float32Array, n: number): number {
  const f = one;
  const u = oneBits;
  let left = kept;
  for (let j = 0; j < n; j++) {
    f[0] = x[j]! - base[j]!;
    if ((u[0]! & KEY_MASK) === t && --left === 0) return j + 1;
  }
  throw new WeightspaceError('internal', `select: the block holds fewer than ${kept} ties at ${t}`);
}

/**
 * Writes 1 to mask[j] for the block's elements above cut `c`, 0 for the others (after the select
 * passes). `keys` are the f32 bits of the cut's source for the block.
 */
export function aboveCut(state: SelectState, c: number, keys: Uint32Array, n: number, blockIndex: number, mask: Uint8Array): void {
  const kind = state.kind[c]!;
  if (kind !== 'cut') {
    mask.fill(kind === 'all' ? 1 : 0, 0, n);
    return;
  }
  const t = state.t[c]!;
  let tiesLeft = tiesKept(state, c, blockIndex);
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
export function keepAboveCut(state: SelectState, c: number, v: Float32Array, bits: Uint32Array, n: number, blockIndex: number, f: number): void {
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
  const kept = tiesKept(state, c, blockIndex);
  // keys and T are below 2³¹, so (T − key − 1) >>> 31 is 1 exactly when key ≥ T: a branch-free mask.
  // A multiply by 0 keeps NaN and ±Inf as NaN, as mergekit's tensor·mask does.
  if (kept === Infinity) {
    // every tie at T in this block is above the cut
    for (let j = 0; j < n; j++) v[j] = f * v[j]! * ((t - (bits[j]! & KEY_MASK) - 1) >>> 31);
  } else if (kept === 0) {
    for (let j = 0; j < n; j++) v[j] = f * v[j]! * ((t - (bits[j]! & KEY_MASK)) >>> 31);
  } else {
    let tiesLeft = kept;
    for (let j = 0; j < n; j++) {
      const key = bits[j]! & KEY_MASK;
      v[j] = key > t || (key === t && tiesLeft-- > 0) ? f * v[j]! : 0 * v[j]!;
    }
  }
}
