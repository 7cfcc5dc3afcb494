import { describe, it, expect } from 'vitest';
import type { NuslerpMode } from '../../../core/specs/merge-spec.js';
import { f32, gaussian, maxRelError, runKernel } from './merge-harness.js';

/** mergekit's nuslerp on whole arrays: vectors are the whole tensor, its rows, or its columns */
function refNuslerp(t: number, mode: NuslerpMode, shape: readonly number[], a: Float32Array, b: Float32Array, base?: Float32Array): Float32Array {
  const n = a.length;
  const cols = shape.length > 1 ? n / shape[0]! : 1;
  const rowLen = shape[shape.length - 1]!;
  const v0 = Float64Array.from(a, (x, j) => (base ? Math.fround(x - base[j]!) : x));
  const v1 = Float64Array.from(b, (x, j) => (base ? Math.fround(x - base[j]!) : x));
  // group id of each element
  const group = (j: number): number => (mode === 'flat' ? 0 : mode === 'rows' ? Math.floor(j / rowLen) : j % cols);
  const groups = mode === 'flat' ? 1 : mode === 'rows' ? n / rowLen : cols;
  const s00 = new Float64Array(groups), s11 = new Float64Array(groups), s01 = new Float64Array(groups);
  for (let j = 0; j < n; j++) {
    const g = group(j);
    s00[g]! += v0[j]! * v0[j]!;
    s11[g]! += v1[j]! * v1[j]!;
    s01[g]! += v0[j]! * v1[j]!;
  }
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const g = group(j);
    const cos = s01[g]! / (Math.max(Math.sqrt(s00[g]!), 1e-7) * Math.max(Math.sqrt(s11[g]!), 1e-7));
    const th = Math.acos(Math.min(1, Math.max(-1, cos)));
    const s = Math.sin(th);
    const r = Math.abs(s) < 1e-8 ? (1 - t) * v0[j]! + t * v1[j]! : (Math.sin((1 - t) * th) * v0[j]! + Math.sin(t * th) * v1[j]!) / s;
    out[j] = (base ? base[j]! : 0) + r;
  }
  return out;
}

describe('nuslerp kernel', () => {
  it('hand values: t = 0.5 of [2, 0] and [0, 1] → [1.41421, 0.70711]; nearly colinear still slerps', async () => {
    const out = await runKernel('nuslerp', { t: 0.5, mode: 'flat', hasBase: false }, [f32([2, 0]), f32([0, 1])], [2]);
    expect([...out].map((x) => +x.toFixed(5))).toEqual([1.41421, 0.70711]);
    const near = await runKernel('nuslerp', { t: 0.5, mode: 'flat', hasBase: false }, [f32([1, 1]), f32([2, 2.001])], [2]);
    expect(maxRelError(near, refNuslerp(0.5, 'flat', [2], f32([1, 1]), f32([2, 2.001])))).toBeLessThan(1e-6);
    // colinear: lerp
    const col = await runKernel('nuslerp', { t: 0.25, mode: 'flat', hasBase: false }, [f32([1, 2]), f32([2, 4])], [2]);
    expect([...col]).toEqual([1.25, 2.5]);
  });

  const shape = [700, 1000];
  const base = gaussian(700_000, 1, 0.02);
  const a = Float32Array.from(gaussian(700_000, 2, 0.01), (x, j) => x + base[j]!);
  const b = Float32Array.from(gaussian(700_000, 3, 0.01), (x, j) => x + base[j]!);

  for (const mode of ['flat', 'rows', 'columns'] as const) {
    for (const hasBase of [false, true]) {
      it(`matches the naive reference: ${mode}, ${hasBase ? 'with' : 'without'} a base, several blocks`, async () => {
        const inputs = hasBase ? [base, a, b] : [a, b];
        const out = await runKernel('nuslerp', { t: 0.3, mode, hasBase }, inputs, shape);
        expect(maxRelError(out, refNuslerp(0.3, mode, shape, a, b, hasBase ? base : undefined))).toBeLessThan(1e-6);
      });
    }
  }

  it('rows and columns of a small matrix by hand; zero vectors', async () => {
    // rows: [1,0] with [0,1] → 45°; [0,0] with [3,4] → the zero vector is orthogonal to everything
    const out = await runKernel('nuslerp', { t: 0.5, mode: 'rows', hasBase: false }, [f32([1, 0, 0, 0]), f32([0, 1, 3, 4])], [2, 2]);
    const h = Math.SQRT1_2;
    expect([...out].map((x) => +x.toFixed(5))).toEqual([h, h, 3 * h, 4 * h].map((x) => +x.toFixed(5)));
    const cols = await runKernel('nuslerp', { t: 0.5, mode: 'columns', hasBase: false }, [f32([1, 0, 0, 0]), f32([0, 3, 1, 4])], [2, 2]);
    expect(maxRelError(cols, refNuslerp(0.5, 'columns', [2, 2], f32([1, 0, 0, 0]), f32([0, 3, 1, 4])))).toBeLessThan(1e-6);
  });
});
