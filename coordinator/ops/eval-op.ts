import { WeightspaceError, q } from '../../core/errors.js';
import { linearize, modelsOf, parseExpression } from '../../core/expression.js';
import type { EvalSpec } from '../../core/job-spec.js';
import { openModels } from '../plan-builder.js';
import { planElementwise } from './elementwise-plan.js';
import type { OpDef } from './op-def.js';

/**
 * Any affine expression of models: `base + 0.8*(math - base) - 0.5*(toxic - base)`
 * (task arithmetic: add, negate, scale, analogies; Ilharco et al. 2023).
 */
export const evalOp: OpDef<EvalSpec> = {
  op: 'eval',
  async plan(spec) {
    const names = Object.keys(spec.models);
    // parse and check names before touching any file
    const expr = parseExpression(spec.expr);
    const affine = linearize(spec.expr, expr, names);
    const base = spec.base ?? (names.includes('base') ? 'base' : names[0]!);
    if (!names.includes(base)) {
      throw new WeightspaceError('unknown-model', `--base ${q(base)} is not one of the models: ${names.map(q).join(', ')}`);
    }
    const used = new Set([base, ...modelsOf(expr)]);
    const models = await openModels(names.filter((n) => used.has(n)).map((n) => ({ name: n, location: spec.models[n]! })));
    return planElementwise({
      op: 'eval',
      spec,
      models,
      base,
      combos: [affine],
      outputs: [{ subdir: '', label: spec.expr, copyFilesFrom: models.get(base)!.dir }],
      dtype: spec.dtype,
      shardSize: spec.shardSize,
      include: spec.include,
      exclude: spec.exclude,
      rest: 'copy',
    });
  },
};
