/**
 * The common shape of operations that combine models tensor by tensor with the `linear`
 * kernel (diff, eval, steer): check the models agree, pick tensors, give each selected
 * tensor its coefficients, copy the rest from the base.
 */
import type { Checkpoint } from '../../core/checkpoint.js';
import type { WritableFloatDType } from '../../core/dtypes.js';
import type { Plan } from '../../core/plan.js';
import { buildPlan, inputOf, outputDtype, requireCompatible, selectTensors, type OutputDecl, type TensorRecipe } from '../plan-builder.js';

export interface ElementwiseArgs {
  readonly op: string;
  readonly spec: unknown;
  /** models by name, in input order */
  readonly models: ReadonlyMap<string, Checkpoint>;
  readonly base: string;
  /** per output k: coefficient of each model (by name) and a constant */
  readonly combos: readonly { readonly coefficients: ReadonlyMap<string, number>; readonly constant: number }[];
  readonly outputs: readonly OutputDecl[];
  readonly dtype?: WritableFloatDType;
  readonly shardSize?: number;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  /** what happens to tensors not selected: copied from the base (default) or left out */
  readonly rest: 'copy' | 'omit';
}

export function planElementwise(a: ElementwiseArgs): Plan {
  const base = a.models.get(a.base)!;
  const named = [...a.models].map(([name, ckpt]) => ({ name, ckpt }));
  requireCompatible({ name: a.base, ckpt: base }, named);
  const { selected, rest } = selectTensors(base, a.include, a.exclude);
  // models whose coefficient is zero in every output are not read at all
  const scale = Math.max(...a.combos.flatMap((c) => [...c.coefficients.values()].map(Math.abs)), 1e-300);
  const used = [...a.models.keys()].filter((n) => a.combos.some((c) => Math.abs(c.coefficients.get(n) ?? 0) > 1e-12 * scale));
  const tensors: TensorRecipe[] = [];
  const isSelected = new Set(selected);
  for (const name of [...selected, ...rest]) {
    const ref = base.tensors.get(name)!;
    if (isSelected.has(name)) {
      tensors.push({
        name,
        kernel: 'linear',
        params: {
          coefficients: a.combos.map((c) => used.map((n) => snap(c.coefficients.get(n) ?? 0, scale))),
          constants: a.combos.map((c) => c.constant),
        },
        inputs: used.map((n) => inputOf(a.models.get(n)!.tensors.get(name)!)),
        shape: ref.shape,
        dtype: outputDtype(ref.dtype, a.dtype),
      });
    } else if (a.rest === 'copy') {
      tensors.push({ name, kernel: 'copy', params: {}, inputs: [inputOf(ref)], shape: ref.shape, dtype: outputDtype(ref.dtype, a.dtype) });
    }
  }
  return buildPlan({ op: a.op, spec: a.spec, outputs: a.outputs, tensors, ...(a.shardSize ? { shardSize: a.shardSize } : {}) });
}

/** Coefficients that cancel up to rounding (1 − 0.8 − 0.2) are exactly zero. */
function snap(c: number, scale: number): number {
  return Math.abs(c) <= 1e-12 * scale ? 0 : c;
}
