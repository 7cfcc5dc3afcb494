import { describe, it, expect } from 'vitest';
import type { ProjectParams } from '../../../worker/kernels/project.js';
import { randomF32, runKernel, shuffledDispatcher } from './research-harness.js';

type Norm = ProjectParams['norm'];

/**
 * Independent reference on the logical [rows, cols] matrix, whole arrays, f64: projection of
 * the residual axis, then the norm preservation as defined (column / row / Frobenius).
 */
function naiveProject(w: Float32Array, rows: number, cols: number, r: Float32Array, side: 'writer' | 'reader', s: number, norm: Norm): Float64Array {
  let rn = 0;
  for (const x of r) rn += x * x;
  const u = Array.from(r, (x) => x / Math.sqrt(rn));
  const out = new Float64Array(rows * cols);
  if (side === 'writer') {
    for (let j = 0; j < cols; j++) {
      let c = 0;
      for (let i = 0; i < rows; i++) c += u[i]! * w[i * cols + j]!;
      for (let i = 0; i < rows; i++) out[i * cols + j] = w[i * cols + j]! - s * u[i]! * c;
    }
  } else {
    for (let i = 0; i < rows; i++) {
      let p = 0;
      for (let j = 0; j < cols; j++) p += w[i * cols + j]! * u[j]!;
      for (let j = 0; j < cols; j++) out[i * cols + j] = w[i * cols + j]! - s * p * u[j]!;
    }
  }
  const f = (b: number, a: number): number => (a > 0 ? Math.sqrt(b / a) : 1);
  if (norm === 'column') {
    for (let j = 0; j < cols; j++) {
      let b = 0;
      let a = 0;
      for (let i = 0; i < rows; i++) {
        b += w[i * cols + j]! ** 2;
        a += out[i * cols + j]! ** 2;
      }
      for (let i = 0; i < rows; i++) out[i * cols + j]! *= f(b, a);
    }
  } else if (norm === 'row') {
    for (let i = 0; i < rows; i++) {
      let b = 0;
      let a = 0;
      for (let j = 0; j < cols; j++) {
        b += w[i * cols + j]! ** 2;
        a += out[i * cols + j]! ** 2;
      }
      for (let j = 0; j < cols; j++) out[i * cols + j]! *= f(b, a);
    }
  } else if (norm === 'matrix') {
    let b = 0;
    let a = 0;
    for (let k = 0; k < w.length; k++) {
      b += w[k]! ** 2;
      a += out[k]! ** 2;
    }
    for (let k = 0; k < w.length; k++) out[k]! *= f(b, a);
  }
  return out;
}

function expectClose(got: Float32Array, want: Float64Array, rel = 1e-6): void {
  let scale = 0;
  for (const x of want) scale = Math.max(scale, Math.abs(x));
  let worst = 0;
  for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k]! - want[k]!));
  expect(worst).toBeLessThanOrEqual(rel * scale);
}

/** r̂ᵀW (per column) and W r̂ (per row), max absolute value, in f64 from the f32 output. */
function residuals(w: Float32Array, rows: number, cols: number, r: Float32Array): { left: number; right: number } {
  let rn = 0;
  for (const x of r) rn += x * x;
  const inv = 1 / Math.sqrt(rn);
  let left = 0;
  let right = 0;
  if (r.length === rows) {
    for (let j = 0; j < cols; j++) {
      let c = 0;
      for (let i = 0; i < rows; i++) c += r[i]! * inv * w[i * cols + j]!;
      left = Math.max(left, Math.abs(c));
    }
  }
  if (r.length === cols) {
    for (let i = 0; i < rows; i++) {
      let p = 0;
      for (let j = 0; j < cols; j++) p += w[i * cols + j]! * r[j]! * inv;
      right = Math.max(right, Math.abs(p));
    }
  }
  return { left, right };
}

function norms(w: ArrayLike<number>, rows: number, cols: number): { col: number[]; row: number[]; frob: number } {
  const col = new Array<number>(cols).fill(0);
  const row = new Array<number>(rows).fill(0);
  let frob = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const x = w[i * cols + j]! ** 2;
      col[j]! += x;
      row[i]! += x;
      frob += x;
    }
  }
  return { col: col.map(Math.sqrt), row: row.map(Math.sqrt), frob: Math.sqrt(frob) };
}

const whole = (r: Float32Array): { data: Float32Array; mode: 'whole'; shape: number[] } => ({ data: r, mode: 'whole', shape: [r.length] });

async function project(w: Float32Array, shape: number[], r: Float32Array, params: ProjectParams, name?: string): Promise<Float32Array> {
  const { outputs } = await runKernel({ kernel: 'project', params, shape, inputs: [w, whole(r)], ...(name ? { name } : {}) });
  return outputs[0]!;
}

