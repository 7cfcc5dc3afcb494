import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { WeightspaceError, q } from '../../../core/errors.js';
import { parseMergekitRecipe } from '../../../core/mergekit-recipe.js';
import type { MergeSpec } from '../../../core/specs/merge-spec.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type CliIO, type Command, type OptionsConfig, type ParsedArgs } from '../command.js';
import { printWarning, runSpec } from '../run-spec.js';
import { int, outputFields, specFrom, str } from '../spec-options.js';

/**
 * mergekit-yaml's options (mergekit/options.py) that change nothing here, with why: accepted, so
 * that a mergekit command line runs as it is, and each one named in a warning. Their `--no-`
 * forms are mergekit's defaults and are accepted without a word.
 */
const NO_EFFECT: Readonly<Record<string, string>> = {
  'cuda': 'weightspace computes on CPU threads; the output is the same',
  'low-cpu-memory': 'memory is bounded by blocks whatever the models weigh',
  'lazy-unpickle': 'weightspace reads safetensors only, block by block',
  'allow-crimes': 'weightspace does not compare architectures: it checks that every tensor matches by name and shape, and stops at one that does not',
  'clone-tensors': 'no two output tensors share memory',
  'trust-remote-code': 'no model code is ever run',
};

/** mergekit-yaml's options that ask for what weightspace does not do: an error each (the caches take a directory). */
const UNSUPPORTED: Readonly<Record<string, { readonly type: 'boolean' | 'string'; readonly why: string }>> = {
  'no-safe-serialization': { type: 'boolean', why: 'weightspace writes safetensors only' },
  'transformers-cache': { type: 'string', why: 'models are local paths or http(s) URLs: nothing is downloaded or cached' },
  'lora-merge-cache': { type: 'string', why: "models are local paths or http(s) URLs: a 'model+lora' reference is not supported" },
};

const MERGEKIT_OPTIONS: OptionsConfig = {
  'copy-tokenizer': { type: 'boolean' },
  'no-copy-tokenizer': { type: 'boolean' },
  'out-shard-size': { type: 'string' },
  'random-seed': { type: 'string' },
  'num-threads': { type: 'string' },
  'safe-serialization': { type: 'boolean' },
  'write-model-card': { type: 'boolean' },
  'no-write-model-card': { type: 'boolean' },
  ...Object.fromEntries(Object.keys(NO_EFFECT).flatMap((k) => [[k, { type: 'boolean' as const }], [`no-${k}`, { type: 'boolean' as const }]])),
  ...Object.fromEntries(Object.entries(UNSUPPORTED).map(([k, { type }]) => [k, { type }])),
};

