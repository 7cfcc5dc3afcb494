/**
 * Job specs: what every command, the SDK and `weightspace run JOB.yaml` submit. One
 * schema per operation (core/specs/), joined here into one union keyed by `op`.
 * Validated at the edge; planners receive typed, defaulted specs.
 */
import { z } from 'zod';
import { WeightspaceError, q } from './errors.js';
import { commonOptions, outputOptions } from './specs/common.js';
import { mergeSpec } from './specs/merge-spec.js';
import { analyzeSpec, loraApplySpec, loraExtractSpec, monitorSpec, patchSpec, projectSpec } from './specs/research.js';

export { commonOptions, outputOptions };

export const diffSpec = z.object({
  op: z.literal('diff'),
  a: z.string().min(1),
  b: z.string().min(1),
  ...outputOptions,
}).strict();

export const evalSpec = z.object({
  op: z.literal('eval'),
  expr: z.string().min(1),
  /** model name → checkpoint location */
  models: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string().min(1)),
  /** which model gives non-weight files, integer tensors and the default dtype (default: 'base' if named, else the first) */
  base: z.string().optional(),
  ...outputOptions,
}).strict();

export const steerSpec = z.object({
  op: z.literal('steer'),
  base: z.string().min(1),
  positive: z.string().min(1),
  negative: z.string().min(1),
  /** θ_T in θ_T + α(θ₊ − θ₋); default: the base */
  target: z.string().optional(),
  alpha: z.array(z.number()).min(1),
  ...outputOptions,
}).strict();

export const synthSpec = z.object({
  op: z.literal('synth'),
  /** generate from scratch with these dimensions, or perturb `like` */
  like: z.string().optional(),
  layers: z.number().int().min(0).default(4),
  hidden: z.number().int().min(1).default(256),
  intermediate: z.number().int().min(1).default(688),
  vocab: z.number().int().min(1).default(1024),
  heads: z.number().int().min(1).optional(),
  kvHeads: z.number().int().min(1).optional(),
  tieEmbeddings: z.boolean().default(false),
  deltaScale: z.number().min(0).default(0.01),
  deltaRank: z.number().int().min(1).optional(),
  ...outputOptions,
  seed: z.number().int().min(0).default(0),
}).strict();

export const JOB_SPECS = [diffSpec, evalSpec, steerSpec, synthSpec, monitorSpec, projectSpec, patchSpec, analyzeSpec, loraExtractSpec, loraApplySpec, mergeSpec] as const;

export const jobSpec = z.discriminatedUnion('op', JOB_SPECS);

export type DiffSpec = z.infer<typeof diffSpec>;
export type EvalSpec = z.infer<typeof evalSpec>;
export type SteerSpec = z.infer<typeof steerSpec>;
export type SynthSpec = z.infer<typeof synthSpec>;
export type { AnalyzeSpec, LoraApplySpec, LoraExtractSpec, MonitorSpec, PatchSpec, ProjectSpec } from './specs/research.js';
export type { MergeSpec } from './specs/merge-spec.js';
export type JobSpec = z.infer<typeof jobSpec>;
export type JobOp = JobSpec['op'];

/** Validates a spec from a file, the SDK or the network; a bad one is a clear `invalid-spec`. */
export function parseJobSpec(value: unknown, source = 'job spec'): JobSpec {
  const op = (value as { op?: unknown } | null)?.op;
  const known = JOB_SPECS.map((s) => s.shape.op.value);
  if (typeof op !== 'string' || !(known as string[]).includes(op)) {
    throw new WeightspaceError('invalid-spec', `${source}: unknown op ${q(String(op))}: expected one of ${known.join(', ')}`);
  }
  const r = jobSpec.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.join('.');
    throw new WeightspaceError('invalid-spec', `${source}: ${path ? `${q(path)}: ` : ''}${issue.message.toLowerCase()}`);
  }
  return r.data;
}
