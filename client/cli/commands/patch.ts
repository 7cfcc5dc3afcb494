import type { PatchSpec } from '../../../core/job-spec.js';
import { WeightspaceError } from '../../../core/errors.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { int, outputFields, required, specFrom, str, strs } from '../spec-options.js';

export const patchCommand: Command = {
  name: 'patch',
  summary: 'copy selected modules from a donor into a base (+ size-matched random controls)',
  usage: `patch --base B --donor D --modules PATTERN ... --out DIR [--layers A-B] [--random-control K --seed S]

PATTERN is a tensor-name glob ('*.mlp.*' — * matches dots too) or a /regex/; repeatable. --layers
keeps only matches in those layers. With --random-control K, DIR/patched holds the patch and
DIR/control-1..K patch randomly chosen tensors of the same shapes (so the same parameter count)
that the real patch leaves alone. Each output's weightspace.json lists the tensors taken from
the donor. A pattern that matches nothing is an error (exit 3).

${OUTPUT_OPTIONS_HELP}
  --seed S             seed of the random controls (default 0)`,
  options: {
    ...OUTPUT_OPTIONS,
    base: { type: 'string' },
    donor: { type: 'string' },
    modules: { type: 'string', multiple: true },
    layers: { type: 'string' },
    'random-control': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(args, io) {
    const modules = strs(args, 'modules');
    if (!modules || modules.length === 0) throw new WeightspaceError('usage', 'patch needs at least one --modules PATTERN');
    const spec = specFrom<PatchSpec>({
      op: 'patch',
      base: required(args, 'base'),
      donor: required(args, 'donor'),
      modules,
      layers: str(args, 'layers'),
      randomControl: int(args, 'random-control'),
      seed: int(args, 'seed'),
      ...outputFields(args),
    });
    await runSpec(spec, args, io);
    return 0;
  },
};
