/**
 * `weightspace`: the command line. Parses, dispatches to a command, and turns errors into
 * a one-line message and an exit code (0 done, 2 usage, 3 bad input, 4 cluster, 1 internal).
 */
import { parseArgs } from 'node:util';
import { WeightspaceError, q, toWeightspaceError } from '../../core/errors.js';
import { VERSION } from '../../core/version.js';
import type { CliIO, Command } from './command.js';
import { COMMANDS } from './commands/registry.js';

function overview(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `weightspace ${VERSION}: arithmetic on the weights of large language models`,
    '',
    'usage: weightspace COMMAND [options]     (weightspace COMMAND --help for details)',
    '',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'exit codes: 0 done, 2 usage, 3 bad input, 4 cluster, 1 internal',
  ].join('\n');
}

function commandHelp(c: Command): string {
  return `usage: weightspace ${c.usage}`;
}

export async function main(argv: readonly string[], io?: Partial<CliIO>): Promise<number> {
  const json = argv.includes('--log-format=json') || argv.some((a, i) => a === '--log-format' && argv[i + 1] === 'json');
  const cio: CliIO = {
    out: io?.out ?? ((l) => process.stdout.write(l + '\n')),
    err: io?.err ?? ((l) => process.stderr.write(l + '\n')),
    isTTY: io?.isTTY ?? Boolean(process.stderr.isTTY),
    json,
  };
  const [name, ...rest] = argv;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      cio.out(overview());
      return name ? 0 : 2;
    }
    if (name === '--version' || name === '-V') {
      cio.out(VERSION);
      return 0;
    }
    const cmd = COMMANDS.find((c) => c.name === name);
    if (!cmd) {
      throw new WeightspaceError('usage', `unknown command ${q(name)}: expected one of ${COMMANDS.map((c) => c.name).join(', ')}`);
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      cio.out(commandHelp(cmd));
      return 0;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: [...rest], options: cmd.options, allowPositionals: true, strict: true });
    } catch (err) {
      throw new WeightspaceError('usage', `${name}: ${(err as Error).message.replace(/^\w/, (c) => c.toLowerCase())}`);
    }
    return await cmd.run({ values: parsed.values as Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: parsed.positionals }, cio);
  } catch (err) {
    const e = toWeightspaceError(err);
    if (cio.json) cio.err(JSON.stringify({ level: 'error', code: e.code, message: e.message }));
    else {
      cio.err(`weightspace: ${e.kind === 'internal' ? '' : 'error: '}${e.message}`);
      if (e.code === 'usage') cio.err(`(weightspace ${name && COMMANDS.some((c) => c.name === name) ? `${name} ` : ''}--help for usage)`);
      if (e.kind === 'internal' && e.cause instanceof Error && e.cause.stack) cio.err(e.cause.stack);
    }
    return e.exitCode;
  }
}