// 700 × 1000 = 700k elements: 3 blocks of 262 rows, so r̂ᵀW is folded across blocks
const ROWS = 700;
const COLS = 1000;

describe('project kernel: hand-computed', () => {
  const w = Float32Array.of(1, 2, 3, 4); // [[1, 2], [3, 4]]
  const e0 = Float32Array.of(2, 0); // normalised to [1, 0]

  it('writer removes r̂(r̂ᵀW): the first row', async () => {
    expect(Array.from(await project(w, [2, 2], e0, { side: 'writer', scale: 1, norm: 'none' }))).toEqual([0, 0, 3, 4]);
  });

  it('reader removes (W r̂)r̂ᵀ: the first column', async () => {
    expect(Array.from(await project(w, [2, 2], e0, { side: 'reader', scale: 1, norm: 'none' }))).toEqual([0, 2, 0, 4]);
  });

  it('half scale removes half', async () => {
    expect(Array.from(await project(w, [2, 2], e0, { side: 'writer', scale: 0.5, norm: 'none' }))).toEqual([0.5, 1, 3, 4]);
  });

  it('column-norm writer rescales each column back to its norm', async () => {
    const got = await project(w, [2, 2], e0, { side: 'writer', scale: 1, norm: 'column' });
    expect(got[0]).toBe(0);
    expect(got[1]).toBe(0);
    expect(got[2]).toBeCloseTo(Math.sqrt(10), 6);
    expect(got[3]).toBeCloseTo(Math.sqrt(20), 6);
  });
});

describe('project kernel: against the naive reference on several blocks', () => {
  const w = randomF32(ROWS * COLS, 11, 0.05);
  const rWriter = randomF32(ROWS, 12);
  const rReader = randomF32(COLS, 13);

  for (const norm of ['none', 'column', 'row', 'matrix'] as const) {
    for (const scale of [1, 0.6]) {
      it(`writer, norm ${norm}, s = ${scale}`, async () => {
        const got = await project(w, [ROWS, COLS], rWriter, { side: 'writer', scale, norm });
        expectClose(got, naiveProject(w, ROWS, COLS, rWriter, 'writer', scale, norm));
      });
      it(`reader, norm ${norm}, s = ${scale}`, async () => {
        const got = await project(w, [ROWS, COLS], rReader, { side: 'reader', scale, norm }, 'model.embed_tokens.weight');
        expectClose(got, naiveProject(w, ROWS, COLS, rReader, 'reader', scale, norm));
      });
    }
  }

  it('with s = 1 and no norm preservation, r̂ᵀW′ = 0 for writers and W′r̂ = 0 for readers', async () => {
    const wr = await project(w, [ROWS, COLS], rWriter, { side: 'writer', scale: 1, norm: 'none' });
    const rd = await project(w, [ROWS, COLS], rReader, { side: 'reader', scale: 1, norm: 'none' });
    const before = residuals(w, ROWS, COLS, rWriter).left;
    expect(before).toBeGreaterThan(0.05); // the test can fail: W had a component along r̂
    // f32 precision: each output element is rounded once (|W| ≤ 0.05, 700 terms)
    expect(residuals(wr, ROWS, COLS, rWriter).left).toBeLessThan(1e-7 * Math.sqrt(ROWS));
    expect(residuals(rd, ROWS, COLS, rReader).right).toBeLessThan(1e-7 * Math.sqrt(COLS));
  });

  it('norms are preserved exactly as defined', async () => {
    const n0 = norms(w, ROWS, COLS);
    const close = (a: number[], b: number[]): void => {
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! / b[i]! - 1));
      expect(worst).toBeLessThan(1e-6);
    };
    const col = await project(w, [ROWS, COLS], rWriter, { side: 'writer', scale: 1, norm: 'column' });
    close(norms(col, ROWS, COLS).col, n0.col);
    expect(residuals(col, ROWS, COLS, rWriter).left).toBeLessThan(1e-5); // still orthogonal: columns only rescaled
    const row = await project(w, [ROWS, COLS], rWriter, { side: 'writer', scale: 1, norm: 'row' });
    close(norms(row, ROWS, COLS).row, n0.row);
    const mat = await project(w, [ROWS, COLS], rReader, { side: 'reader', scale: 1, norm: 'matrix' });
    expect(norms(mat, ROWS, COLS).frob / n0.frob).toBeCloseTo(1, 6);
    expect(residuals(mat, ROWS, COLS, rReader).right).toBeLessThan(1e-5);
    const rrow = await project(w, [ROWS, COLS], rReader, { side: 'reader', scale: 1, norm: 'row' });
    close(norms(rrow, ROWS, COLS).row, n0.row);
    expect(residuals(rrow, ROWS, COLS, rReader).right).toBeLessThan(1e-5);
    // without preservation the norms do change (so the checks above can fail)
    const plain = await project(w, [ROWS, COLS], rWriter, { side: 'writer', scale: 1, norm: 'none' });
    expect(Math.abs(norms(plain, ROWS, COLS).frob / n0.frob - 1)).toBeGreaterThan(1e-4);
  });

  it('folds in block order: blocks finishing out of order give the same bytes', async () => {
    const params: ProjectParams = { side: 'writer', scale: 1, norm: 'column' };
    const a = await project(w, [ROWS, COLS], rWriter, params);
    const b = (await runKernel({ kernel: 'project', params, shape: [ROWS, COLS], inputs: [w, whole(rWriter)], dispatcher: await shuffledDispatcher() })).outputs[0]!;
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  });
});

