import type { ProjectSpec } from '../../../core/job-spec.js';
import { WeightspaceError, q } from '../../../core/errors.js';
import { PROJECT_TARGETS } from '../../../core/specs/research.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { numberList, outputFields, required, specFrom, str } from '../spec-options.js';

export const projectCommand: Command = {
  name: 'project',
  summary: 'abliteration: remove a direction from the residual stream',
  usage: `project --model M --direction FILE --out DIR [--modules embed,o,down] [--layers A-B]
        [--scale S | --scale S0,S1,...] [--norm-preserving none|column|row|matrix]

Writers to the residual stream (o, down, MoE expert down projections) get W ← W − s·r̂(r̂ᵀW);
readers (embed, head, and if asked q, k, v, gate, up) get W ← W − s·(Wr̂)r̂ᵀ. The side comes from
the module's role, never its shape. Default modules: embed,o,down (Arditi et al. 2024).
The direction file (from 'weightspace direction') holds 'direction' (global) and/or layers.{i}
(per layer; a layer's tensors use layers.{i}, else 'direction'; embed uses layers.0, head the last).
--layers restricts which layers' tensors are projected. --scale is s, or a mergekit-style gradient
spread evenly over the layers. Tied embeddings: the one matrix is projected once, as a reader.
--norm-preserving: column keeps each input column's L2 norm (grimjim), row each output row's,
matrix the Frobenius norm (see docs/research.md).

${OUTPUT_OPTIONS_HELP}`,
  options: {
    ...OUTPUT_OPTIONS,
    model: { type: 'string' },
    direction: { type: 'string' },
    modules: { type: 'string' },
    layers: { type: 'string' },
    scale: { type: 'string' },
    'norm-preserving': { type: 'string' },
  },
  async run(args, io) {
    const modules = str(args, 'modules')?.split(',').map((s) => s.trim());
    for (const m of modules ?? []) {
      if (!(PROJECT_TARGETS as readonly string[]).includes(m)) throw new WeightspaceError('usage', `--modules: unknown module ${q(m)}: expected some of ${PROJECT_TARGETS.join(', ')}`);
    }
    const scale = numberList(args, 'scale');
    const norm = str(args, 'norm-preserving');
    if (norm !== undefined && !['none', 'column', 'row', 'matrix'].includes(norm)) {
      throw new WeightspaceError('usage', `--norm-preserving expects none, column, row or matrix, got ${q(norm)}`);
    }
    const spec = specFrom<ProjectSpec>({
      op: 'project',
      model: required(args, 'model'),
      direction: required(args, 'direction'),
      modules,
      layers: str(args, 'layers'),
      scale: scale === undefined ? undefined : scale.length === 1 ? scale[0] : scale,
      normPreserving: norm,
      ...outputFields(args),
    });
    await runSpec(spec, args, io);
    return 0;
  },
};
