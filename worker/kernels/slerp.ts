import type { KernelDef } from '../../core/kernel-contract.js';
import type { SlerpParams } from '../../core/specs/merge-spec.js';

export interface SlerpState {
  /** out = c0·θ₀ + c1·θ₁ */
  readonly c0: number;
  readonly c1: number;
}

/** mergekit's threshold above which |cos| counts as colinear and SLERP falls back to lerp */
export const SLERP_DOT_THRESHOLD = 0.9995;
const NORM_EPS = 1e-8;

/**
 * The SLERP coefficients of two whole tensors from their norms² and dot product, as mergekit's
 * `slerp` (vectors normalised only when their norm exceeds 1e-8; lerp when |cos| > 0.9995).
 */
export function slerpCoefficients(t: number, n0sq: number, n1sq: number, dot: number): SlerpState {
  const n0 = Math.sqrt(n0sq);
  const n1 = Math.sqrt(n1sq);
  const cos = dot / ((n0 > NORM_EPS ? n0 : 1) * (n1 > NORM_EPS ? n1 : 1));
  if (Math.abs(cos) > SLERP_DOT_THRESHOLD) return { c0: 1 - t, c1: t };
  const theta = Math.acos(cos);
  const s = Math.sin(theta);
  return { c0: Math.sin(theta - theta * t) / s, c1: Math.sin(theta * t) / s };
}

/**
 * SLERP of two models, each whole tensor one vector (Shoemake 1985; mergekit `slerp`):
 * out = sin((1−t)Ω)/sin Ω · θ₀ + sin(tΩ)/sin Ω · θ₁, cos Ω = θ̂₀·θ̂₁; lerp when |cos Ω| > 0.9995.
 */
export const slerpKernel: KernelDef<SlerpParams, SlerpState> = {
  name: 'slerp',
  doc: 'out = sin((1−t)Ω)/sinΩ·θ₀ + sin(tΩ)/sinΩ·θ₁ over the whole tensor; lerp when |cosΩ| > 0.9995 (mergekit slerp)',
  passes: () => 1,
  partialLength: () => 3,
  reduce(_pass, _params, _state, inputs, block, partial) {
    const a = inputs[0]!;
    const b = inputs[1]!;
    let aa = 0, bb = 0, ab = 0;
    for (let j = 0; j < block.length; j++) {
      const x = a[j]!;
      const y = b[j]!;
      aa += x * x;
      bb += y * y;
      ab += x * y;
    }
    partial[0] = aa;
    partial[1] = bb;
    partial[2] = ab;
  },
  finish(_pass, params, _state, acc) {
    return slerpCoefficients(params.t, acc[0]!, acc[1]!, acc[2]!);
  },
  map(_params, state, inputs, outputs, block) {
    const { c0, c1 } = state!;
    const a = inputs[0]!;
    const b = inputs[1]!;
    for (const out of outputs) for (let j = 0; j < block.length; j++) out[j] = c0 * a[j]! + c1 * b[j]!;
  },
};
