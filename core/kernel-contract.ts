/**
 * The kernel contract: names and the shape of a kernel. Implementations live in
 * worker/kernels/ (one operation per file) and are collected in worker/kernels/registry.ts;
 * planners (coordinator/) name kernels and build their params. Same contract whatever
 * executes it: embedded threads or a worker node.
 *
 * A kernel is run per tensor as zero or more reduce passes followed by an optional map
 * pass, each over the tensor's fixed blocks (core/plan.ts `blocksOf`):
 *
 *   for pass in 0..passes-1:   partial_b = reduce(pass, inputs_b)   (in threads, any order)
 *                              acc = fold(acc, partial_b) in block order (deterministic)
 *                              state = finish(pass, acc, state)
 *   map:                        outputs_b = map(state, inputs_b)      (in threads, any order)
 *   emit (optional):            small outputs computed from the final state (e.g. LoRA factors)
 *   result (optional):          a JSON value for report operations (norms, cosines)
 *
 * Kernels are pure functions over Float32Array blocks: no I/O, no dtype decoding, no
 * allocation in the inner loop. The executor decodes inputs to f32 and encodes outputs.
 */

export interface BlockInfo {
  /** tensor name (for RNG keys and messages) */
  readonly tensor: string;
  readonly shape: readonly number[];
  readonly blockIndex: number;
  /** flat index of the first element of the block */
  readonly start: number;
  /** elements in the block (a whole number of rows) */
  readonly length: number;
  /** elements per row */
  readonly rowLength: number;
  /** the inputs' BF16 bytes, when the runner left them undecoded for a kernel that reads them itself (readsRawBf16) */
  readonly bf16?: RawBf16;
  /**
   * map pass, when the job has one output and it is BF16: where the map may write that output
   * encoded itself (round to nearest even, NaN kept quiet, as the runner encodes), returning
   * 'encoded' instead of filling outputs[0]
   */
  readonly bf16Out?: Uint8Array;
}

/**
 * BF16 inputs not yet decoded: `raw[i]` holds input i's bytes (in the SIMD backend's memory), and
 * `inputs[i]` is decoded only by `decode()` (once; later calls do nothing). A kernel that reads raw
 * BF16 on one path calls decode() before any path that reads `inputs`.
 */
export interface RawBf16 {
  readonly raw: readonly Uint8Array[];
  decode(): void;
}

export interface TensorInfo {
  readonly tensor: string;
  readonly shape: readonly number[];
  readonly numel: number;
  readonly blockCount: number;
}

/**
 * A kernel implementation. P: params (plain data), S: state carried between passes
 * (plain data: it is sent to threads and across the network).
 */
export interface KernelDef<P = unknown, S = unknown> {
  readonly name: string;
  /** one line: the math and its source */
  readonly doc: string;
  /** number of reduce passes before map (0 for elementwise kernels) */
  passes(params: P, info: TensorInfo): number;
  /** length of the Float64Array partial a reduce pass fills */
  partialLength?(pass: number, params: P, state: S | undefined, info: TensorInfo): number;
  /** length of the accumulator partials fold into (default: partialLength), e.g. to append per-block lists */
  accumulatorLength?(pass: number, params: P, state: S | undefined, info: TensorInfo): number;
  /**
   * Computes one block's partial into `partial` (zero-filled, of partialLength), or returns a
   * Float64Array of its own (any length: a compact list for a custom fold). Mostly-zero filled
   * partials (histograms) travel sparsely; kernels do not see the difference.
   */
  reduce?(pass: number, params: P, state: S | undefined, inputs: readonly Float32Array[], block: BlockInfo, partial: Float64Array): Float64Array | void;
  /** folds one block's partial into the accumulator, called in block order; default: elementwise sum */
  fold?(pass: number, acc: Float64Array, partial: Float64Array, blockIndex: number): void;
  /** passes for which `fold` is not needed: the default sum is used (and sparse partials are folded sparsely) */
  foldsBySum?(pass: number, params: P, info: TensorInfo): boolean;
  /** a reduce pass that needs no blocks this time (decided from the state): finish is called on a zeroed accumulator */
  skipPass?(pass: number, params: P, state: S | undefined, info: TensorInfo): boolean;
  /**
   * a block a reduce pass need not read this time (decided from the state, e.g. one whose partial
   * an earlier pass already holds): it is not run, and an empty partial is folded in its place
   */
  skipBlock?(pass: number, params: P, state: S | undefined, blockIndex: number, info: TensorInfo): boolean;
  /**
   * finish reads the accumulator and keeps no reference to it (nor to a view of it): the executor
   * then reuses its memory for the next pass or tensor instead of allocating (and zeroing fresh
   * pages for) megabytes per tensor
   */
  readonly releasesAccumulator?: boolean;
  /**
   * With releasesAccumulator: zeroes the parts of a reused accumulator (handed over as the last
   * pass left it) that this pass's folds and finish read before they write them, e.g. the sums
   * and the headers of appended lists but not the lists; without it, the executor zeroes it all.
   */
  clearAccumulator?(pass: number, params: P, state: S | undefined, acc: Float64Array, info: TensorInfo): void;
  /** turns the folded accumulator into the state for the next pass */
  finish?(pass: number, params: P, state: S | undefined, acc: Float64Array, info: TensorInfo): S;
  /**
   * whether this pass (a reduce pass, or 'map') may read BF16 inputs raw: if so, and every input is
   * BF16 in block mode and the SIMD backend holds them, the runner gives them as `block.bf16`
   * instead of decoding them first
   */
  readsRawBf16?(pass: number | 'map', params: P, info: TensorInfo): boolean;
  /** map pass: fills `outputs[k][0..block.length)` for every output k */
  map?(params: P, state: S | undefined, inputs: readonly Float32Array[], outputs: readonly Float32Array[], block: BlockInfo): void | 'encoded';
  /** outputs computed from the final state rather than block by block (each the full output tensor) */
  emit?(params: P, state: S | undefined, info: TensorInfo): Float32Array[];
  /** a JSON-serialisable result for report operations */
  result?(params: P, state: S | undefined, info: TensorInfo): unknown;
}

/**
 * Kernel names. Adding a kernel: a file under worker/kernels/, an entry in its registry,
 * and its name here.
 */
export const KERNEL_NAMES = [
  'copy', 'linear', 'synth',
  // merges (issue: merges)
  'task-arithmetic', 'slerp', 'nuslerp', 'multislerp', 'karcher', 'model-stock', 'sce', 'nearswap', 'ram',
  // research operations
  'monitor', 'project', 'analyze', 'lora-extract', 'lora-apply',
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];
