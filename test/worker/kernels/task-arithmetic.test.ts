import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { tensorKey, uniformAt } from '../../../core/counter-rng.js';
import { decodeBlock, encodeBlock } from '../../../core/dtypes.js';
import { BLOCK_ELEMENTS, blocksOf } from '../../../core/plan.js';
import { dellaRowProbs } from '../../../worker/kernels/ta-della.js';
import { SELECT_LIMITS, SELECT_STATS } from '../../../worker/kernels/ta-select.js';
import { setSimdEnabled, simdUse } from '../../../worker/simd/simd-module.js';
import { ACCUMULATOR_CHECKS } from '../../../worker/tensor-executor.js';
import type { TaskArithmeticParams } from '../../../core/specs/merge-spec.js';
import { runKernels } from '../../helpers/kernel-runner.js';
import { f32, fineTune, gaussian, maxRelError, rng, runKernel, shuffledDispatcher } from './merge-harness.js';

// ---------------------------------------------------------------------------------------
// an independent naive reference: whole arrays, full sorts, the slow per-element RNG path

type Ref = Omit<TaskArithmeticParams, 'weights'> & { weights: number[] };

function refMasks(name: string, shape: readonly number[], deltas: Float32Array[], p: Ref): { masks: Uint8Array[]; probs: Float64Array[] } {
  const n = deltas[0]?.length ?? 0;
  const row = shape.length >= 2 ? shape[shape.length - 1]! : n;
  const masks: Uint8Array[] = [];
  const probs: Float64Array[] = [];
  deltas.forEach((d, i) => {
    const rho = p.densities?.[i] ?? 1;
    const m = new Uint8Array(n).fill(1);
    const pr = new Float64Array(n).fill(1);
    masks.push(m);
    probs.push(pr);
    if (p.sparsify === 'none' || rho >= 1) return;
    const mag = (j: number): number => (Number.isNaN(d[j]!) ? Infinity * 2 : Math.abs(d[j]!));
    // larger magnitude first (NaN largest), then lower index first
    const byMag = (a: number, b: number): number => {
      const x = mag(a), y = mag(b);
      if (Number.isNaN(x) !== Number.isNaN(y)) return Number.isNaN(x) ? -1 : 1;
      return y - x;
    };
    const byMagDesc = (a: number, b: number): number => byMag(a, b) || a - b;
    if (p.sparsify === 'magnitude' || p.sparsify === 'breadcrumbs') {
      const order = Array.from({ length: n }, (_, j) => j).sort(byMagDesc);
      const target = Math.floor(Math.max(0, rho) * n);
      let lo = 0;
      if (p.sparsify === 'breadcrumbs') {
        lo = Math.floor((p.gammas?.[i] ?? 0.01) * n);
        if (n - target - lo < 0) lo = n - target;
      }
      m.fill(0);
      for (let r = lo; r < lo + target; r++) m[order[r]!] = 1;
      return;
    }
    const seed = p.seed ?? 0;
    const key = tensorKey(name);
    if (p.sparsify === 'random') {
      for (let j = 0; j < n; j++) {
        m[j] = rho > 0 && uniformAt(seed, i, key, j) < rho ? 1 : 0;
        pr[j] = rho;
      }
      return;
    }
    // della: ranks by |δ| ascending within each row, ties by position
    const eps = p.epsilons?.[i] ?? 0.15;
    for (let r0 = 0; r0 < n; r0 += row) {
      const idx = Array.from({ length: row }, (_, j) => r0 + j);
      idx.sort((a, b) => -byMag(a, b) || a - b);
      idx.forEach((j, rank) => {
        pr[j] = row === 1 ? rho : rho - eps + (2 * eps * rank) / (row - 1);
      });
    }
    for (let j = 0; j < n; j++) m[j] = rho > 0 && uniformAt(seed, i, key, j) < pr[j]! ? 1 : 0;
  });
  return { masks, probs };
}

/** Runs `fn` with some of the selection's tunables changed, and puts them back whatever happens. */
async function underLimits<T>(limits: Partial<typeof SELECT_LIMITS>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...SELECT_LIMITS };
  Object.assign(SELECT_LIMITS, limits);
  try {
    return await fn();
  } finally {
    Object.assign(SELECT_LIMITS, saved);
  }
}

/** x rounded to BF16 and back: the values a BF16 checkpoint holds. */
function bf16Values(x: Float32Array): Float32Array {
  const bytes = new Uint8Array(2 * x.length);
  encodeBlock('BF16', x, bytes, x.length);
  const out = new Float32Array(x.length);
  decodeBlock('BF16', bytes, out, x.length);
  return out;
}

