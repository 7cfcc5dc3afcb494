/**
 * The executor's per-block skip (KernelDef.skipBlock): a reduce pass does not run the blocks the
 * kernel names, folds an empty partial in their place, in block order, and finishes the pass
 * after its last block, read or not (even when no block of it is read). Checked through the
 * monitor kernel (sums over blocks), against sums over the blocks that were read, computed here.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { KernelDef } from '../../core/kernel-contract.js';
import { blocksOf } from '../../core/plan.js';
import { KERNELS } from '../../worker/kernels/registry.js';
import type { MonitorResult } from '../../worker/kernels/monitor.js';
import { randomF32, runKernel, shuffledDispatcher } from './kernels/research-harness.js';

const SHAPE = [700, 1000]; // 3 blocks of 262 rows (the last 176)
const monitor = KERNELS.monitor;
const kernels = KERNELS as unknown as Record<string, KernelDef>;

afterEach(() => {
  kernels['monitor'] = monitor as unknown as KernelDef;
});

/** The monitor kernel, skipping the blocks `skip` names in its reduce pass, and counting the blocks it reads. */
function skipping(skip: (block: number) => boolean): { reads: number[] } {
  const seen = { reads: [] as number[] };
  const base = monitor as unknown as KernelDef;
  kernels['monitor'] = {
    ...base,
    skipBlock: (_pass, _params, _state, block) => skip(block),
    reduce: (pass, params, state, inputs, block, partial) => {
      seen.reads.push(block.blockIndex);
      return base.reduce!(pass, params, state, inputs, block, partial);
    },
  };
  return seen;
}

/** vv, dot and dd summed over the elements of the blocks `read` names. */
function sums(before: Float32Array, v: Float32Array, after: Float32Array, read: (block: number) => boolean): { vv: number; dot: number; dd: number } {
  let vv = 0;
  let dot = 0;
  let dd = 0;
  for (const b of blocksOf(SHAPE)) {
    if (!read(b.index)) continue;
    for (let i = b.start; i < b.start + b.length; i++) {
      const d = after[i]! - before[i]!;
      vv += v[i]! * v[i]!;
      dot += d * v[i]!;
      dd += d * d;
    }
  }
  return { vv, dot, dd };
}

describe('tensor executor: blocks a reduce pass skips', () => {
  const n = SHAPE[0]! * SHAPE[1]!;
  const before = randomF32(n, 1);
  const v = randomF32(n, 2);
  const after = randomF32(n, 3);
  const run = { kernel: 'monitor' as const, params: { contrast: false, afters: 1 }, shape: SHAPE, inputs: [before, v, after], outputs: [] };

  for (const [label, skip] of [['none', () => false], ['the middle one', (b: number) => b === 1], ['the first and last', (b: number) => b !== 1], ['all of them', () => true]] as const) {
    it(`skips ${label}: the sums of the blocks read, the others never run`, async () => {
      expect(blocksOf(SHAPE)).toHaveLength(3);
      for (const dispatcher of [undefined, await shuffledDispatcher()]) {
        const seen = skipping(skip);
        const { result } = await runKernel({ ...run, ...(dispatcher ? { dispatcher } : {}) });
        const r = result as MonitorResult;
        const want = sums(before, v, after, (b) => !skip(b));
        expect([...seen.reads].sort()).toEqual([0, 1, 2].filter((b) => !skip(b)));
        expect(r.vv).toBeCloseTo(want.vv, 6);
        expect(r.dot[0]).toBeCloseTo(want.dot, 6);
        expect(r.dd[0]).toBeCloseTo(want.dd, 6);
        expect(r.numel).toBe(n);
      }
    });
  }
});