describe('project kernel: sides come from the role, not the shape', () => {
  const N = 600; // 360k elements: 2 blocks
  const w = randomF32(N * N, 21, 0.05);
  const r = randomF32(N, 22);

  it('a square o_proj is projected on its output side', async () => {
    const got = await project(w, [N, N], r, { side: 'writer', scale: 1, norm: 'none' }, 'model.layers.3.self_attn.o_proj.weight');
    const res = residuals(got, N, N, r);
    expect(res.left).toBeLessThan(1e-6 * Math.sqrt(N)); // r̂ᵀW′ = 0
    expect(res.right).toBeGreaterThan(1e-3); // W′r̂ ≠ 0: the input side was not touched
    expectClose(got, naiveProject(w, N, N, r, 'writer', 1, 'none'));
  });

  it('transposed storage ([in, out]) of a writer projects the last axis', async () => {
    const wt = randomF32(300 * 40, 23);
    const rr = randomF32(40, 24);
    const got = await project(wt, [300, 40], rr, { side: 'writer', scale: 1, norm: 'column', transposed: true });
    // logical [out=40, in=300] = stored transposed: a reader-side projection with row norms of the stored matrix
    expectClose(got, naiveProject(wt, 300, 40, rr, 'reader', 1, 'row'));
  });

  it('stacked experts [E, out, in] are projected one matrix at a time', async () => {
    const E = 3;
    const out = 200;
    const inn = 900; // 540k elements, blocks cross expert boundaries
    const w3 = randomF32(E * out * inn, 25, 0.05);
    const rr = randomF32(out, 26);
    const got = await project(w3, [E, out, inn], rr, { side: 'writer', scale: 1, norm: 'matrix' }, 'model.layers.0.mlp.experts.down_proj.weight');
    for (let e = 0; e < E; e++) {
      const slice = w3.subarray(e * out * inn, (e + 1) * out * inn);
      expectClose(got.subarray(e * out * inn, (e + 1) * out * inn), naiveProject(slice, out, inn, rr, 'writer', 1, 'matrix'));
    }
  });
});

describe('project kernel: edge cases and bad inputs', () => {
  it('a NaN stays in its column (writer) and does not spread to other columns', async () => {
    const w = Float32Array.of(1, 2, Number.NaN, 4);
    const got = await project(w, [2, 2], Float32Array.of(1, 1), { side: 'writer', scale: 1, norm: 'none' });
    expect(Number.isNaN(got[0]!)).toBe(true);
    expect(Number.isNaN(got[2]!)).toBe(true);
    expect(got[1]).toBeCloseTo(-1, 6);
    expect(got[3]).toBeCloseTo(1, 6);
  });

  it('a zero column keeps zero under column norm preservation', async () => {
    const w = Float32Array.of(0, 2, 0, 4);
    const got = await project(w, [2, 2], Float32Array.of(1, 0), { side: 'writer', scale: 1, norm: 'column' });
    expect(Array.from(got.subarray(0, 1))).toEqual([0]);
    expect(got[2]).toBe(0);
  });

  it('rejects a direction of the wrong size', async () => {
    const w = randomF32(12, 1);
    await expect(project(w, [3, 4], Float32Array.of(1, 2), { side: 'writer', scale: 1, norm: 'none' })).rejects.toMatchObject({ code: 'shape-mismatch', message: expect.stringMatching(/direction has 2 elements, expected 3/) });
    await expect(project(w, [3, 4], Float32Array.of(1, 2, 3), { side: 'reader', scale: 1, norm: 'none' })).rejects.toMatchObject({ code: 'shape-mismatch' });
  });

  it('rejects a zero direction and a 1-D tensor', async () => {
    await expect(project(randomF32(4, 1), [2, 2], Float32Array.of(0, 0), { side: 'reader', scale: 1, norm: 'row' })).rejects.toMatchObject({ code: 'invalid-spec' });
    await expect(project(randomF32(4, 1), [4], Float32Array.of(1, 0, 0, 0), { side: 'reader', scale: 1, norm: 'none' })).rejects.toMatchObject({ code: 'invalid-spec' });
  });
});