function refGta(name: string, shape: readonly number[], base: Float32Array, models: Float32Array[], p: Ref): Float32Array {
  const n = base.length;
  const deltas = models.map((x) => {
    const d = new Float32Array(n);
    for (let j = 0; j < n; j++) d[j] = x[j]! - base[j]!;
    return d;
  });
  const { masks, probs } = refMasks(name, shape, deltas, p);
  // thinned, rescaled, weighted task vectors
  const tv = deltas.map((d, i) => {
    const rho = p.densities?.[i] ?? 1;
    const on = p.sparsify !== 'none' && rho < 1;
    let scale = 1;
    if (on && p.rescale === 'l1') {
      let before = 0, after = 0;
      for (let j = 0; j < n; j++) {
        before += Math.abs(d[j]!);
        after += masks[i]![j]! ? Math.abs(d[j]!) : 0;
      }
      scale = before >= 1e-7 && after >= 1e-7 ? before / after : 1;
    }
    // the factor wᵢ·sᵢ is rounded to f32 (as torch holds mergekit's weights in the deltas' dtype)
    const fr = Math.fround;
    const w = p.weights[i]!;
    const out = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      if (!on) out[j] = fr(fr(w) * d[j]!);
      else if (!masks[i]![j]) out[j] = 0 * d[j]!; // mergekit multiplies by the mask: a dropped NaN stays NaN
      else if (p.rescale === 'density' && p.sparsify === 'della') out[j] = fr((w * d[j]!) / probs[i]![j]!);
      else if (p.rescale === 'density') out[j] = fr(fr(w * (1 / rho)) * d[j]!);
      else out[j] = fr(fr(w * scale) * d[j]!);
    }
    return out;
  });
  const out = new Float32Array(n);
  const wsum = p.weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < n; j++) {
    let mixed = 0;
    let div = 0;
    if (p.consensus === 'none') {
      for (const t of tv) mixed += t[j]!;
      div = Math.abs(wsum) < 1e-8 ? 1 : wsum;
    } else {
      // with consensus, f32 arithmetic: every operation rounded to f32
      const fr = Math.fround;
      let vote = 0;
      for (const t of tv) vote = fr(vote + (p.consensus === 'sum' ? t[j]! : Math.sign(t[j]!)));
      const sign = vote >= 0 ? 1 : -1;
      tv.forEach((t, i) => {
        if (Math.sign(t[j]!) === sign) {
          mixed = fr(mixed + t[j]!);
          div = fr(div + fr(p.weights[i]!));
        } else mixed = fr(mixed + 0 * t[j]!);
      });
      if (div === 0) div = 1;
      if (p.normalize) mixed = fr(mixed / div);
      out[j] = fr(base[j]! + fr(fr(p.lambda) * mixed));
      continue;
    }
    if (p.normalize) mixed /= div;
    out[j] = base[j]! + p.lambda * mixed;
  }
  return out;
}

const TIES: Omit<Ref, 'weights'> = { sparsify: 'magnitude', consensus: 'sum', rescale: 'none', normalize: true, lambda: 1 };

// ---------------------------------------------------------------------------------------

// the kernel clears its reused accumulators itself (clearAccumulator): here they come full of NaN
// instead of as the last tensor left them, so that a part it failed to clear spoils the results
beforeAll(() => {
  ACCUMULATOR_CHECKS.poison = true;
});
afterAll(() => {
  ACCUMULATOR_CHECKS.poison = false;
});

describe('task-arithmetic kernel: golden vectors (issue 3)', () => {
  const base = f32([0, 0, 0, 0]);
  const m1 = f32([0.5, -0.2, 0.1, -0.4]);
  const m2 = f32([-0.3, 0.6, 0.05, -0.1]);

  it('TIES, ρ = 0.5, weights [1, 1] → [0.5, 0.6, 0, −0.4]', async () => {
    const out = await runKernel('task-arithmetic', { ...TIES, weights: [1, 1], densities: [0.5, 0.5] }, [base, m1, m2], [4]);
    expect([...out].map((x) => +x.toFixed(6))).toEqual([0.5, 0.6, 0, -0.4]);
  });

  it('TIES, ρ = 0.5, weights [0.2, 1] → [−0.3, 0.6, 0, −0.4] (sign of the weighted sum)', async () => {
    const out = await runKernel('task-arithmetic', { ...TIES, weights: [0.2, 1], densities: [0.5, 0.5] }, [base, m1, m2], [4]);
    expect([...out].map((x) => +x.toFixed(6))).toEqual([-0.3, 0.6, 0, -0.4]);
  });

  // a seed whose first four draws keep [1, 1, 0, 0] at ρ = 0.5, found with the reference RNG
  const name = 'model.layers.0.mlp.down_proj.weight';
  const seed = (() => {
    for (let s = 0; s < 10_000; s++) {
      const u = [0, 1, 2, 3].map((j) => uniformAt(s, 0, tensorKey(name), j));
      if (u[0]! < 0.5 && u[1]! < 0.5 && u[2]! >= 0.5 && u[3]! >= 0.5) return s;
    }
    throw new Error('no seed');
  })();
  const dare = (rescale: 'l1' | 'density'): TaskArithmeticParams => ({
    sparsify: 'random', consensus: 'none', rescale, normalize: false, lambda: 1, weights: [1], densities: [0.5], seed,
  });
  const delta = f32([0.4, -0.2, 0.1, -0.3]);

  it('DARE, mask [1, 1, 0, 0], L1 rescale → [0.6667, −0.3333, 0, 0]', async () => {
    const out = await runKernel('task-arithmetic', dare('l1'), [f32([0, 0, 0, 0]), delta], [4], { name });
    expect([...out].map((x) => +x.toFixed(4))).toEqual([0.6667, -0.3333, 0, 0]);
  });

  it('DARE, mask [1, 1, 0, 0], ÷density → [0.8, −0.4, 0, 0]', async () => {
    const out = await runKernel('task-arithmetic', dare('density'), [f32([0, 0, 0, 0]), delta], [4], { name });
    expect([...out].map((x) => +x.toFixed(6))).toEqual([0.8, -0.4, 0, 0]);
  });

  it('DELLA keep probabilities of row [0.1, −0.4, 0.2, 0.3], ρ = 0.5, ε = 0.1 → [0.4, 0.6, 0.4667, 0.5333]', () => {
    const bits = new Uint32Array(f32([0.1, -0.4, 0.2, 0.3]).buffer);
    const p = new Float64Array(4);
    dellaRowProbs(bits, 4, 0.5, 0.1, p);
    expect([...p].map((x) => +x.toFixed(4))).toEqual([0.4, 0.6, 0.4667, 0.5333]);
  });

  it('DELLA gives a one-element row p = ρ, and ties rank by position', () => {
    const p = new Float64Array(4);
    dellaRowProbs(new Uint32Array(f32([7]).buffer), 1, 0.3, 0.1, p);
    expect(p[0]).toBe(0.3);
    dellaRowProbs(new Uint32Array(f32([0.2, -0.2, 0.2, 0.1]).buffer), 4, 0.5, 0.15, p);
    expect([...p].map((x) => +x.toFixed(4))).toEqual([0.45, 0.55, 0.65, 0.35]);
  });
});

