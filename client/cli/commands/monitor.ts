import { writeFileSync } from 'node:fs';
import type { MonitorSpec } from '../../../core/job-spec.js';
import { WeightspaceError } from '../../../core/errors.js';
import type { MonitorReport } from '../../../coordinator/ops/monitor-report.js';
import { JOB_OPTIONS, JOB_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { namedPaths, required, specFrom, str, strs } from '../spec-options.js';

const fmt = (c: number | null): string => (c === null ? '   n/a' : c.toFixed(4).padStart(7));

/** The terminal table: one row per fine-tune, ranked; global cosine and per module kind. */
export function monitorTable(report: MonitorReport): string[] {
  const kinds = [...new Set(report.afters.flatMap((a) => a.modules.map((m) => m.key)))];
  const lines = [`rank  ${'model'.padEnd(16)} ${'global'.padStart(7)}  ${kinds.map((k) => k.padStart(7)).join(' ')}`];
  for (const a of report.afters) {
    const byKind = new Map(a.modules.map((m) => [m.key, m.cosine]));
    lines.push(`${String(a.rank).padStart(4)}  ${a.name.padEnd(16)} ${fmt(a.global.cosine)}  ${kinds.map((k) => fmt(byKind.get(k) ?? null)).join(' ')}`);
  }
  return lines;
}

export const monitorCommand: Command = {
  name: 'monitor',
  summary: 'weight-diff monitoring: cos(θ_after − θ_before, v), ranked',
  usage: `monitor --before B --after NAME=CKPT ... (--vector V | --positive P --negative N) [--json FILE]

For every --after fine-tune: the cosine of (after − before) with the behaviour vector v (a vector
checkpoint, or θ₊ − θ₋) over all floating-point parameters, accumulated in f64, globally, per
layer and per module kind (q, k, v, o, gate, up, down, embed, head, norms, other); fine-tunes are
ranked by global cosine (Fierro & Roger 2025). --json FILE writes the full report.

${JOB_OPTIONS_HELP}
  --include GLOB / --exclude GLOB   restrict the tensors (repeatable)`,
  options: {
    ...JOB_OPTIONS,
    before: { type: 'string' },
    after: { type: 'string', multiple: true },
    vector: { type: 'string' },
    positive: { type: 'string' },
    negative: { type: 'string' },
    json: { type: 'string' },
    include: { type: 'string', multiple: true },
    exclude: { type: 'string', multiple: true },
  },
  async run(args, io) {
    const after = namedPaths(strs(args, 'after'), 'after');
    if (Object.keys(after).length === 0) throw new WeightspaceError('usage', 'monitor needs at least one --after NAME=CKPT');
    const spec = specFrom<MonitorSpec>({
      op: 'monitor',
      before: required(args, 'before'),
      after,
      vector: str(args, 'vector'),
      positive: str(args, 'positive'),
      negative: str(args, 'negative'),
      include: strs(args, 'include'),
      exclude: strs(args, 'exclude'),
    });
    const result = await runSpec(spec, args, io, { quiet: true });
    const report = result.report as MonitorReport;
    const json = str(args, 'json');
    if (json) writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
    if (!io.json) {
      for (const line of monitorTable(report)) io.out(line);
      if (json) io.out(`wrote ${json}`);
    }
    return 0;
  },
};
