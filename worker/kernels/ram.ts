import type { KernelDef } from '../../core/kernel-contract.js';
import type { RamParams } from '../../core/specs/merge-spec.js';

/**
 * RAM, Reinforced Agent Merging (arXiv 2601.13572; mergekit `ram`): each position takes the
 * mean of the task vectors that change it (|δᵢ| > ε): a change made by one model is kept whole,
 * changes made by several are averaged. out = θ₀ + Σᵢ δᵢ[|δᵢ|>ε] / max(1, #{i: |δᵢ|>ε}).
 */
export const ramKernel: KernelDef<RamParams> = {
  name: 'ram',
  doc: 'out = θ₀ + Σ δᵢ[|δᵢ|>ε] / max(1, #{|δᵢ|>ε}) (mergekit ram)',
  passes: () => 0,
  map(params, _state, inputs, outputs, block) {
    const base = inputs[0]!;
    const out = outputs[0]!;
    const eps = params.epsilon;
    for (let j = 0; j < block.length; j++) {
      const b = base[j]!;
      let sum = 0;
      let count = 0;
      for (let i = 1; i <= params.models; i++) {
        const d = Math.fround(inputs[i]![j]! - b);
        if (Math.abs(d) > eps) {
          sum += d;
          count++;
        } else sum += 0 * d; // a NaN task vector poisons the position, as mask·δ does in mergekit
      }
      out[j] = b + sum / (count > 1 ? count : 1);
    }
    for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, block.length));
  },
};