describe('task-arithmetic kernel against the naive reference, on tensors spanning several blocks', () => {
  const shape = [700, 1000];
  const n = 700 * 1000;
  const name = 'model.layers.3.self_attn.q_proj.weight';
  const base = gaussian(n, 1, 0.02);
  // deltas on a coarse grid: many equal magnitudes, so cuts fall inside runs of ties that cross blocks
  const models = [fineTune(base, 2, 0.01, 1 / 512), fineTune(base, 3, 0.01, 1 / 512), fineTune(base, 4, 0.02, 1 / 256)];

  it('the test tensor spans several blocks', () => {
    expect(blocksOf(shape).length).toBeGreaterThanOrEqual(3);
    expect(n).toBeGreaterThan(BLOCK_ELEMENTS);
  });

  const cases: [string, Ref][] = [
    ['task_arithmetic', { sparsify: 'none', consensus: 'none', rescale: 'none', normalize: false, lambda: 0.7, weights: [0.5, 0.3, -0.4] }],
    ['task_arithmetic normalized', { sparsify: 'none', consensus: 'none', rescale: 'none', normalize: true, lambda: 1, weights: [0.5, 0.3, 0.4] }],
    ['ties', { ...TIES, weights: [1, 0.5, 0.7], densities: [0.5, 0.3, 0.9] }],
    ['ties, negative weight, count consensus', { ...TIES, consensus: 'count', weights: [1, -0.5, 0.7], densities: [0.2, 0.5, 0.7] }],
    ['ties, rescale l1, λ', { ...TIES, rescale: 'l1', lambda: 1.3, weights: [0.6, 0.4, 1], densities: [0.4, 0.4, 0.4] }],
    ['ties, rescale density', { ...TIES, rescale: 'density', weights: [0.6, 0.4, 1], densities: [0.4, 0.6, 0.1] }],
    ['breadcrumbs', { sparsify: 'breadcrumbs', consensus: 'none', rescale: 'none', normalize: false, lambda: 1, weights: [0.5, 0.5, 0.5], densities: [0.9, 0.5, 0.3], gammas: [0.01, 0.1, 0.8] }],
    ['breadcrumbs_ties', { sparsify: 'breadcrumbs', consensus: 'sum', rescale: 'none', normalize: false, lambda: 1, weights: [0.5, 0.7, 0.5], densities: [0.8, 0.5, 0.5], gammas: [0.05, 0.01, 0] }],
    ['dare_ties', { sparsify: 'random', consensus: 'sum', rescale: 'l1', normalize: false, lambda: 1, weights: [0.5, 0.5, 0.5], densities: [0.5, 0.3, 0.7], seed: 42 }],
    ['dare_linear', { sparsify: 'random', consensus: 'none', rescale: 'l1', normalize: false, lambda: 1, weights: [0.4, 0.3, 0.3], densities: [0.5, 0.5, 0.5], seed: 7 }],
    ['dare_linear ÷density', { sparsify: 'random', consensus: 'none', rescale: 'density', normalize: true, lambda: 1, weights: [0.4, 0.3, 0.3], densities: [0.5, 0.2, 1], seed: 7 }],
    ['della', { sparsify: 'della', consensus: 'sum', rescale: 'l1', normalize: true, lambda: 1, weights: [1, 1, 1], densities: [0.5, 0.4, 0.6], epsilons: [0.1, 0.15, 0.2], seed: 3 }],
    ['della_linear ÷p', { sparsify: 'della', consensus: 'none', rescale: 'density', normalize: false, lambda: 0.9, weights: [0.5, 0.5, 0.5], densities: [0.5, 0.5, 0.5], epsilons: [0.1, 0.1, 0.1], seed: 3 }],
  ];

  for (const [label, p] of cases) {
    it(label, async () => {
      const out = await runKernel('task-arithmetic', p, [base, ...models], shape, { name });
      const ref = refGta(name, shape, base, models, p);
      expect(maxRelError(out, ref)).toBeLessThan(1e-6);
    });
  }

  it('every case run together, as tensors of one plan (accumulators reused from one to the next), gives the bytes of each run alone', async () => {
    const together = await runKernels(cases.map(([, p]) => ({ kernel: 'task-arithmetic', params: p, shape, inputs: [base, ...models], name })));
    for (let i = 0; i < cases.length; i++) {
      const alone = await runKernel('task-arithmetic', cases[i]![1], [base, ...models], shape, { name });
      expect(Buffer.from(together[i]!.outputs[0]!.buffer).equals(Buffer.from(alone.buffer)), cases[i]![0]).toBe(true);
    }
  });

  // the selection resolves a cut from the candidates in T's bucket, or (bucket too crowded) by two
  // counting passes: both paths must give the same bytes
  for (const [label, p] of cases.filter(([, c]) => c.sparsify === 'magnitude' || c.sparsify === 'breadcrumbs')) {
    it(`${label}: the counting fallback gives the same bytes as the candidate path`, async () => {
      const fast = await runKernel('task-arithmetic', p, [base, ...models], shape, { name });
      await underLimits({ candidateCap: 0 }, async () => {
        const slow = await runKernel('task-arithmetic', p, [base, ...models], shape, { name });
        expect(Buffer.from(slow.buffer).equals(Buffer.from(fast.buffer))).toBe(true);
      });
    });
  }

  // pass 1's per-block records overflowing their room (candidateCap small but not 0) fall back to
  // the counting passes from pass 0's state: the same bytes again
  for (const [label, p] of cases.filter(([, c]) => c.sparsify === 'magnitude' || c.sparsify === 'breadcrumbs')) {
    it(`${label}: overflowing pass-1 records fall back to counting, same bytes`, async () => {
      const fast = await runKernel('task-arithmetic', p, [base, ...models], shape, { name });
      await underLimits({ candidateCap: 1 }, async () => {
        const slow = await runKernel('task-arithmetic', p, [base, ...models], shape, { name });
        expect(Buffer.from(slow.buffer).equals(Buffer.from(fast.buffer))).toBe(true);
      });
    });
  }

  // the executor runs the decode, TIES' selection passes and its fused map on the SIMD backend
  // when its scratch lives there (always, here): the JavaScript loops must give the same bytes
  for (const [label, p, m] of [
    ['ties, two models', { ...TIES, weights: [0.5, 0.5], densities: [0.5, 0.5] }, 2],
    ['ties, three models, rescale density', { ...TIES, rescale: 'density', weights: [1, 0.5, 0.7], densities: [0.5, 0.3, 0.9] }, 3],
    ['breadcrumbs_ties', cases.find(([l]) => l === 'breadcrumbs_ties')![1], 3],
  ] as [string, Ref, number][]) {
    it(`${label}: the SIMD and JavaScript backends give the same bytes`, async () => {
      const inputs = [base, ...models.slice(0, m)];
      const before = simdUse.calls;
      const simd = await runKernel('task-arithmetic', p, inputs, shape, { name });
      expect(simdUse.calls).toBeGreaterThan(before);
      setSimdEnabled(false);
      try {
        const js = await runKernel('task-arithmetic', p, inputs, shape, { name });
        expect(Buffer.from(js.buffer).equals(Buffer.from(simd.buffer))).toBe(true);
      } finally {
        setSimdEnabled(true);
      }
    });
  }

  // pass 0 also collects the low bits around each block's own cut bucket; when every block's
  // window holds the tensor's cut bucket, those records resolve the cut and pass 1 is skipped.
  // Whether they do or not (windows that miss, records that overflow, windows off), the bytes
  // are the same
  describe('speculative windows in the histogram pass', () => {
    const two = models.slice(0, 2);
    const p: Ref = { ...TIES, weights: [0.6, 0.4], densities: [0.5, 0.3] };
    const run = (inputs: Float32Array[]): Promise<Float32Array> => runKernel('task-arithmetic', p, inputs, shape, { name });
    const withLimits = (limits: Partial<typeof SELECT_LIMITS>, inputs: Float32Array[]): Promise<{ out: Float32Array; resolved: number }> => underLimits(limits, async () => {
      const before = SELECT_STATS.resolvedByWindows;
      const out = await run(inputs);
      return { out, resolved: SELECT_STATS.resolvedByWindows - before };
    });
    const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

    it('resolve both cuts when the blocks look alike, with the bytes of the two-pass selection', async () => {
      const fusedBefore = SELECT_STATS.fusedWindowBlocks;
      const spec = await withLimits({}, [base, ...two]);
      expect(spec.resolved).toBe(2);
      // blocks after the second take the windows of the one before, read with the histogram in one
      // loop; the first two count theirs in full, the second to show that its windows sit where the
      // first's did (one thread here)
      const blocks = blocksOf(shape).length;
      expect(blocks).toBeGreaterThan(2);
      expect(SELECT_STATS.fusedWindowBlocks - fusedBefore).toBe(blocks - 2);
      const untrusted = SELECT_STATS.fusedWindowBlocks;
      expect(same((await withLimits({ lumpUntrusted: true }, [base, ...two])).out, spec.out)).toBe(true);
      expect(SELECT_STATS.fusedWindowBlocks - untrusted).toBe(blocks - 1);
      const off = await withLimits({ windows: false }, [base, ...two]);
      expect(off.resolved).toBe(0);
      expect(same(spec.out, off.out)).toBe(true);
      expect(maxRelError(spec.out, refGta(name, shape, base, two, p))).toBeLessThan(1e-6);
    });

    it('fall back to pass 1 when a block\'s window misses the cut (its deltas 50× larger)', async () => {
      const loud = two.map((x) => {
        const y = Float32Array.from(x);
        for (let j = 0; j < BLOCK_ELEMENTS; j++) y[j] = base[j]! + 50 * (x[j]! - base[j]!);
        return y;
      });
      const spec = await withLimits({}, [base, ...loud]);
      expect(spec.resolved).toBe(0);
      const off = await withLimits({ windows: false }, [base, ...loud]);
      expect(same(spec.out, off.out)).toBe(true);
      expect(maxRelError(spec.out, refGta(name, shape, base, loud, p))).toBeLessThan(1e-6);
    });

    it('count a true histogram (pass 1) when blocks that lumped theirs drift past each other\'s windows', async () => {
      // blocks lump here without a block that agreed first and keep lumping after misses (no spread
      // mode): the path where lumped windows share no bucket
      await underLimits({ spreadMisses: Infinity, lumpUntrusted: true }, async () => {
        // 8 blocks whose deltas grow by 0.4 % a block (about one histogram bucket): each block is near
        // the window of the one before, so it lumps its histogram, but the windows share no bucket
        const drift = [1024, 2048] as const;
        const m = drift[0] * drift[1];
        const b0 = gaussian(m, 5, 0.02);
        const xs = [6, 7].map((seed) => {
          const d = gaussian(m, seed, 0.01);
          return Float32Array.from(b0, (v, j) => v + d[j]! * 1.004 ** Math.floor(j / BLOCK_ELEMENTS));
        });
        const q: Ref = { ...TIES, weights: [0.6, 0.4], densities: [0.5, 0.5] };
        const go = (): Promise<Float32Array> => runKernel('task-arithmetic', q, [b0, ...xs], [...drift], { name });
        const before = { ...SELECT_STATS };
        const spec = await go();
        expect(SELECT_STATS.fusedWindowBlocks).toBeGreaterThan(before.fusedWindowBlocks);
        expect(SELECT_STATS.histogramPasses).toBe(before.histogramPasses + 2);
        expect(SELECT_STATS.resolvedByWindows).toBe(before.resolvedByWindows);
        // pass 1 collects one window for all blocks around theirs: it holds the cut, so pass 2 is skipped
        expect(SELECT_STATS.resolvedByPass1Windows).toBe(before.resolvedByPass1Windows + 2);
        await underLimits({ windows: false }, async () => expect(same(spec, await go())).toBe(true));
        // without pass 1's windows, pass 2 collects the candidates in T's bucket: the same bytes
        await underLimits({ pass1Windows: false }, async () => {
          const mid = { ...SELECT_STATS };
          expect(same(spec, await go())).toBe(true);
          expect(SELECT_STATS.histogramPasses).toBe(mid.histogramPasses + 2);
          expect(SELECT_STATS.resolvedByPass1Windows).toBe(mid.resolvedByPass1Windows);
        });
        // exactly ⌊ρn⌋ of each model's deltas are kept: the output differs from the base where one was
        let kept = 0;
        for (let j = 0; j < m; j++) if (spec[j] !== b0[j]) kept++;
        expect(kept).toBeGreaterThan(m / 2);
      });
    });

    it('count spread tensors\' histograms alone after two misses, and find the cut in pass 2 (no pass 1)', async () => {
      // blocks whose deltas alternate between two scales 1.6× apart (low-rank fine-tunes scatter
      // like this, block by block): every block misses the windows of the block before
      const shapeS = [512, 2048] as const;
      const m = shapeS[0] * shapeS[1];
      const b0 = gaussian(m, 15, 0.02);
      const xs = [16, 17].map((seed) => {
        const d = gaussian(m, seed, 0.01);
        return Float32Array.from(b0, (v, j) => v + d[j]! * (Math.floor(j / BLOCK_ELEMENTS) % 2 ? 1.6 : 1));
      });
      const q: Ref = { ...TIES, weights: [0.6, 0.4], densities: [0.5, 0.3] };
      const go = (): Promise<Float32Array> => runKernel('task-arithmetic', q, [b0, ...xs], [...shapeS], { name: 'spread' });
      const before = { ...SELECT_STATS };
      const spec = await go();
      expect(SELECT_STATS.spreadBlocks).toBeGreaterThan(before.spreadBlocks);
      expect(SELECT_STATS.fusedWindowBlocks).toBe(before.fusedWindowBlocks);
      expect(SELECT_STATS.histogramPasses).toBe(before.histogramPasses);
      expect(SELECT_STATS.resolvedByWindows).toBe(before.resolvedByWindows);
      // the same bytes as with windows off, and as the reference
      await underLimits({ windows: false }, async () => {
        expect(same(spec, await go())).toBe(true);
      });
      expect(maxRelError(spec, refGta('spread', [...shapeS], b0, xs, q))).toBeLessThan(1e-6);
      // as BF16 blocks: the histograms and pass 2 read them as they are, with the bytes of the
      // same values given as F32
      const bfIns = [b0, ...xs].map(bf16Values);
      const beforeRaw = { hist: simdUse.rawHistogram, cand: simdUse.rawCandidates, spread: SELECT_STATS.spreadBlocks, skipped: SELECT_STATS.candidateBlocksSkipped };
      const rawOut = await runKernel('task-arithmetic', q, bfIns, [...shapeS], { name: 'spread', dtype: 'BF16' });
      const spreadBlocks = SELECT_STATS.spreadBlocks - beforeRaw.spread;
      expect(spreadBlocks).toBeGreaterThan(0);
      // every block's histogram (with its windows or, spread, alone) and candidate scan (pass 2) read
      // BF16 raw; pass 2 reads only the blocks whose windows missed T's bucket (here the spread
      // block, with windows around the estimate of the blocks before, holds it)
      expect(simdUse.rawHistogram - beforeRaw.hist).toBe(blocksOf([...shapeS]).length);
      const skipped = SELECT_STATS.candidateBlocksSkipped - beforeRaw.skipped;
      expect(skipped).toBeGreaterThan(0);
      expect(simdUse.rawCandidates - beforeRaw.cand).toBe(blocksOf([...shapeS]).length - skipped);
      expect(same(rawOut, await runKernel('task-arithmetic', q, bfIns, [...shapeS], { name: 'spread' }))).toBe(true);
      // without spread mode every block keeps trying (a window read, then the histogram and new
      // windows): none lumps, the windows resolve nothing either, and the bytes are the same
      await underLimits({ spreadMisses: Infinity }, async () => {
        const mid = { ...SELECT_STATS };
        expect(same(spec, await go())).toBe(true);
        expect(SELECT_STATS.spreadBlocks).toBe(mid.spreadBlocks);
        expect(SELECT_STATS.fusedWindowBlocks).toBe(mid.fusedWindowBlocks);
        expect(SELECT_STATS.resolvedByWindows).toBe(mid.resolvedByWindows);
      });
    });

    it("spread blocks' windows around their thread's estimate of the cut: pass 2 reads only the blocks whose windows missed it", async () => {
      // a low-rank fine-tune: rank 4, rows of very different scales (the blocks' own cuts scatter)
      const shapeL = [4096, 1024] as const;
      const m = shapeL[0] * shapeL[1];
      const b0 = gaussian(m, 31, 0.02);
      const lowRank = (seed: number): Float32Array => {
        const u = gaussian(shapeL[0] * 4, seed, 1);
        const v = gaussian(shapeL[1] * 4, seed + 100, 0.002);
        const x = new Float32Array(m);
        for (let i = 0; i < shapeL[0]; i++) {
          for (let j = 0; j < shapeL[1]; j++) {
            let s = 0;
            for (let r = 0; r < 4; r++) s += u[i * 4 + r]! * v[j * 4 + r]!;
            x[i * shapeL[1] + j] = b0[i * shapeL[1] + j]! + s;
          }
        }
        return x;
      };
      const xs = [lowRank(40), gaussian(m, 41, 0.01).map((d, j) => b0[j]! + d)];
      const q: Ref = { ...TIES, weights: [0.5, 0.5], densities: [0.5, 0.5] };
      const blocks = blocksOf([...shapeL]).length;
      const go = async (shuffled = false): Promise<Float32Array> =>
        runKernel('task-arithmetic', q, [b0, ...xs], [...shapeL], { name: 'low-rank', ...(shuffled ? { dispatcher: await shuffledDispatcher() } : {}) });
      const before = { ...SELECT_STATS };
      const out = await go();
      const estimated = SELECT_STATS.estimateWindowBlocks - before.estimateWindowBlocks;
      const skipped = SELECT_STATS.candidateBlocksSkipped - before.candidateBlocksSkipped;
      expect(SELECT_STATS.spreadBlocks - before.spreadBlocks).toBeGreaterThan(blocks / 2);
      expect(estimated).toBeGreaterThan(blocks / 2);
      // most of pass 2's blocks are not read (their keys in T's bucket came with pass 0's windows)
      expect(skipped).toBeGreaterThan(blocks / 2);
      expect(SELECT_STATS.resolvedByWindows - before.resolvedByWindows).toBe(1); // the dense model's cut
      expect(maxRelError(out, refGta('low-rank', [...shapeL], b0, xs, q))).toBeLessThan(1e-6);
      // the same bytes without the estimate's windows (pass 2 reads every block), without windows,
      // and with the blocks run out of order
      await underLimits({ estimateWindows: false }, async () => {
        const mid = { ...SELECT_STATS };
        expect(same(out, await go())).toBe(true);
        expect(SELECT_STATS.estimateWindowBlocks).toBe(mid.estimateWindowBlocks);
        expect(SELECT_STATS.candidateBlocksSkipped - mid.candidateBlocksSkipped).toBeLessThan(skipped);
      });
      await underLimits({ windows: false }, async () => expect(same(out, await go())).toBe(true));
      expect(same(out, await go(true))).toBe(true);
    });

    it('resolve a cut among keys of 0 (a tiny fine-tune: most deltas exactly 0), windows starting at bucket 0', async () => {
      const r = rng(17);
      const sparse = two.map((x) => Float32Array.from(x, (v, j) => (r() < 0.8 ? base[j]! : v)));
      const q: Ref = { ...TIES, weights: [0.5, 0.5], densities: [0.1, 0.9] };
      const go = (): Promise<Float32Array> => runKernel('task-arithmetic', q, [base, ...sparse], shape, { name });
      const before = { ...SELECT_STATS };
      const spec = await go();
      expect(SELECT_STATS.fusedWindowBlocks).toBeGreaterThan(before.fusedWindowBlocks);
      expect(SELECT_STATS.resolvedByWindows).toBe(before.resolvedByWindows + 2);
      await underLimits({ windows: false }, async () => {
        expect(same(spec, await go())).toBe(true);
      });
      expect(maxRelError(spec, refGta(name, shape, base, sparse, q))).toBeLessThan(1e-6);
    });

    it('fall back to pass 1 when the records overflow their room', async () => {
      const small = await withLimits({ windowRoomCap: 2 }, [base, ...two]);
      expect(small.resolved).toBe(0);
      const spec = await withLimits({}, [base, ...two]);
      expect(same(small.out, spec.out)).toBe(true);
    });
  });

  // BF16 checkpoints: with two models, pass 0's windows and the fused map read the blocks as they
  // are (no decoded copy); every path must give the bytes of the same values given as F32
  describe('BF16 blocks read raw', () => {
    const ins = [base, ...models.slice(0, 2)].map(bf16Values);
    it('ties, three models (windows lumped per model, the three-model loop)', async () => {
      const p: Ref = { ...TIES, weights: [0.5, 0.3, 0.2], densities: [0.5, 0.3, 0.7] };
      const three = [base, ...models].map(bf16Values);
      const before = { raw: simdUse.rawBf16, fused: SELECT_STATS.fusedWindowBlocks };
      const raw = await runKernel('task-arithmetic', p, three, shape, { name, dtype: 'BF16' });
      expect(simdUse.rawBf16).toBeGreaterThan(before.raw);
      expect(SELECT_STATS.fusedWindowBlocks).toBeGreaterThan(before.fused);
      const decoded = await runKernel('task-arithmetic', p, three, shape, { name });
      expect(Buffer.from(raw.buffer).equals(Buffer.from(decoded.buffer))).toBe(true);
      await underLimits({ windows: false }, async () => {
        const off = await runKernel('task-arithmetic', p, three, shape, { name, dtype: 'BF16' });
        expect(Buffer.from(off.buffer).equals(Buffer.from(decoded.buffer))).toBe(true);
      });
      expect(maxRelError(decoded, refGta(name, shape, three[0]!, three.slice(1), p))).toBeLessThan(1e-6);
    });

    it('ties, one model', async () => {
      const p: Ref = { ...TIES, weights: [0.7], densities: [0.4] };
      const one = ins.slice(0, 2);
      const before = simdUse.rawBf16;
      const raw = await runKernel('task-arithmetic', p, one, shape, { name, dtype: 'BF16' });
      expect(simdUse.rawBf16).toBeGreaterThan(before);
      const decoded = await runKernel('task-arithmetic', p, one, shape, { name });
      expect(Buffer.from(raw.buffer).equals(Buffer.from(decoded.buffer))).toBe(true);
      expect(maxRelError(decoded, refGta(name, shape, one[0]!, one.slice(1), p))).toBeLessThan(1e-6);
    });
    for (const [label, p] of [
      ['ties', { ...TIES, weights: [0.6, 0.4], densities: [0.5, 0.3] }],
      ['ties, negative weight, one not thinned, unnormalized', { ...TIES, normalize: false, lambda: 0.8, weights: [1, -0.6], densities: [0.3, 1] }],
      ['ties, rescale l1 (an L1 pass that decodes)', { ...TIES, rescale: 'l1', weights: [0.5, 0.5], densities: [0.4, 0.6] }],
      ['breadcrumbs_ties (not read raw)', { sparsify: 'breadcrumbs', consensus: 'sum', rescale: 'none', normalize: false, lambda: 1, weights: [0.5, 0.7], densities: [0.8, 0.5], gammas: [0.05, 0.01] }],
    ] as [string, Ref][]) {
      it(label, async () => {
        const before = simdUse.rawBf16;
        const raw = await runKernel('task-arithmetic', p, ins, shape, { name, dtype: 'BF16' });
        if (p.sparsify === 'magnitude') expect(simdUse.rawBf16).toBeGreaterThan(before);
        const decoded = await runKernel('task-arithmetic', p, ins, shape, { name });
        expect(Buffer.from(raw.buffer).equals(Buffer.from(decoded.buffer))).toBe(true);
        setSimdEnabled(false);
        try {
          const js = await runKernel('task-arithmetic', p, ins, shape, { name, dtype: 'BF16' });
          expect(Buffer.from(js.buffer).equals(Buffer.from(decoded.buffer))).toBe(true);
        } finally {
          setSimdEnabled(true);
        }
      });
    }
  });

  // two models: the fused TIES map's other specialisation
  for (const [label, p] of [
    ['ties, two models', { ...TIES, weights: [0.5, 0.5], densities: [0.5, 0.5] }],
    ['ties, two models, negative weight, one not thinned', { ...TIES, weights: [1, -0.6], densities: [0.3, 1] }],
    ['ties, two models, unnormalized, rescale density', { ...TIES, normalize: false, rescale: 'density', lambda: 0.8, weights: [0.7, 0.4], densities: [0.6, 0.2] }],
  ] as [string, Ref][]) {
    it(label, async () => {
      const two = models.slice(0, 2);
      const out = await runKernel('task-arithmetic', p, [base, ...two], shape, { name });
      expect(maxRelError(out, refGta(name, shape, base, two, p))).toBeLessThan(1e-6);
    });
  }

  it('TIES keeps exactly ⌊ρ·n⌋ entries of one model, ties at the cut to the lowest flat index', async () => {
    // a single model, weight 1: out − base is the thinned task vector itself
    const zero = new Float32Array(n);
    const d = new Float32Array(n);
    // magnitudes from a small set: the cut falls inside a run of equal values spanning every block
    for (let j = 0; j < n; j++) d[j] = ((j * 7919) % 5) * (j % 2 ? 1 : -1) * 0.25;
    const rho = 0.5;
    const out = await runKernel('task-arithmetic', { ...TIES, weights: [1], densities: [rho] }, [zero, d], shape);
    let kept = 0;
    for (let j = 0; j < n; j++) if (out[j] !== 0) kept++;
    expect(kept).toBe(Math.floor(rho * n));
    // which tied entries survived: the lowest flat indices of the tied magnitude
    const sorted = Array.from(d, Math.abs).sort((a, b) => b - a);
    const t = sorted[Math.floor(rho * n) - 1]!;
    let lastKeptTie = -1;
    let firstDroppedTie = n;
    for (let j = 0; j < n; j++) {
      if (Math.abs(d[j]!) !== t) continue;
      if (out[j] !== 0) lastKeptTie = j;
      else firstDroppedTie = Math.min(firstDroppedTie, j);
    }
    expect(lastKeptTie).toBeLessThan(firstDroppedTie);
    expect(lastKeptTie).toBeGreaterThan(BLOCK_ELEMENTS); // the cut really is past the first block
  });

  it('gives the same bytes whatever order blocks complete in', async () => {
    const p: Ref = { ...TIES, weights: [1, 0.5, 0.7], densities: [0.5, 0.3, 0.9] };
    const a = await runKernel('task-arithmetic', p, [base, ...models], shape, { name });
    const b = await runKernel('task-arithmetic', p, [base, ...models], shape, { name, dispatcher: await shuffledDispatcher() });
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    const dp: Ref = { sparsify: 'della', consensus: 'sum', rescale: 'l1', normalize: true, lambda: 1, weights: [1, 1, 1], densities: [0.5, 0.5, 0.5], epsilons: [0.1, 0.1, 0.1], seed: 11 };
    const c = await runKernel('task-arithmetic', dp, [base, ...models], shape, { name });
    const e = await runKernel('task-arithmetic', dp, [base, ...models], shape, { name, dispatcher: await shuffledDispatcher() });
    expect(Buffer.from(e.buffer).equals(Buffer.from(c.buffer))).toBe(true);
  });
});

