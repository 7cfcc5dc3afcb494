/**
 * Cluster mode for the CLI: submits a spec to a coordinator and streams its output back.
 */
import { WeightspaceError } from '../core/errors.js';
import type { JobSpec } from '../core/job-spec.js';
import type { JobEvent, JobResult } from './job-events.js';

export async function runOnCluster(address: string, _spec: JobSpec, _options: { onEvent?: (e: JobEvent) => void }): Promise<JobResult> {
  throw new WeightspaceError('cluster-unavailable', `cannot submit to ${address}: cluster mode is not part of this build yet`);
}
