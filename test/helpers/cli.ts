/** Runs the real `weightspace` binary (built into dist/) as a separate process. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/weightspace.js', import.meta.url));

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** env: variables set for this run (WEIGHTSPACE_NATIVE=0, say), over the test process's own. */
export function cli(args: readonly string[], cwd?: string, env: Readonly<Record<string, string>> = {}): CliRun {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