export const mergeCommand: Command = {
  name: 'merge',
  summary: "merge models with a mergekit YAML recipe, unchanged (every mergekit method)",
  usage: `merge RECIPE.yaml --out DIR [--seed S]
merge RECIPE.yaml OUT_DIR [mergekit-yaml's options]

RECIPE.yaml is mergekit's configuration format: merge_method, base_model, models or slices,
parameters (scalars, gradients, {filter, value} lists), dtype, out_dtype, tokenizer_source.
Methods: linear, task_arithmetic, ties, dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties,
della, della_linear, slerp, nuslerp, multislerp, karcher, model_stock, sce, nearswap, ram,
passthrough. Models are local paths (relative to the working directory) or http(s) URLs.
Arithmetic runs in f32; the output dtype is --dtype, else out_dtype, else dtype, else the base's.

  --seed S             seed of the random masks of DARE and DELLA (default 0): the same seed
                       gives the same bytes on any machine and any number of workers

mergekit-yaml's command line runs as it is (\`mergekit-yaml\` → \`weightspace merge\`):
  OUT_DIR              the output directory, as --out
  --copy-tokenizer     copy the base's tokenizer files (the default, as in mergekit)
  --no-copy-tokenizer  copy the base's config but not its tokenizer files, unless the recipe
                       names a tokenizer source
  --write-model-card   also write a model card (README.md: the models, the method, the
                       recipe) and the recipe as mergekit_config.yml, as mergekit does
  --out-shard-size N   at most N parameters per shard (e.g. 1B, 500M: thousands, millions,
                       billions), instead of --shard-size's bytes
  --random-seed S      as --seed
  --num-threads N      as --threads
  --cuda, --low-cpu-memory, --lazy-unpickle, --allow-crimes, --clone-tensors,
  --trust-remote-code  accepted, with a warning: they change nothing here
  --no-safe-serialization, --transformers-cache, --lora-merge-cache
                       an error: weightspace does not do what they ask

${OUTPUT_OPTIONS_HELP}`,
  options: { ...OUTPUT_OPTIONS, seed: { type: 'string' }, ...MERGEKIT_OPTIONS },
  async run(given, io) {
    const { recipe: path, args } = mergekitCommandLine(given, io);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new WeightspaceError('not-found', `recipe ${q(path)}: no such file`);
    }
    // validate the whole recipe (methods, parameters, models) before anything is planned
    parseMergekitRecipe(text, { source: path });
    const recipe = parseYaml(text) as Record<string, unknown>;
    const seed = int(args, 'seed');
    if (seed !== undefined && seed < 0) throw new WeightspaceError('usage', `--seed must be a whole number ≥ 0, got ${seed}`);
    const shardParams = str(args, 'out-shard-size');
    if (shardParams !== undefined && str(args, 'shard-size') !== undefined) {
      throw new WeightspaceError('usage', 'give --shard-size (bytes) or --out-shard-size (parameters), not both');
    }
    const spec = specFrom<MergeSpec>({
      op: 'merge', recipe, recipePath: path, cwd: process.cwd(), seed, ...outputFields(args),
      ...(args.values['no-copy-tokenizer'] === true ? { copyTokenizer: false } : {}),
      ...(args.values['write-model-card'] === true ? { modelCard: true } : {}),
      ...(shardParams !== undefined ? { shardParams: parseKmb(shardParams) } : {}),
    });
    await runSpec(spec, args, io);
    return 0;
  },
};

/**
 * A mergekit-yaml command line as weightspace's own: the output directory given as the second
 * positional becomes --out, --random-seed --seed and --num-threads --threads (each clashing with
 * the other spelling unless both say the same); options that change nothing here are named in a
 * warning, options asking for what weightspace does not do are an error.
 */
export function mergekitCommandLine(args: ParsedArgs, io: CliIO): { recipe: string; args: ParsedArgs } {
  const [path, out, ...extra] = args.positionals;
  if (!path || extra.length > 0) {
    throw new WeightspaceError('usage', 'merge takes one recipe file and at most one output directory: weightspace merge RECIPE.yaml --out DIR (or RECIPE.yaml DIR, as mergekit-yaml)');
  }
  for (const [name, { why }] of Object.entries(UNSUPPORTED)) {
    if (args.values[name] !== undefined) throw new WeightspaceError('usage', `--${name} is not supported: ${why}`);
  }
  for (const flag of ['copy-tokenizer', 'write-model-card']) {
    if (args.values[flag] === true && args.values[`no-${flag}`] === true) throw new WeightspaceError('usage', `give --${flag} or --no-${flag}, not both`);
  }
  const values = { ...args.values };
  const alias = (from: string, to: string, given: string | undefined): void => {
    if (given === undefined) return;
    const other = values[to];
    if (other !== undefined && other !== given) throw new WeightspaceError('usage', `${from} ${q(given)} and --${to} ${q(String(other))} disagree: give one`);
    values[to] = given;
  };
  alias('the output directory', 'out', out);
  alias('--random-seed', 'seed', str(args, 'random-seed'));
  alias('--num-threads', 'threads', str(args, 'num-threads'));
  for (const [name, why] of Object.entries(NO_EFFECT)) if (values[name] === true) printWarning(io, `mergekit's --${name} has no effect: ${why}`);
  return { recipe: path, args: { values, positionals: [path] } };
}

/**
 * mergekit's parameter counts (`--out-shard-size`): a whole number, or one followed by K, M or B
 * (thousands, millions, billions; any case), as mergekit's parse_kmb reads them.
 */
export function parseKmb(text: string): number {
  const m = /^(\d+)([kmb])?$/i.exec(text.trim());
  const n = m ? Number(m[1]) * { '': 1, k: 1e3, m: 1e6, b: 1e9 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'b'] : NaN;
  if (!(n > 0) || !Number.isSafeInteger(n)) {
    throw new WeightspaceError('usage', `--out-shard-size expects a parameter count such as 1B, 500M, 250K or 1000000, got ${q(text)}`);
  }
  return n;
}
