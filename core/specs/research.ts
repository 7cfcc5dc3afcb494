/**
 * Job specs of the research operations (issue 4): monitor, project, patch, analyze,
 * lora-extract, lora-apply. Joined into the job-spec union in core/job-spec.ts.
 */
import { z } from 'zod';
import { commonOptions, outputOptions } from './common.js';

const modelName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/);
/** 'A-B' (inclusive) or a single layer 'A' */
const layerRange = z.string().regex(/^\d+(-\d+)?$/, "expected a layer range like '4-12' or '7'");

export const monitorSpec = z.object({
  op: z.literal('monitor'),
  before: z.string().min(1),
  /** fine-tunes to score, by name */
  after: z.record(modelName, z.string().min(1)),
  /** a vector checkpoint v; or the pair positive/negative meaning θ₊ − θ₋ */
  vector: z.string().min(1).optional(),
  positive: z.string().min(1).optional(),
  negative: z.string().min(1).optional(),
  ...commonOptions,
}).strict();

/** Module kinds a projection can target (roles come from the kind: o and down write, the rest read). */
export const PROJECT_TARGETS = ['embed', 'head', 'o', 'down', 'q', 'k', 'v', 'gate', 'up'] as const;

export const projectSpec = z.object({
  op: z.literal('project'),
  model: z.string().min(1),
  /** safetensors file: `direction` (global) and/or `layers.{i}` (per layer) */
  direction: z.string().min(1),
  /** default: Arditi et al.'s embed, o, down */
  modules: z.array(z.enum(PROJECT_TARGETS)).min(1).optional(),
  layers: layerRange.optional(),
  /** s, or a mergekit-style gradient over layers (values spread evenly, linear in between) */
  scale: z.union([z.number(), z.array(z.number()).min(1)]).optional(),
  normPreserving: z.enum(['none', 'column', 'row', 'matrix']).optional(),
  ...outputOptions,
}).strict();

export const patchSpec = z.object({
  op: z.literal('patch'),
  base: z.string().min(1),
  donor: z.string().min(1),
  /** tensor-name globs or /regex/: what to take from the donor */
  modules: z.array(z.string().min(1)).min(1),
  layers: layerRange.optional(),
  /** K size-matched random controls (Wang & Veitch, arXiv 2502.11447) */
  randomControl: z.number().int().min(0).max(1000).optional(),
  ...outputOptions,
}).strict();

export const analyzeSpec = z.object({
  op: z.literal('analyze'),
  base: z.string().min(1),
  models: z.record(modelName, z.string().min(1)),
  /** ranks k for the energy captured at rank k */
  ranks: z.array(z.number().int().min(1)).min(1).optional(),
  /** spectra of 2-D task vectors (randomized SVD); default true */
  spectrum: z.boolean().optional(),
  powerIters: z.number().int().min(0).max(10).optional(),
  ...commonOptions,
}).strict();

export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;

export const loraExtractSpec = z.object({
  op: z.literal('lora-extract'),
  base: z.string().min(1),
  model: z.string().min(1),
  rank: z.number().int().min(1).optional(),
  /** smallest rank keeping this fraction of ‖ΔW‖_F², per module */
  energy: z.number().gt(0).max(1).optional(),
  /** cap (and sketch size) of energy-chosen ranks; default 128 */
  maxRank: z.number().int().min(1).optional(),
  /** ranks chosen by an energy probe, by tensor name (filled by the client between the two phases) */
  ranks: z.record(z.string(), z.number().int().min(1)).optional(),
  targets: z.array(z.enum(LORA_TARGETS)).min(1).optional(),
  split: z.enum(['sqrt', 'b']).optional(),
  powerIters: z.number().int().min(0).max(10).optional(),
  ...outputOptions,
}).strict();

export const loraApplySpec = z.object({
  op: z.literal('lora-apply'),
  base: z.string().min(1),
  /** a PEFT adapter directory (adapter_config.json, adapter_model.safetensors) */
  adapter: z.string().min(1),
  /** multiplies the adapter's own α/r (or α/√r) */
  scale: z.number().optional(),
  ...outputOptions,
}).strict();

export type MonitorSpec = z.infer<typeof monitorSpec>;
export type ProjectSpec = z.infer<typeof projectSpec>;
export type PatchSpec = z.infer<typeof patchSpec>;
export type AnalyzeSpec = z.infer<typeof analyzeSpec>;
export type LoraExtractSpec = z.infer<typeof loraExtractSpec>;
export type LoraApplySpec = z.infer<typeof loraApplySpec>;
