/**
 * The layout of an output checkpoint, computed before any data exists: which shard each
 * tensor goes to, its header, and the absolute byte offset of every tensor. With the
 * layout known up front, blocks can be written by offset in any order, by any worker.
 *
 * Data order within a shard: larger element sizes first (so every tensor is aligned to
 * its element size, as the safetensors reference writer does), then layer order. A tensor
 * is 8-byte aligned whenever the tensors before it have byte sizes that are multiples of
 * 8, which holds for every tensor of the usual model shapes. Offsets stay contiguous, as
 * the format requires.
 */
import { DTYPE_SIZE, type DType } from './dtypes.js';
import { WeightspaceError, q } from './errors.js';
import { serializeHeader, numelOf, type TensorEntry } from './safetensors-header.js';
import { INDEX_FILE, SINGLE_FILE } from './checkpoint.js';

export interface OutputTensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface ShardLayout {
  /** file name inside the output directory */
  readonly file: string;
  readonly header: Uint8Array;
  readonly size: number;
  readonly tensors: readonly TensorEntry[];
}

export interface TensorPlacement {
  readonly shard: number;
  readonly file: string;
  /** absolute byte offset inside the shard file */
  readonly offset: number;
  readonly nbytes: number;
}

export interface OutputLayout {
  readonly shards: readonly ShardLayout[];
  readonly placement: ReadonlyMap<string, TensorPlacement>;
  /** `model.safetensors.index.json` content when sharded */
  readonly index: string | undefined;
  readonly totalBytes: number;
}

export const DEFAULT_SHARD_SIZE = 5_000_000_000;

/** Parses `5GB`, `500MB`, `2GiB`, `1e9` or a plain byte count (decimal units, as Hugging Face uses). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(text);
  if (!m?.[1]) throw new WeightspaceError('usage', `cannot read size ${q(text)}: expected e.g. 5GB, 500MB, 2GiB or a byte count`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const pow = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit[0] as 'b' | 'k' | 'm' | 'g' | 't'];
  const base = unit.includes('i') ? 1024 : 1000;
  const n = Math.floor(Number(m[1]) * base ** pow);
  if (!(n > 0)) throw new WeightspaceError('usage', `size ${q(text)} must be positive`);
  return n;
}

/** Natural order of tensor names: numeric parts compare as numbers (layers.2 < layers.10). */
export function compareNames(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    if (i % 2 === 1) return Number(x) - Number(y) || (x < y ? -1 : 1);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * How shards are bounded: `shardSize` bytes (Hugging Face's max_shard_size, weightspace's
 * --shard-size) or, with `unit` 'elements', that many parameters (mergekit's --out-shard-size).
 * Either way a shard closes before the tensor that would take it over the limit (a tensor larger
 * than the limit gets a shard of its own).
 */
export type ShardUnit = 'bytes' | 'elements';

export function planOutputLayout(
  tensors: readonly OutputTensorSpec[],
  shardSize: number,
  metadata: Readonly<Record<string, string>> = { format: 'pt' },
  unit: ShardUnit = 'bytes',
): OutputLayout {
  const order = [...tensors].sort((a, b) => DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || compareNames(a.name, b.name));
  // greedy shards in layer order (as Hugging Face's save_pretrained does), each sorted by alignment
  const groups: OutputTensorSpec[][] = [];
  let cur: OutputTensorSpec[] = [];
  let curSize = 0;
  for (const t of [...tensors].sort((a, b) => compareNames(a.name, b.name))) {
    const size = numelOf(t.shape) * (unit === 'bytes' ? DTYPE_SIZE[t.dtype] : 1);
    if (cur.length > 0 && curSize + size > shardSize) {
      groups.push(cur);
      cur = [];
      curSize = 0;
    }
    cur.push(t);
    curSize += size;
  }
  if (cur.length > 0 || groups.length === 0) groups.push(cur);
  const rank = new Map(order.map((t, i) => [t.name, i]));

  const shards: ShardLayout[] = [];
  const placement = new Map<string, TensorPlacement>();
  let totalBytes = 0;
  groups.forEach((group, si) => {
    group.sort((a, b) => rank.get(a.name)! - rank.get(b.name)!);
    const file = groups.length === 1
      ? SINGLE_FILE
      : `model-${String(si + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    let off = 0;
    const entries: TensorEntry[] = group.map((t) => {
      const nb = numelOf(t.shape) * DTYPE_SIZE[t.dtype];
      const e = { name: t.name, dtype: t.dtype, shape: [...t.shape], begin: off, end: off + nb };
      off += nb;
      return e;
    });
    const header = serializeHeader(metadata, entries);
    for (const e of entries) {
      placement.set(e.name, { shard: si, file, offset: header.length + e.begin, nbytes: e.end - e.begin });
    }
    totalBytes += off;
    shards.push({ file, header, size: header.length + off, tensors: entries });
  });

  let index: string | undefined;
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    for (const name of [...placement.keys()].sort()) weightMap[name] = placement.get(name)!.file;
    index = JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2) + '\n';
  }
  return { shards, placement, index, totalBytes };
}

export { INDEX_FILE };
