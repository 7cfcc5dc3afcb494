import { openCheckpoint, paramCount } from '../../../core/checkpoint.js';
import { WeightspaceError } from '../../../core/errors.js';
import { compareNames } from '../../../core/output-layout.js';
import { layerKeyOf } from '../../../core/plan.js';
import { numelOf } from '../../../core/safetensors-header.js';
import type { Command } from '../command.js';
import { formatBytes } from '../run-spec.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'tensors, dtypes, shapes, parameter count and per-layer sizes of a checkpoint',
  usage: `inspect CKPT [--json]

Reads only the safetensors headers (validated as the reference implementation does).`,
  options: { json: { type: 'boolean' }, 'log-format': { type: 'string' } },
  async run(args, io) {
    const [loc, ...extra] = args.positionals;
    if (!loc || extra.length > 0) throw new WeightspaceError('usage', 'inspect takes one checkpoint: weightspace inspect CKPT');
    const ckpt = await openCheckpoint(loc);
    const tensors = [...ckpt.tensors.values()].sort((a, b) => compareNames(a.name, b.name));
    const layers = new Map<string, { tensors: number; params: number; bytes: number }>();
    const dtypes = new Map<string, { tensors: number; params: number; bytes: number }>();
    for (const t of tensors) {
      const n = numelOf(t.shape);
      for (const [map, key] of [[layers, layerKeyOf(t.name)], [dtypes, t.dtype]] as const) {
        const e = map.get(key) ?? { tensors: 0, params: 0, bytes: 0 };
        e.tensors++;
        e.params += n;
        e.bytes += t.nbytes;
        map.set(key, e);
      }
    }
    const layerRows = [...layers].sort((a, b) => compareNames(a[0], b[0]));
    const summary = {
      location: ckpt.location,
      files: ckpt.files,
      tensors: tensors.length,
      parameters: paramCount(ckpt),
      bytes: tensors.reduce((a, t) => a + t.nbytes, 0),
      metadata: ckpt.metadata,
      dtypes: Object.fromEntries(dtypes),
      layers: Object.fromEntries(layerRows),
      tensorList: tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.nbytes, file: t.file })),
    };
    if (args.values['json'] === true || io.json) {
      io.out(JSON.stringify(summary, null, 2));
      return 0;
    }
    io.out(`${ckpt.location}: ${summary.tensors} tensors, ${summary.parameters.toLocaleString('en-US')} parameters, ${formatBytes(summary.bytes)} in ${ckpt.files.length} file${ckpt.files.length === 1 ? '' : 's'}`);
    io.out(`dtypes: ${[...dtypes].map(([d, e]) => `${d} ${e.tensors} tensors (${formatBytes(e.bytes)})`).join(', ')}`);
    io.out('');
    io.out(`${'layer'.padEnd(12)} ${'tensors'.padStart(7)} ${'parameters'.padStart(15)} ${'size'.padStart(10)}`);
    for (const [k, e] of layerRows) {
      io.out(`${k.padEnd(12)} ${String(e.tensors).padStart(7)} ${e.params.toLocaleString('en-US').padStart(15)} ${formatBytes(e.bytes).padStart(10)}`);
    }
    io.out('');
    const w = Math.max(...tensors.map((t) => t.name.length), 4);
    for (const t of tensors) io.out(`${t.name.padEnd(w)}  ${t.dtype.padEnd(7)} [${t.shape.join(', ')}]`);
    return 0;
  },
};
