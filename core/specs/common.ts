/** Options every job that writes a checkpoint shares. */
import { z } from 'zod';

export const commonOptions = {
  /** name globs: tensors to operate on (default: all floating-point tensors) */
  include: z.array(z.string()).optional(),
  /** name globs: tensors to leave out of the operation */
  exclude: z.array(z.string()).optional(),
  /** seed of random methods (counter-based RNG keyed by seed, model, tensor, element) */
  seed: z.number().int().min(0).optional(),
};

export const outputOptions = {
  out: z.string().min(1),
  /** output dtype of floating-point tensors (default: the base's) */
  dtype: z.enum(['F32', 'F16', 'BF16']).optional(),
  /** bytes per shard (default 5 GB) */
  shardSize: z.number().int().positive().optional(),
  /** replace an existing output directory */
  force: z.boolean().optional(),
  ...commonOptions,
};
