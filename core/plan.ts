/**
 * Plans: what a job turns into before any compute. The planner (coordinator/) reads only
 * headers and emits layer tasks; each task lists tensor jobs that name their input byte
 * ranges and output byte ranges. Workers (worker/) execute tensor jobs block by block.
 * Everything here is plain data (structured-clonable, JSON-serialisable), because it
 * crosses thread, process and network boundaries.
 */
import type { DType } from './dtypes.js';
import type { KernelName } from './kernel-contract.js';

/**
 * Elements per block. Blocks are whole rows (at least one), so a block holds at most
 * max(BLOCK_ELEMENTS, rowLength) elements. Reductions fold per-block partials in block
 * order, so this constant is part of the determinism contract: every node uses it.
 */
export const BLOCK_ELEMENTS = 1 << 18;

/**
 * How an input is read for a block:
 * - 'block' (default): the same flat element range as the block (inputs shaped like the output)
 * - 'rows': the same row range, with the input's own row length (e.g. LoRA B [out, r] for W [out, in])
 * - 'whole': the whole input, read once per thread and cached (small side inputs: LoRA A, a direction)
 */
export type InputMode = 'block' | 'rows' | 'whole';

export interface InputRef {
  readonly file: string;
  readonly offset: number;
  readonly dtype: DType;
  readonly mode?: InputMode;
  /** the input's own shape; required for 'rows' and 'whole' */
  readonly shape?: readonly number[];
}

export interface OutputRef {
  /** index of the output checkpoint in the plan */
  readonly output: number;
  /** shard file name relative to that output's directory */
  readonly file: string;
  /** absolute byte offset inside the shard */
  readonly offset: number;
  readonly dtype: DType;
  /** bytes of this output tensor (its own shape, which may differ from the job's) */
  readonly nbytes?: number;
}

export interface TensorJob {
  /** position of the job in the plan: the fixed order reductions are combined in */
  readonly id: number;
  readonly name: string;
  readonly shape: readonly number[];
  readonly kernel: KernelName;
  /** kernel parameters, already resolved for this tensor (layer gradients applied) */
  readonly params: unknown;
  readonly inputs: readonly InputRef[];
  /** one per output checkpoint this tensor is written to; empty for report kernels */
  readonly outputs: readonly OutputRef[];
}

export type LayerKey = string; // 'embed', 'layer.0', ..., 'final', 'head', 'other'

export interface LayerTask {
  /** stable content-derived name: the same task in the same job has the same id */
  readonly id: string;
  readonly layer: LayerKey;
  readonly jobs: readonly TensorJob[];
  readonly inputBytes: number;
  readonly outputBytes: number;
}

export interface OutputShardPlan {
  readonly file: string;
  /** the header bytes (length prefix + JSON), base64 so plans stay JSON */
  readonly headerBase64: string;
  readonly size: number;
}

export interface OutputPlan {
  /** directory name under the job's `out` ('' = `out` itself) */
  readonly subdir: string;
  readonly shards: readonly OutputShardPlan[];
  /** `model.safetensors.index.json`, when sharded */
  readonly index: string | undefined;
  /** directory whose non-weight files (config, tokenizer) are copied */
  readonly copyFilesFrom: string | undefined;
  /** false: the tokenizer files are not among them (absent: they are) */
  readonly copyTokenizer?: boolean;
  /** keys to overwrite in the copied config.json (e.g. num_hidden_layers after a passthrough) */
  readonly configPatch: Readonly<Record<string, unknown>>;
  /** extra files to write verbatim (name → content), e.g. an adapter_config.json */
  readonly extraFiles: Readonly<Record<string, string>>;
  /** a label for messages and the manifest, e.g. 'alpha=2' */
  readonly label: string;
  /** per-output additions to weightspace.json (e.g. the tensors a patch took from the donor) */
  readonly manifest: Readonly<Record<string, unknown>>;
}

export interface Plan {
  readonly op: string;
  /** the job spec, normalised, recorded in weightspace.json */
  readonly spec: unknown;
  readonly outputs: readonly OutputPlan[];
  readonly tasks: readonly LayerTask[];
  readonly totalInputBytes: number;
  readonly totalOutputBytes: number;
  readonly warnings: readonly string[];
}

/** Layer key of a Hugging Face tensor name: tasks are split along it. */
export function layerKeyOf(name: string): LayerKey {
  const m = /(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\./.exec(name);
  if (m) return `layer.${m[1]}`;
  if (/embed_tokens|wte|word_embeddings|embed_in/.test(name)) return 'embed';
  if (/lm_head|embed_out/.test(name)) return 'head';
  if (/(^|\.)norm\.|ln_f|final_layer_norm/.test(name)) return 'final';
  return 'other';
}

/** Index of the transformer layer a tensor belongs to, or undefined for embeddings, norms and head. */
export function layerIndexOf(name: string): number | undefined {
  const m = /(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function rowLengthOf(shape: readonly number[]): number {
  if (shape.length === 0) return 1;
  // a 1-D tensor is one row, unless it is too large to hold as one block (then rows of 1)
  if (shape.length === 1) return shape[0]! > BLOCK_ELEMENTS * 16 ? 1 : Math.max(1, shape[0]!);
  return Math.max(1, shape[shape.length - 1]!);
}

export interface Block {
  readonly index: number;
  /** flat index of the first element */
  readonly start: number;
  readonly length: number;
}

/** The fixed block split of a tensor: whole rows, about BLOCK_ELEMENTS each. */
export function blocksOf(shape: readonly number[]): Block[] {
  let numel = 1;
  for (const d of shape) numel *= d;
  if (numel === 0) return [];
  const row = rowLengthOf(shape);
  const rowsPerBlock = Math.max(1, Math.floor(BLOCK_ELEMENTS / row));
  const per = rowsPerBlock * row;
  const out: Block[] = [];
  for (let s = 0, i = 0; s < numel; s += per, i++) out.push({ index: i, start: s, length: Math.min(per, numel - s) });
  return out;
}
