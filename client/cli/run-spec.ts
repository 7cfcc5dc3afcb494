/**
 * Runs a job spec for the CLI: embedded by default, on a coordinator with --cluster;
 * a progress bar on a TTY; a summary (or JSON) at the end.
 */
import type { SingleBar } from 'cli-progress';
import type { JobSpec } from '../../core/job-spec.js';
import { runEmbedded } from '../embedded-runner.js';
import type { JobEvent, JobResult } from '../job-events.js';
import type { CliIO, ParsedArgs } from './command.js';
import { int, str } from './spec-options.js';

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

export async function runSpec(spec: JobSpec, args: ParsedArgs, io: CliIO, options: { quiet?: boolean } = {}): Promise<JobResult> {
  const threads = int(args, 'threads');
  const cluster = str(args, 'cluster');
  let bar: SingleBar | undefined;
  const showBar = io.isTTY && !io.json && args.values['no-progress'] !== true && !options.quiet;
  // loaded only for a bar (16 ms of start-up otherwise: scripts and benches run without one)
  const cliProgress = showBar ? (await import('cli-progress')).default : undefined;
  const onEvent = (e: JobEvent): void => {
    if (e.type === 'planned') {
      if (io.json) io.out(JSON.stringify({ event: 'planned', ...e }));
      if (cliProgress) {
        bar = new cliProgress.SingleBar({
          format: `${e.op} [{bar}] {percentage}% | {value}/{total} MB written | {tensorsDone}/{tensors} tensors`,
          stream: process.stderr,
          hideCursor: true,
        }, cliProgress.Presets.shades_classic);
        bar.start(Math.max(1, Math.round(e.outputBytes / 1e6)), 0, { tensorsDone: 0, tensors: e.tensors });
      }
    } else if (e.type === 'progress') {
      bar?.update(Math.round(e.bytesWritten / 1e6), { tensorsDone: e.tensorsDone, tensors: e.tensors });
    } else if (e.type === 'warning') {
      printWarning(io, e.message);
    }
  };
  try {
    const result = cluster
      ? await (await import('../cluster-runner.js')).runOnCluster(cluster, spec, { onEvent, localCopy: args.values['no-local-copy'] !== true, link: args.values['no-link'] !== true })
      : await runEmbedded(spec, { ...(threads !== undefined ? { threads } : {}), onEvent });
    bar?.stop();
    if (io.json) io.out(JSON.stringify({ event: 'done', ...result }));
    else if (!options.quiet) {
      for (const o of result.outputs) {
        const size = o.shards.reduce((a, s) => a + s.size, 0);
        io.out(`wrote ${o.dir} (${o.label}): ${o.shards.length} shard${o.shards.length === 1 ? '' : 's'}, ${formatBytes(size)}`);
      }
      io.out(`${result.op} done in ${result.seconds.toFixed(2)} s (read ${formatBytes(result.bytesRead)}, wrote ${formatBytes(result.bytesWritten)})`);
    }
    return result;
  } catch (err) {
    bar?.stop();
    throw err;
  }
}

/** A warning as the CLI shows one: a line on standard error, or a JSON event with --log-format json. */
export function printWarning(io: CliIO, message: string): void {
  if (io.json) io.out(JSON.stringify({ event: 'warning', message }));
  else io.err(`weightspace: warning: ${message}`);
}
