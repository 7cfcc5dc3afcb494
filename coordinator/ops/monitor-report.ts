/**
 * Combines the monitor kernel's per-tensor sums into cosines of (θ_after − θ_before) with the
 * behaviour vector v: globally, per layer and per module kind, for every "after" model, ranked
 * by global cosine (Fierro & Roger 2025, weight-diff monitoring). Sums are added in the order
 * of `entries` (the plan's job order), so the report is the same bytes however the jobs ran.
 */
import { WeightspaceError, q } from '../../core/errors.js';
import { MODULE_KINDS, moduleKindOf } from '../../core/module-kind.js';
import { layerKeyOf } from '../../core/plan.js';
import { compareNames } from '../../core/output-layout.js';

/** One tensor's sums, as the monitor kernel returns them. */
export interface MonitorSums {
  readonly numel: number;
  readonly vv: number;
  readonly dot: readonly number[];
  readonly dd: readonly number[];
}

export interface MonitorEntry {
  readonly name: string;
  readonly sums: MonitorSums;
}

export interface CosineRow {
  /** 'global', a layer key ('embed', 'layer.3', 'final', 'head', 'other') or a module kind */
  readonly key: string;
  /** dot / (‖Δ‖·‖v‖); null when either norm is zero or a sum is not finite */
  readonly cosine: number | null;
  readonly dot: number;
  readonly deltaNorm: number;
  readonly vectorNorm: number;
  readonly tensors: number;
  readonly numel: number;
}

export interface MonitorAfterReport {
  readonly name: string;
  readonly rank: number;
  readonly global: CosineRow;
  readonly layers: CosineRow[];
  readonly modules: CosineRow[];
}

export interface MonitorReport {
  /** ranked by global cosine, highest first; undefined cosines last, ties by name */
  readonly afters: MonitorAfterReport[];
}

class Acc {
  dot = 0;
  dd = 0;
  vv = 0;
  tensors = 0;
  numel = 0;
  add(s: MonitorSums, a: number): void {
    this.dot += s.dot[a]!;
    this.dd += s.dd[a]!;
    this.vv += s.vv;
    this.tensors++;
    this.numel += s.numel;
  }
  row(key: string): CosineRow {
    const den = Math.sqrt(this.dd) * Math.sqrt(this.vv);
    const c = this.dot / den;
    return {
      key,
      cosine: den > 0 && Number.isFinite(c) ? Math.max(-1, Math.min(1, c)) : null,
      dot: this.dot,
      deltaNorm: Math.sqrt(this.dd),
      vectorNorm: Math.sqrt(this.vv),
      tensors: this.tensors,
      numel: this.numel,
    };
  }
}

function layerOrder(a: string, b: string): number {
  const rank = (k: string): number => (k === 'embed' ? 0 : k.startsWith('layer.') ? 1 : k === 'final' ? 2 : k === 'head' ? 3 : 4);
  return rank(a) - rank(b) || compareNames(a, b);
}

export function monitorReport(entries: readonly MonitorEntry[], afterNames: readonly string[]): MonitorReport {
  const afters: Omit<MonitorAfterReport, 'rank'>[] = afterNames.map((name, a) => {
    const global = new Acc();
    const layers = new Map<string, Acc>();
    const modules = new Map<string, Acc>();
    for (const e of entries) {
      if (e.sums.dot.length !== afterNames.length || e.sums.dd.length !== afterNames.length) {
        throw new WeightspaceError('internal', `monitor report: tensor ${q(e.name)} has sums for ${e.sums.dot.length} models, expected ${afterNames.length}`);
      }
      global.add(e.sums, a);
      const lk = layerKeyOf(e.name);
      let l = layers.get(lk);
      if (!l) layers.set(lk, (l = new Acc()));
      l.add(e.sums, a);
      const mk = moduleKindOf(e.name);
      let m = modules.get(mk);
      if (!m) modules.set(mk, (m = new Acc()));
      m.add(e.sums, a);
    }
    return {
      name,
      global: global.row('global'),
      layers: [...layers.keys()].sort(layerOrder).map((k) => layers.get(k)!.row(k)),
      modules: MODULE_KINDS.filter((k) => modules.has(k)).map((k) => modules.get(k)!.row(k)),
    };
  });
  const order = afters.map((_, i) => i).sort((i, j) => {
    const a = afters[i]!.global.cosine;
    const b = afters[j]!.global.cosine;
    if (a === null || b === null) return (a === null ? 1 : 0) - (b === null ? 1 : 0) || compareNames(afters[i]!.name, afters[j]!.name);
    return b - a || compareNames(afters[i]!.name, afters[j]!.name);
  });
  return { afters: order.map((i, r) => ({ ...afters[i]!, rank: r + 1 })) };
}
