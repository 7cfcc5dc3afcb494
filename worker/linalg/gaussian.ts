/**
 * Counter-based standard normal draws for sketch matrices: element i of the stream keyed
 * by (seed, key) is a pure function of (seed, key, i), so any thread or node regenerates
 * the same Ω. Hash: murmur3's 32-bit finaliser over a mixed counter; Box–Muller for the
 * normal. Statistical quality needed here is modest (a Gaussian test matrix for a range
 * finder), reproducibility is what matters.
 */
import { fmix32, fnv1a } from '../../core/hash32.js';

/** Fills `out` with N(0, 1) draws number 0..out.length-1 of the stream (seed, key). */
export function fillGaussian(out: Float64Array | Float32Array, seed: number, key: string): void {
  const k = fmix32(fnv1a(key) ^ fmix32(seed + 0x9e3779b9));
  for (let i = 0; i < out.length; i += 2) {
    const c = Math.floor(i / 2);
    const a = fmix32(k ^ fmix32(2 * c + 1));
    const b = fmix32(a ^ fmix32(2 * c + 2) ^ 0x68e31da4);
    const u1 = (a + 1) / 4294967297; // (0, 1)
    const u2 = b / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}
