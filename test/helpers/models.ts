/** Small synthetic model families for tests, made with the synth op itself. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEmbedded } from '../../client/embedded-runner.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import type { SynthSpec } from '../../core/job-spec.js';

export const SMALL = { layers: 2, hidden: 128, intermediate: 344, vocab: 512 } as const;

export function tmp(prefix = 'ws-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function synth(out: string, fields: Partial<SynthSpec> = {}): Promise<string> {
  await runEmbedded({ op: 'synth', ...SMALL, tieEmbeddings: false, seed: 0, deltaScale: 0.01, ...fields, out } as SynthSpec, { threads: 0 });
  return out;
}

/** base, a, b (fine-tunes of base) in a fresh directory. */
export async function family(extra: Partial<SynthSpec> = {}): Promise<{ dir: string; base: string; a: string; b: string }> {
  const dir = tmp('ws-family-');
  const base = await synth(join(dir, 'base'), { seed: 0, ...extra });
  const a = await synth(join(dir, 'a'), { like: base, seed: 1, deltaScale: 0.004 });
  const b = await synth(join(dir, 'b'), { like: base, seed: 2, deltaScale: 0.004, deltaRank: 4 });
  return { dir, base, a, b };
}

/** Reads a tensor's raw bytes straight from its file (independently of the block runner). */
export async function tensorBytes(ckptDir: string, name: string): Promise<Buffer> {
  const ckpt = await openCheckpoint(ckptDir);
  const t = ckpt.tensors.get(name);
  if (!t) throw new Error(`no tensor ${name} in ${ckptDir}`);
  return readFileSync(t.file).subarray(t.offset, t.offset + t.nbytes);
}

/** bf16 bytes → f64 values, by hand (bits << 16), not through core/dtypes. */
export function bf16Values(bytes: Buffer): Float64Array {
  const out = new Float64Array(bytes.length / 2);
  const dv = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < out.length; i++) {
    dv.setUint32(0, bytes.readUInt16LE(i * 2) << 16);
    out[i] = dv.getFloat32(0);
  }
  return out;
}

/**
 * Rounds an f64 value once to the nearest bf16 (ties to even), independently of the encoder
 * under test: picks the nearest of the neighbouring bf16 values, compared in f64.
 */
export function roundToBf16Once(x: number): number {
  if (!Number.isFinite(x)) return 0;
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  const top = dv.getUint32(0) >>> 16;
  const cands = [top - 1, top, top + 1].filter((c) => c >= 0 && c <= 0xffff).map((c) => {
    dv.setUint32(0, (c << 16) >>> 0);
    return { bits: c, v: dv.getFloat32(0) };
  }).filter((c) => Number.isFinite(c.v));
  cands.sort((p, q) => Math.abs(p.v - x) - Math.abs(q.v - x) || (p.bits & 1) - (q.bits & 1));
  return cands[0]!.bits;
}

export function bf16Bits(bytes: Buffer): Uint16Array {
  const out = new Uint16Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readUInt16LE(i * 2);
  return out;
}
