/**
 * Setting up and comparing runs for the cluster tests: the build must exist (tests spawn
 * dist/ through bin/weightspace.js), embedded reference runs, and cluster runs downloaded
 * next to them under the same `out` (weightspace.json records the spec, so both runs
 * must use the same spec, `out` included).
 */
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEmbedded } from '../../../client/embedded-runner.js';
import type { JobResult } from '../../../client/job-events.js';
import type { DownloadOptions } from '../../../client/output-download.js';
import type { WeightspaceClient } from '../../../client/weightspace-client.js';
import type { JobSpec } from '../../../core/job-spec.js';
import { JobWatch } from './job-watch.js';

export function requireBuild(): void {
  if (!existsSync(new URL('../../../dist/client/cli/main.js', import.meta.url))) {
    throw new Error("dist/ is missing: run 'npm run build' first (npm test does)");
  }
}

export function workDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `weightspace-${name}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

function outOf(spec: JobSpec): string | undefined {
  return (spec as { out?: string }).out;
}

/** Runs embedded and moves the output (if the op writes one) to `${out}.embedded`. */
export async function runEmbeddedAside(spec: JobSpec): Promise<{ dir: string | undefined; result: JobResult }> {
  const out = outOf(spec);
  const result = await runEmbedded(spec, { threads: 1 });
  if (out === undefined || result.outputs.length === 0) return { dir: undefined, result };
  renameSync(out, `${out}.embedded`);
  return { dir: `${out}.embedded`, result };
}

/** Submits to the cluster, downloads the output (if any) to `out`, moves it to `${out}.${tag}`. */
export async function runClusterAside(
  client: WeightspaceClient,
  spec: JobSpec,
  tag: string,
  download: DownloadOptions = {},
): Promise<{ dir: string | undefined; result: { report?: unknown }; watch: JobWatch; jobId: string }> {
  const out = outOf(spec);
  const handle = await client.submit(spec);
  const watch = new JobWatch(handle);
  const done = await handle.result();
  if (out === undefined || done.outputs.length === 0) {
    await watch.ended;
    return { dir: undefined, result: done, watch, jobId: handle.id };
  }
  const result = await handle.download(out, download);
  await watch.ended;
  renameSync(out, `${out}.${tag}`);
  return { dir: `${out}.${tag}`, result, watch, jobId: handle.id };
}
