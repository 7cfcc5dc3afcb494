import type { KernelDef } from '../../core/kernel-contract.js';
import type { NearswapParams } from '../../core/specs/merge-spec.js';

/**
 * NearSwap (alchemonaut, QuartetAnemoi-70B-t0.0001; mergekit `nearswap`): pull the base toward
 * the other model where they are already close. w = clamp(t/|θ₀ − θ₁|, 0, 1) (NaN, ±Inf → 1),
 * out = w·θ₁ + (1 − w)·θ₀. Inputs: base, model.
 */
export const nearswapKernel: KernelDef<NearswapParams> = {
  name: 'nearswap',
  doc: 'out = w·θ₁ + (1−w)·θ₀, w = clamp(t/|θ₀−θ₁|, 0, 1) (mergekit nearswap)',
  passes: () => 0,
  map(params, _state, inputs, outputs, block) {
    const a = inputs[0]!;
    const b = inputs[1]!;
    const t = params.t;
    const out = outputs[0]!;
    for (let j = 0; j < block.length; j++) {
      const x = a[j]!;
      const y = b[j]!;
      let w = t / Math.abs(x - y);
      if (!Number.isFinite(w)) w = 1; // torch.nan_to_num(nan=1, posinf=1, neginf=1)
      else if (w > 1) w = 1;
      else if (w < 0) w = 0;
      out[j] = w * y + (1 - w) * x;
    }
    for (let k = 1; k < outputs.length; k++) outputs[k]!.set(out.subarray(0, block.length));
  },
};
