import type { SteerSpec } from '../../../core/job-spec.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { numberList, outputFields, required, specFrom, str } from '../spec-options.js';

export const steerCommand: Command = {
  name: 'steer',
  summary: 'contrastive weight steering θ_T + α(θ₊ − θ₋), several α in one pass',
  usage: `steer --base B --positive P --negative N --alpha 1[,2,...] --out DIR [--target T]

θ_T defaults to the base. With one α the model is written to DIR; with several, to DIR/alpha-<α>,
all in one pass that reads each input once (Fierro & Roger 2025).

${OUTPUT_OPTIONS_HELP}`,
  options: {
    ...OUTPUT_OPTIONS,
    base: { type: 'string' },
    positive: { type: 'string' },
    negative: { type: 'string' },
    target: { type: 'string' },
    alpha: { type: 'string' },
  },
  async run(args, io) {
    const spec = specFrom<SteerSpec>({
      op: 'steer',
      base: required(args, 'base'),
      positive: required(args, 'positive'),
      negative: required(args, 'negative'),
      target: str(args, 'target'),
      alpha: numberList(args, 'alpha') ?? [1],
      ...outputFields(args),
    });
    await runSpec(spec, args, io);
    return 0;
  },
};
