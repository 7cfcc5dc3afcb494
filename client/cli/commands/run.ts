import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { WeightspaceError, q } from '../../../core/errors.js';
import { parseJobSpec } from '../../../core/job-spec.js';
import { JOB_OPTIONS, JOB_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';

/** Reads a YAML or JSON job spec file. */
export function readSpecFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new WeightspaceError('not-found', `job spec ${q(path)}: no such file`);
  }
  try {
    return parseYaml(text, { uniqueKeys: true }) as unknown;
  } catch (err) {
    throw new WeightspaceError('invalid-spec', `job spec ${q(path)}: not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run any job spec (YAML or JSON): what every command builds underneath',
  usage: `run JOB.yaml

A job spec names its op and the op's fields, e.g.
  op: steer
  base: ./models/base
  positive: ./models/pos
  negative: ./models/neg
  alpha: [1, 2]
  out: ./steered

${JOB_OPTIONS_HELP}`,
  options: JOB_OPTIONS,
  async run(args, io) {
    const [file, ...extra] = args.positionals;
    if (!file || extra.length > 0) throw new WeightspaceError('usage', 'run takes one job spec file: weightspace run JOB.yaml');
    const spec = parseJobSpec(readSpecFile(file), `job spec ${q(file)}`);
    await runSpec(spec, args, io);
    return 0;
  },
};
