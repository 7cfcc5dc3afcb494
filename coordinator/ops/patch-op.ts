import { createHash } from 'node:crypto';
import { WeightspaceError, fmtShape, q } from '../../core/errors.js';
import type { PatchSpec } from '../../core/job-spec.js';
import { globToRegExp, requireMatches } from '../../core/name-glob.js';
import { compareNames } from '../../core/output-layout.js';
import { layerIndexOf } from '../../core/plan.js';
import { numelOf } from '../../core/safetensors-header.js';
import { buildPlan, inputOf, openModels, outputDtype, requireCompatible, selectTensors, type OutputDecl, type TensorRecipe } from '../plan-builder.js';
import { inRange, parseLayerRange } from './layer-range.js';
import type { OpDef } from './op-def.js';

/** A deterministic order of candidates for control k: sorted by sha256(seed, k, name). */
function shuffled(names: readonly string[], seed: number, k: number): string[] {
  const key = (n: string): string => createHash('sha256').update(`${seed}\u0000${k}\u0000${n}`).digest('hex');
  return names.map((n) => [key(n), n] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, n]) => n);
}

/**
 * Weight patching: copy the tensors selected by globs or /regex/ (and a layer range) from a
 * donor into the base (Weight Patching, arXiv 2604.13694). `--random-control K` also writes
 * K controls, each patching randomly chosen tensors with the same total parameter count: every
 * patched tensor is matched by a random tensor of the same shape that the real patch leaves
 * alone (the localisation critique of Wang & Veitch, arXiv 2502.11447). Each output's
 * weightspace.json lists exactly the tensors it took from the donor.
 */
export const patchOp: OpDef<PatchSpec> = {
  op: 'patch',
  async plan(spec) {
    const range = spec.layers !== undefined ? parseLayerRange(spec.layers) : undefined;
    const models = await openModels([{ name: 'base', location: spec.base }, { name: 'donor', location: spec.donor }]);
    const base = models.get('base')!;
    const donor = models.get('donor')!;
    requireCompatible({ name: 'base', ckpt: base }, [{ name: 'donor', ckpt: donor }]);
    const { selected: floats, rest } = selectTensors(base, spec.include, spec.exclude);
    requireMatches(spec.modules, floats, '--modules');
    const res = spec.modules.map(globToRegExp);
    const patched = floats.filter((n) => res.some((r) => r.test(n)) && inRange(layerIndexOf(n), range));
    if (patched.length === 0) {
      throw new WeightspaceError('no-match', `--modules ${spec.modules.map(q).join(' ')} in layers ${spec.layers}: no tensor matches in ${q(spec.base)}`);
    }
    const K = spec.randomControl ?? 0;
    const seed = spec.seed ?? 0;
    const takenSet = new Set(patched);
    const parameters = patched.reduce((s, n) => s + numelOf(base.tensors.get(n)!.shape), 0);
    const picks: string[][] = [patched];
    for (let k = 1; k <= K; k++) {
      // same shapes, disjoint from the real patch: draw without replacement per shape
      const pool = new Map<string, string[]>();
      for (const n of shuffled(floats.filter((x) => !takenSet.has(x)), seed, k)) {
        const key = fmtShape(base.tensors.get(n)!.shape);
        if (!pool.has(key)) pool.set(key, []);
        pool.get(key)!.push(n);
      }
      const pick: string[] = [];
      for (const n of patched) {
        const key = fmtShape(base.tensors.get(n)!.shape);
        const cand = pool.get(key)?.shift();
        if (cand === undefined) {
          throw new WeightspaceError('invalid-spec', `--random-control: no unpatched tensor of shape ${key} is left to match ${q(n)}: patch fewer tensors of that shape`);
        }
        pick.push(cand);
      }
      picks.push(pick.sort(compareNames));
    }
    const outputs: OutputDecl[] = picks.map((fromDonor, k) => ({
      subdir: K === 0 ? '' : k === 0 ? 'patched' : `control-${k}`,
      label: k === 0 ? `patched ${fromDonor.length} tensors` : `control ${k}`,
      copyFilesFrom: base.dir,
      manifest: { patch: { control: k > 0, ...(k > 0 ? { index: k, seed } : {}), parameters, fromDonor } },
    }));
    // one copy job per (tensor, source): outputs that take it from the donor, and the rest
    const tensors: TensorRecipe[] = [];
    const all = [...floats, ...rest].sort(compareNames);
    const fromDonorSets = picks.map((p) => new Set(p));
    for (const name of all) {
      const b = base.tensors.get(name)!;
      const dtype = outputDtype(b.dtype, spec.dtype);
      const donorOuts = fromDonorSets.flatMap((s, k) => (s.has(name) ? [k] : []));
      const baseOuts = fromDonorSets.flatMap((s, k) => (s.has(name) ? [] : [k]));
      if (donorOuts.length > 0) tensors.push({ name, kernel: 'copy', params: {}, inputs: [inputOf(donor.tensors.get(name)!)], shape: b.shape, dtype, outputs: donorOuts });
      if (baseOuts.length > 0) tensors.push({ name, kernel: 'copy', params: {}, inputs: [inputOf(b)], shape: b.shape, dtype, outputs: baseOuts });
    }
    return buildPlan({ op: 'patch', spec, outputs, tensors, ...(spec.shardSize ? { shardSize: spec.shardSize } : {}) });
  },
};
