/**
 * `merge` end to end: every example recipe in examples/merge/ run in embedded mode on
 * synthetic models laid out as the examples expect (./models/base, ./models/ft1,
 * ./models/ft2), outputs checked against independent computations from hand-decoded inputs;
 * determinism of the random methods; bad recipes through the real binary (exit 3, the valid
 * names listed, nothing written).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runEmbedded } from '../../client/embedded-runner.js';
import { parseKmb } from '../../client/cli/commands/merge.js';
import { modelsAsWritten } from '../../coordinator/ops/model-card.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import { WeightspaceError } from '../../core/errors.js';
import { compareNames } from '../../core/output-layout.js';
import { MERGE_METHOD_NAMES } from '../../core/mergekit-recipe.js';
import type { MergeSpec } from '../../core/specs/merge-spec.js';
import { cli } from '../helpers/cli.js';
import { synth, tmp } from '../helpers/models.js';
import { readTensor, tensorNames } from './research-helpers.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/merge/', import.meta.url));
const LAYERS = 4;

let work: string;
beforeAll(async () => {
  work = tmp('ws-merge-');
  const base = await synth(join(work, 'models', 'base'), { layers: LAYERS, seed: 0 });
  await synth(join(work, 'models', 'ft1'), { like: base, seed: 1, deltaScale: 0.004 });
  await synth(join(work, 'models', 'ft2'), { like: base, seed: 2, deltaScale: 0.004, deltaRank: 4 });
});

function specOf(recipeFile: string, out: string, extra: Partial<MergeSpec> = {}): MergeSpec {
  const recipe = parseYaml(readFileSync(recipeFile, 'utf8')) as Record<string, unknown>;
  return { op: 'merge', recipe, recipePath: recipeFile, cwd: work, out, ...extra };
}

async function merge(example: string, extra: Partial<MergeSpec> = {}, threads = 2): Promise<string> {
  const out = join(work, 'out', `${basename(example, '.yaml')}-${Math.random().toString(36).slice(2, 8)}`);
  await runEmbedded(specOf(join(EXAMPLES, example), out, extra), { threads });
  return out;
}

const t = async (dir: string, name: string): Promise<Float64Array> => (await readTensor(join(work, dir), name)).values;
const at = async (out: string, name: string): Promise<Float64Array> => (await readTensor(out, name)).values;

/** Every element within one bf16 rounding (relative 2⁻⁸, plus a little for values near 0). */
function expectBf16Close(got: Float64Array, want: ArrayLike<number>, label: string): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!) - (Math.abs(want[i]!) * 2 ** -8 + 1e-6);
    if (err > worst) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `${label}: element ${at}: got ${got[at]}, want ${want[at]}`).toBe(0);
}

function sha(dir: string): string {
  return createHash('sha256').update(readFileSync(join(dir, 'model.safetensors'))).digest('hex');
}

describe('every example recipe runs end to end (embedded, synthetic models)', () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();

  it('there is one example per method, in mergekit format, naming ./models/*', () => {
    const methods = files.map((f) => (parseYaml(readFileSync(join(EXAMPLES, f), 'utf8')) as { merge_method: string }).merge_method);
    expect([...methods].sort()).toEqual([...MERGE_METHOD_NAMES].sort());
    for (const f of files) expect(readFileSync(join(EXAMPLES, f), 'utf8')).toContain('weightspace synth');
  });

  for (const f of files) {
    it(f, async () => {
      const out = await merge(f);
      const names = await tensorNames(out);
      const baseNames = await tensorNames(join(work, 'models', 'base'));
      if (f === 'passthrough.yaml') expect(names.length).toBe(baseNames.length + 2 * 9);
      else expect([...names].sort()).toEqual([...baseNames].sort());
      for (const n of names) {
        const v = await at(out, n);
        expect(v.every(Number.isFinite), n).toBe(true);
      }
      const manifest = JSON.parse(readFileSync(join(out, 'weightspace.json'), 'utf8')) as { op: string };
      expect(manifest.op).toBe('merge');
      const ckpt = readFileSync(join(out, 'model.safetensors'));
      expect(ckpt.subarray(8, 8 + Number(ckpt.readBigUInt64LE(0))).toString()).toContain('"BF16"');
    });
  }
});

