/**
 * diff, eval and steer end to end in embedded mode on generated checkpoints, checked
 * against independent computations (hand-decoded inputs, f64 arithmetic, one rounding).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runEmbedded } from '../../client/embedded-runner.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import type { JobSpec } from '../../core/job-spec.js';
import { bf16Bits, bf16Values, family, roundToBf16Once, tensorBytes, tmp } from '../helpers/models.js';
import { stFile } from '../helpers/safetensors-bytes.js';

let fam: Awaited<ReturnType<typeof family>>;
beforeAll(async () => {
  fam = await family();
});

async function run(spec: JobSpec, threads = 2) {
  return runEmbedded(spec, { threads });
}

function shardHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith('.safetensors') || f === 'weightspace.json' || f.endsWith('.index.json')) {
      out[f] = createHash('sha256').update(readFileSync(join(dir, f))).digest('hex');
    }
  }
  return out;
}

const NAMES = ['model.layers.1.mlp.down_proj.weight', 'model.embed_tokens.weight', 'model.norm.weight', 'model.layers.0.self_attn.k_proj.weight'];

describe('eval', () => {
  it("equals an independent f32 computation of 'base + 0.5*(a - base) + 0.5*(b - base)' rounded once to bf16 (≤ 1 ulp)", async () => {
    const out = join(tmp(), 'merged');
    await run({ op: 'eval', expr: 'base + 0.5*(a - base) + 0.5*(b - base)', models: { base: fam.base, a: fam.a, b: fam.b }, out });
    let total = 0;
    let exact = 0;
    for (const name of NAMES) {
      const [t0, ta, tb] = await Promise.all([fam.base, fam.a, fam.b].map((d) => tensorBytes(d, name)));
      const x0 = bf16Values(t0!), xa = bf16Values(ta!), xb = bf16Values(tb!);
      const got = bf16Bits(await tensorBytes(out, name));
      expect(got.length).toBe(x0.length);
      for (let i = 0; i < x0.length; i++) {
        // f32 arithmetic in the order written, then one rounding to bf16
        const f = Math.fround;
        const r = f(f(x0[i]! + f(0.5 * f(xa[i]! - x0[i]!))) + f(0.5 * f(xb[i]! - x0[i]!)));
        const want = roundToBf16Once(r);
        const ulps = Math.abs(got[i]! - want);
        expect(ulps, `${name}[${i}]`).toBeLessThanOrEqual(1);
        if (ulps === 0) exact++;
        total++;
      }
    }
    // almost all elements agree exactly; the rest by one ulp (double rounding)
    expect(exact / total).toBeGreaterThan(0.99);
  });

  it('gives the same bytes on 0, 1 and 2 threads, and when sharded reads back through its index', async () => {
    const d = tmp();
    const spec = (out: string): JobSpec => ({ op: 'eval', expr: 'base + 0.8*(a - base) - 0.3*(b - base)', models: { base: fam.base, a: fam.a, b: fam.b }, out });
    await run(spec(join(d, 't0')), 0);
    await run(spec(join(d, 't1')), 1);
    await run(spec(join(d, 't2')), 2);
    const h0 = shardHashes(join(d, 't0'));
    expect(shardHashes(join(d, 't1'))).toEqual(h0);
    expect(shardHashes(join(d, 't2'))).toEqual(h0);

    await run({ ...spec(join(d, 'sharded')), shardSize: 300_000 } as JobSpec);
    const files = readdirSync(join(d, 'sharded'));
    expect(files).toContain('model.safetensors.index.json');
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    const a = await openCheckpoint(join(d, 't0'));
    const b = await openCheckpoint(join(d, 'sharded'));
    expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
    for (const name of a.tensors.keys()) {
      expect((await tensorBytes(join(d, 'sharded'), name)).equals(await tensorBytes(join(d, 't0'), name))).toBe(true);
    }
  });

  it('writes weightspace.json with the spec, version and the sha256 of every shard, and copies config and tokenizer files', async () => {
    const out = join(tmp(), 'm');
    await run({ op: 'eval', expr: 'a', models: { base: fam.base, a: fam.a }, out });
    const manifest = JSON.parse(readFileSync(join(out, 'weightspace.json'), 'utf8')) as { version: string; spec: { expr: string }; shards: Record<string, { sha256: string }> };
    expect(manifest.spec.expr).toBe('a');
    expect(manifest.version).toBe(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
    const sha = createHash('sha256').update(readFileSync(join(out, 'model.safetensors'))).digest('hex');
    expect(manifest.shards['model.safetensors']!.sha256).toBe(sha);
    for (const f of ['config.json', 'generation_config.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      expect(readFileSync(join(out, f), 'utf8')).toBe(readFileSync(join(fam.base, f), 'utf8'));
    }
    // the expression 'a' is the model a, bit for bit
    expect(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(fam.a, 'model.safetensors')))).toBe(true);
  });

  it('--include/--exclude operate on matching tensors only; the rest are copied from the base', async () => {
    const out = join(tmp(), 'm');
    await run({ op: 'eval', expr: 'a', models: { base: fam.base, a: fam.a }, include: ['*.mlp.*'], exclude: ['*.layers.1.*'], out });
    expect((await tensorBytes(out, 'model.layers.0.mlp.up_proj.weight')).equals(await tensorBytes(fam.a, 'model.layers.0.mlp.up_proj.weight'))).toBe(true);
    expect((await tensorBytes(out, 'model.layers.1.mlp.up_proj.weight')).equals(await tensorBytes(fam.base, 'model.layers.1.mlp.up_proj.weight'))).toBe(true);
    expect((await tensorBytes(out, 'model.layers.0.self_attn.q_proj.weight')).equals(await tensorBytes(fam.base, 'model.layers.0.self_attn.q_proj.weight'))).toBe(true);
  });
});

describe('diff', () => {
  it('is θ_a − θ_b rounded once, for every tensor', async () => {
    const out = join(tmp(), 'delta');
    await run({ op: 'diff', a: fam.a, b: fam.base, out });
    for (const name of NAMES) {
      const xa = bf16Values(await tensorBytes(fam.a, name));
      const x0 = bf16Values(await tensorBytes(fam.base, name));
      const got = bf16Bits(await tensorBytes(out, name));
      for (let i = 0; i < xa.length; i++) expect(got[i]).toBe(roundToBf16Once(xa[i]! - x0[i]!));
    }
  });
  it('writes f32 with --dtype f32, exactly the f32 difference', async () => {
    const out = join(tmp(), 'delta32');
    await run({ op: 'diff', a: fam.a, b: fam.base, dtype: 'F32', out });
    const name = 'model.layers.0.mlp.gate_proj.weight';
    const got = await tensorBytes(out, name);
    const xa = bf16Values(await tensorBytes(fam.a, name));
    const x0 = bf16Values(await tensorBytes(fam.base, name));
    for (let i = 0; i < xa.length; i++) expect(got.readFloatLE(i * 4)).toBe(Math.fround(xa[i]! - x0[i]!));
  });
});

describe('steer', () => {
  it('writes θ + α(θ₊ − θ₋) for every α in one pass, each to its own directory', async () => {
    const out = join(tmp(), 'steered');
    const r = await run({ op: 'steer', base: fam.base, positive: fam.a, negative: fam.b, alpha: [1, -2.5], out });
    expect(r.outputs.map((o) => o.label)).toEqual(['alpha=1', 'alpha=-2.5']);
    // each input byte is read once for both outputs
    const ckpt = await openCheckpoint(fam.base);
    const size = [...ckpt.tensors.values()].reduce((s, t) => s + t.nbytes, 0);
    expect(r.bytesRead).toBe(3 * size);
    for (const [alpha, dir] of [[1, 'alpha-1'], [-2.5, 'alpha--2.5']] as const) {
      const name = 'model.layers.1.self_attn.o_proj.weight';
      const x0 = bf16Values(await tensorBytes(fam.base, name));
      const xp = bf16Values(await tensorBytes(fam.a, name));
      const xn = bf16Values(await tensorBytes(fam.b, name));
      const got = bf16Bits(await tensorBytes(join(out, dir), name));
      for (let i = 0; i < x0.length; i++) {
        expect(Math.abs(got[i]! - roundToBf16Once(x0[i]! + alpha * (xp[i]! - xn[i]!)))).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe('dtypes through the engine', () => {
  it('passes integer tensors through untouched and reads F64 and F8 inputs (written as f32)', async () => {
    const d = tmp();
    const mk = (name: string, seed: number): string => {
      const ids = new BigInt64Array([1n, -2n, 3n]);
      const f64 = new Float64Array([0.5 * seed, -1.25, 3]);
      const f8 = new Uint8Array([0x38, 0x40 + seed, 0xb8, 0x7e]);
      const data = Buffer.concat([Buffer.from(ids.buffer), Buffer.from(f64.buffer), Buffer.from(f8)]);
      const header = {
        ids: { dtype: 'I64', shape: [3], data_offsets: [0, 24] },
        w64: { dtype: 'F64', shape: [3], data_offsets: [24, 48] },
        w8: { dtype: 'F8_E4M3', shape: [2, 2], data_offsets: [48, 52] },
      };
      mkdirSync(join(d, name));
      writeFileSync(join(d, name, 'model.safetensors'), stFile(header, new Uint8Array(data)));
      return join(d, name);
    };
    const base = mk('base', 1);
    const a = mk('a', 2);
    const out = join(d, 'out');
    await run({ op: 'eval', expr: '2*a - base', models: { base, a }, out });
    const ckpt = await openCheckpoint(out);
    expect(ckpt.tensors.get('ids')!.dtype).toBe('I64');
    expect((await tensorBytes(out, 'ids')).equals(await tensorBytes(base, 'ids'))).toBe(true);
    expect(ckpt.tensors.get('w64')!.dtype).toBe('F32');
    const w64 = await tensorBytes(out, 'w64');
    expect([0, 1, 2].map((i) => w64.readFloatLE(i * 4))).toEqual([2 * 1 - 0.5, -1.25, 3]);
    const w8 = await tensorBytes(out, 'w8');
    // e4m3 0x38 = 1, 0x41 = 2.25 (base), 0x42 = 2.5 (a): 2·2.5 − 2.25 = 2.75
    expect([0, 1, 2, 3].map((i) => w8.readFloatLE(i * 4))).toEqual([1, 2.75, -1, 448]);
    expect(existsSync(join(out, 'weightspace.json'))).toBe(true);
  });
});
