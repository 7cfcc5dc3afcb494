/**
 * The kernel registry: a typed constant map, filled explicitly (nothing registers by being
 * imported). A name missing here is a type error against core/kernel-contract.ts.
 */
import type { KernelDef, KernelName } from '../../core/kernel-contract.js';
import { WeightspaceError, q } from '../../core/errors.js';
import { copyKernel } from './copy.js';
import { linearKernel } from './linear.js';
import { synthKernel } from './synth.js';

export const KERNELS = {
  copy: copyKernel,
  linear: linearKernel,
  synth: synthKernel,
} satisfies Partial<Record<KernelName, KernelDef<never, unknown>>>;

export function kernelFor(name: KernelName): KernelDef {
  const k = (KERNELS as Partial<Record<KernelName, KernelDef<never, unknown>>>)[name];
  if (!k) throw new WeightspaceError('internal', `kernel ${q(name)} is not registered`);
  return k as unknown as KernelDef;
}
