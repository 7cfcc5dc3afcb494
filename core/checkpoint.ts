/**
 * A checkpoint as weightspace sees it: the headers of its safetensors files, never the
 * data. Opens a Hugging Face directory (single `model.safetensors`, or shards with
 * `model.safetensors.index.json`), a single `.safetensors` file, or an http(s) URL of
 * either. Only headers are read (two small range reads per file).
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { isUrl, openByteSource, readSmallFile } from './byte-source.js';
import type { DType } from './dtypes.js';
import { WeightspaceError, q } from './errors.js';
import { parseHeader, parseHeaderLength, numelOf, type SafetensorsHeader } from './safetensors-header.js';

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

/** Where one tensor's bytes are. Everything a worker needs to read it. */
export interface TensorRef {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** path or URL of the safetensors file holding it */
  readonly file: string;
  /** absolute byte offset of its first byte in `file` */
  readonly offset: number;
  readonly nbytes: number;
}

export interface Checkpoint {
  /** the directory (or file) the user named */
  readonly location: string;
  /** the directory holding the weights and non-weight files (undefined for a bare file) */
  readonly dir: string | undefined;
  readonly files: readonly string[];
  readonly headers: ReadonlyMap<string, SafetensorsHeader>;
  /** tensors by name, in file order then header order */
  readonly tensors: ReadonlyMap<string, TensorRef>;
  readonly metadata: Readonly<Record<string, string>>;
}

function joinLocation(dir: string, name: string): string {
  return isUrl(dir) ? `${dir.replace(/\/+$/, '')}/${name}` : join(dir, name);
}

export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const src = await openByteSource(file);
  try {
    const prefix = new Uint8Array(Math.min(8, src.size));
    await src.read(0, prefix);
    const len = parseHeaderLength(file, prefix, src.size);
    const bytes = new Uint8Array(len);
    await src.read(8, bytes);
    return parseHeader(file, bytes, src.size);
  } finally {
    src.close();
  }
}

/** Finds the weight files of a checkpoint location and whether an index names them. */
async function locate(location: string): Promise<{ dir: string | undefined; files: string[]; index: Record<string, string> | undefined }> {
  if (isUrl(location)) {
    if (location.endsWith('.safetensors')) return { dir: undefined, files: [location], index: undefined };
    const idx = await readSmallFile(joinLocation(location, INDEX_FILE));
    if (idx) return fromIndex(location, joinLocation(location, INDEX_FILE), idx);
    return { dir: location, files: [joinLocation(location, SINGLE_FILE)], index: undefined };
  }
  let st;
  try {
    st = statSync(location);
  } catch {
    throw new WeightspaceError('not-found', `${q(location)}: no such file or directory`);
  }
  if (st.isFile()) {
    if (basename(location) === INDEX_FILE) {
      const dir = join(location, '..');
      const idx = await readSmallFile(location);
      return fromIndex(dir, location, idx!);
    }
    return { dir: undefined, files: [location], index: undefined };
  }
  const names = readdirSync(location);
  if (names.includes(INDEX_FILE)) {
    const idx = await readSmallFile(join(location, INDEX_FILE));
    return fromIndex(location, join(location, INDEX_FILE), idx!);
  }
  if (names.includes(SINGLE_FILE)) return { dir: location, files: [join(location, SINGLE_FILE)], index: undefined };
  const st2 = names.filter((n) => n.endsWith('.safetensors')).sort();
  if (st2.length === 1) return { dir: location, files: [join(location, st2[0]!)], index: undefined };
  if (st2.length === 0) {
    throw new WeightspaceError('not-a-checkpoint', `${q(location)}: no ${SINGLE_FILE}, ${INDEX_FILE} or other .safetensors file in the directory`);
  }
  throw new WeightspaceError('not-a-checkpoint', `${q(location)}: ${st2.length} .safetensors files and no ${INDEX_FILE} to say how they fit together`);
}

function fromIndex(dir: string, indexPath: string, bytes: Buffer): { dir: string; files: string[]; index: Record<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new WeightspaceError('invalid-index', `${q(indexPath)}: not valid JSON: ${(err as Error).message}`);
  }
  const map = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new WeightspaceError('invalid-index', `${q(indexPath)}: expected an object 'weight_map' of tensor name → shard file`);
  }
  const index: Record<string, string> = {};
  const files = new Set<string>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file === '..') {
      throw new WeightspaceError('invalid-index', `${q(indexPath)}: tensor ${q(name)} maps to ${JSON.stringify(file)}, expected a shard file name`);
    }
    index[name] = file;
    files.add(file);
  }
  return { dir, files: [...files].sort().map((f) => joinLocation(dir, f)), index };
}

export async function openCheckpoint(location: string): Promise<Checkpoint> {
  const { dir, files, index } = await locate(location);
  const headers = new Map<string, SafetensorsHeader>();
  const tensors = new Map<string, TensorRef>();
  let metadata: Record<string, string> = {};
  for (const file of files) {
    const h = await readSafetensorsHeader(file);
    headers.set(file, h);
    if (files.length === 1) metadata = { ...h.metadata };
    for (const t of h.tensors) {
      if (tensors.has(t.name)) {
        throw new WeightspaceError('duplicate-tensor', `${q(location)}: tensor ${q(t.name)} is in both ${q(tensors.get(t.name)!.file)} and ${q(file)}`);
      }
      if (index) {
        const expected = index[t.name];
        const shard = isUrl(file) ? file.slice(file.lastIndexOf('/') + 1) : basename(file);
        if (expected !== shard) {
          throw new WeightspaceError('invalid-index', expected === undefined
            ? `${q(INDEX_FILE)} in ${q(location)}: tensor ${q(t.name)} is in shard ${q(shard)} but not in the index`
            : `${q(INDEX_FILE)} in ${q(location)}: tensor ${q(t.name)} is in shard ${q(shard)}, the index says ${q(expected)}`);
        }
      }
      tensors.set(t.name, {
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        file,
        offset: h.dataStart + t.begin,
        nbytes: t.end - t.begin,
      });
    }
  }
  if (index) {
    for (const [name, shard] of Object.entries(index)) {
      if (!tensors.has(name)) {
        throw new WeightspaceError('invalid-index', `${q(INDEX_FILE)} in ${q(location)}: tensor ${q(name)} is listed in shard ${q(shard)} but that shard does not hold it`);
      }
    }
  }
  return { location, dir, files, headers, tensors, metadata };
}

export function paramCount(ckpt: Checkpoint): number {
  let n = 0;
  for (const t of ckpt.tensors.values()) n += numelOf(t.shape);
  return n;
}

/** Reads config.json of a checkpoint directory, if any. */
export async function readConfig(ckpt: Checkpoint): Promise<Record<string, unknown> | undefined> {
  if (!ckpt.dir) return undefined;
  const bytes = await readSmallFile(joinLocation(ckpt.dir, 'config.json'));
  if (!bytes) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new WeightspaceError('not-a-checkpoint', `${q(joinLocation(ckpt.dir, 'config.json'))}: not valid JSON: ${(err as Error).message}`);
  }
}
