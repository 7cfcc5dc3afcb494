import { openCheckpoint, readConfig, type Checkpoint, type TensorRef } from '../../core/checkpoint.js';
import { GLOBAL_DIRECTION, layerEntry } from '../../core/direction.js';
import { WeightspaceError, fmtShape, q } from '../../core/errors.js';
import type { ProjectSpec } from '../../core/job-spec.js';
import { moduleKindOf, projectionRoleOf, type ModuleKind } from '../../core/module-kind.js';
import { layerIndexOf } from '../../core/plan.js';
import { buildPlan, inputOf, openModels, outputDtype, selectTensors, type TensorRecipe } from '../plan-builder.js';
import { gradientAt, inRange, parseLayerRange } from './layer-range.js';
import type { OpDef } from './op-def.js';

/** Arditi et al. 2024: the token embeddings and every attention and MLP output projection. */
export const DEFAULT_PROJECT_TARGETS: readonly ModuleKind[] = ['embed', 'o', 'down'];

/** The direction entry a tensor uses: its layer's `layers.{i}`, else the global `direction`. */
function directionFor(dir: Checkpoint, name: string, kind: ModuleKind, layers: number, file: string): TensorRef {
  const layer = layerIndexOf(name) ?? (kind === 'embed' ? 0 : kind === 'head' ? layers - 1 : undefined);
  const own = layer !== undefined ? dir.tensors.get(layerEntry(layer)) : undefined;
  const ref = own ?? dir.tensors.get(GLOBAL_DIRECTION);
  if (!ref) {
    const want = layer !== undefined ? `${q(layerEntry(layer))} or ${q(GLOBAL_DIRECTION)}` : q(GLOBAL_DIRECTION);
    throw new WeightspaceError('invalid-spec', `direction file ${q(file)} has no entry for tensor ${q(name)}: expected ${want}`);
  }
  return ref;
}

/**
 * Abliteration (directional ablation): writers W ← W − s·r̂(r̂ᵀW), readers W ← W − s·(Wr̂)r̂ᵀ,
 * the side decided by the module's role (core/module-kind.ts), never by its shape; per-layer
 * or global directions; a scalar or gradient scale; optional norm preservation (see
 * worker/kernels/project.ts). Tied embeddings: the one matrix serves as embedding and LM
 * head, and both roles are readers with the same formula, so it is projected once.
 */
export const projectOp: OpDef<ProjectSpec> = {
  op: 'project',
  async plan(spec) {
    const range = spec.layers !== undefined ? parseLayerRange(spec.layers) : undefined;
    const targets = new Set<ModuleKind>(spec.modules ?? DEFAULT_PROJECT_TARGETS);
    const models = await openModels([{ name: 'model', location: spec.model }]);
    const model = models.get('model')!;
    const dir = await openCheckpoint(spec.direction);
    const { selected, rest } = selectTensors(model, spec.include, spec.exclude);
    const warnings: string[] = [];
    const names = [...model.tensors.keys()];
    const layerCount = Math.max(0, ...names.map((n) => (layerIndexOf(n) ?? -1) + 1));
    if (range && range.from >= layerCount) {
      throw new WeightspaceError('invalid-spec', `--layers ${spec.layers}: the model has ${layerCount} layers (0..${layerCount - 1})`);
    }
    const config = await readConfig(model);
    const hasHead = names.some((n) => moduleKindOf(n) === 'head');
    const tied = !hasHead && (config?.tie_word_embeddings === true || names.some((n) => moduleKindOf(n) === 'embed'));
    if (tied && targets.has('head') && !targets.has('embed')) {
      targets.add('embed');
      warnings.push('tied embeddings: the LM head is embed_tokens, so embed_tokens is projected (as a reader) to project the head');
    } else if (tied && targets.has('embed') && names.some((n) => moduleKindOf(n) === 'embed')) {
      warnings.push('tied embeddings: projecting embed_tokens also projects the LM head (one matrix, the same reader-side formula)');
    }
    const scale = spec.scale ?? 1;
    const norm = spec.normPreserving ?? 'none';
    const projected: string[] = [];
    const tensors: TensorRecipe[] = [];
    const isSelected = new Set(selected);
    for (const name of [...selected, ...rest]) {
      const ref = model.tensors.get(name)!;
      const dtype = outputDtype(ref.dtype, spec.dtype);
      const kind = moduleKindOf(name);
      const role = projectionRoleOf(name);
      const layer = layerIndexOf(name);
      const wanted = isSelected.has(name) && role !== undefined && targets.has(kind) && ref.shape.length >= 2 && (layer === undefined || inRange(layer, range));
      if (!wanted) {
        tensors.push({ name, kernel: 'copy', params: {}, inputs: [inputOf(ref)], shape: ref.shape, dtype });
        continue;
      }
      const dref = directionFor(dir, name, kind, layerCount, spec.direction);
      const axis = role === 'writer' ? ref.shape[ref.shape.length - 2]! : ref.shape[ref.shape.length - 1]!;
      if (dref.shape.length !== 1 || dref.shape[0] !== axis) {
        throw new WeightspaceError('shape-mismatch', `direction ${q(dref.name)} in ${q(spec.direction)} has shape ${fmtShape(dref.shape)}, expected [${axis}] for ${role} ${q(name)} ${fmtShape(ref.shape)}`);
      }
      const at = layer ?? (kind === 'head' ? layerCount - 1 : 0);
      tensors.push({
        name,
        kernel: 'project',
        params: { side: role, scale: gradientAt(scale, at, layerCount), norm },
        inputs: [inputOf(ref), inputOf(dref, 'whole')],
        shape: ref.shape,
        dtype,
      });
      projected.push(name);
    }
    if (projected.length === 0) {
      throw new WeightspaceError('no-match', `no tensor to project: modules ${[...targets].join(',')}${spec.layers ? ` in layers ${spec.layers}` : ''} match nothing in ${q(spec.model)}`);
    }
    return buildPlan({
      op: 'project',
      spec,
      outputs: [{ subdir: '', label: `project ${projected.length} tensors`, copyFilesFrom: model.dir, manifest: { projected } }],
      tensors,
      warnings,
      ...(spec.shardSize ? { shardSize: spec.shardSize } : {}),
    });
  },
};