describe('task-arithmetic kernel: edge cases', () => {
  const shape = [3, 4];
  const base = f32([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const name = 'model.layers.0.mlp.up_proj.weight';

  it('no models: the base', async () => {
    const out = await runKernel('task-arithmetic', { ...TIES, weights: [] }, [base], shape);
    expect([...out]).toEqual([...base]);
  });

  it('a zero task vector leaves the base; TIES divisor 0 stays 1', async () => {
    const out = await runKernel('task-arithmetic', { ...TIES, weights: [1, 1], densities: [0.5, 0.5] }, [base, base, base], shape);
    expect([...out]).toEqual([...base]);
  });

  it('NaN in a task vector poisons that element only, as mask·δ does in mergekit', async () => {
    const m1 = Float32Array.from(base, (x, j) => (j === 5 ? NaN : x + 1));
    const m2 = Float32Array.from(base, (x) => x - 0.5);
    for (const consensus of ['none', 'sum', 'count'] as const) {
      const p: Ref = { sparsify: 'none', consensus, rescale: 'none', normalize: true, lambda: 1, weights: [1, 1] };
      const out = await runKernel('task-arithmetic', p, [base, m1, m2], shape, { name });
      const ref = refGta(name, shape, base, [m1, m2], p);
      expect(Number.isNaN(out[5]!)).toBe(true);
      expect(maxRelError(out, ref)).toBeLessThan(1e-6);
    }
  });

  it('density 1 and density 0', async () => {
    const m1 = Float32Array.from(base, (x, j) => x + j / 10);
    for (const sparsify of ['magnitude', 'random', 'breadcrumbs', 'della'] as const) {
      const keep = await runKernel('task-arithmetic', { ...TIES, sparsify, consensus: 'none', normalize: false, weights: [1], densities: [1] }, [base, m1], shape, { name });
      expect(maxRelError(keep, m1)).toBeLessThan(1e-6);
      const none = await runKernel('task-arithmetic', { ...TIES, sparsify, consensus: 'none', normalize: false, weights: [1], densities: [0] }, [base, m1], shape, { name });
      expect([...none]).toEqual([...base]);
    }
  });

  it('breadcrumbs keeps ⌊ρn⌋ even when ⌊γn⌋ rounds to 0 (mergekit would keep nothing there)', async () => {
    const m1 = Float32Array.from(base, (x, j) => x + (j + 1) / 10);
    const out = await runKernel('task-arithmetic', { sparsify: 'breadcrumbs', consensus: 'none', rescale: 'none', normalize: false, lambda: 1, weights: [1], densities: [0.5], gammas: [0.01] }, [base, m1], shape);
    // the 6 largest deltas are j = 6..11
    expect([...out].map((x, j) => +(x - base[j]!).toFixed(4))).toEqual([0, 0, 0, 0, 0, 0, 0.7, 0.8, 0.9, 1, 1.1, 1.2]);
  });

  it('breadcrumbs with γ + ρ > 1 drops fewer of the largest', async () => {
    const m1 = Float32Array.from(base, (x, j) => x + (j + 1) / 10);
    const out = await runKernel('task-arithmetic', { sparsify: 'breadcrumbs', consensus: 'none', rescale: 'none', normalize: false, lambda: 1, weights: [1], densities: [0.75], gammas: [0.5] }, [base, m1], shape);
    // keep ⌊0.75·12⌋ = 9: n_top = 6 gives n_bot = −3, so n_top = 3: the 3 largest are dropped
    expect([...out].map((x, j) => +(x - base[j]!).toFixed(4))).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0, 0, 0]);
  });

  it('rejects della settings outside (0, 1)', async () => {
    await expect(runKernel('task-arithmetic', { sparsify: 'della', consensus: 'none', rescale: 'none', normalize: false, lambda: 1, weights: [1], densities: [0.9], epsilons: [0.15] }, [base, base], shape))
      .rejects.toMatchObject({ code: 'invalid-recipe' });
  });
});

