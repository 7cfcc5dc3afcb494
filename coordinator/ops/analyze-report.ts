/**
 * Combines the analyze kernel's per-tensor results into the report: per tensor, layer and
 * module kind, ‖δᵢ‖, ‖δᵢ‖/‖θ₀‖, the cosine matrix between task vectors and the TIES
 * sign-conflict rate between them (conflicts / elements where both are non-zero); spectra
 * per tensor, and their means per module kind. Sums are added in the order of `entries`
 * (the plan's job order), so the report does not depend on how the jobs ran.
 */
import { MODULE_KINDS, moduleKindOf } from '../../core/module-kind.js';
import { layerIndexOf, layerKeyOf } from '../../core/plan.js';
import { compareNames } from '../../core/output-layout.js';

/** One tensor's result, as the analyze kernel returns it. */
export interface AnalyzeSums {
  readonly numel: number;
  readonly base2: number;
  readonly delta2: readonly number[];
  readonly dots: readonly number[];
  readonly conflicts: readonly number[];
  readonly bothNonzero: readonly number[];
  readonly spectra?: readonly SpectrumStats[];
}

export interface SpectrumStats {
  readonly top: readonly number[];
  readonly frobenius2: number;
  readonly exact: boolean;
  readonly stableRank: number;
  readonly effectiveRank: number;
  readonly energy: Readonly<Record<string, number | null>>;
}

export interface AnalyzeEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly sums: AnalyzeSums;
}

export interface GroupStats {
  readonly key: string;
  readonly tensors: number;
  readonly numel: number;
  readonly baseNorm: number;
  /** ‖δᵢ‖ by model */
  readonly deltaNorm: number[];
  /** ‖δᵢ‖ / ‖θ₀‖ by model (null when ‖θ₀‖ = 0) */
  readonly relative: (number | null)[];
  /** [i][j] cosine between δᵢ and δⱼ (null when a norm is zero) */
  readonly cosine: (number | null)[][];
  /** [i][j] TIES sign-conflict rate (null when no element is non-zero in both) */
  readonly conflictRate: (number | null)[][];
}

export interface TensorStats extends GroupStats {
  readonly shape: readonly number[];
  readonly layer: number | null;
  readonly kind: string;
  readonly spectra?: readonly SpectrumStats[];
}

export interface KindSpectrum {
  readonly kind: string;
  /** by model: means over the kind's 2-D tensors */
  readonly effectiveRank: number[];
  readonly stableRank: number[];
  readonly energy: Record<string, (number | null)[]>;
  /** by model: mean of σ̂ₖ/σ̂₁ over tensors, k = 1.. (the normalised spectrum) */
  readonly normalized: number[][];
}

export interface AnalyzeReport {
  readonly models: string[];
  readonly ranks: number[];
  readonly global: GroupStats;
  readonly layers: GroupStats[];
  readonly modules: GroupStats[];
  readonly tensors: TensorStats[];
  readonly spectra: KindSpectrum[];
}

class Acc {
  tensors = 0;
  numel = 0;
  base2 = 0;
  readonly delta2: number[];
  readonly dots: number[];
  readonly conflicts: number[];
  readonly both: number[];
  constructor(readonly m: number) {
    const p = (m * (m - 1)) / 2;
    this.delta2 = new Array<number>(m).fill(0);
    this.dots = new Array<number>(p).fill(0);
    this.conflicts = new Array<number>(p).fill(0);
    this.both = new Array<number>(p).fill(0);
  }
  add(s: AnalyzeSums): void {
    this.tensors++;
    this.numel += s.numel;
    this.base2 += s.base2;
    s.delta2.forEach((x, i) => (this.delta2[i]! += x));
    s.dots.forEach((x, i) => (this.dots[i]! += x));
    s.conflicts.forEach((x, i) => (this.conflicts[i]! += x));
    s.bothNonzero.forEach((x, i) => (this.both[i]! += x));
  }
  stats(key: string): GroupStats {
    const m = this.m;
    const norm = this.delta2.map(Math.sqrt);
    const baseNorm = Math.sqrt(this.base2);
    const cosine: (number | null)[][] = [];
    const conflictRate: (number | null)[][] = [];
    for (let i = 0; i < m; i++) {
      cosine.push([]);
      conflictRate.push([]);
      for (let j = 0; j < m; j++) {
        if (i === j) {
          cosine[i]!.push(norm[i]! > 0 ? 1 : null);
          conflictRate[i]!.push(0);
          continue;
        }
        const p = pairIndex(Math.min(i, j), Math.max(i, j), m);
        const den = norm[i]! * norm[j]!;
        const c = this.dots[p]! / den;
        cosine[i]!.push(den > 0 && Number.isFinite(c) ? Math.max(-1, Math.min(1, c)) : null);
        conflictRate[i]!.push(this.both[p]! > 0 ? this.conflicts[p]! / this.both[p]! : null);
      }
    }
    return {
      key, tensors: this.tensors, numel: this.numel, baseNorm, deltaNorm: norm,
      relative: norm.map((x) => (baseNorm > 0 ? x / baseNorm : null)),
      cosine, conflictRate,
    };
  }
}