describe('merge outputs against independent computations', () => {
  const DOWN = 'model.layers.1.mlp.down_proj.weight';
  const Q = 'model.layers.1.self_attn.q_proj.weight';

  it('linear: 0.6·ft1 + 0.4·ft2', async () => {
    const out = await merge('linear.yaml');
    const [a, b] = [await t('models/ft1', DOWN), await t('models/ft2', DOWN)];
    expectBf16Close(await at(out, DOWN), a.map((x, i) => 0.6 * x + 0.4 * b[i]!), 'linear');
  });

  it('task_arithmetic: base + 0.7·δ₁ + 0.3·δ₂', async () => {
    const out = await merge('task_arithmetic.yaml');
    const [z, a, b] = [await t('models/base', DOWN), await t('models/ft1', DOWN), await t('models/ft2', DOWN)];
    expectBf16Close(await at(out, DOWN), z.map((x, i) => x + 0.7 * (a[i]! - x) + 0.3 * (b[i]! - x)), 'task_arithmetic');
  });

  it('ties: the gradient weight of each layer, exact top-k, the sign of the weighted sum, normalised', async () => {
    const out = await merge('ties.yaml');
    for (const [name, tt] of [[DOWN, 1 / 3], ['model.layers.3.mlp.up_proj.weight', 1], ['model.embed_tokens.weight', 0], ['lm_head.weight', 1]] as const) {
      const [z, a, b] = [await t('models/base', name), await t('models/ft1', name), await t('models/ft2', name)];
      const w = [0.5, 0.3 + 0.4 * tt];
      const n = z.length;
      const ds = [a, b].map((x) => Float64Array.from(x, (v, i) => Math.fround(v - z[i]!)));
      const kept = ds.map((d) => {
        const order = Array.from({ length: n }, (_, i) => i).sort((p, q) => Math.abs(d[q]!) - Math.abs(d[p]!) || p - q);
        const m = new Uint8Array(n);
        for (let r = 0; r < Math.floor(0.5 * n); r++) m[order[r]!] = 1;
        return m;
      });
      const want = z.map((x, i) => {
        // weighted task vectors in f32 (the weight too, as torch holds it in the deltas' dtype), as
        // mergekit's: the vote may cancel exactly and elect +
        const v = ds.map((d, k) => (kept[k]![i] ? Math.fround(Math.fround(w[k]!) * d[i]!) : 0));
        const sign = v[0]! + v[1]! >= 0 ? 1 : -1;
        let s = 0, div = 0;
        v.forEach((y, k) => {
          if (Math.sign(y) === sign) {
            s += y;
            div += w[k]!;
          }
        });
        return x + s / (div || 1);
      });
      expectBf16Close(await at(out, name), want, `ties ${name}`);
    }
  });

  it('slerp: t per tensor from the filter list and the gradient over the slice', async () => {
    const out = await merge('slerp.yaml');
    const slerp = (tt: number, p: Float64Array, r: Float64Array): Float64Array => {
      let pp = 0, rr = 0, pr = 0;
      for (let i = 0; i < p.length; i++) {
        pp += p[i]! ** 2;
        rr += r[i]! ** 2;
        pr += p[i]! * r[i]!;
      }
      const cos = pr / Math.sqrt(pp * rr);
      if (Math.abs(cos) > 0.9995) return p.map((x, i) => (1 - tt) * x + tt * r[i]!);
      const th = Math.acos(cos);
      return p.map((x, i) => (Math.sin((1 - tt) * th) * x + Math.sin(tt * th) * r[i]!) / Math.sin(th));
    };
    // layer 1 of 4: t = 1/3; self_attn gradient [0, 0.5, 0.3, 0.7, 1] → 0.5 − 0.2·(1/3·4 − 1) = 0.4333…; mlp [1, 0.5, 0.7, 0.3, 0] → 0.5667
    const g = (vals: number[], tt: number): number => {
      const s = tt * (vals.length - 1);
      const i = Math.floor(s);
      const j = Math.min(vals.length - 1, i + 1);
      return (1 - (s - i)) * vals[i]! + (s - i) * vals[j]!;
    };
    expectBf16Close(await at(out, Q), slerp(g([0, 0.5, 0.3, 0.7, 1], 1 / 3), await t('models/base', Q), await t('models/ft1', Q)), 'slerp q_proj');
    expectBf16Close(await at(out, DOWN), slerp(g([1, 0.5, 0.7, 0.3, 0], 1 / 3), await t('models/base', DOWN), await t('models/ft1', DOWN)), 'slerp down_proj');
    const norm = 'model.layers.1.input_layernorm.weight';
    expectBf16Close(await at(out, norm), slerp(0.5, await t('models/base', norm), await t('models/ft1', norm)), 'slerp fallback');
  });

  it('model_stock: base + t·mean(δ), t = N·cos/(1+(N−1)·cos)', async () => {
    const out = await merge('model_stock.yaml');
    const [z, a, b] = [await t('models/base', DOWN), await t('models/ft1', DOWN), await t('models/ft2', DOWN)];
    const d1 = a.map((x, i) => Math.fround(x - z[i]!));
    const d2 = b.map((x, i) => Math.fround(x - z[i]!));
    let dd = 0, n1 = 0, n2 = 0;
    for (let i = 0; i < z.length; i++) {
      dd += d1[i]! * d2[i]!;
      n1 += d1[i]! ** 2;
      n2 += d2[i]! ** 2;
    }
    const cos = dd / Math.sqrt(n1 * n2);
    const tt = (2 * cos) / (1 + cos);
    expectBf16Close(await at(out, DOWN), z.map((x, i) => x + tt * (d1[i]! + d2[i]!) / 2), 'model_stock');
  });

  it('passthrough: layers stacked and renumbered, num_hidden_layers rewritten, the filter-scaled o_proj', async () => {
    const out = await merge('passthrough.yaml');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { num_hidden_layers: number };
    expect(config.num_hidden_layers).toBe(6);
    expect(existsSync(join(out, 'tokenizer_config.json'))).toBe(true);
    // output layers 0-2 are ft1's 0-2; output layers 3-5 are ft2's 1-3
    expect(await at(out, 'model.layers.2.mlp.up_proj.weight')).toEqual(await t('models/ft1', 'model.layers.2.mlp.up_proj.weight'));
    expect(await at(out, 'model.layers.3.mlp.up_proj.weight')).toEqual(await t('models/ft2', 'model.layers.1.mlp.up_proj.weight'));
    const o = await t('models/ft2', 'model.layers.3.self_attn.o_proj.weight');
    expectBf16Close(await at(out, 'model.layers.5.self_attn.o_proj.weight'), o.map((x) => 0.9 * x), 'scaled o_proj');
    expect(await at(out, 'lm_head.weight')).toEqual(await t('models/ft2', 'lm_head.weight'));
    expect(await at(out, 'model.embed_tokens.weight')).toEqual(await t('models/ft1', 'model.embed_tokens.weight'));
  });

  it('out_dtype, else dtype, else the base dtype', async () => {
    const f32 = await merge('linear.yaml', { recipe: { ...(parseYaml(readFileSync(join(EXAMPLES, 'linear.yaml'), 'utf8')) as object), out_dtype: 'float32' } as Record<string, unknown> });
    expect(readFileSync(join(f32, 'model.safetensors')).toString('latin1', 8, 400)).toContain('"F32"');
    const noDtype = parseYaml(readFileSync(join(EXAMPLES, 'linear.yaml'), 'utf8')) as Record<string, unknown>;
    delete noDtype['dtype'];
    const plain = await merge('linear.yaml', { recipe: noDtype });
    expect(readFileSync(join(plain, 'model.safetensors')).toString('latin1', 8, 400)).toContain('"BF16"');
  });
});

