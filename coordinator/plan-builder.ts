/**
 * Shared planning steps: open the models' headers, check that they agree, pick the
 * tensors, and turn per-tensor decisions into a Plan (output layouts computed up front,
 * tensor jobs with byte ranges, layer tasks). Every operation's planner uses these.
 */
import { createHash } from 'node:crypto';
import { openCheckpoint, type Checkpoint, type TensorRef } from '../core/checkpoint.js';
import { DTYPE_SIZE, isFloatDType, isWritableFloatDType, type DType, type WritableFloatDType } from '../core/dtypes.js';
import { WeightspaceError, fmtShape, q } from '../core/errors.js';
import type { KernelName } from '../core/kernel-contract.js';
import { nameFilter, requireMatches } from '../core/name-glob.js';
import { DEFAULT_SHARD_SIZE, compareNames, planOutputLayout, type OutputTensorSpec, type ShardUnit } from '../core/output-layout.js';
import { layerKeyOf, type InputMode, type InputRef, type LayerTask, type OutputPlan, type OutputRef, type Plan, type TensorJob } from '../core/plan.js';
import { numelOf } from '../core/safetensors-header.js';

export interface NamedCheckpoint {
  readonly name: string;
  readonly ckpt: Checkpoint;
}

/** Opens every model's headers (in parallel); the first failure names its file. */
export async function openModels(models: readonly { name: string; location: string }[]): Promise<Map<string, Checkpoint>> {
  const opened = await Promise.all(models.map(async (m) => [m.name, await openCheckpoint(m.location)] as const));
  return new Map(opened);
}

/**
 * Checks that `others` hold exactly the tensors of `base` (among `names`) with the same
 * shapes. Messages name the tensor, both models and both shapes.
 */
export function requireCompatible(base: NamedCheckpoint, others: readonly NamedCheckpoint[], names?: readonly string[]): void {
  const check = names ?? [...base.ckpt.tensors.keys()];
  for (const o of others) {
    if (o.ckpt === base.ckpt) continue;
    for (const name of check) {
      const b = base.ckpt.tensors.get(name)!;
      const t = o.ckpt.tensors.get(name);
      if (!t) {
        throw new WeightspaceError('missing-tensor', `tensor ${q(name)} is in ${q(base.name)} but missing from ${q(o.name)} (${q(o.ckpt.location)})`);
      }
      if (t.shape.length !== b.shape.length || t.shape.some((d, i) => d !== b.shape[i])) {
        throw new WeightspaceError('shape-mismatch', `tensor ${q(name)}: shape ${fmtShape(t.shape)} in ${q(o.name)} does not match ${fmtShape(b.shape)} in ${q(base.name)}`);
      }
      if (isFloatDType(b.dtype) !== isFloatDType(t.dtype)) {
        throw new WeightspaceError('dtype-mismatch', `tensor ${q(name)}: dtype ${t.dtype} in ${q(o.name)} does not match ${b.dtype} in ${q(base.name)}`);
      }
    }
    if (!names) {
      for (const name of o.ckpt.tensors.keys()) {
        if (!base.ckpt.tensors.has(name)) {
          throw new WeightspaceError('extra-tensor', `tensor ${q(name)} is in ${q(o.name)} (${q(o.ckpt.location)}) but not in ${q(base.name)}`);
        }
      }
    }
  }
}

/** Tensor names of `ckpt` in natural (layer) order, split into those the operation selects and the rest. */
export function selectTensors(ckpt: Checkpoint, include?: readonly string[], exclude?: readonly string[]): { selected: string[]; rest: string[] } {
  const all = [...ckpt.tensors.keys()].sort(compareNames);
  requireMatches(include ?? [], all, '--include');
  requireMatches(exclude ?? [], all, '--exclude');
  const keep = nameFilter(include, exclude);
  const selected: string[] = [];
  const rest: string[] = [];
  for (const n of all) {
    const t = ckpt.tensors.get(n)!;
    if (isFloatDType(t.dtype) && keep(n)) selected.push(n);
    else rest.push(n);
  }
  return { selected, rest };
}

/** The output dtype of a floating-point tensor: the requested one, else the input's (F64/F8 inputs are written as F32). */
export function outputDtype(input: DType, requested: WritableFloatDType | undefined): DType {
  if (!isFloatDType(input)) return input;
  if (requested) return requested;
  return isWritableFloatDType(input) ? input : 'F32';
}

export function inputOf(ref: TensorRef, mode?: InputMode): InputRef {
  return mode && mode !== 'block'
    ? { file: ref.file, offset: ref.offset, dtype: ref.dtype, mode, shape: ref.shape }
    : { file: ref.file, offset: ref.offset, dtype: ref.dtype };
}

export interface TensorRecipe {
  readonly name: string;
  readonly kernel: KernelName;
  readonly params: unknown;
  readonly inputs: readonly InputRef[];
  /** output shape (for most kernels, the input's) */
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** the outputs this tensor is written to (default: all); [] for a report-only job */
  readonly outputs?: readonly number[];
}

