import type { KernelDef } from '../../core/kernel-contract.js';
import type { NuslerpParams } from '../../core/specs/merge-spec.js';

export interface NuslerpState {
  /** per vector: out = c0·v₀ + c1·v₁ (one entry for 'flat') */
  readonly c0: number[];
  readonly c1: number[];
}

const NORM_CLAMP = 1e-7;
const COLINEAR_EPS = 1e-8;

/** mergekit `nuslerp`: norms clamped to ≥ 1e-7, lerp when |sin θ| < 1e-8. Writes (c0, c1) at index k. */
function coefficients(t: number, n0sq: number, n1sq: number, dot: number, c0: number[], c1: number[], k: number): void {
  const cos = dot / (Math.max(Math.sqrt(n0sq), NORM_CLAMP) * Math.max(Math.sqrt(n1sq), NORM_CLAMP));
  const theta = Math.acos(Math.min(1, Math.max(-1, cos)));
  const s = Math.sin(theta);
  if (Math.abs(s) < COLINEAR_EPS) {
    c0[k] = 1 - t;
    c1[k] = t;
  } else {
    c0[k] = Math.sin((1 - t) * theta) / s;
    c1[k] = Math.sin(t * theta) / s;
  }
}

/** Vectors along the first dimension: one per position in the other dimensions. */
function columnsOf(shape: readonly number[]): number {
  let n = 1;
  for (let i = 1; i < shape.length; i++) n *= shape[i]!;
  return n;
}

const rowC0: number[] = [0];
const rowC1: number[] = [0];

/**
 * NuSLERP (mergekit `nuslerp`): SLERP of two models, or of their task vectors when a base is
 * given (out = θ₀ + slerp(t, θ₁−θ₀, θ₂−θ₀)), over the whole tensor, its rows or its columns.
 */
export const nuslerpKernel: KernelDef<NuslerpParams, NuslerpState> = {
  name: 'nuslerp',
  doc: 'out = [θ₀ +] sin((1−t)Ω)/sinΩ·v₀ + sin(tΩ)/sinΩ·v₁, per tensor, row or column; lerp when sinΩ ≈ 0 (mergekit nuslerp)',
  passes: (params) => (params.mode === 'rows' ? 0 : 1),
  partialLength: (_pass, params, _state, info) => 3 * (params.mode === 'flat' ? 1 : columnsOf(info.shape)),
  reduce(_pass, params, _state, inputs, block, partial) {
    const o = params.hasBase ? 1 : 0;
    const base = params.hasBase ? inputs[0]! : undefined;
    const a = inputs[o]!;
    const b = inputs[o + 1]!;
    const cols = params.mode === 'flat' ? 1 : columnsOf(block.shape);
    let k = params.mode === 'flat' ? 0 : block.start % cols;
    for (let j = 0; j < block.length; j++) {
      const x = base ? Math.fround(a[j]! - base[j]!) : a[j]!;
      const y = base ? Math.fround(b[j]! - base[j]!) : b[j]!;
      partial[3 * k]! += x * x;
      partial[3 * k + 1]! += y * y;
      partial[3 * k + 2]! += x * y;
      if (cols > 1 && ++k === cols) k = 0;
    }
  },
  finish(_pass, params, _state, acc) {
    const count = acc.length / 3;
    const c0: number[] = new Array<number>(count);
    const c1: number[] = new Array<number>(count);
    for (let k = 0; k < count; k++) coefficients(params.t, acc[3 * k]!, acc[3 * k + 1]!, acc[3 * k + 2]!, c0, c1, k);
    return { c0, c1 };
  },
  map(params, state, inputs, outputs, block) {
    const o = params.hasBase ? 1 : 0;
    const base = params.hasBase ? inputs[0]! : undefined;
    const a = inputs[o]!;
    const b = inputs[o + 1]!;
    const out = outputs[0]!;
    const n = block.length;
    // out = c0·a + c1·b + (1 − c0 − c1)·base: the same as base + c0·(a − base) + c1·(b − base)
    const put = (j: number, c0: number, c1: number): void => {
      const x = base ? Math.fround(a[j]! - base[j]!) : a[j]!;
      const y = base ? Math.fround(b[j]! - base[j]!) : b[j]!;
      out[j] = (base ? base[j]! : 0) + c0 * x + c1 * y;
    };
    if (params.mode === 'rows') {
      const row = block.rowLength;
      for (let r = 0; r < n; r += row) {
        let aa = 0, bb = 0, ab = 0;
        for (let j = r; j < r + row; j++) {
          const x = base ? Math.fround(a[j]! - base[j]!) : a[j]!;
          const y = base ? Math.fround(b[j]! - base[j]!) : b[j]!;
          aa += x * x;
          bb += y * y;
          ab += x * y;
        }
        coefficients(params.t, aa, bb, ab, rowC0, rowC1, 0);
        for (let j = r; j < r + row; j++) put(j, rowC0[0]!, rowC1[0]!);
      }
    } else {
      const { c0, c1 } = state!;
      const cols = c0.length;
      let k = cols === 1 ? 0 : block.start % cols;
      for (let j = 0; j < n; j++) {
        put(j, c0[k]!, c1[k]!);
        if (cols > 1 && ++k === cols) k = 0;
      }
    }
    for (let i = 1; i < outputs.length; i++) outputs[i]!.set(out.subarray(0, n));
  },
};
