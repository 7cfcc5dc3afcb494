import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { openCheckpoint } from '../../../core/checkpoint.js';
import { decodeBlock, isFloatDType } from '../../../core/dtypes.js';
import { directionsFromMeans } from '../../../core/direction.js';
import { WeightspaceError, q } from '../../../core/errors.js';
import { serializeHeader, type TensorEntry } from '../../../core/safetensors-header.js';
import type { Command } from '../command.js';
import { int, required } from '../spec-options.js';

/** Reads every tensor of a small safetensors file as f32 vectors (means files are [hidden] per layer). */
async function readVectors(file: string): Promise<Map<string, Float32Array>> {
  const ckpt = await openCheckpoint(file);
  const out = new Map<string, Float32Array>();
  for (const t of ckpt.tensors.values()) {
    if (!isFloatDType(t.dtype)) throw new WeightspaceError('invalid-spec', `mean ${q(t.name)} in ${q(file)} has dtype ${t.dtype}: expected a floating-point vector`);
    if (t.shape.length !== 1) throw new WeightspaceError('shape-mismatch', `mean ${q(t.name)} in ${q(file)} has shape [${t.shape.join(',')}]: expected a [hidden] vector`);
    const bytes = readFileSync(t.file).subarray(t.offset, t.offset + t.nbytes);
    const v = new Float32Array(t.shape[0]!);
    decodeBlock(t.dtype, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), v, v.length);
    out.set(t.name, v);
  }
  return out;
}

/** Writes F32 vectors as one safetensors file, under a temporary name renamed when complete. */
export function writeVectors(file: string, vectors: ReadonlyMap<string, Float32Array>, metadata: Record<string, string>): void {
  const entries: TensorEntry[] = [];
  let off = 0;
  for (const [name, v] of vectors) {
    entries.push({ name, dtype: 'F32', shape: [v.length], begin: off, end: off + v.byteLength });
    off += v.byteLength;
  }
  const header = serializeHeader(metadata, entries);
  const tmp = `${file}.weightspace-tmp`;
  try {
    writeFileSync(tmp, Buffer.concat([header, ...[...vectors.values()].map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength))]));
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export const directionCommand: Command = {
  name: 'direction',
  summary: 'refusal direction r = normalize(μ_harmful − μ_harmless) from activation means',
  usage: `direction --harmful-means FILE --harmless-means FILE --out FILE [--layer L] [--orthogonalize] [--force]

The means files hold one [hidden] tensor per layer, named layers.{i} (captured with your own
inference stack). Writes a direction file for 'weightspace project': one tensor layers.{i} per
layer, or with --layer L the single tensor 'direction' from layer L. --orthogonalize first removes
the component along the harmless mean (r − (r·μ̂)μ̂, grimjim's projected abliteration).`,
  options: {
    'harmful-means': { type: 'string' },
    'harmless-means': { type: 'string' },
    out: { type: 'string', short: 'o' },
    layer: { type: 'string' },
    orthogonalize: { type: 'boolean' },
    force: { type: 'boolean' },
    'log-format': { type: 'string' },
  },
  async run(args, io) {
    const out = required(args, 'out');
    const layer = int(args, 'layer');
    if (layer !== undefined && layer < 0) throw new WeightspaceError('usage', `--layer expects a layer index ≥ 0, got ${layer}`);
    if (existsSync(out) && args.values['force'] !== true) throw new WeightspaceError('output-exists', `${q(out)} exists: use --force to replace it`);
    const harmful = await readVectors(required(args, 'harmful-means'));
    const harmless = await readVectors(required(args, 'harmless-means'));
    const dirs = directionsFromMeans(harmful, harmless, { ...(layer !== undefined ? { layer } : {}), orthogonalize: args.values['orthogonalize'] === true });
    writeVectors(out, dirs, { format: 'pt', weightspace: 'direction', ...(args.values['orthogonalize'] === true ? { orthogonalized: 'true' } : {}) });
    const size = dirs.values().next().value!.length;
    if (io.json) io.out(JSON.stringify({ event: 'done', op: 'direction', out, tensors: [...dirs.keys()], hidden: size }));
    else io.out(`wrote ${out}: ${dirs.size} direction${dirs.size === 1 ? '' : 's'} of size ${size} (${[...dirs.keys()].slice(0, 3).join(', ')}${dirs.size > 3 ? ', ...' : ''})`);
    return 0;
  },
};
