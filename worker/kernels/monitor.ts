import type { KernelDef } from '../../core/kernel-contract.js';
import { WeightspaceError } from '../../core/errors.js';

export interface MonitorParams {
  /** true: the vector is (positive − negative), inputs [before, positive, negative, after...]; false: inputs [before, v, after...] */
  readonly contrast: boolean;
  /** number of fine-tunes ("after" checkpoints) scored against the same vector */
  readonly afters: number;
}

/** Per tensor sums; cosines are formed by the report after summing tensors in job order. */
export interface MonitorResult {
  readonly numel: number;
  /** ‖v‖² */
  readonly vv: number;
  /** dot(afterᵢ − before, v), by after */
  readonly dot: number[];
  /** ‖afterᵢ − before‖², by after */
  readonly dd: number[];
}

interface MonitorState {
  sums: number[];
}

/**
 * Weight-diff monitoring: per tensor, dot(θ_after − θ_before, v), ‖θ_after − θ_before‖² and
 * ‖v‖² in f64, v = θ_V or θ₊ − θ₋; the cosine is combined per layer, module kind and
 * globally by coordinator/ops/monitor-report.ts (Fierro & Roger 2025, contrastive weight
 * steering, §weight-diff monitoring). NaN in any input propagates to that tensor's sums.
 */
export const monitorKernel: KernelDef<MonitorParams, MonitorState> = {
  name: 'monitor',
  doc: 'Σ (a − b)·v, Σ (a − b)², Σ v² in f64, v = θ_V or θ₊ − θ₋',
  passes(params) {
    if (!Number.isInteger(params.afters) || params.afters < 1) {
      throw new WeightspaceError('invalid-spec', `monitor: need at least one 'after' model, got ${params.afters}`);
    }
    return 1;
  },
  partialLength: (_pass, params) => 1 + 2 * params.afters,
  reduce(_pass, params, _state, inputs, block, partial) {
    const n = block.length;
    const first = params.contrast ? 3 : 2;
    if (inputs.length !== first + params.afters) {
      throw new WeightspaceError('internal', `monitor: ${inputs.length} inputs, expected ${first + params.afters}`);
    }
    const before = inputs[0]!;
    const pos = inputs[1]!;
    const neg = params.contrast ? inputs[2]! : undefined;
    let vv = 0;
    if (neg) {
      for (let j = 0; j < n; j++) {
        const v = pos[j]! - neg[j]!;
        vv += v * v;
      }
    } else {
      for (let j = 0; j < n; j++) vv += pos[j]! * pos[j]!;
    }
    partial[0] = vv;
    for (let a = 0; a < params.afters; a++) {
      const after = inputs[first + a]!;
      let dot = 0;
      let dd = 0;
      if (neg) {
        for (let j = 0; j < n; j++) {
          const d = after[j]! - before[j]!;
          dot += d * (pos[j]! - neg[j]!);
          dd += d * d;
        }
      } else {
        for (let j = 0; j < n; j++) {
          const d = after[j]! - before[j]!;
          dot += d * pos[j]!;
          dd += d * d;
        }
      }
      partial[1 + 2 * a] = dot;
      partial[2 + 2 * a] = dd;
    }
  },
  finish: (_pass, _params, _state, acc) => ({ sums: Array.from(acc) }),
  result(params, state, info): MonitorResult {
    const s = state?.sums ?? new Array<number>(1 + 2 * params.afters).fill(0);
    const dot: number[] = [];
    const dd: number[] = [];
    for (let a = 0; a < params.afters; a++) {
      dot.push(s[1 + 2 * a]!);
      dd.push(s[2 + 2 * a]!);
    }
    return { numel: info.numel, vv: s[0]!, dot, dd };
  },
};
