/**
 * The shape of a CLI command, and the options every job command shares. Each command
 * builds a job spec and hands it to `runSpec`: embedded by default, on a cluster with
 * --cluster. Every command is a job spec underneath.
 */
import type { ParseArgsConfig } from 'node:util';

export type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

export interface CliIO {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly isTTY: boolean;
  readonly json: boolean;
}

export interface ParsedArgs {
  readonly values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  readonly positionals: string[];
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** usage lines after `weightspace ` */
  readonly usage: string;
  readonly options: OptionsConfig;
  /** allow subcommand-style positionals (lora extract|apply) */
  readonly positionals?: boolean;
  run(args: ParsedArgs, io: CliIO): Promise<number>;
}

/** Options of every command that runs a job. */
export const JOB_OPTIONS: OptionsConfig = {
  threads: { type: 'string' },
  cluster: { type: 'string' },
  'no-local-copy': { type: 'boolean' },
  'no-link': { type: 'boolean' },
  'log-format': { type: 'string' },
  'no-progress': { type: 'boolean' },
};

/** Options of every command that writes a checkpoint. */
export const OUTPUT_OPTIONS: OptionsConfig = {
  ...JOB_OPTIONS,
  out: { type: 'string', short: 'o' },
  dtype: { type: 'string' },
  'shard-size': { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  force: { type: 'boolean' },
};

export const JOB_OPTIONS_HELP = `common options:
  --threads N          kernel threads (default: all cores)
  --cluster HOST:PORT  submit to a coordinator instead of running embedded
  --no-local-copy      with --cluster: fetch the output over gRPC even when the
                       coordinator's data dir is visible here (same host, shared volume)
  --no-link            with --cluster: copy a local output instead of hard-linking it
                       (links are read-only: they are the coordinator's own files)
  --log-format json    machine-readable output
  --no-progress        no progress bar`;

export const OUTPUT_OPTIONS_HELP = `${JOB_OPTIONS_HELP}
  --out DIR            output checkpoint directory (written under a temporary name, renamed when complete)
  --dtype bf16|f16|f32 output dtype of floating-point tensors (default: the base's)
  --shard-size SIZE    shard the output above SIZE (default 5GB; e.g. 500MB, 2GiB)
  --include GLOB       operate only on matching tensors (repeatable; * matches dots too; /re/ for a regex)
  --exclude GLOB       leave matching tensors out of the operation (repeatable)
  --force              replace an existing output directory`;
