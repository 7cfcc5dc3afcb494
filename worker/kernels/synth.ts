import { fmix32 } from '../../core/hash32.js';
import type { KernelDef } from '../../core/kernel-contract.js';

export interface SynthParams {
  /** 32-bit key of (seed, tensor): the noise stream */
  readonly key: number;
  /** generate: out = mean + std·z; perturb: out = x + std·z (dense) or + std/√R·(U Vᵀ) (low rank) */
  readonly mode: 'generate' | 'perturb';
  readonly mean: number;
  readonly std: number;
  /** rank of the perturbation for 2-D tensors (undefined: dense) */
  readonly rank?: number;
}

/**
 * Synthetic weights for tests and benchmarks: z is a counter-based noise of unit variance
 * (a triangular variate from one 32-bit hash of (key, element)), so any block of any tensor
 * is generated independently, in parallel, identically everywhere.
 */
export const synthKernel: KernelDef<SynthParams> = {
  name: 'synth',
  doc: 'generate: mean + std·z; perturb: x + std·z, or x + std/√R·UVᵀ',
  passes: () => 0,
  map(p, _state, inputs, outputs, block) {
    const out = outputs[0]!;
    const n = block.length;
    const x = p.mode === 'perturb' ? inputs[0]! : undefined;
    const base = block.start;
    if (p.rank !== undefined && x && block.shape.length === 2) {
      lowRank(p, x, out, block.start / block.rowLength, n / block.rowLength, block.rowLength);
      return;
    }
    const key = p.key;
    const s = p.std * SQRT6_OVER_65535;
    const m = p.mean;
    if (x) for (let j = 0; j < n; j++) out[j] = x[j]! + s * triangular(key, base + j);
    else for (let j = 0; j < n; j++) out[j] = m + s * triangular(key, base + j);
  },
};

const SQRT6_OVER_65535 = Math.sqrt(6) / 65535;

/** A hash of (key, i) split into two 16-bit uniforms whose sum − 65535 is triangular on (−65535, 65535), variance 65535²/6. */
export function triangular(key: number, i: number): number {
  const h = fmix32(Math.imul((i ^ key) >>> 0, 0x9e3779b1) ^ Math.imul((i / 4294967296) | 0, 0x85ebca77));
  return (h & 0xffff) + (h >>> 16) - 65535;
}

/** x + std/√R · U Vᵀ for rows [r0, r0+rows): U[r, k] and V[c, k] are noise streams of their own. */
function lowRank(p: SynthParams, x: Float32Array, out: Float32Array, r0: number, rows: number, cols: number): void {
  const R = p.rank!;
  const u = new Float64Array(R);
  const v = new Float64Array(cols * R);
  const uKey = (p.key ^ 0x5bd1e995) >>> 0;
  const vKey = (p.key ^ 0x1b873593) >>> 0;
  for (let i = 0; i < cols * R; i++) v[i] = triangular(vKey, i) * SQRT6_OVER_65535;
  const s = p.std / Math.sqrt(R);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < R; k++) u[k] = triangular(uKey, (r0 + r) * R + k) * SQRT6_OVER_65535 * s;
    const off = r * cols;
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let k = 0; k < R; k++) acc += u[k]! * v[c * R + k]!;
      out[off + c] = x[off + c]! + acc;
    }
  }
}
