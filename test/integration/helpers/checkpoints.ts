/**
 * Test checkpoints and output comparison for the integration tests: a small model family
 * made with the synth op (never committed), and digests of whole output trees, so
 * "byte-identical" means every file (shards, index, weightspace.json, copied files).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { openCheckpoint } from '../../../core/checkpoint.js';
import { runEmbedded } from '../../../client/embedded-runner.js';
import { parseJobSpec } from '../../../core/job-spec.js';

export interface Family {
  readonly dir: string;
  readonly base: string;
  readonly ft1: string;
  readonly ft2: string;
}

export interface FamilyShape {
  readonly layers?: number;
  readonly hidden?: number;
  readonly intermediate?: number;
  readonly vocab?: number;
  /** bytes per shard (small values give several shards) */
  readonly shardSize?: number;
}

/** base (random), ft1 and ft2 (small dense and low-rank perturbations of base), BF16. */
export async function makeFamily(dir: string, shape: FamilyShape = {}): Promise<Family> {
  const base = join(dir, 'base');
  const ft1 = join(dir, 'ft1');
  const ft2 = join(dir, 'ft2');
  const shard = shape.shardSize !== undefined ? { shardSize: shape.shardSize } : {};
  const synth = (fields: Record<string, unknown>): Promise<unknown> => runEmbedded(parseJobSpec({ op: 'synth', ...shard, ...fields }), { threads: 1 });
  await synth({ out: base, layers: shape.layers ?? 4, hidden: shape.hidden ?? 128, intermediate: shape.intermediate ?? 344, vocab: shape.vocab ?? 512, seed: 0 });
  await synth({ like: base, out: ft1, deltaScale: 0.02, seed: 1 });
  await synth({ like: base, out: ft2, deltaScale: 0.02, deltaRank: 4, seed: 2 });
  return { dir, base, ft1, ft2 };
}

/** relative path → sha256 of every file under `dir`. */
export function treeDigest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** Tensor names of every checkpoint directory under `dir` (sorted, duplicates kept: a duplicate would show). */
export async function tensorNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  const dirs: string[] = [];
  const walk = (d: string): void => {
    const entries = readdirSync(d);
    if (entries.some((n) => n.endsWith('.safetensors'))) dirs.push(d);
    for (const n of entries) if (statSync(join(d, n)).isDirectory()) walk(join(d, n));
  };
  walk(dir);
  for (const d of dirs.sort()) {
    const ckpt = await openCheckpoint(d);
    for (const name of ckpt.tensors.keys()) names.push(`${relative(dir, d)}:${name}`);
  }
  return names.sort();
}
