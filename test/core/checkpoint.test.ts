import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../../core/checkpoint.js';
import type { ErrorCode } from '../../core/errors.js';
import { synth, tmp } from '../helpers/models.js';
import { stFile } from '../helpers/safetensors-bytes.js';

let dir: string;
let sharded: string;
beforeAll(async () => {
  dir = tmp('ws-ckpt-');
  sharded = await synth(join(dir, 'sharded'), { shardSize: 300_000 });
});

async function fails(loc: string, code: ErrorCode, ...mentions: string[]): Promise<void> {
  const err = await openCheckpoint(loc).then((c: Checkpoint) => c, (e: unknown) => e);
  expect(err).toMatchObject({ code });
  for (const m of mentions) expect((err as Error).message).toContain(m);
}

function copyWithIndex(name: string, edit: (idx: { weight_map: Record<string, string> }) => void): string {
  const d = join(dir, name);
  rmSync(d, { recursive: true, force: true });
  cpSync(sharded, d, { recursive: true });
  const p = join(d, 'model.safetensors.index.json');
  const idx = JSON.parse(readFileSync(p, 'utf8')) as { weight_map: Record<string, string> };
  edit(idx);
  writeFileSync(p, JSON.stringify(idx));
  return d;
}

describe('opening checkpoints', () => {
  it('opens a sharded directory through its index, a single file, and the index file itself', async () => {
    const c = await openCheckpoint(sharded);
    expect(c.files.length).toBeGreaterThan(2);
    expect(c.tensors.size).toBe(21);
    const one = await openCheckpoint(c.files[0]!);
    expect(one.tensors.size).toBeLessThan(21);
    const viaIndex = await openCheckpoint(join(sharded, 'model.safetensors.index.json'));
    expect(viaIndex.tensors.size).toBe(21);
  });
  it('an index naming a tensor no shard holds', async () => {
    const d = copyWithIndex('ghost', (idx) => {
      idx.weight_map['model.layers.9.ghost.weight'] = Object.values(idx.weight_map)[0]!;
    });
    await fails(d, 'invalid-index', "'model.layers.9.ghost.weight'", 'does not hold it');
  });
  it('a shard holding a tensor the index does not list', async () => {
    const d = copyWithIndex('unlisted', (idx) => {
      delete idx.weight_map['model.norm.weight'];
    });
    await fails(d, 'invalid-index', "'model.norm.weight'", 'not in the index');
  });
  it('an index that points outside the directory', async () => {
    const d = copyWithIndex('escape', (idx) => {
      idx.weight_map['model.norm.weight'] = '../../etc/passwd';
    });
    await fails(d, 'invalid-index', 'expected a shard file name');
  });
  it('an index that is not JSON, or has no weight_map', async () => {
    const d = copyWithIndex('notjson', () => {});
    writeFileSync(join(d, 'model.safetensors.index.json'), '{nope');
    await fails(d, 'invalid-index', 'not valid JSON');
    writeFileSync(join(d, 'model.safetensors.index.json'), '{"metadata":{}}');
    await fails(d, 'invalid-index', 'weight_map');
  });
  it('a directory with no weights, or several unindexed files', async () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    await fails(empty, 'not-a-checkpoint', 'no model.safetensors');
    const two = join(dir, 'two');
    mkdirSync(two);
    writeFileSync(join(two, 'x.safetensors'), stFile({}));
    writeFileSync(join(two, 'y.safetensors'), stFile({}));
    await fails(two, 'not-a-checkpoint', '2 .safetensors files');
  });
  it('the same tensor in two shards', async () => {
    const d = join(dir, 'dup');
    mkdirSync(d);
    writeFileSync(join(d, 'a.safetensors'), stFile({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4));
    writeFileSync(join(d, 'b.safetensors'), stFile({ v: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8));
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'a.safetensors', v: 'b.safetensors' } }));
    await fails(d, 'duplicate-tensor', "'w'");
  });
});
