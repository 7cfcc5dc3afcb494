/**
 * Cluster mode for the CLI: submits a spec to a coordinator, forwards its events (the
 * same planned / progress / warning events as embedded mode, so the same progress bar),
 * and downloads the output to the spec's `out` on this machine, exactly where and as
 * embedded mode would write it (copied from the coordinator's data dir when it is visible
 * here, else fetched over gRPC). Ctrl-C cancels the job on the cluster.
 */
import type { JobSpec } from '../core/job-spec.js';
import type { JobEvent, JobResult } from './job-events.js';
import { checkOutputDestination } from './output-download.js';
import { WeightspaceClient } from './weightspace-client.js';

export async function runOnCluster(
  address: string,
  spec: JobSpec,
  options: {
    onEvent?: (e: JobEvent) => void;
    /** false: fetch the output over gRPC even where a local copy is possible */
    localCopy?: boolean;
    /** false: copy rather than hard-link a local copy on the same filesystem */
    link?: boolean;
  },
): Promise<JobResult> {
  const started = performance.now();
  const { out, force } = spec as { out?: string; force?: boolean };
  if (out !== undefined) checkOutputDestination(out, force ?? false);
  const client = await WeightspaceClient.connect(address);
  const onSigint = (): void => {
    void job?.cancel().catch(() => undefined);
  };
  let job: Awaited<ReturnType<WeightspaceClient['submit']>> | undefined;
  try {
    job = await client.submit(spec);
    process.once('SIGINT', onSigint);
    // the download starts now: finished tasks' bytes come while the job runs
    const downloading = out !== undefined ? job.download(out, { force: force ?? false, localCopy: options.localCopy ?? true, link: options.link ?? true }) : undefined;
    downloading?.catch(() => undefined);
    for await (const e of job.events) {
      if (e.type === 'planned' || e.type === 'progress' || e.type === 'warning') options.onEvent?.(e);
    }
    const result = await job.result();
    const downloaded = downloading ? await downloading : undefined;
    return {
      op: result.op,
      outputs: downloaded?.outputs ?? [],
      ...(result.report !== undefined ? { report: result.report } : {}),
      seconds: (performance.now() - started) / 1000,
      bytesRead: result.bytesRead,
      bytesWritten: result.bytesWritten,
    };
  } finally {
    process.removeListener('SIGINT', onSigint);
    client.close();
  }
}
