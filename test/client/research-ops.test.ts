/**
 * The research operations end to end on synth checkpoints (embedded mode, the real CLI for
 * direction), checked against independent computations on hand-decoded tensors.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runEmbedded } from '../../client/embedded-runner.js';
import type { JobSpec } from '../../core/job-spec.js';
import type { AnalyzeReport } from '../../coordinator/ops/analyze-report.js';
import type { MonitorReport } from '../../coordinator/ops/monitor-report.js';
import { cli } from '../helpers/cli.js';
import { family, synth, tmp } from '../helpers/models.js';
import { randomVector, readTensor, tensorNames, writeMeans } from './research-helpers.js';

let fam: Awaited<ReturnType<typeof family>>;
let work: string;
beforeAll(async () => {
  fam = await family();
  work = tmp('ws-research-');
});

const run = (spec: JobSpec) => runEmbedded(spec, { threads: 2 });
const HIDDEN = 128;

describe('monitor', () => {
  it('ranks the steered model first (cosine ≈ 1) and an unrelated fine-tune near 0; matches a naive cosine', async () => {
    const steered = join(work, 'steered');
    await run({ op: 'steer', base: fam.base, positive: fam.a, negative: fam.b, alpha: [2], out: steered, dtype: 'F32' });
    const other = await synth(join(work, 'unrelated'), { like: fam.base, seed: 9, deltaScale: 0.004 });
    const r = (await run({ op: 'monitor', before: fam.base, after: { other, steered }, positive: fam.a, negative: fam.b })).report as MonitorReport;
    expect(r.afters.map((a) => a.name)).toEqual(['steered', 'other']);
    expect(r.afters[0]!.global.cosine!).toBeGreaterThan(0.99);
    expect(Math.abs(r.afters[1]!.global.cosine!)).toBeLessThan(0.1);
    expect(r.afters[0]!.layers.map((l) => l.key)).toEqual(['embed', 'layer.0', 'layer.1', 'final', 'head']);
    // naive global cosine over every tensor, f64, hand-decoded
    let dot = 0;
    let dd = 0;
    let vv = 0;
    for (const name of await tensorNames(fam.base)) {
      const [b, s, p, n] = await Promise.all([fam.base, other, fam.a, fam.b].map(async (d) => (await readTensor(d, name)).values));
      for (let i = 0; i < b!.length; i++) {
        const d = s![i]! - b![i]!;
        const v = p![i]! - n![i]!;
        dot += d * v;
        dd += d * d;
        vv += v * v;
      }
    }
    expect(r.afters[1]!.global.cosine!).toBeCloseTo(dot / Math.sqrt(dd * vv), 9);
    expect(r.afters[1]!.global.deltaNorm).toBeCloseTo(Math.sqrt(dd), 6);
  });
});

describe('direction → project', () => {
  let dirFile: string;
  let r1: Float64Array;
  beforeAll(() => {
    const harmful: Record<string, number[]> = {};
    const harmless: Record<string, number[]> = {};
    for (let i = 0; i < 2; i++) {
      harmful[`layers.${i}`] = randomVector(HIDDEN, 10 + i);
      harmless[`layers.${i}`] = randomVector(HIDDEN, 20 + i);
    }
    writeMeans(join(work, 'harmful.safetensors'), harmful);
    writeMeans(join(work, 'harmless.safetensors'), harmless);
    dirFile = join(work, 'dir.safetensors');
    const c = cli(['direction', '--harmful-means', join(work, 'harmful.safetensors'), '--harmless-means', join(work, 'harmless.safetensors'), '--out', dirFile]);
    expect(c.code, c.stderr).toBe(0);
    const d = harmful['layers.1']!.map((x, i) => x - harmless['layers.1']![i]!);
    const n = Math.hypot(...d);
    r1 = Float64Array.from(d, (x) => x / n);
  });

  it('writes normalised per-layer directions', async () => {
    const got = await readTensor(dirFile, 'layers.1');
    got.values.forEach((x, i) => expect(x).toBeCloseTo(r1[i]!, 6));
  });

  it('writers lose r̂ on their output side (square o_proj included), readers on their input side; other tensors untouched', async () => {
    const out = join(work, 'abliterated');
    await run({ op: 'project', model: fam.base, direction: dirFile, out, dtype: 'F32' });
    const manifest = JSON.parse(readFileSync(join(out, 'weightspace.json'), 'utf8')) as { projected: string[] };
    expect(manifest.projected).toEqual(expect.arrayContaining(['model.embed_tokens.weight', 'model.layers.1.self_attn.o_proj.weight', 'model.layers.1.mlp.down_proj.weight']));
    expect(manifest.projected).toHaveLength(5);
    // o_proj of layer 1 is square [128, 128]: r̂ᵀW′ = 0 (output side), W′r̂ ≠ 0
    const o = await readTensor(out, 'model.layers.1.self_attn.o_proj.weight');
    expect(o.shape).toEqual([HIDDEN, HIDDEN]);
    let left = 0;
    let right = 0;
    for (let j = 0; j < HIDDEN; j++) {
      let c = 0;
      let p = 0;
      for (let i = 0; i < HIDDEN; i++) {
        c += r1[i]! * o.values[i * HIDDEN + j]!;
        p += o.values[j * HIDDEN + i]! * r1[i]!;
      }
      left = Math.max(left, Math.abs(c));
      right = Math.max(right, Math.abs(p));
    }
    expect(left).toBeLessThan(1e-6);
    expect(right).toBeGreaterThan(1e-3);
    // embed_tokens (reader, layers.0): W′r̂₀ = 0
    const r0 = (await readTensor(dirFile, 'layers.0')).values;
    const e = await readTensor(out, 'model.embed_tokens.weight');
    let worst = 0;
    for (let t = 0; t < e.shape[0]!; t++) {
      let p = 0;
      for (let j = 0; j < HIDDEN; j++) p += e.values[t * HIDDEN + j]! * r0[j]!;
      worst = Math.max(worst, Math.abs(p));
    }
    expect(worst).toBeLessThan(1e-6);
    // q_proj is not a default target: unchanged (bf16 → f32 is exact)
    const [q0, q1] = await Promise.all([fam.base, out].map((d) => readTensor(d, 'model.layers.0.self_attn.q_proj.weight')));
    expect(q1!.values).toEqual(q0!.values);
  });

  it('--layers, a gradient --scale and column norm preservation', async () => {
    const out = join(work, 'abliterated-2');
    await run({ op: 'project', model: fam.base, direction: dirFile, out, dtype: 'F32', modules: ['down'], layers: '1', scale: [0, 1], normPreserving: 'column' });
    const manifest = JSON.parse(readFileSync(join(out, 'weightspace.json'), 'utf8')) as { projected: string[] };
    expect(manifest.projected).toEqual(['model.layers.1.mlp.down_proj.weight']);
    const [w0, w1] = await Promise.all([fam.base, out].map((d) => readTensor(d, 'model.layers.1.mlp.down_proj.weight')));
    const cols = w0!.shape[1]!;
    for (let j = 0; j < cols; j += 37) {
      let a = 0;
      let b = 0;
      let c = 0;
      for (let i = 0; i < HIDDEN; i++) {
        a += w0!.values[i * cols + j]! ** 2;
        b += w1!.values[i * cols + j]! ** 2;
        c += r1[i]! * w1!.values[i * cols + j]!;
      }
      expect(Math.sqrt(b / a)).toBeCloseTo(1, 5); // column norm kept
      expect(Math.abs(c)).toBeLessThan(1e-5); // scale at layer 1 of [0, 1] is 1: fully removed
    }
  });
});

describe('patch', () => {
  it('takes exactly the matched tensors from the donor; controls match the parameter count elsewhere', async () => {
    const out = join(work, 'patched');
    await run({ op: 'patch', base: fam.base, donor: fam.a, modules: ['*.self_attn.[qk]_proj.weight'], layers: '1', randomControl: 2, seed: 3, out });
    const read = (d: string): { patch: { fromDonor: string[]; parameters: number; control: boolean } } => JSON.parse(readFileSync(join(out, d, 'weightspace.json'), 'utf8'));
    const main = read('patched');
    expect(main.patch.fromDonor).toEqual(['model.layers.1.self_attn.k_proj.weight', 'model.layers.1.self_attn.q_proj.weight']);
    for (const name of await tensorNames(fam.base)) {
      const want = main.patch.fromDonor.includes(name) ? fam.a : fam.base;
      const [g, w] = await Promise.all([join(out, 'patched'), want].map((d) => readTensor(d, name)));
      expect(g!.values, name).toEqual(w!.values);
    }
    for (const c of ['control-1', 'control-2']) {
      const m = read(c);
      expect(m.patch.control).toBe(true);
      expect(m.patch.parameters).toBe(main.patch.parameters);
      expect(m.patch.fromDonor).toHaveLength(2);
      expect(m.patch.fromDonor.some((n) => main.patch.fromDonor.includes(n))).toBe(false);
      const shapesOf = (names: string[]): Promise<string[]> => Promise.all(names.map(async (n) => (await readTensor(fam.base, n)).shape.join('x')));
      expect((await shapesOf(m.patch.fromDonor)).sort()).toEqual((await shapesOf(main.patch.fromDonor)).sort()); // same shapes
      const g = await readTensor(join(out, c), m.patch.fromDonor[0]!);
      expect(g.values).toEqual((await readTensor(fam.a, m.patch.fromDonor[0]!)).values);
    }
  });
});

describe('analyze', () => {
  it('norms, cosines and sign conflicts match a naive computation; spectra of a low-rank task vector', async () => {
    const r = (await run({ op: 'analyze', base: fam.base, models: { a: fam.a, b: fam.b }, ranks: [4, 16] })).report as AnalyzeReport;
    let b2 = 0;
    const d2 = [0, 0];
    let dot = 0;
    let conflicts = 0;
    let both = 0;
    for (const name of await tensorNames(fam.base)) {
      const [x0, xa, xb] = await Promise.all([fam.base, fam.a, fam.b].map(async (d) => (await readTensor(d, name)).values));
      for (let i = 0; i < x0!.length; i++) {
        const da = xa![i]! - x0![i]!;
        const db = xb![i]! - x0![i]!;
        b2 += x0![i]! ** 2;
        d2[0]! += da * da;
        d2[1]! += db * db;
        dot += da * db;
        if (da !== 0 && db !== 0) {
          both++;
          if (Math.sign(da) !== Math.sign(db)) conflicts++;
        }
      }
    }
    expect(r.global.relative[0]!).toBeCloseTo(Math.sqrt(d2[0]! / b2), 9);
    expect(r.global.cosine[0]![1]!).toBeCloseTo(dot / Math.sqrt(d2[0]! * d2[1]!), 9);
    expect(r.global.conflictRate[0]![1]!).toBeCloseTo(conflicts / both, 12);
    expect(r.layers.map((l) => l.key)).toEqual(['embed', 'layer.0', 'layer.1', 'final', 'head']);
    // b was made with --delta-rank 4: its 2-D task vectors have rank ≤ 4, a's are dense
    const q = r.spectra.find((s) => s.kind === 'q')!;
    expect(q.energy['4']![1]!).toBeGreaterThan(0.999);
    expect(q.energy['4']![0]!).toBeLessThan(0.5);
    // bf16 rounding of θ_b spreads a little noise over the whole spectrum: a few, not hundreds
    expect(q.effectiveRank[1]!).toBeLessThan(8);
    expect(q.effectiveRank[0]!).toBeGreaterThan(50);
  });
});

describe('lora extract → apply', () => {
  it('extracts a PEFT adapter that reproduces a low-rank fine-tune, and merging it gives the fine-tune back', async () => {
    const adapter = join(work, 'adapter');
    const res = await run({ op: 'lora-extract', base: fam.base, model: fam.b, rank: 4, out: adapter, dtype: 'F32' });
    expect(existsSync(join(adapter, 'adapter_model.safetensors'))).toBe(true);
    const cfg = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 4, base_model_name_or_path: fam.base, target_modules: ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'] });
    const a = await readTensor(adapter, 'base_model.model.model.layers.1.mlp.down_proj.lora_A.weight');
    const b = await readTensor(adapter, 'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight');
    expect(a.shape).toEqual([4, 344]);
    expect(b.shape).toEqual([128, 4]);
    expect((res.report as { modules: { relativeError: number }[] }).modules.every((m) => m.relativeError < 0.01)).toBe(true);
    // apply: W + B·A ≈ W_ft (bf16 inputs, f32 output)
    const merged = join(work, 'merged');
    await run({ op: 'lora-apply', base: fam.base, adapter, out: merged, dtype: 'F32' });
    for (const name of ['model.layers.1.mlp.down_proj.weight', 'model.layers.0.self_attn.k_proj.weight']) {
      const [w0, wf, wm] = await Promise.all([fam.base, fam.b, merged].map((d) => readTensor(d, name)));
      let err = 0;
      let delta = 0;
      for (let i = 0; i < w0!.values.length; i++) {
        err += (wm!.values[i]! - wf!.values[i]!) ** 2;
        delta += (wf!.values[i]! - w0!.values[i]!) ** 2;
      }
      expect(Math.sqrt(err / delta), name).toBeLessThan(0.01);
    }
    // untargeted tensors are copied
    const [n0, n1] = await Promise.all([fam.base, merged].map((d) => readTensor(d, 'model.norm.weight')));
    expect(n1!.values).toEqual(n0!.values);
  });

  it('--energy picks per-module ranks in a probe pass first', async () => {
    const out = join(work, 'adapter-energy');
    const c = cli(['lora', 'extract', '--base', fam.base, '--model', fam.a, '--energy', '0.5', '--max-rank', '32', '--out', out]);
    expect(c.code, c.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { r: number; rank_pattern: Record<string, number>; alpha_pattern: Record<string, number> };
    const ranks = Object.values(cfg.rank_pattern);
    expect(ranks.length).toBeGreaterThan(0);
    expect(cfg.alpha_pattern).toEqual(cfg.rank_pattern);
    expect(Math.max(...ranks)).toBeLessThanOrEqual(32);
    const m = 'model.layers.0.mlp.up_proj';
    const a = await readTensor(out, `base_model.model.${m}.lora_A.weight`);
    expect(a.shape[0]).toBe(cfg.rank_pattern[m]);
  });
});
