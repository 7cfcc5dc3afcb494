import type { EvalSpec } from '../../../core/job-spec.js';
import { WeightspaceError } from '../../../core/errors.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { namedPaths, outputFields, specFrom, str, strs } from '../spec-options.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'task arithmetic: any affine expression of models',
  usage: `eval EXPR --model NAME=CKPT ... --out DIR [--base NAME]

EXPR uses numbers, model names, + - * /, unary minus and parentheses, e.g.
  'base + 0.8*(math - base) - 0.5*(toxic - base)'
Models may be scaled by numbers, not multiplied by each other. The expression is reduced to one
coefficient per model and computed in one pass in f32. --base (default: the model named 'base',
else the first) gives config/tokenizer files, integer tensors and the default dtype.

${OUTPUT_OPTIONS_HELP}`,
  options: { ...OUTPUT_OPTIONS, model: { type: 'string', multiple: true, short: 'm' }, base: { type: 'string' } },
  async run(args, io) {
    const [expr, ...extra] = args.positionals;
    if (!expr || extra.length > 0) throw new WeightspaceError('usage', "eval takes one expression (quote it): weightspace eval 'base + 0.5*(a - base)' --model base=DIR ...");
    const models = namedPaths(strs(args, 'model'), 'model');
    if (Object.keys(models).length === 0) throw new WeightspaceError('usage', 'eval needs at least one --model NAME=CKPT');
    await runSpec(specFrom<EvalSpec>({ op: 'eval', expr, models, base: str(args, 'base'), ...outputFields(args) }), args, io);
    return 0;
  },
};
