/**
 * The `merge` job spec: a mergekit recipe (the parsed YAML, carried in the spec so a cluster
 * coordinator needs no access to the client's files) and the usual output options. Also the
 * parameters of the merge kernels: the contract between the merge planner (coordinator/) and
 * the kernels (worker/), which meet only through core/.
 */
import { z } from 'zod';
import { outputOptions } from './common.js';

export const mergeSpec = z.object({
  op: z.literal('merge'),
  /** the recipe as parsed from mergekit YAML (validated by core/mergekit-recipe.ts when planning) */
  recipe: z.record(z.string(), z.unknown()),
  /** where the recipe came from, for messages */
  recipePath: z.string().optional(),
  /** directory relative model paths in the recipe are resolved against (default: the working directory) */
  cwd: z.string().optional(),
  /**
   * false (mergekit's --no-copy-tokenizer): the output gets the base's config but not its
   * tokenizer files, unless the recipe names a tokenizer source (as in mergekit)
   */
  copyTokenizer: z.boolean().optional(),
  /** mergekit's --write-model-card: README.md (a model card) and mergekit_config.yml beside the weights */
  modelCard: z.boolean().optional(),
  /** mergekit's --out-shard-size: at most this many parameters per shard (instead of shardSize bytes) */
  shardParams: z.number().int().positive().optional(),
  ...outputOptions,
}).strict();

export type MergeSpec = z.infer<typeof mergeSpec>;

// ---------------------------------------------------------------------------------------
// merge kernel parameters (already resolved for one tensor)

/**
 * How each task vector is thinned before merging (mergekit's SparsificationMethod):
 * - 'magnitude' (TIES): keep exactly ⌊ρ·n⌋ entries of largest |δ|, ties at the cut to the lowest flat index
 * - 'random' (DARE): keep each entry with probability ρ (counter-based RNG)
 * - 'breadcrumbs' (magnitude_outliers): drop the ⌊γ·n⌋ largest |δ|, keep the next ⌊ρ·n⌋
 * - 'della' (della_magprune): keep with a per-row rank-based probability in [ρ−ε, ρ+ε]
 */
export type Sparsify = 'none' | 'magnitude' | 'random' | 'breadcrumbs' | 'della';
/** After thinning: 'l1' restores each task vector's L1 norm (mergekit's `rescale: true`); 'density' divides kept entries by their keep probability (the DARE/DELLA papers') */
export type Rescale = 'none' | 'l1' | 'density';
/** Sign election: 'sum' = sign of Σ wᵢδᵢ (TIES; 0 counts as +), 'count' = sign of Σ sign(wᵢδᵢ) */
export type Consensus = 'none' | 'sum' | 'count';

/** 'task-arithmetic': inputs base, then the models */
export interface TaskArithmeticParams {
  readonly sparsify: Sparsify;
  readonly consensus: Consensus;
  readonly rescale: Rescale;
  /** divide by the sum of weights (of the agreeing models, with consensus) */
  readonly normalize: boolean;
  /** scale of the merged task vector */
  readonly lambda: number;
  /** per model (inputs 1..M, input 0 is the base) */
  readonly weights: readonly number[];
  /** per model ρ (default 1: no thinning) */
  readonly densities?: readonly number[];
  /** per model γ, breadcrumbs (default 0.01) */
  readonly gammas?: readonly number[];
  /** per model ε, della (default 0.15) */
  readonly epsilons?: readonly number[];
  /** RNG seed of 'random' and 'della' (default 0) */
  readonly seed?: number;
  /** RNG model key of each model (default its position 0..M−1): keep it stable across tensors */
  readonly modelKeys?: readonly number[];
}

/** 'slerp': inputs base, model */
export interface SlerpParams {
  /** 0 gives the base (input 0), 1 the other model (input 1) */
  readonly t: number;
}

/**
 * Which vectors NuSLERP interpolates (mergekit `nuslerp_flatten`, `nuslerp_row_wise`):
 * 'flat' the whole tensor (the default), 'rows' each vector along the last dimension
 * (flatten: false), 'columns' each vector along the first dimension (flatten: false,
 * row_wise: true; mergekit transposes dim 0 to the end).
 */
export type NuslerpMode = 'flat' | 'rows' | 'columns';

/** 'nuslerp': inputs [base,] a, b */
export interface NuslerpParams {
  /** t = w₂/(w₁+w₂) (0.5 when the weights sum to ~0), resolved by the planner */
  readonly t: number;
  readonly mode: NuslerpMode;
  /** inputs are [base, a, b] and the task vectors a − base, b − base are interpolated */
  readonly hasBase: boolean;
}

/** 'multislerp': inputs [base,] models */
export interface MultislerpParams {
  /** per model (after the optional base) */
  readonly weights: readonly number[];
  /** divide the weights by their sum (mergekit `normalize_weights`, default true) */
  readonly normalizeWeights: boolean;
  /** mergekit `eps` (default 1e-8) */
  readonly eps: number;
  /** inputs are [base, models...] and the task vectors are interpolated */
  readonly hasBase: boolean;
}

/** 'karcher': inputs the models */
export interface KarcherParams {
  /** number of models (all inputs) */
  readonly models: number;
  /** mergekit `max_iter` (default 10) */
  readonly maxIter: number;
  /** mergekit `tol` (default 1e-5) */
  readonly tol: number;
}

/** 'model-stock': inputs base, models */
export interface ModelStockParams {
  /** number of fine-tuned models (inputs 1..N; input 0 is the base); N ≥ 2 */
  readonly models: number;
  /** mergekit `filter_wise`: one t per row instead of per tensor */
  readonly filterWise: boolean;
}

/** 'sce': inputs base, models */
export interface SceParams {
  /** number of models (inputs 1..N; input 0 is the base) */
  readonly models: number;
  /** mergekit `select_topk` (τ): the fraction of positions with the largest variance kept (default 1: all) */
  readonly selectTopk: number;
}

/** 'nearswap': inputs base, model */
export interface NearswapParams {
  /** the sameness threshold (> 0) */
  readonly t: number;
}

/** 'ram': inputs base, models */
export interface RamParams {
  /** number of models (inputs 1..N; input 0 is the base) */
  readonly models: number;
  /** mergekit `epsilon` (default 1e-5): |δ| above it counts as a contribution */
  readonly epsilon: number;
}
