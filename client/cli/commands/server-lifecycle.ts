/**
 * What the long-running commands (coordinator, worker) share: a pino logger for server
 * logs, and waiting for SIGTERM / SIGINT (or, under `cluster up`, the parent's end of
 * stdin closing) to stop gracefully. A second signal exits at once.
 */
import type { Logger } from 'pino';
import { WeightspaceError, q } from '../../../core/errors.js';
import type { ParsedArgs } from '../command.js';
import { str } from '../spec-options.js';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/** pino is loaded here, by the server commands only (25 ms of every other command's start-up otherwise). */
export async function serverLogger(args: ParsedArgs, name: string): Promise<Logger> {
  const level = str(args, 'log-level') ?? process.env['WEIGHTSPACE_LOG_LEVEL'] ?? 'info';
  if (!LEVELS.includes(level)) throw new WeightspaceError('usage', `--log-level must be one of ${LEVELS.join(', ')}, got ${q(level)}`);
  const { pino } = await import('pino');
  return pino({ name, level, base: { pid: process.pid } });
}

/** Resolves with the reason once the process is asked to stop. */
export function untilStopRequested(lifeline: boolean): Promise<string> {
  return new Promise((resolve) => {
    let asked = false;
    const ask = (why: string): void => {
      if (asked) return;
      asked = true;
      resolve(why);
    };
    const signal = (name: string): void => {
      // a second signal while stopping: stop now
      if (asked) process.exit(130);
      ask(name);
    };
    process.on('SIGTERM', () => signal('SIGTERM'));
    process.on('SIGINT', () => signal('SIGINT'));
    if (lifeline) {
      process.stdin.on('end', () => ask('parent gone'));
      process.stdin.on('close', () => ask('parent gone'));
      process.stdin.resume();
    }
  });
}

/** After a graceful stop: let go of stdin, and make sure nothing left over keeps the process up. */
export function releaseProcess(): void {
  process.stdin.destroy();
  setTimeout(() => process.exit(process.exitCode ?? 0), 3_000).unref();
}

export const SERVER_OPTIONS_HELP = `  --log-level LEVEL    fatal, error, warn, info (default), debug, trace; logs are JSON lines (pino) on stdout
  --parent-lifeline    stop when stdin closes (used by 'cluster up' so children never outlive it)`;
