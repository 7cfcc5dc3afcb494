import { writeFileSync } from 'node:fs';
import type { AnalyzeSpec } from '../../../core/job-spec.js';
import { WeightspaceError } from '../../../core/errors.js';
import type { AnalyzeReport } from '../../../coordinator/ops/analyze-report.js';
import { renderAnalyzeHtml } from '../../report/analyze-html.js';
import { JOB_OPTIONS, JOB_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { int, namedPaths, numberList, required, specFrom, str, strs } from '../spec-options.js';

const f = (x: number | null | undefined, d = 4): string => (x === null || x === undefined ? 'n/a' : x.toFixed(d));

export const analyzeCommand: Command = {
  name: 'analyze',
  summary: 'task-vector analysis: norms, cosines, sign conflicts, spectra; JSON and HTML report',
  usage: `analyze --base B --model NAME=CKPT ... [--json FILE] [--report FILE.html] [--ranks 4,16,64]
        [--no-spectrum] [--power-iters 2] [--seed 0]

For task vectors δᵢ = θᵢ − θ₀, per tensor, layer and module kind: ‖δ‖, ‖δ‖/‖θ₀‖, the cosine matrix
between task vectors and the TIES sign-conflict rate; for 2-D tensors the top singular values,
effective rank, stable rank and the energy captured at each rank k (block-wise randomized SVD:
what is exact and what is estimated is written in the report). --report writes one
self-contained HTML file with charts.

${JOB_OPTIONS_HELP}
  --include GLOB / --exclude GLOB   restrict the tensors (repeatable)`,
  options: {
    ...JOB_OPTIONS,
    base: { type: 'string' },
    model: { type: 'string', multiple: true, short: 'm' },
    json: { type: 'string' },
    report: { type: 'string' },
    ranks: { type: 'string' },
    'no-spectrum': { type: 'boolean' },
    'power-iters': { type: 'string' },
    seed: { type: 'string' },
    include: { type: 'string', multiple: true },
    exclude: { type: 'string', multiple: true },
  },
  async run(args, io) {
    const models = namedPaths(strs(args, 'model'), 'model');
    if (Object.keys(models).length === 0) throw new WeightspaceError('usage', 'analyze needs at least one --model NAME=CKPT');
    const base = required(args, 'base');
    const spec = specFrom<AnalyzeSpec>({
      op: 'analyze',
      base,
      models,
      ranks: numberList(args, 'ranks'),
      spectrum: args.values['no-spectrum'] === true ? false : undefined,
      powerIters: int(args, 'power-iters'),
      seed: int(args, 'seed'),
      include: strs(args, 'include'),
      exclude: strs(args, 'exclude'),
    });
    const result = await runSpec(spec, args, io, { quiet: true });
    const report = result.report as AnalyzeReport;
    const json = str(args, 'json');
    const html = str(args, 'report');
    if (json) writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
    if (html) writeFileSync(html, renderAnalyzeHtml(report, { base, models, generated: new Date().toISOString() }));
    if (!io.json) {
      io.out(`${'model'.padEnd(16)} ${'‖δ‖'.padStart(10)} ${'‖δ‖/‖θ₀‖'.padStart(10)}  cosine with ${report.models.join(', ')}`);
      report.models.forEach((name, i) => {
        io.out(`${name.padEnd(16)} ${f(report.global.deltaNorm[i]).padStart(10)} ${f(report.global.relative[i], 6).padStart(10)}  ${report.global.cosine[i]!.map((c) => f(c, 3)).join('  ')}`);
      });
      for (const s of report.spectra) {
        io.out(`${s.kind.padEnd(6)} effective rank ${s.effectiveRank.map((x) => x.toFixed(1)).join(' / ')}, stable rank ${s.stableRank.map((x) => x.toFixed(2)).join(' / ')}`);
      }
      if (json) io.out(`wrote ${json}`);
      if (html) io.out(`wrote ${html}`);
      io.out(`analyze done in ${result.seconds.toFixed(2)} s`);
    }
    return 0;
  },
};
