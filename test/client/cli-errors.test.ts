/**
 * Bad input through the real binary: exit code 3 (2 for usage), one clear message naming
 * file, tensor, expected and actual, and nothing left behind (no output, no temporary dir).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { family, synth, tmp } from '../helpers/models.js';

let fam: Awaited<ReturnType<typeof family>>;
let work: string;
beforeAll(async () => {
  fam = await family();
  work = tmp('ws-cli-');
});

/** Runs the command, expects `code`, and checks that `out` and any temporary sibling do not exist. */
function expectFailure(args: string[], out: string, code: number, ...mentions: string[]): string {
  const r = cli([...args, '--out', out]);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.split('\n')[0]).toMatch(/^weightspace: error: /);
  for (const m of mentions) expect(r.stderr).toContain(m);
  expect(existsSync(out)).toBe(false);
  const parent = join(out, '..');
  expect(readdirSync(parent).filter((f) => f.includes('weightspace-tmp'))).toEqual([]);
  return r.stderr;
}

describe('bad input', () => {
  it('a missing checkpoint path', () => {
    expectFailure(['diff', join(work, 'nope'), fam.base], join(work, 'o1'), 3, join(work, 'nope'), 'no such file');
  });

  it('a truncated shard', () => {
    const broken = join(work, 'truncated');
    cpSync(fam.a, broken, { recursive: true });
    const file = join(broken, 'model.safetensors');
    truncateSync(file, readFileSync(file).length - 1000);
    expectFailure(['diff', broken, fam.base], join(work, 'o2'), 3, file, 'truncated');
  });

  it('a corrupt header', () => {
    const broken = join(work, 'corrupt');
    cpSync(fam.a, broken, { recursive: true });
    const file = join(broken, 'model.safetensors');
    const bytes = readFileSync(file);
    bytes.write('{"x', 8); // break the JSON
    bytes.write('!!!!', 20);
    writeFileSync(file, bytes);
    expectFailure(['eval', 'a - base', '--model', `a=${broken}`, '--model', `base=${fam.base}`], join(work, 'o3'), 3, file, 'header is not valid JSON');
  });

  it('shapes that differ between models: names tensor, both shapes and both models', async () => {
    const other = await synth(join(work, 'wider'), { intermediate: 400 });
    const err = expectFailure(['diff', other, fam.base], join(work, 'o4'), 3, "tensor 'model.layers.0.mlp.down_proj.weight'", '[128,400]', '[128,344]', "'a'", "'b'");
    expect(err).toMatch(/shape \[128,400\] in 'a' does not match \[128,344\] in 'b'/);
  });

  it('names that differ between models: a missing tensor', async () => {
    const fewer = await synth(join(work, 'fewer'), { layers: 1 });
    expectFailure(['eval', 'base + 0.5*(a - base)', '--model', `base=${fam.base}`, '--model', `a=${fewer}`], join(work, 'o5'), 3, "tensor 'model.layers.1.", 'missing from', "'a'");
  });

  it('an extra tensor in another model', async () => {
    const more = await synth(join(work, 'more'), { layers: 3 });
    expectFailure(['diff', more, fam.base], join(work, 'o6'), 3, "tensor 'model.layers.2.", "in 'a'", "but not in 'b'");
  });

  it('an unknown model name in an expression points at its column', () => {
    const err = expectFailure(['eval', 'base + 0.5*(mth - base)', '--model', `base=${fam.base}`], join(work, 'o7'), 3, "unknown model 'mth' at column 13", "expected one of 'base'");
    expect(err).toContain('            ^');
  });

  it('an index that disagrees with its shards', () => {
    const sharded = join(work, 'badindex');
    const r = cli(['synth', '--like', fam.base, '--seed', '5', '--shard-size', '1MB', '--out', sharded]);
    expect(r.code, r.stderr).toBe(0);
    const idxFile = join(sharded, 'model.safetensors.index.json');
    const idx = JSON.parse(readFileSync(idxFile, 'utf8')) as { weight_map: Record<string, string> };
    const [first, second] = [...new Set(Object.values(idx.weight_map))].sort();
    idx.weight_map['model.norm.weight'] = idx.weight_map['model.norm.weight'] === first ? second! : first!;
    writeFileSync(idxFile, JSON.stringify(idx));
    expectFailure(['diff', sharded, fam.base], join(work, 'o8'), 3, 'model.safetensors.index.json', "'model.norm.weight'", 'the index says');
  });

  it('an output directory that exists is kept, unless --force', () => {
    const out = join(work, 'exists');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    const r = cli(['diff', fam.a, fam.base, '--out', out]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('already exists');
    expect(readFileSync(join(out, 'keep.txt'), 'utf8')).toBe('mine');
    const f = cli(['diff', fam.a, fam.base, '--out', out, '--force']);
    expect(f.code, f.stderr).toBe(0);
    expect(existsSync(join(out, 'keep.txt'))).toBe(false);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  });

  it('usage errors exit 2', () => {
    expect(cli(['diff', fam.a]).code).toBe(2);
    expect(cli(['frobnicate']).code).toBe(2);
    const r = cli(['eval', 'a', '--model', `a=${fam.a}`, '--out', join(work, 'o9'), '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("'--bogus'");
    expect(existsSync(join(work, 'o9'))).toBe(false);
  });

  it('--log-format json reports the error code', () => {
    const r = cli(['diff', join(work, 'nope'), fam.base, '--out', join(work, 'o10'), '--log-format', 'json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stderr.trim())).toMatchObject({ level: 'error', code: 'not-found' });
  });
});

describe('the commands work from the binary', () => {
  it('inspect prints tensors, parameters and per-layer sizes; --json is machine-readable', () => {
    const r = cli(['inspect', fam.base]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('model.layers.1.mlp.down_proj.weight');
    expect(r.stdout).toMatch(/layer\.0\s+9\s/);
    const j = JSON.parse(cli(['inspect', fam.base, '--json']).stdout) as { tensors: number; parameters: number };
    expect(j.tensors).toBe(2 * 9 + 3);
    // hidden 128 → 2 heads of 64, 2 kv heads: q, k, v, o are all [128, 128]
    expect(j.parameters).toBe(512 * 128 * 2 + 128 + 2 * (4 * 128 * 128 + 3 * 128 * 344 + 2 * 128));
  });
  it('run executes a YAML job spec', () => {
    const spec = join(work, 'job.yaml');
    const out = join(work, 'from-yaml');
    writeFileSync(spec, `op: steer\nbase: ${fam.base}\npositive: ${fam.a}\nnegative: ${fam.b}\nalpha: [2]\nout: ${out}\n`);
    const r = cli(['run', spec]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  });
  it('run rejects an invalid spec with exit 3', () => {
    const spec = join(work, 'bad.yaml');
    writeFileSync(spec, 'op: steer\nbase: x\n');
    const r = cli(['run', spec]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(spec);
  });
  it('synth writes a Llama config.json that matches its tensors', () => {
    const cfg = JSON.parse(readFileSync(join(fam.base, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ model_type: 'llama', num_hidden_layers: 2, hidden_size: 128, intermediate_size: 344, vocab_size: 512, num_attention_heads: 2, num_key_value_heads: 2, tie_word_embeddings: false });
  });
});
