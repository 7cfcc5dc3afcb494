import type { KernelDef } from '../../core/kernel-contract.js';
import { simdFor, simdUse } from '../simd/simd-module.js';

export interface LinearParams {
  /** coefficients[k][i]: weight of input i in output k */
  readonly coefficients: readonly (readonly number[])[];
  /** constants[k]: a scalar added to every element of output k (default 0) */
  readonly constants?: readonly number[];
}

/**
 * out_k = Σᵢ c_ki · xᵢ + b_k, in f32. Serves task vectors (θ_a − θ_b), task arithmetic
 * expressions (Ilharco et al. 2023), contrastive steering θ_T + α(θ₊ − θ₋) for several α at
 * once (Fierro & Roger 2025), and mergekit's `linear`.
 */
export const linearKernel: KernelDef<LinearParams> = {
  name: 'linear',
  doc: 'out_k = Σᵢ c_ki·xᵢ + b_k',
  passes: () => 0,
  // the SIMD loops read BF16 inputs as they are, and write a single BF16 output encoded
  readsRawBf16: (pass) => pass === 'map',
  map(params, _state, inputs, outputs, block) {
    const n = block.length;
    const raw = block.bf16?.raw;
    if (raw && outputs.length === 1 && block.bf16Out && combineRaw(params.coefficients[0]!, params.constants?.[0] ?? 0, raw, block.bf16Out, true, n)) {
      return 'encoded';
    }
    for (let k = 0; k < outputs.length; k++) {
      const c = params.coefficients[k]!;
      const b = params.constants?.[k] ?? 0;
      if (raw && combineRaw(c, b, raw, outputs[k]!, false, n)) continue;
      block.bf16?.decode();
      combine(c, b, inputs, outputs[k]!, n);
    }
  },
};

/**
 * combine's SIMD loop over undecoded BF16 inputs, into f32 `out` or (encoded) BF16 bytes; false
 * (nothing written) when it has no loop for these terms.
 */
function combineRaw(c: readonly number[], b: number, raw: readonly Uint8Array[], out: Float32Array | Uint8Array, encoded: boolean, n: number): boolean {
  const { terms, coef } = nonzeroTerms(c, raw);
  if (terms.length === 0 || terms.length > 4) return false;
  const k = simdFor(out, ...terms);
  if (!k) return false;
  const x = (i: number): number => (terms[i] ?? terms[0]!).byteOffset;
  if (terms.length <= 2 && b === 0 && coef.every(exactOnBf16)) {
    // the same bits in f32, twice as fast (the loop's comment has the argument)
    simdUse.exactLinear++;
    (encoded ? k.linear2ExactBf16To16 : k.linear2ExactBf16)(x(0), x(1), terms.length, coef[0]!, coef[1] ?? 0, out.byteOffset, n);
    return true;
  }
  (encoded ? k.linear4Bf16To16 : k.linear4Bf16)(x(0), x(1), x(2), x(3), terms.length, coef[0]!, coef[1] ?? 0, coef[2] ?? 0, coef[3] ?? 0, b, out.byteOffset, n);
  return true;
}

/** The fused loops for up to four terms (the common cases), a general loop beyond. */
function combine(c: readonly number[], b: number, xs: readonly Float32Array[], out: Float32Array, n: number): void {
  const { terms, coef } = nonzeroTerms(c, xs);
  // each element is computed in f64 and rounded once when stored to f32
  const k = terms.length > 0 && terms.length <= 4 ? simdFor(out, ...terms) : undefined;
  if (k) {
    const x = (i: number): number => (terms[i] ?? terms[0]!).byteOffset;
    k.linear4(x(0), x(1), x(2), x(3), terms.length, coef[0]!, coef[1] ?? 0, coef[2] ?? 0, coef[3] ?? 0, b, out.byteOffset, n);
    return;
  }
  switch (terms.length) {
    case 0:
      out.fill(b, 0, n);
      return;
    case 1: {
      const [x0] = terms as [Float32Array];
      const c0 = coef[0]!;
      for (let j = 0; j < n; j++) out[j] = c0 * x0[j]! + b;
      return;
    }
    case 2: {
      const [x0, x1] = terms as [Float32Array, Float32Array];
      const c0 = coef[0]!, c1 = coef[1]!;
      for (let j = 0; j < n; j++) out[j] = c0 * x0[j]! + c1 * x1[j]! + b;
      return;
    }
    case 3: {
      const [x0, x1, x2] = terms as [Float32Array, Float32Array, Float32Array];
      const c0 = coef[0]!, c1 = coef[1]!, c2 = coef[2]!;
      for (let j = 0; j < n; j++) out[j] = c0 * x0[j]! + c1 * x1[j]! + c2 * x2[j]! + b;
      return;
    }
    case 4: {
      const [x0, x1, x2, x3] = terms as [Float32Array, Float32Array, Float32Array, Float32Array];
      const c0 = coef[0]!, c1 = coef[1]!, c2 = coef[2]!, c3 = coef[3]!;
      for (let j = 0; j < n; j++) out[j] = c0 * x0[j]! + c1 * x1[j]! + c2 * x2[j]! + c3 * x3[j]! + b;
      return;
    }
    default: {
      // more terms than the fused loops: accumulate in f64 over a row at a time
      for (let j = 0; j < n; j++) {
        let acc = b;
        for (let i = 0; i < terms.length; i++) acc += coef[i]! * terms[i]![j]!;
        out[j] = acc;
      }
    }
  }
}

/**
 * A coefficient whose product with any BF16 value is exact in f32: |c| ≤ 1 with c·2¹⁶ an integer
 * (0.5, 0.25, 0.75, ±1, …: a two-model soup, a difference), at most 16 significant bits that
 * with BF16's 8 fit f32's 24, and no product below 2⁻¹⁴⁹ nor above BF16's largest.
 */
export function exactOnBf16(c: number): boolean {
  return Math.abs(c) <= 1 && Number.isInteger(c * 65536);
}

/** The inputs with a nonzero coefficient, and those coefficients: dropping zero terms is exact, and saves a pass. */
function nonzeroTerms<T>(c: readonly number[], xs: readonly T[]): { terms: T[]; coef: number[] } {
  const terms: T[] = [];
  const coef: number[] = [];
  for (let i = 0; i < c.length; i++) {
    if (c[i] !== 0) {
      terms.push(xs[i]!);
      coef.push(c[i]!);
    }
  }
  return { terms, coef };
}
