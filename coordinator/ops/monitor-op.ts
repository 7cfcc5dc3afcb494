import { WeightspaceError } from '../../core/errors.js';
import type { MonitorSpec } from '../../core/job-spec.js';
import type { Plan } from '../../core/plan.js';
import { buildPlan, inputOf, openModels, requireCompatible, selectTensors, type TensorRecipe } from '../plan-builder.js';
import { monitorReport, type MonitorSums } from './monitor-report.js';
import type { OpDef } from './op-def.js';

/**
 * Weight-diff monitoring: cos(θ_after − θ_before, v) over every floating-point tensor, per
 * layer and per module kind, for several fine-tunes ranked by global cosine (Fierro & Roger
 * 2025). v is a vector checkpoint or θ₊ − θ₋. A report operation: nothing is written.
 */
export const monitorOp: OpDef<MonitorSpec> = {
  op: 'monitor',
  async plan(spec) {
    const contrast = spec.vector === undefined;
    if (contrast && (spec.positive === undefined || spec.negative === undefined)) {
      throw new WeightspaceError('usage', 'monitor needs --vector V or both --positive P and --negative N');
    }
    if (!contrast && (spec.positive !== undefined || spec.negative !== undefined)) {
      throw new WeightspaceError('usage', 'monitor takes --vector or --positive/--negative, not both');
    }
    const afters = Object.keys(spec.after);
    if (afters.length === 0) throw new WeightspaceError('usage', 'monitor needs at least one --after NAME=CKPT');
    const vectorModels = contrast ? [{ name: 'positive', location: spec.positive! }, { name: 'negative', location: spec.negative! }] : [{ name: 'vector', location: spec.vector! }];
    const models = await openModels([
      { name: 'before', location: spec.before },
      ...vectorModels,
      ...afters.map((n) => ({ name: `after:${n}`, location: spec.after[n]! })),
    ]);
    const before = models.get('before')!;
    requireCompatible({ name: 'before', ckpt: before }, [...models].map(([name, ckpt]) => ({ name, ckpt })));
    const { selected } = selectTensors(before, spec.include, spec.exclude);
    const order = ['before', ...vectorModels.map((m) => m.name), ...afters.map((n) => `after:${n}`)];
    const tensors: TensorRecipe[] = selected.map((name) => ({
      name,
      kernel: 'monitor',
      params: { contrast, afters: afters.length },
      inputs: order.map((m) => inputOf(models.get(m)!.tensors.get(name)!)),
      shape: before.tensors.get(name)!.shape,
      dtype: 'F32',
      outputs: [],
    }));
    return buildPlan({ op: 'monitor', spec, outputs: [], tensors });
  },
  report(plan: Plan, results) {
    const spec = plan.spec as MonitorSpec;
    const jobs = plan.tasks.flatMap((t) => t.jobs).sort((a, b) => a.id - b.id);
    return monitorReport(jobs.map((j) => ({ name: j.name, sums: results.get(j.id) as MonitorSums })), Object.keys(spec.after));
  },
};
