/** Helpers for the research-operation tests: tensors read by hand, means files written by hand. */
import { readFileSync, writeFileSync } from 'node:fs';
import { openCheckpoint } from '../../core/checkpoint.js';
import { stFile } from '../helpers/safetensors-bytes.js';

/** A tensor's values as f64, decoded by hand from its bytes (F32 or BF16). */
export async function readTensor(dir: string, name: string): Promise<{ shape: number[]; values: Float64Array }> {
  const ckpt = await openCheckpoint(dir);
  const t = ckpt.tensors.get(name);
  if (!t) throw new Error(`no tensor ${name} in ${dir}`);
  const b = readFileSync(t.file).subarray(t.offset, t.offset + t.nbytes);
  const out = new Float64Array(t.nbytes / (t.dtype === 'F32' ? 4 : 2));
  const dv = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < out.length; i++) {
    if (t.dtype === 'F32') out[i] = b.readFloatLE(i * 4);
    else if (t.dtype === 'BF16') {
      dv.setUint32(0, b.readUInt16LE(i * 2) << 16);
      out[i] = dv.getFloat32(0);
    } else throw new Error(`dtype ${t.dtype}`);
  }
  return { shape: [...t.shape], values: out };
}

export async function tensorNames(dir: string): Promise<string[]> {
  return [...(await openCheckpoint(dir)).tensors.keys()];
}

/** Writes F32 vectors as a safetensors file, byte by byte. */
export function writeMeans(file: string, vectors: Record<string, readonly number[]>): void {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let off = 0;
  for (const [name, v] of Object.entries(vectors)) {
    header[name] = { dtype: 'F32', shape: [v.length], data_offsets: [off, off + 4 * v.length] };
    const b = Buffer.alloc(4 * v.length);
    v.forEach((x, i) => b.writeFloatLE(x, i * 4));
    parts.push(b);
    off += b.length;
  }
  writeFileSync(file, stFile(header, Buffer.concat(parts)));
}

export function randomVector(n: number, seed: number): number[] {
  let s = seed + 1;
  return Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647 - 0.5;
  });
}
