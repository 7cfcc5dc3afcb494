import { WeightspaceError } from '../../core/errors.js';
import type { SteerSpec } from '../../core/job-spec.js';
import { openModels } from '../plan-builder.js';
import { planElementwise } from './elementwise-plan.js';
import type { OpDef } from './op-def.js';

/** Directory name of one α among several: alpha-2, alpha-0.5, alpha--1. */
export function alphaDirName(alpha: number): string {
  return `alpha-${alpha}`;
}

/**
 * Contrastive weight steering: θ_T + α(θ₊ − θ₋) for every α in one pass that reads each
 * input once (Fierro & Roger 2025). One α writes `out`; several write `out/alpha-<α>`.
 */
export const steerOp: OpDef<SteerSpec> = {
  op: 'steer',
  async plan(spec) {
    if (new Set(spec.alpha).size !== spec.alpha.length) {
      throw new WeightspaceError('usage', `--alpha lists a value twice: ${spec.alpha.join(',')}`);
    }
    const locations = [
      { name: 'base', location: spec.base },
      { name: 'positive', location: spec.positive },
      { name: 'negative', location: spec.negative },
      ...(spec.target ? [{ name: 'target', location: spec.target }] : []),
    ];
    const models = await openModels(locations);
    const target = spec.target ? 'target' : 'base';
    const several = spec.alpha.length > 1;
    return planElementwise({
      op: 'steer',
      spec,
      models,
      base: 'base',
      combos: spec.alpha.map((alpha) => {
        const c = new Map<string, number>([['base', 0], ['positive', alpha], ['negative', -alpha]]);
        c.set(target, (c.get(target) ?? 0) + 1);
        return { coefficients: c, constant: 0 };
      }),
      outputs: spec.alpha.map((alpha) => ({
        subdir: several ? alphaDirName(alpha) : '',
        label: `alpha=${alpha}`,
        copyFilesFrom: models.get('base')!.dir,
        manifest: { alpha },
      })),
      dtype: spec.dtype,
      shardSize: spec.shardSize,
      include: spec.include,
      exclude: spec.exclude,
      rest: 'copy',
    });
  },
};