describe('random methods are deterministic', () => {
  it('dare_ties and della give the same bytes on 0 and 2 threads; another seed changes them', async () => {
    for (const f of ['dare_ties.yaml', 'della.yaml']) {
      const a = await merge(f, { seed: 7 }, 0);
      const b = await merge(f, { seed: 7 }, 2);
      const c = await merge(f, { seed: 8 }, 2);
      expect(sha(b)).toBe(sha(a));
      expect(sha(c)).not.toBe(sha(a));
    }
  });
});

describe('the native loops change no byte', () => {
  // the AVX-512 loops (worker/native) where this CPU has them, against WEIGHTSPACE_NATIVE=0,
  // through the binary: TIES (a dense and a rank-4 fine-tune), DARE-TIES, breadcrumbs-TIES
  it('ties, dare_ties and breadcrumbs_ties give the same bytes with and without them', () => {
    for (const f of ['ties.yaml', 'dare_ties.yaml', 'breadcrumbs_ties.yaml']) {
      const outs = ['1', '0'].map((native) => {
        const out = join(work, 'out', `${basename(f, '.yaml')}-native${native}-${Math.random().toString(36).slice(2, 8)}`);
        const r = cli(['merge', join(EXAMPLES, f), '--out', out, '--threads', '2', '--no-progress'], work, { WEIGHTSPACE_NATIVE: native });
        expect(r.code, r.stderr).toBe(0);
        return out;
      });
      expect(sha(outs[0]!), f).toBe(sha(outs[1]!));
    }
  });
});

