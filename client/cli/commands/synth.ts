import type { SynthSpec } from '../../../core/job-spec.js';
import { OUTPUT_OPTIONS, OUTPUT_OPTIONS_HELP, type Command } from '../command.js';
import { runSpec } from '../run-spec.js';
import { int, num, outputFields, specFrom, str } from '../spec-options.js';

export const synthCommand: Command = {
  name: 'synth',
  summary: 'generate a deterministic Llama-shaped checkpoint, or a "fine-tune" of one',
  usage: `synth --out DIR [--layers 4 --hidden 256 --intermediate 688 --vocab 1024 --heads H --kv-heads K
                  --dtype bf16 --shard-size SIZE --seed 0 --tie-embeddings]
  weightspace synth --like BASE --out DIR [--delta-scale 0.01 --seed 1 --delta-rank R]

Weights are counter-based noise (std 0.02, norms around 1) keyed by (seed, tensor), so the same
arguments give the same bytes on any machine. --like adds delta-scale·noise to every floating-point
tensor of BASE (dense, or of rank R for matrices with --delta-rank).

${OUTPUT_OPTIONS_HELP}`,
  options: {
    ...OUTPUT_OPTIONS,
    like: { type: 'string' },
    layers: { type: 'string' },
    hidden: { type: 'string' },
    intermediate: { type: 'string' },
    vocab: { type: 'string' },
    heads: { type: 'string' },
    'kv-heads': { type: 'string' },
    'tie-embeddings': { type: 'boolean' },
    seed: { type: 'string' },
    'delta-scale': { type: 'string' },
    'delta-rank': { type: 'string' },
  },
  async run(args, io) {
    const like = str(args, 'like');
    const spec = specFrom<SynthSpec>({
      op: 'synth',
      ...outputFields(args),
      ...(like ? { like } : {}),
      layers: int(args, 'layers'),
      hidden: int(args, 'hidden'),
      intermediate: int(args, 'intermediate'),
      vocab: int(args, 'vocab'),
      heads: int(args, 'heads'),
      kvHeads: int(args, 'kv-heads'),
      tieEmbeddings: args.values['tie-embeddings'] === true,
      seed: int(args, 'seed'),
      deltaScale: num(args, 'delta-scale'),
      deltaRank: int(args, 'delta-rank'),
    });
    await runSpec(spec, args, io);
    return 0;
  },
};

