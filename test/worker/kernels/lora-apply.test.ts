import { describe, it, expect } from 'vitest';
import { randomF32, runKernel } from './research-harness.js';

/** W + scale·B·A (or its transpose with fan_in_fan_out), naive loops in f64. */
function naiveApply(w: Float32Array, b: Float32Array, a: Float32Array, out: number, inn: number, r: number, scale: number, fifo: boolean): Float64Array {
  const res = Float64Array.from(w);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inn; j++) {
      let x = 0;
      for (let k = 0; k < r; k++) x += b[i * r + k]! * a[k * inn + j]!;
      if (fifo) res[j * out + i]! += scale * x; // W stored [in, out]
      else res[i * inn + j]! += scale * x;
    }
  }
  return res;
}

function maxDiff(got: Float32Array, want: Float64Array): number {
  let worst = 0;
  for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
  return worst;
}

describe('lora-apply kernel', () => {
  it('hand-computed: W + scale·B·A', async () => {
    const w = Float32Array.of(1, 0, 0, 1); // I
    const b = Float32Array.of(1, 2); // [2, 1]
    const a = Float32Array.of(3, 4); // [1, 2]
    const { outputs } = await runKernel({
      kernel: 'lora-apply', params: { rank: 1, scale: 0.5 }, shape: [2, 2],
      inputs: [w, { data: b, mode: 'rows', shape: [2, 1] }, { data: a, mode: 'whole', shape: [1, 2] }],
    });
    expect(Array.from(outputs[0]!)).toEqual([2.5, 2, 3, 5]); // I + 0.5·[[3,4],[6,8]]
  });

  it('matches the naive reference on [700, 1000] (several blocks, B read by rows)', async () => {
    const [out, inn, r] = [700, 1000, 8];
    const w = randomF32(out * inn, 1, 0.05);
    const b = randomF32(out * r, 2, 0.1);
    const a = randomF32(r * inn, 3, 0.1);
    const scale = 16 / r; // α/r
    const { outputs } = await runKernel({
      kernel: 'lora-apply', params: { rank: r, scale }, shape: [out, inn],
      inputs: [w, { data: b, mode: 'rows', shape: [out, r] }, { data: a, mode: 'whole', shape: [r, inn] }],
    });
    expect(maxDiff(outputs[0]!, naiveApply(w, b, a, out, inn, r, scale, false))).toBeLessThan(1e-6);
  });

  it('fan_in_fan_out: W stored [in, out] takes (B·A)ᵀ; rsLoRA scale α/√r', async () => {
    const [out, inn, r] = [300, 1000, 4]; // W [1000, 300]: 300k elements, 2 blocks
    const w = randomF32(inn * out, 4, 0.05);
    const b = randomF32(out * r, 5, 0.1);
    const a = randomF32(r * inn, 6, 0.1);
    const scale = 8 / Math.sqrt(r);
    const { outputs } = await runKernel({
      kernel: 'lora-apply', params: { rank: r, scale, fanInFanOut: true }, shape: [inn, out], name: 'transformer.h.0.attn.c_attn.weight',
      inputs: [w, { data: b, mode: 'whole', shape: [out, r] }, { data: a, mode: 'whole', shape: [r, inn] }],
    });
    expect(maxDiff(outputs[0]!, naiveApply(w, b, a, out, inn, r, scale, true))).toBeLessThan(1e-6);
  });

  it('a zero adapter leaves W bit-identical; NaN in B spreads only to its row', async () => {
    const w = randomF32(6, 7);
    const zero = (await runKernel({
      kernel: 'lora-apply', params: { rank: 1, scale: 2 }, shape: [2, 3],
      inputs: [w, { data: new Float32Array(2), mode: 'rows', shape: [2, 1] }, { data: new Float32Array(3), mode: 'whole', shape: [1, 3] }],
    })).outputs[0]!;
    expect(Array.from(zero)).toEqual(Array.from(w));
    const nan = (await runKernel({
      kernel: 'lora-apply', params: { rank: 1, scale: 1 }, shape: [2, 3],
      inputs: [w, { data: Float32Array.of(Number.NaN, 1), mode: 'rows', shape: [2, 1] }, { data: Float32Array.of(1, 1, 1), mode: 'whole', shape: [1, 3] }],
    })).outputs[0]!;
    expect(Array.from(nan.subarray(0, 3)).every(Number.isNaN)).toBe(true);
    expect(Array.from(nan.subarray(3)).some(Number.isNaN)).toBe(false);
  });

  it('rejects an adapter whose shapes do not match the weight', async () => {
    const w = randomF32(6, 8);
    await expect(runKernel({
      kernel: 'lora-apply', params: { rank: 1, scale: 1 }, shape: [2, 3],
      inputs: [w, { data: Float32Array.of(1, 1), mode: 'rows', shape: [2, 1] }, { data: Float32Array.of(1, 1), mode: 'whole', shape: [1, 2] }],
    })).rejects.toMatchObject({ code: 'shape-mismatch' });
  });
});
