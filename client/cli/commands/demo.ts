import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AnalyzeReport } from '../../../coordinator/ops/analyze-report.js';
import type { MonitorReport } from '../../../coordinator/ops/monitor-report.js';
import { directionsFromMeans } from '../../../core/direction.js';
import { WeightspaceError, q } from '../../../core/errors.js';
import type { JobSpec } from '../../../core/job-spec.js';
import type { JobResult } from '../../job-events.js';
import { renderAnalyzeHtml } from '../../report/analyze-html.js';
import { JOB_OPTIONS, JOB_OPTIONS_HELP, type CliIO, type Command, type ParsedArgs } from '../command.js';
import { formatBytes, runSpec } from '../run-spec.js';
import { str } from '../spec-options.js';
import { writeVectors } from './direction.js';
import { monitorTable } from './monitor.js';

const MARKER = '.weightspace-demo';

export interface DemoStep {
  readonly title: string;
  readonly command: string;
  /** a job spec, or (for the client-side steps) a function */
  readonly spec?: JobSpec;
  readonly local?: () => void;
  /** prints what the step's result says */
  readonly show?: (r: JobResult, io: CliIO) => void;
}

const HIDDEN = 256;
const LAYERS = 4;

/**
 * Activation means as a user would capture them with an inference stack; here made up: the
 * harmless means are noise, the harmful ones add a planted direction, so the direction found
 * is that planted direction (plus noise).
 */
function writeDemoMeans(dir: string): void {
  const harmful = new Map<string, Float32Array>();
  const harmless = new Map<string, Float32Array>();
  for (let l = 0; l < LAYERS; l++) {
    const a = new Float32Array(HIDDEN);
    const b = new Float32Array(HIDDEN);
    for (let i = 0; i < HIDDEN; i++) {
      const noise = Math.sin(17.3 * (l + 1) * (i + 1)) * 0.5;
      b[i] = noise;
      a[i] = noise + (i % 7 === 0 ? 1 : 0) + 0.05 * Math.cos(3.1 * (i + l));
    }
    harmful.set(`layers.${l}`, a);
    harmless.set(`layers.${l}`, b);
  }
  writeVectors(join(dir, 'harmful-means.safetensors'), harmful, { format: 'pt' });
  writeVectors(join(dir, 'harmless-means.safetensors'), harmless, { format: 'pt' });
  const dirs = directionsFromMeans(harmful, harmless, { orthogonalize: false });
  writeVectors(join(dir, 'refusal-direction.safetensors'), dirs, { format: 'pt', weightspace: 'direction' });
}

