import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { WeightspaceError, q } from '../../../core/errors.js';
import { parseMergekitRecipe } from '../../../core/mergekit-recipe.js';
import type { MergeSpec } from '../../../core/specs/merge-spec.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { int, outputFields, specFrom } from '../spec-options.js';

export const mergeCommand: Command = {
  name: 'merge',
  summary: "merge models with a mergekit YAML recipe, unchanged (every mergekit method)",
  usage: `merge RECIPE.yaml --out DIR [--seed S]

RECIPE.yaml is mergekit's configuration format: merge_method, base_model, models or slices,
parameters (scalars, gradients, {filter, value} lists), dtype, out_dtype, tokenizer_source.
Methods: linear, task_arithmetic, ties, dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties,
della, della_linear, slerp, nuslerp, multislerp, karcher, model_stock, sce, nearswap, ram,
passthrough. Models are local paths (relative to the working directory) or http(s) URLs.
Arithmetic runs in f32; the output dtype is --dtype, else out_dtype, else dtype, else the base's.

  --seed S             seed of the random masks of DARE and DELLA (default 0): the same seed
                       gives the same bytes on any machine and any number of workers

${OUTPUT_OPTIONS_HELP}`,
  options: { ...OUTPUT_OPTIONS, seed: { type: 'string' } },
  async run(args, io) {
    const [path, ...extra] = args.positionals;
    if (!path || extra.length > 0) throw new WeightspaceError('usage', 'merge takes one recipe file: weightspace merge RECIPE.yaml --out DIR');
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
    const spec = specFrom<MergeSpec>({ op: 'merge', recipe, recipePath: path, cwd: process.cwd(), seed, ...outputFields(args) });
    await runSpec(spec, args, io);
    return 0;
  },
};
