/**
 * Every operation the coordinator can plan, by `op`. Filled explicitly; a spec's op that
 * is not here cannot pass parseJobSpec.
 */
import type { JobOp, JobSpec } from '../../core/job-spec.js';
import type { Plan } from '../../core/plan.js';
import { diffOp } from './diff-op.js';
import { evalOp } from './eval-op.js';
import { mergeOp } from './merge-op.js';
import { analyzeOp } from './analyze-op.js';
import { loraApplyOp } from './lora-apply-op.js';
import { loraExtractOp } from './lora-extract-op.js';
import { monitorOp } from './monitor-op.js';
import { patchOp } from './patch-op.js';
import { projectOp } from './project-op.js';
import type { OpDef } from './op-def.js';
import { steerOp } from './steer-op.js';
import { synthOp } from './synth-op.js';

type OpsByName = { [K in JobOp]: OpDef<Extract<JobSpec, { op: K }>> };

export const OPS: OpsByName = {
  diff: diffOp,
  eval: evalOp,
  merge: mergeOp,
  monitor: monitorOp,
  project: projectOp,
  patch: patchOp,
  analyze: analyzeOp,
  'lora-extract': loraExtractOp,
  'lora-apply': loraApplyOp,
  steer: steerOp,
  synth: synthOp,
};

export function opFor<S extends JobSpec>(spec: S): OpDef<S> {
  return OPS[spec.op] as unknown as OpDef<S>;
}

/** Plans any job spec with its operation's planner. */
export async function planJob(spec: JobSpec): Promise<Plan> {
  return opFor(spec).plan(spec);
}
