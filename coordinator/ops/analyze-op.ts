import { WeightspaceError } from '../../core/errors.js';
import type { AnalyzeSpec } from '../../core/job-spec.js';
import type { Plan } from '../../core/plan.js';
import { buildPlan, inputOf, openModels, requireCompatible, selectTensors, type TensorRecipe } from '../plan-builder.js';
import { analyzeReport, type AnalyzeSums } from './analyze-report.js';
import type { OpDef } from './op-def.js';

export const DEFAULT_RANKS = [4, 16, 64];

/**
 * Task-vector analysis δᵢ = θᵢ − θ₀: norms, relative norms, cosines, TIES sign conflicts and
 * spectra (block-wise randomized SVD; see worker/linalg/randomized-svd.ts for what is exact
 * and what is estimated), per tensor, layer and module kind. A report operation.
 */
export const analyzeOp: OpDef<AnalyzeSpec> = {
  op: 'analyze',
  async plan(spec) {
    const names = Object.keys(spec.models);
    if (names.length === 0) throw new WeightspaceError('usage', 'analyze needs at least one --model NAME=CKPT');
    if (names.includes('base')) throw new WeightspaceError('usage', "--model name 'base' is taken by --base");
    const models = await openModels([{ name: 'base', location: spec.base }, ...names.map((n) => ({ name: n, location: spec.models[n]! }))]);
    const base = models.get('base')!;
    requireCompatible({ name: 'base', ckpt: base }, [...models].map(([name, ckpt]) => ({ name, ckpt })));
    const { selected } = selectTensors(base, spec.include, spec.exclude);
    const ranks = spec.ranks ?? DEFAULT_RANKS;
    const sketch = Math.max(...ranks) + 16;
    const spectrum = spec.spectrum ?? true;
    const tensors: TensorRecipe[] = selected.map((name) => {
      const ref = base.tensors.get(name)!;
      const twoD = ref.shape.length === 2 && Math.min(ref.shape[0]!, ref.shape[1]!) > 1;
      return {
        name,
        kernel: 'analyze',
        params: {
          models: names.length,
          ...(spectrum && twoD ? { spectrum: { sketch, powerIters: spec.powerIters ?? 2, seed: spec.seed ?? 0, ranks } } : {}),
        },
        inputs: ['base', ...names].map((m) => inputOf(models.get(m)!.tensors.get(name)!)),
        shape: ref.shape,
        dtype: 'F32',
        outputs: [],
      };
    });
    return buildPlan({ op: 'analyze', spec, outputs: [], tensors });
  },
  report(plan: Plan, results) {
    const spec = plan.spec as AnalyzeSpec;
    const jobs = plan.tasks.flatMap((t) => t.jobs).sort((a, b) => a.id - b.id);
    return analyzeReport(jobs.map((j) => ({ name: j.name, shape: j.shape, sums: results.get(j.id) as AnalyzeSums })), Object.keys(spec.models), spec.ranks ?? DEFAULT_RANKS);
  },
};