/** The demo's steps, each a job spec and the command line that does the same. */
export function demoSteps(dir: string): DemoStep[] {
  const m = (name: string): string => join(dir, name);
  const synth = { op: 'synth', layers: 4, hidden: 256, intermediate: 688, vocab: 1024, tieEmbeddings: false, deltaScale: 0.01 } as const;
  return [
    { title: 'a base model (4 layers, hidden 256, bf16)', command: `weightspace synth --out ${m('base')} --seed 0`, spec: { ...synth, seed: 0, out: m('base') } },
    { title: "a 'math' fine-tune of it", command: `weightspace synth --like ${m('base')} --delta-scale 0.002 --seed 1 --out ${m('math')}`, spec: { ...synth, like: m('base'), deltaScale: 0.002, seed: 1, out: m('math') } },
    { title: "a 'code' fine-tune (low-rank delta)", command: `weightspace synth --like ${m('base')} --delta-scale 0.002 --delta-rank 8 --seed 2 --out ${m('code')}`, spec: { ...synth, like: m('base'), deltaScale: 0.002, deltaRank: 8, seed: 2, out: m('code') } },
    { title: 'a positive variant (behaviour present)', command: `weightspace synth --like ${m('base')} --delta-scale 0.002 --seed 3 --out ${m('positive')}`, spec: { ...synth, like: m('base'), deltaScale: 0.002, seed: 3, out: m('positive') } },
    { title: 'a negative variant (behaviour absent)', command: `weightspace synth --like ${m('base')} --delta-scale 0.002 --seed 4 --out ${m('negative')}`, spec: { ...synth, like: m('base'), deltaScale: 0.002, seed: 4, out: m('negative') } },
    { title: 'the math task vector δ = math − base', command: `weightspace diff ${m('math')} ${m('base')} --out ${m('task-math')}`, spec: { op: 'diff', a: m('math'), b: m('base'), out: m('task-math') } },
    {
      title: 'task arithmetic: base + 0.8·(math − base) + 0.5·(code − base)',
      command: `weightspace eval 'base + 0.8*(math - base) + 0.5*(code - base)' --model base=${m('base')} --model math=${m('math')} --model code=${m('code')} --out ${m('math-plus-code')}`,
      spec: { op: 'eval', expr: 'base + 0.8*(math - base) + 0.5*(code - base)', models: { base: m('base'), math: m('math'), code: m('code') }, out: m('math-plus-code') },
    },
    {
      title: 'contrastive steering θ + α(θ₊ − θ₋) for α = 1, 2, 4 in one pass',
      command: `weightspace steer --base ${m('base')} --positive ${m('positive')} --negative ${m('negative')} --alpha 1,2,4 --out ${m('steered')}`,
      spec: { op: 'steer', base: m('base'), positive: m('positive'), negative: m('negative'), alpha: [1, 2, 4], out: m('steered') },
    },
    {
      title: 'monitor: cosine of each fine-tune\'s weight diff with the behaviour vector θ₊ − θ₋',
      command: `weightspace monitor --before ${m('base')} --after steered=${m('steered/alpha-2')} --after math=${m('math')} --positive ${m('positive')} --negative ${m('negative')}`,
      spec: { op: 'monitor', before: m('base'), after: { steered: m('steered/alpha-2'), math: m('math') }, positive: m('positive'), negative: m('negative') },
      show: (r, io) => {
        for (const line of monitorTable(r.report as MonitorReport)) io.out(`      ${line}`);
      },
    },
    {
      title: 'a refusal direction from (synthetic) per-layer activation means',
      command: `weightspace direction --harmful-means ${m('harmful-means.safetensors')} --harmless-means ${m('harmless-means.safetensors')} --out ${m('refusal-direction.safetensors')}`,
      local: () => writeDemoMeans(dir),
    },
    {
      title: 'abliteration: project the direction out of embed, o_proj and down_proj',
      command: `weightspace project --model ${m('base')} --direction ${m('refusal-direction.safetensors')} --out ${m('abliterated')}`,
      spec: { op: 'project', model: m('base'), direction: m('refusal-direction.safetensors'), out: m('abliterated') },
    },
    {
      title: 'analysis of the task vectors, with an HTML report',
      command: `weightspace analyze --base ${m('base')} --model math=${m('math')} --model code=${m('code')} --model steered=${m('steered/alpha-2')} --report ${m('analysis.html')}`,
      spec: { op: 'analyze', base: m('base'), models: { math: m('math'), code: m('code'), steered: m('steered/alpha-2') }, ranks: [4, 16, 64] },
      show: (r, io) => {
        const file = m('analysis.html');
        writeFileSync(file, renderAnalyzeHtml(r.report as AnalyzeReport, { base: m('base'), models: { math: m('math'), code: m('code'), steered: m('steered/alpha-2') }, generated: 'weightspace demo' }));
        io.out(`      → ${file} (open it in a browser)`);
      },
    },
  ];
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'build a small model family and run every operation on it',
  usage: `demo [--dir DIR]

Builds a base model, two fine-tunes and a positive/negative pair in DIR (default ./weightspace-demo,
replaced if it is a previous demo), then runs each operation on them, printing the command that does
the same step by hand.

${JOB_OPTIONS_HELP}`,
  options: { ...JOB_OPTIONS, dir: { type: 'string' } },
  async run(args, io) {
    const dir = resolve(str(args, 'dir') ?? 'weightspace-demo');
    if (existsSync(dir)) {
      if (!existsSync(join(dir, MARKER))) {
        throw new WeightspaceError('output-exists', `demo directory ${q(dir)} exists and is not a previous demo: choose another --dir`);
      }
      rmSync(dir, { recursive: true, force: true });
    }
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, MARKER), 'made by weightspace demo; removed by the next one\n');
    const started = performance.now();
    const steps = demoSteps(dir);
    for (const [i, step] of steps.entries()) {
      io.out(`[${i + 1}/${steps.length}] ${step.title}`);
      io.out(`      $ ${step.command}`);
      await runStep(step, args, io);
    }
    io.out(`demo done in ${((performance.now() - started) / 1000).toFixed(1)} s; the models are in ${dir}`);
    io.out(`next: weightspace inspect ${join(dir, 'base')}`);
    return 0;
  },
};

async function runStep(step: DemoStep, args: ParsedArgs, io: CliIO): Promise<void> {
  if (step.local) {
    step.local();
    return;
  }
  const r = await runSpec(step.spec!, args, io, { quiet: true });
  for (const o of r.outputs) {
    const size = o.shards.reduce((a, s) => a + s.size, 0);
    io.out(`      → ${o.dir} (${formatBytes(size)}, sha256 ${o.shards[0]?.sha256.slice(0, 12) ?? '-'}…) in ${r.seconds.toFixed(2)} s`);
  }
  step.show?.(r, io);
}