describe('bad recipes through the binary: exit 3, the valid names, nothing written', () => {
  const run = (yaml: string): { code: number; stderr: string; out: string } => {
    const file = join(work, `bad-${Math.random().toString(36).slice(2, 8)}.yaml`);
    writeFileSync(file, yaml);
    const out = join(work, `never-${Math.random().toString(36).slice(2, 8)}`);
    const r = cli(['merge', file, '--out', out], work);
    expect(existsSync(out)).toBe(false);
    return { code: r.code, stderr: r.stderr, out };
  };

  it('an unknown method', () => {
    const r = run('merge_method: tie\nbase_model: ./models/base\nmodels:\n  - model: ./models/ft1\n');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("unknown merge method 'tie'");
    for (const m of MERGE_METHOD_NAMES) expect(r.stderr).toContain(m);
  });

  it('an unknown parameter', () => {
    const r = run('merge_method: ties\nbase_model: ./models/base\nmodels:\n  - model: ./models/ft1\n    parameters: {weight: 1, densty: 0.5}\n');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("unknown parameter 'densty'");
    for (const p of ['weight', 'density', 'normalize', 'lambda', 'rescale']) expect(r.stderr).toContain(`'${p}'`);
  });

  it('a Hub model name', () => {
    const r = run('merge_method: linear\nmodels:\n  - model: mistralai/Mistral-7B-v0.1\n    parameters: {weight: 1}\n');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('local path');
  });

  it('a missing required parameter and a della epsilon out of range', () => {
    expect(run('merge_method: ties\nbase_model: ./models/base\nmodels:\n  - model: ./models/ft1\n    parameters: {density: 0.5}\n').code).toBe(3);
    const r = run('merge_method: della\nbase_model: ./models/base\nmodels:\n  - model: ./models/ft1\n    parameters: {weight: 1, density: 0.9, epsilon: 0.2}\n');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('epsilon');
  });

  it('a missing recipe file is exit 3, no recipe is exit 2', () => {
    expect(cli(['merge', join(work, 'nope.yaml'), '--out', join(work, 'x')]).code).toBe(3);
    expect(cli(['merge', '--out', join(work, 'x')]).code).toBe(2);
  });
});