export interface OutputDecl {
  readonly subdir: string;
  readonly label: string;
  readonly copyFilesFrom: string | undefined;
  /** false: copy config and generation config but not the tokenizer files (mergekit's --no-copy-tokenizer) */
  readonly copyTokenizer?: boolean;
  readonly configPatch?: Readonly<Record<string, unknown>>;
  readonly extraFiles?: Readonly<Record<string, string>>;
  readonly manifest?: Readonly<Record<string, unknown>>;
  /** metadata in each shard's header (default {format: 'pt'}) */
  readonly headerMetadata?: Readonly<Record<string, string>>;
}

export interface PlanArgs {
  readonly op: string;
  readonly spec: unknown;
  readonly outputs: readonly OutputDecl[];
  readonly tensors: readonly TensorRecipe[];
  readonly shardSize?: number;
  /** bound shards by elements (mergekit's out_shard_size) instead of bytes: shardSize is then a parameter count */
  readonly shardUnit?: ShardUnit;
  readonly warnings?: readonly string[];
}

/** Turns per-tensor recipes into a plan: output layouts, jobs with byte ranges, layer tasks. */
export function buildPlan(args: PlanArgs): Plan {
  const shardSize = args.shardSize ?? DEFAULT_SHARD_SIZE;
  const allOutputs = args.outputs.map((_, i) => i);
  const outputs: OutputPlan[] = [];
  const layouts = args.outputs.map((decl, oi) => {
    const specs: OutputTensorSpec[] = [];
    for (const t of args.tensors) {
      if ((t.outputs ?? allOutputs).includes(oi)) specs.push({ name: t.name, dtype: t.dtype, shape: t.shape });
    }
    const layout = planOutputLayout(specs, shardSize, decl.headerMetadata ?? { format: 'pt' }, args.shardUnit);
    outputs.push({
      subdir: decl.subdir,
      label: decl.label,
      shards: layout.shards.map((s) => ({ file: s.file, headerBase64: Buffer.from(s.header).toString('base64'), size: s.size })),
      index: layout.index,
      copyFilesFrom: decl.copyFilesFrom,
      ...(decl.copyTokenizer === false ? { copyTokenizer: false } : {}),
      configPatch: decl.configPatch ?? {},
      extraFiles: decl.extraFiles ?? {},
      manifest: decl.manifest ?? {},
    });
    return layout;
  });

  const jobs: TensorJob[] = args.tensors.map((t, id) => {
    const outs: OutputRef[] = (t.outputs ?? allOutputs).map((oi) => {
      const p = layouts[oi]!.placement.get(t.name)!;
      return { output: oi, file: p.file, offset: p.offset, dtype: t.dtype, nbytes: p.nbytes };
    });
    return { id, name: t.name, shape: [...t.shape], kernel: t.kernel, params: t.params, inputs: t.inputs, outputs: outs };
  });

  const byLayer = new Map<string, TensorJob[]>();
  for (const j of jobs) {
    const k = layerKeyOf(j.name);
    let list = byLayer.get(k);
    if (!list) byLayer.set(k, (list = []));
    list.push(j);
  }
  const order = ['embed', ...[...byLayer.keys()].filter((k) => k.startsWith('layer.')).sort(compareNames), 'final', 'head', 'other'];
  const tasks: LayerTask[] = [];
  let totalInputBytes = 0;
  let totalOutputBytes = 0;
  for (const layer of order) {
    const list = byLayer.get(layer);
    if (!list) continue;
    let inputBytes = 0;
    let outputBytes = 0;
    for (const j of list) {
      const numel = numelOf(j.shape);
      for (const i of j.inputs) inputBytes += (i.mode === 'whole' || i.mode === 'rows' ? numelOf(i.shape ?? []) : numel) * DTYPE_SIZE[i.dtype];
      for (const o of j.outputs) outputBytes += numel * DTYPE_SIZE[o.dtype];
    }
    const id = createHash('sha256').update(JSON.stringify({ op: args.op, layer, list })).digest('hex').slice(0, 16);
    tasks.push({ id, layer, jobs: list, inputBytes, outputBytes });
    totalInputBytes += inputBytes;
    totalOutputBytes += outputBytes;
  }
  return { op: args.op, spec: recordedSpec(args.spec), outputs, tasks, totalInputBytes, totalOutputBytes, warnings: args.warnings ?? [] };
}

/**
 * The spec as weightspace.json records it: without where the output went (`out`, `force`),
 * so the same job gives the same bytes wherever and however it is written.
 */
export function recordedSpec(spec: unknown): unknown {
  if (spec === null || typeof spec !== 'object') return spec;
  const { out: _out, force: _force, ...rest } = spec as Record<string, unknown>;
  return rest;
}
