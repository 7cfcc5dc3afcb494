/**
 * Bad input to the research commands through the real binary: exit 3 (2 for usage), one
 * clear message, and nothing written (no output, no temporary sibling).
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { family, tmp } from '../helpers/models.js';
import { stFile } from '../helpers/safetensors-bytes.js';
import { randomVector, writeMeans } from './research-helpers.js';

let fam: Awaited<ReturnType<typeof family>>;
let work: string;
beforeAll(async () => {
  fam = await family();
  work = tmp('ws-research-cli-');
});

function expectFailure(args: string[], out: string, code: number, ...mentions: string[]): string {
  const r = cli(args);
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.split('\n')[0]).toMatch(/^weightspace: error: /);
  for (const m of mentions) expect(r.stderr).toContain(m);
  expect(existsSync(out)).toBe(false);
  expect(readdirSync(join(out, '..')).filter((f) => f.includes('weightspace-tmp'))).toEqual([]);
  return r.stderr;
}

/** A PEFT adapter directory written by hand: one module, given factor shapes. */
function adapter(dir: string, module: string, aShape: [number, number], bShape: [number, number]): string {
  mkdirSync(dir, { recursive: true });
  const an = aShape[0] * aShape[1];
  const bn = bShape[0] * bShape[1];
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: aShape[0], lora_alpha: aShape[0], target_modules: ['q_proj'] }));
  writeFileSync(join(dir, 'adapter_model.safetensors'), stFile({
    [`base_model.model.${module}.lora_A.weight`]: { dtype: 'F32', shape: aShape, data_offsets: [0, 4 * an] },
    [`base_model.model.${module}.lora_B.weight`]: { dtype: 'F32', shape: bShape, data_offsets: [4 * an, 4 * (an + bn)] },
  }, 4 * (an + bn)));
  return dir;
}

describe('project', () => {
  it('a direction of the wrong size: exit 3, names the direction, both sizes, nothing written', () => {
    const dir = join(work, 'small-dir.safetensors');
    writeMeans(dir, { direction: randomVector(64, 1) });
    const out = join(work, 'p1');
    expectFailure(['project', '--model', fam.base, '--direction', dir, '--out', out], out, 3, "direction 'direction'", '[64]', 'expected [128]');
  });

  it('a per-layer direction file without the layer a tensor needs', () => {
    const dir = join(work, 'layer0-only.safetensors');
    writeMeans(dir, { 'layers.0': randomVector(128, 2) });
    const out = join(work, 'p2');
    expectFailure(['project', '--model', fam.base, '--direction', dir, '--out', out], out, 3, "no entry for tensor 'model.layers.1.", "'layers.1' or 'direction'");
  });

  it('an unknown module kind is a usage error', () => {
    const out = join(work, 'p3');
    expectFailure(['project', '--model', fam.base, '--direction', join(work, 'x'), '--modules', 'attn', '--out', out], out, 2, "unknown module 'attn'");
  });
});

describe('patch', () => {
  it('a pattern that matches nothing: exit 3, names the pattern', () => {
    const out = join(work, 'q1');
    expectFailure(['patch', '--base', fam.base, '--donor', fam.a, '--modules', '*.mlp.gate_projj.*', '--out', out], out, 3, "--modules pattern '*.mlp.gate_projj.*' matches no tensor");
  });

  it('a layer range that leaves nothing', () => {
    const out = join(work, 'q2');
    expectFailure(['patch', '--base', fam.base, '--donor', fam.a, '--modules', '*.mlp.*', '--layers', '7-9', '--out', out], out, 3, 'no tensor matches');
  });
});

describe('lora apply', () => {
  it('an adapter whose shapes do not match the base: exit 3, names module, shapes, nothing written', () => {
    const a = adapter(join(work, 'bad-adapter'), 'model.layers.0.self_attn.q_proj', [4, 100], [128, 4]);
    const out = join(work, 'l1');
    expectFailure(['lora', 'apply', '--base', fam.base, '--adapter', a, '--out', out], out, 3, "adapter module 'model.layers.0.self_attn.q_proj'", 'lora_A [4,100]', '[128,128]');
  });

  it('an adapter for a module the base does not have', () => {
    const a = adapter(join(work, 'other-adapter'), 'model.layers.9.self_attn.q_proj', [4, 128], [128, 4]);
    const out = join(work, 'l2');
    expectFailure(['lora', 'apply', '--base', fam.base, '--adapter', a, '--out', out], out, 3, "'model.layers.9.self_attn.q_proj.weight', which is not in the base");
  });

  it('extract with neither --rank nor --energy is a usage error', () => {
    const out = join(work, 'l3');
    expectFailure(['lora', 'extract', '--base', fam.base, '--model', fam.a, '--out', out], out, 2, 'exactly one of --rank R and --energy E');
  });
});

describe('direction', () => {
  it('means with a missing layer: exit 3, names the layer, no file written', () => {
    writeMeans(join(work, 'h.safetensors'), { 'layers.0': randomVector(8, 1), 'layers.1': randomVector(8, 2) });
    writeMeans(join(work, 'a.safetensors'), { 'layers.0': randomVector(8, 3) });
    const out = join(work, 'd1.safetensors');
    expectFailure(['direction', '--harmful-means', join(work, 'h.safetensors'), '--harmless-means', join(work, 'a.safetensors'), '--out', out], out, 3, "layer 'layers.1' is in the harmful means but missing from the harmless means");
  });

  it('means of different sizes', () => {
    writeMeans(join(work, 'h2.safetensors'), { 'layers.0': randomVector(8, 1) });
    writeMeans(join(work, 'a2.safetensors'), { 'layers.0': randomVector(9, 3) });
    const out = join(work, 'd2.safetensors');
    expectFailure(['direction', '--harmful-means', join(work, 'h2.safetensors'), '--harmless-means', join(work, 'a2.safetensors'), '--out', out], out, 3, 'harmless mean');
  });
});

describe('monitor', () => {
  it('without a vector is a usage error', () => {
    const r = cli(['monitor', '--before', fam.base, '--after', `a=${fam.a}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--vector V or both --positive P and --negative N');
  });
});
