/**
 * One job spec per operation of coordinator/ops/registry.ts, for the cluster-vs-embedded
 * test. The test iterates the registry at run time and fails for any operation missing
 * here: whoever adds an operation adds its spec builder (one line, on the test family).
 */
import type { JobSpec } from '../../core/job-spec.js';
import { parseJobSpec } from '../../core/job-spec.js';
import type { Family } from './helpers/checkpoints.js';
import { researchSpecs } from './research-op-specs.js';

/** Builds one or more specs (variants) of an operation, writing to `out` (plus a suffix per variant). */
export type SpecBuilder = (fx: Family, out: string) => JobSpec[];

const spec = (value: Record<string, unknown>): JobSpec => parseJobSpec(value, 'test spec');

export const OP_SPECS: Readonly<Record<string, SpecBuilder>> = {
  diff: (fx, out) => [spec({ op: 'diff', a: fx.ft1, b: fx.base, out })],
  eval: (fx, out) => [
    spec({ op: 'eval', expr: 'base + 0.8*(a - base) - 0.5*(b - base)', models: { base: fx.base, a: fx.ft1, b: fx.ft2 }, out }),
    spec({ op: 'eval', expr: '0.5*a + 0.5*b', models: { a: fx.ft1, b: fx.ft2 }, dtype: 'F32', out: `${out}-f32` }),
  ],
  steer: (fx, out) => [spec({ op: 'steer', base: fx.base, positive: fx.ft1, negative: fx.ft2, alpha: [0.5, 2], out })],
  merge: (fx, out) => [
    spec({
      op: 'merge',
      recipe: {
        merge_method: 'ties',
        base_model: fx.base,
        models: [
          { model: fx.ft1, parameters: { weight: 0.6, density: 0.5 } },
          { model: fx.ft2, parameters: { weight: 0.4, density: 0.7 } },
        ],
        parameters: { normalize: true },
        dtype: 'bfloat16',
      },
      out,
    }),
    spec({
      op: 'merge',
      recipe: {
        merge_method: 'dare_ties',
        base_model: fx.base,
        models: [
          { model: fx.ft1, parameters: { weight: 0.5, density: 0.6 } },
          { model: fx.ft2, parameters: { weight: 0.5, density: 0.6 } },
        ],
      },
      seed: 11,
      out: `${out}-dare`,
    }),
    spec({
      op: 'merge',
      recipe: { merge_method: 'slerp', base_model: fx.base, models: [{ model: fx.base }, { model: fx.ft1 }], parameters: { t: 0.3 } },
      out: `${out}-slerp`,
    }),
  ],
  synth: (fx, out) => [
    spec({ op: 'synth', out, layers: 3, hidden: 128, intermediate: 256, vocab: 256, seed: 7 }),
    spec({ op: 'synth', like: fx.base, out: `${out}-like`, deltaScale: 0.05, deltaRank: 2, seed: 3 }),
  ],
  ...researchSpecs(spec),
};
