import type { KernelDef } from '../../core/kernel-contract.js';
import { WeightspaceError, q } from '../../core/errors.js';
import { matmulBackend } from '../linalg/matmul.js';
import { scratchF32 } from '../linalg/scratch.js';

export interface LoraApplyParams {
  /** the adapter's rank r */
  readonly rank: number;
  /** α/r, or α/√r with rsLoRA (resolved by the planner, times any user scale) */
  readonly scale: number;
  /**
   * PEFT `fan_in_fan_out`: the base weight is stored [in, out] (GPT-2 Conv1D), so the update is
   * (B·A)ᵀ; then B is read 'whole' instead of by rows.
   */
  readonly fanInFanOut?: boolean;
}

/**
 * Merging a LoRA adapter: W′ = W + scale·B·A (B [out, r], A [r, in]; Hu et al. 2021, PEFT's
 * merge_and_unload), or W′ = W + scale·(B·A)ᵀ when fan_in_fan_out. Inputs: [W (blocks),
 * B ('rows' of [out, r], or 'whole' when fan_in_fan_out), A ('whole', [r, in])]. The block's
 * B·A goes through the matmul backend; W + scale·ΔW is rounded once.
 */
export const loraApplyKernel: KernelDef<LoraApplyParams> = {
  name: 'lora-apply',
  doc: 'W′ = W + scale·B·A (or (B·A)ᵀ with fan_in_fan_out)',
  passes: () => 0,
  map(params, _state, inputs, outputs, block) {
    const w = inputs[0]!;
    const bIn = inputs[1]!;
    const aIn = inputs[2]!;
    const r = params.rank;
    const C = block.rowLength;
    const rows = block.length / C;
    const g0 = block.start / C;
    const mm = matmulBackend();
    const delta = scratchF32('lora-apply.delta', block.length);
    if (!params.fanInFanOut) {
      // W [out, in]: rows g0.. of B·A = B[g0.., :]·A
      if (aIn.length !== r * C || bIn.length !== rows * r) {
        throw new WeightspaceError('shape-mismatch', `tensor ${q(block.tensor)}: adapter holds ${aIn.length / r} columns in A and ${bIn.length / r} rows of B for this block, expected ${C} and ${rows}`);
      }
      mm.gemm(false, bIn, aIn, rows, r, C, delta);
    } else {
      // W [in, out]: rows g0.. of (B·A)ᵀ = A[:, g0..]ᵀ·Bᵀ
      const inDim = aIn.length / r;
      if (!Number.isInteger(inDim) || bIn.length !== C * r || g0 + rows > inDim) {
        throw new WeightspaceError('shape-mismatch', `tensor ${q(block.tensor)}: fan_in_fan_out adapter A has ${inDim} columns and B ${bIn.length / r} rows, expected ${block.shape[0]} and ${C}`);
      }
      const aSub = scratchF32('lora-apply.a', r * rows);
      for (let k = 0; k < r; k++) for (let i = 0; i < rows; i++) aSub[k * rows + i] = aIn[k * inDim + g0 + i]!;
      const bt = scratchF32('lora-apply.bt', r * C);
      for (let j = 0; j < C; j++) for (let k = 0; k < r; k++) bt[k * C + j] = bIn[j * r + k]!;
      mm.gemm(true, aSub, bt, rows, r, C, delta);
    }
    const s = params.scale;
    for (const out of outputs) for (let j = 0; j < block.length; j++) out[j] = w[j]! + s * delta[j]!;
  },
};