describe('task-arithmetic kernel: statistics of the random methods', () => {
  const shape = [600, 1000];
  const n = 600_000;
  const base = new Float32Array(n);
  const d = gaussian(n, 99, 0.01);
  const name = 'model.layers.7.mlp.gate_proj.weight';

  for (const rho of [0.1, 0.5, 0.9]) {
    it(`DARE keeps a fraction ≈ ρ = ${rho} and the L1 rescale restores Σ|δ|`, async () => {
      const out = await runKernel('task-arithmetic', { sparsify: 'random', consensus: 'none', rescale: 'l1', normalize: false, lambda: 1, weights: [1], densities: [rho], seed: 5 }, [base, d], shape, { name });
      let kept = 0, l1out = 0, l1in = 0;
      for (let j = 0; j < n; j++) {
        if (out[j] !== 0) kept++;
        l1out += Math.abs(out[j]!);
        l1in += Math.abs(d[j]!);
      }
      const sigma = Math.sqrt(rho * (1 - rho) / n);
      expect(Math.abs(kept / n - rho)).toBeLessThan(5 * sigma);
      expect(Math.abs(l1out / l1in - 1)).toBeLessThan(1e-5);
    });
  }

  it('DARE ÷density is unbiased: Σ out ≈ Σ δ, and kept entries are δ/ρ', async () => {
    const rho = 0.3;
    const shifted = Float32Array.from(d, (x) => x + 0.01); // mean 0.01, so the sum is far from 0
    const out = await runKernel('task-arithmetic', { sparsify: 'random', consensus: 'none', rescale: 'density', normalize: false, lambda: 1, weights: [1], densities: [rho], seed: 6 }, [base, shifted], shape, { name });
    let sOut = 0, sIn = 0, sq = 0, off = 0;
    for (let j = 0; j < n; j++) {
      sOut += out[j]!;
      sIn += shifted[j]!;
      sq += shifted[j]! * shifted[j]!;
      if (out[j] !== 0 && Math.abs(out[j]! - shifted[j]! / rho) > 1e-6) off++;
    }
    expect(off).toBe(0);
    // Var(Σ out) = Σ δ²(1−ρ)/ρ
    expect(Math.abs(sOut - sIn)).toBeLessThan(5 * Math.sqrt((sq * (1 - rho)) / rho));
  });

  it('DELLA keeps ≈ ρ overall and keeps large magnitudes more often (≈ ρ ± ε·3/4 in the outer quartiles)', async () => {
    const rho = 0.5, eps = 0.2;
    const out = await runKernel('task-arithmetic', { sparsify: 'della', consensus: 'none', rescale: 'none', normalize: false, lambda: 1, weights: [1], densities: [rho], epsilons: [eps], seed: 8 }, [base, d], shape, { name });
    let kept = 0;
    let keptTop = 0, top = 0, keptBottom = 0, bottom = 0;
    for (let r = 0; r < 600; r++) {
      const row = Array.from({ length: 1000 }, (_, j) => Math.abs(d[r * 1000 + j]!)).sort((a, b) => a - b);
      const q1 = row[250]!, q3 = row[749]!;
      for (let j = 0; j < 1000; j++) {
        const k = r * 1000 + j;
        const a = Math.abs(d[k]!);
        const on = out[k] !== 0 ? 1 : 0;
        kept += on;
        if (a > q3) { top++; keptTop += on; }
        if (a < q1) { bottom++; keptBottom += on; }
      }
    }
    expect(Math.abs(kept / n - rho)).toBeLessThan(5 * Math.sqrt(0.25 / n));
    // p = ρ − ε + 2ε·rank/(L−1): the mean over the top quartile is ρ + 0.75ε, over the bottom one ρ − 0.75ε
    expect(Math.abs(keptTop / top - (rho + 0.75 * eps))).toBeLessThan(0.01);
    expect(Math.abs(keptBottom / bottom - (rho - 0.75 * eps))).toBeLessThan(0.01);
  });

  it('different seeds give different masks, the same seed the same', async () => {
    const p = (seed: number): TaskArithmeticParams => ({ sparsify: 'random', consensus: 'none', rescale: 'none', normalize: false, lambda: 1, weights: [1], densities: [0.5], seed });
    const a = await runKernel('task-arithmetic', p(1), [base, d], shape, { name });
    const b = await runKernel('task-arithmetic', p(1), [base, d], shape, { name });
    const c = await runKernel('task-arithmetic', p(2), [base, d], shape, { name });
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });
});