describe("mergekit-yaml's command line, as it is", () => {
  const TOKENIZER = ['special_tokens_map.json', 'tokenizer_config.json'];
  const outDir = (label: string): string => join(work, 'out', `${label}-${Math.random().toString(36).slice(2, 8)}`);
  const ok = (args: readonly string[]): ReturnType<typeof cli> => {
    const r = cli(['merge', ...args, '--no-progress'], work);
    expect(r.code, r.stderr).toBe(0);
    return r;
  };
  /** every tensor's bytes, by name, wherever the shards put them */
  const tensorBytes = async (dir: string): Promise<Map<string, string>> => {
    const ckpt = await openCheckpoint(dir);
    const out = new Map<string, string>();
    for (const [name, t] of ckpt.tensors) {
      out.set(name, createHash('sha256').update(readFileSync(t.file).subarray(t.offset, t.offset + t.nbytes)).digest('hex'));
    }
    return out;
  };

  it('the output directory as the second argument, with the usual flags of a mergekit command: the same model as --out', () => {
    const ties = join(EXAMPLES, 'ties.yaml');
    const a = outDir('ties-out');
    ok([ties, '--out', a]);
    const b = outDir('ties-mergekit');
    const r = ok([ties, b, '--copy-tokenizer', '--allow-crimes', '--lazy-unpickle', '--cuda', '--safe-serialization', '--no-write-model-card']);
    expect(sha(b)).toBe(sha(a));
    for (const f of TOKENIZER) expect(existsSync(join(b, f)), f).toBe(true);
    // no model card unless asked for (weightspace.json records the recipe)
    for (const f of ['README.md', 'mergekit_config.yml']) expect(existsSync(join(b, f)), f).toBe(false);
    // what changes nothing here is named, once each, and nothing else is
    for (const flag of ['--allow-crimes', '--lazy-unpickle', '--cuda']) expect(r.stderr).toContain(`mergekit's ${flag} has no effect`);
    expect(r.stderr.match(/warning/g)).toHaveLength(3);
    // in JSON logs the warning is an event on standard output
    const j = ok([ties, outDir('ties-json'), '--trust-remote-code', '--log-format', 'json']);
    const events = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; message?: string });
    expect(events.find((e) => e.event === 'warning')?.message).toContain("mergekit's --trust-remote-code has no effect");
  });

  it('--no-copy-tokenizer copies the config but not the tokenizer, unless the recipe names a tokenizer source', () => {
    const ties = join(EXAMPLES, 'ties.yaml');
    const plain = outDir('no-tok');
    ok([ties, plain, '--no-copy-tokenizer']);
    for (const f of TOKENIZER) expect(existsSync(join(plain, f)), f).toBe(false);
    for (const f of ['config.json', 'generation_config.json']) expect(existsSync(join(plain, f)), f).toBe(true);
    const withSource = join(work, 'ties-tokenizer-source.yaml');
    writeFileSync(withSource, `${readFileSync(ties, 'utf8')}tokenizer_source: base\n`);
    const sourced = outDir('no-tok-source');
    ok([withSource, sourced, '--no-copy-tokenizer']);
    for (const f of TOKENIZER) expect(existsSync(join(sourced, f)), f).toBe(true);
    // the weights are the same either way
    expect(sha(plain)).toBe(sha(sourced));
  });

  it('--out-shard-size counts parameters per shard, as mergekit does: the same tensors, in shards that keep to it', async () => {
    const linear = join(EXAMPLES, 'linear.yaml');
    const one = outDir('linear-one');
    ok([linear, one]);
    const limit = 300_000;
    const sharded = outDir('linear-sharded');
    ok([linear, sharded, '--out-shard-size', '300K']);
    const files = readdirSync(sharded).filter((f) => f.endsWith('.safetensors')).sort();
    expect(files.length).toBeGreaterThan(2);
    const ckpt = await openCheckpoint(sharded);
    // per shard, its tensors' parameter counts in layer order (the order shards are filled in)
    const perShard = new Map<string, number[]>();
    for (const name of [...ckpt.tensors.keys()].sort(compareNames)) {
      const t = ckpt.tensors.get(name)!;
      perShard.set(basename(t.file), [...(perShard.get(basename(t.file)) ?? []), t.shape.reduce((x, y) => x * y, 1)]);
    }
    const sums = files.map((f) => perShard.get(f)!.reduce((x, y) => x + y, 0));
    // within the limit, unless one tensor alone exceeds it; and closed only when the next tensor would not fit
    files.forEach((f, i) => {
      if (perShard.get(f)!.length > 1) expect(sums[i]!, f).toBeLessThanOrEqual(limit);
      if (i + 1 < files.length) expect(sums[i]! + perShard.get(files[i + 1]!)![0]!, f).toBeGreaterThan(limit);
    });
    expect(await tensorBytes(sharded)).toEqual(await tensorBytes(one));
  });

  it('--write-model-card writes a model card and mergekit_config.yml, naming the models as the recipe does', () => {
    const slerp = join(EXAMPLES, 'slerp.yaml');
    const plain = outDir('slerp');
    ok([slerp, plain]);
    const carded = outDir('slerp-card');
    ok([slerp, carded, '--write-model-card']);
    expect(sha(carded)).toBe(sha(plain));
    const recipe = parseYaml(readFileSync(slerp, 'utf8')) as Record<string, unknown>;
    expect(parseYaml(readFileSync(join(carded, 'mergekit_config.yml'), 'utf8'))).toEqual(recipe);
    const card = readFileSync(join(carded, 'README.md'), 'utf8');
    const front = /^---\n([\s\S]*?)\n---\n/.exec(card);
    expect(front, card).not.toBeNull();
    const meta = parseYaml(front![1]!) as { base_model: string[]; library_name: string; tags: string[] };
    // the base first, then the other models, as written in the recipe (relative paths, not resolved)
    const base = recipe['base_model'] as string;
    expect(meta.base_model[0]).toBe(base);
    expect(meta.base_model.length).toBeGreaterThan(1);
    for (const m of meta.base_model) expect(readFileSync(slerp, 'utf8')).toContain(m);
    expect(meta.library_name).toBe('transformers');
    expect(meta.tags).toContain('merge');
    expect(card).toContain(`# ${basename(carded)}`);
    expect(card).toContain("mergekit's `slerp` method");
    for (const m of meta.base_model.slice(1)) expect(card).toContain(`* \`${m}\``);
    // the card's YAML block is the recipe
    const block = /```yaml\n([\s\S]*?)```/.exec(card);
    expect(parseYaml(block![1]!)).toEqual(recipe);
  });

  it("the card's models: the base first, each once, from models or slices", () => {
    expect(modelsAsWritten({ base_model: 'b', models: [{ model: 'b' }, { model: 'x' }, { model: 'y' }, { model: 'x' }] })).toEqual({ base: 'b', models: ['x', 'y'] });
    expect(modelsAsWritten({ models: [{ model: 'x', parameters: { weight: 1 } }, { model: 'y' }] })).toEqual({ base: undefined, models: ['x', 'y'] });
    expect(modelsAsWritten({ slices: [{ sources: [{ model: 'a' }, { model: 'b' }] }, { sources: [{ model: 'b' }, { model: 'c' }] }] }))
      .toEqual({ base: undefined, models: ['a', 'b', 'c'] });
  });

  it('--random-seed is --seed, and --num-threads --threads', () => {
    const dare = join(EXAMPLES, 'dare_ties.yaml');
    const a = outDir('dare-seed');
    ok([dare, '--out', a, '--seed', '7', '--threads', '2']);
    const b = outDir('dare-random-seed');
    ok([dare, b, '--random-seed', '7', '--num-threads', '1']);
    expect(sha(b)).toBe(sha(a));
  });

  it('what weightspace does not do, and clashing spellings: exit 2 naming the option, nothing written', () => {
    const ties = join(EXAMPLES, 'ties.yaml');
    const cases: [string[], string][] = [
      [['--write-model-card', '--no-write-model-card'], 'not both'],
      [['--no-safe-serialization'], '--no-safe-serialization is not supported'],
      [['--transformers-cache', '/tmp/hf'], '--transformers-cache is not supported'],
      [['--lora-merge-cache', '/tmp/lora'], '--lora-merge-cache is not supported'],
      [['--out-shard-size', '1.5B'], "got '1.5B'"],
      [['--out-shard-size', '0'], "got '0'"],
      [['--out-shard-size', '1B', '--shard-size', '2GB'], 'not both'],
      [['--copy-tokenizer', '--no-copy-tokenizer'], 'not both'],
      [['--random-seed', '7', '--seed', '8'], "--random-seed '7' and --seed '8' disagree"],
      [['--out', join(work, 'elsewhere')], 'and --out'],
      [['extra-argument'], 'at most one output directory'],
    ];
    for (const [extra, message] of cases) {
      const out = outDir('never');
      const r = cli(['merge', ties, out, ...extra, '--no-progress'], work);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.stderr, extra.join(' ')).toContain(message);
      expect(existsSync(out), extra.join(' ')).toBe(false);
      expect(existsSync(join(work, 'elsewhere'))).toBe(false);
    }
  });

  it("reads parameter counts as mergekit's parse_kmb does", () => {
    expect(parseKmb('1B')).toBe(1e9);
    expect(parseKmb('500m')).toBe(5e8);
    expect(parseKmb('250K')).toBe(250_000);
    expect(parseKmb('1000000')).toBe(1e6);
    for (const bad of ['1.5B', '0', '-1', 'B', '1GB', '', '5e9']) expect(() => parseKmb(bad), bad).toThrow(WeightspaceError);
  });

  it('a job spec with both shard bounds is refused (invalid-spec), nothing written', async () => {
    const out = outDir('both-bounds');
    await expect(runEmbedded(specOf(join(EXAMPLES, 'linear.yaml'), out, { shardSize: 1e9, shardParams: 1e6 }), { threads: 1 }))
      .rejects.toMatchObject({ code: 'invalid-spec' });
    expect(existsSync(out)).toBe(false);
  });
});
