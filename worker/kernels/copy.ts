import type { KernelDef } from '../../core/kernel-contract.js';

export type CopyParams = Record<string, never>;

/**
 * out = θ (input 0), to every output. The executor copies raw bytes when the dtypes
 * match; this map only runs to change dtype.
 */
export const copyKernel: KernelDef<CopyParams> = {
  name: 'copy',
  doc: 'out = x₀ (a cast when the output dtype differs)',
  passes: () => 0,
  map(_params, _state, inputs, outputs, block) {
    const x = inputs[0]!;
    for (const out of outputs) out.set(x.subarray(0, block.length));
  },
};