/** Index of pair (i, j), i < j, in the kernel's row-major pair order. */
export function pairIndex(i: number, j: number, m: number): number {
  return i * m - (i * (i + 1)) / 2 + (j - i - 1);
}

function layerOrder(a: string, b: string): number {
  const rank = (k: string): number => (k === 'embed' ? 0 : k.startsWith('layer.') ? 1 : k === 'final' ? 2 : k === 'head' ? 3 : 4);
  return rank(a) - rank(b) || compareNames(a, b);
}

export function analyzeReport(entries: readonly AnalyzeEntry[], models: readonly string[], ranks: readonly number[]): AnalyzeReport {
  const m = models.length;
  const global = new Acc(m);
  const layers = new Map<string, Acc>();
  const kinds = new Map<string, Acc>();
  const tensors: TensorStats[] = [];
  const kindSpectra = new Map<string, SpectrumStats[][]>();
  for (const e of entries) {
    global.add(e.sums);
    const lk = layerKeyOf(e.name);
    if (!layers.has(lk)) layers.set(lk, new Acc(m));
    layers.get(lk)!.add(e.sums);
    const kind = moduleKindOf(e.name);
    if (!kinds.has(kind)) kinds.set(kind, new Acc(m));
    kinds.get(kind)!.add(e.sums);
    const one = new Acc(m);
    one.add(e.sums);
    tensors.push({
      ...one.stats(e.name), shape: e.shape, layer: layerIndexOf(e.name) ?? null, kind,
      ...(e.sums.spectra ? { spectra: e.sums.spectra } : {}),
    });
    if (e.sums.spectra) {
      if (!kindSpectra.has(kind)) kindSpectra.set(kind, []);
      kindSpectra.get(kind)!.push([...e.sums.spectra]);
    }
  }
  const spectra: KindSpectrum[] = [];
  for (const kind of MODULE_KINDS) {
    const list = kindSpectra.get(kind);
    if (!list) continue;
    const mean = (f: (s: SpectrumStats) => number | null, i: number): number | null => {
      const xs = list.map((t) => f(t[i]!)).filter((x): x is number => x !== null && Number.isFinite(x));
      return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    const energy: Record<string, (number | null)[]> = {};
    for (const k of ranks) energy[String(k)] = models.map((_, i) => mean((s) => s.energy[String(k)] ?? null, i));
    const normalized = models.map((_, i) => {
      const len = Math.min(...list.map((t) => t[i]!.top.length));
      const out: number[] = [];
      for (let k = 0; k < len; k++) {
        const xs = list.map((t) => (t[i]!.top[0]! > 0 ? t[i]!.top[k]! / t[i]!.top[0]! : 0));
        out.push(xs.reduce((a, b) => a + b, 0) / xs.length);
      }
      return out;
    });
    spectra.push({
      kind,
      effectiveRank: models.map((_, i) => mean((s) => s.effectiveRank, i) ?? 0),
      stableRank: models.map((_, i) => mean((s) => s.stableRank, i) ?? 0),
      energy,
      normalized,
    });
  }
  return {
    models: [...models],
    ranks: [...ranks],
    global: global.stats('global'),
    layers: [...layers.keys()].sort(layerOrder).map((k) => layers.get(k)!.stats(k)),
    modules: MODULE_KINDS.filter((k) => kinds.has(k)).map((k) => kinds.get(k)!.stats(k)),
    tensors,
    spectra,
  };
}
