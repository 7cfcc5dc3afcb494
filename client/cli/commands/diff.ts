import type { DiffSpec } from '../../../core/job-spec.js';
import { WeightspaceError } from '../../../core/errors.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { outputFields, specFrom } from '../spec-options.js';

export const diffCommand: Command = {
  name: 'diff',
  summary: 'task vector δ = A − B, saved as a checkpoint',
  usage: `diff A B --out DIR

Writes θ_A − θ_B for every floating-point tensor (computed in f32, written in B's dtype unless
--dtype). Tensors left out by --include/--exclude are left out of the output.

${OUTPUT_OPTIONS_HELP}`,
  options: OUTPUT_OPTIONS,
  async run(args, io) {
    const [a, b, ...extra] = args.positionals;
    if (!a || !b || extra.length > 0) throw new WeightspaceError('usage', 'diff takes two checkpoints: weightspace diff A B --out DIR');
    await runSpec(specFrom<DiffSpec>({ op: 'diff', a, b, ...outputFields(args) }), args, io);
    return 0;
  },
};
