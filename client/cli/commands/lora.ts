import type { LoraApplySpec, LoraExtractSpec } from '../../../core/job-spec.js';
import { WeightspaceError, q } from '../../../core/errors.js';
import { LORA_TARGETS } from '../../../core/specs/research.js';
import type { LoraExtractReport } from '../../../coordinator/ops/lora-extract-op.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command, type CliIO, type ParsedArgs } from '../command.js';
import { runSpec } from '../run-spec.js';
import { int, num, outputFields, required, specFrom, str } from '../spec-options.js';

async function extract(args: ParsedArgs, io: CliIO): Promise<number> {
  const targets = str(args, 'targets')?.split(',').map((s) => s.trim());
  for (const t of targets ?? []) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new WeightspaceError('usage', `--targets: unknown module ${q(t)}: expected some of ${LORA_TARGETS.join(', ')}`);
  }
  const split = str(args, 'split');
  const fields = {
    op: 'lora-extract',
    base: required(args, 'base'),
    model: required(args, 'model'),
    rank: int(args, 'rank'),
    energy: num(args, 'energy'),
    maxRank: int(args, 'max-rank'),
    targets,
    split,
    powerIters: int(args, 'power-iters'),
    seed: int(args, 'seed'),
    ...outputFields(args),
  };
  let spec = specFrom<LoraExtractSpec>(fields);
  if (spec.energy !== undefined && spec.rank === undefined) {
    // phase 1: a probe of every module's spectrum (nothing written) picks the ranks
    const probe = (await runSpec(spec, args, io, { quiet: true })).report as LoraExtractReport;
    const ranks = Object.fromEntries(probe.modules.map((m) => [m.tensor, m.rank]));
    const short = probe.modules.filter((m) => m.reached === false);
    if (short.length > 0) {
      io.err(`weightspace: warning: ${short.length} module${short.length === 1 ? '' : 's'} need more than --max-rank ${spec.maxRank ?? 128} to keep ${spec.energy} of the energy (e.g. ${q(short[0]!.tensor)} keeps ${short[0]!.energy?.toFixed(4)} at rank ${short[0]!.rank})`);
    }
    spec = specFrom<LoraExtractSpec>({ ...fields, ranks });
  }
  const result = await runSpec(spec, args, io);
  const report = result.report as LoraExtractReport | undefined;
  if (report && !io.json) {
    const worst = report.modules.reduce((a, m) => Math.max(a, m.relativeError), 0);
    const ranks = report.modules.map((m) => m.rank);
    io.out(`${report.modules.length} modules, rank ${Math.min(...ranks)}${Math.max(...ranks) !== Math.min(...ranks) ? `..${Math.max(...ranks)}` : ''}, worst relative error ‖ΔW − BA‖/‖ΔW‖ ≈ ${worst.toFixed(4)}`);
  }
  return 0;
}

async function apply(args: ParsedArgs, io: CliIO): Promise<number> {
  const spec = specFrom<LoraApplySpec>({
    op: 'lora-apply',
    base: required(args, 'base'),
    adapter: required(args, 'adapter'),
    scale: num(args, 'scale'),
    ...outputFields(args),
  });
  await runSpec(spec, args, io);
  return 0;
}

export const loraCommand: Command = {
  name: 'lora',
  summary: 'extract a LoRA adapter from a fine-tune, or merge one into a base',
  usage: `lora extract --base B --model M (--rank R | --energy E) --out DIR [--max-rank 128]
               [--targets q,k,v,o,gate,up,down] [--split sqrt|b] [--power-iters 2] [--seed 0]
lora apply --base B --adapter A --out DIR [--scale S]

extract: per target module ΔW = W_model − W_base ≈ B·A by randomized SVD with power iterations,
written as a PEFT adapter (adapter_config.json, adapter_model.safetensors with
base_model.model.<module>.lora_A.weight [r, in] and lora_B.weight [out, r]). --energy E picks, per
module, the smallest rank keeping a fraction E of ‖ΔW‖_F² (a probe pass first; PEFT rank_pattern).
Singular values are split as √σ into both factors (like mergekit-extract-lora); --split b puts
them all into B. lora_alpha = r, so the adapter applies at scale 1.
apply: W′ = W + S·(α/r)·B·A (α/√r with use_rslora; (B·A)ᵀ with fan_in_fan_out).

${OUTPUT_OPTIONS_HELP}`,
  positionals: true,
  options: {
    ...OUTPUT_OPTIONS,
    base: { type: 'string' },
    model: { type: 'string' },
    adapter: { type: 'string' },
    rank: { type: 'string' },
    energy: { type: 'string' },
    'max-rank': { type: 'string' },
    targets: { type: 'string' },
    split: { type: 'string' },
    'power-iters': { type: 'string' },
    seed: { type: 'string' },
    scale: { type: 'string' },
  },
  async run(args, io) {
    const [sub, ...extra] = args.positionals;
    if (extra.length > 0 || (sub !== 'extract' && sub !== 'apply')) {
      throw new WeightspaceError('usage', `lora takes a subcommand: 'lora extract ...' or 'lora apply ...'${sub ? `, got ${q(sub)}` : ''}`);
    }
    return sub === 'extract' ? extract(args, io) : apply(args, io);
  },
};
