import type { DiffSpec } from '../../core/job-spec.js';
import { openModels } from '../plan-builder.js';
import { planElementwise } from './elementwise-plan.js';
import type { OpDef } from './op-def.js';

/** δ = θ_a − θ_b, a task vector saved as a checkpoint (Ilharco et al. 2023). Unselected tensors are left out. */
export const diffOp: OpDef<DiffSpec> = {
  op: 'diff',
  async plan(spec) {
    const models = await openModels([{ name: 'b', location: spec.b }, { name: 'a', location: spec.a }]);
    return planElementwise({
      op: 'diff',
      spec,
      models,
      base: 'b',
      combos: [{ coefficients: new Map([['a', 1], ['b', -1]]), constant: 0 }],
      outputs: [{ subdir: '', label: 'a - b', copyFilesFrom: models.get('b')!.dir }],
      dtype: spec.dtype,
      shardSize: spec.shardSize,
      include: spec.include,
      exclude: spec.exclude,
      rest: 'omit',
    });
  },
};
