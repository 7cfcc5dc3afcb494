/**
 * `weightspace synth`: deterministic Llama-shaped checkpoints with Hugging Face's tensor
 * names and a matching config.json, or a "fine-tune" of an existing checkpoint (dense or
 * low-rank deltas). The test data of the whole project; generated block by block on all
 * threads, so a 2 GB family takes seconds.
 */
import { createHash } from 'node:crypto';
import { openCheckpoint } from '../../core/checkpoint.js';
import { isFloatDType } from '../../core/dtypes.js';
import { WeightspaceError } from '../../core/errors.js';
import type { SynthSpec } from '../../core/job-spec.js';
import { compareNames } from '../../core/output-layout.js';
import { buildPlan, inputOf, outputDtype, type TensorRecipe } from '../plan-builder.js';
import type { OpDef } from './op-def.js';

/** 32-bit key of (seed, tensor name): each tensor has its own noise stream. */
export function noiseKey(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}\u0000${name}`).digest().readUInt32LE(0);
}

export interface LlamaShape {
  readonly layers: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly vocab: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly tieEmbeddings: boolean;
}

export function llamaShape(spec: SynthSpec): LlamaShape {
  const headDim = spec.hidden % 64 === 0 ? 64 : spec.hidden;
  const heads = spec.heads ?? Math.max(1, spec.hidden / headDim);
  if (spec.hidden % heads !== 0) {
    throw new WeightspaceError('usage', `--hidden ${spec.hidden} is not divisible by --heads ${heads}`);
  }
  const kvHeads = spec.kvHeads ?? (heads % 4 === 0 ? heads / 4 : heads);
  if (heads % kvHeads !== 0) throw new WeightspaceError('usage', `--heads ${heads} is not divisible by --kv-heads ${kvHeads}`);
  return { layers: spec.layers, hidden: spec.hidden, intermediate: spec.intermediate, vocab: spec.vocab, heads, kvHeads, tieEmbeddings: spec.tieEmbeddings };
}

/** Tensor names and shapes of a Llama checkpoint, as transformers names them. */
export function llamaTensors(s: LlamaShape): { name: string; shape: number[]; kind: 'matrix' | 'norm' | 'embedding' }[] {
  const headDim = s.hidden / s.heads;
  const kv = s.kvHeads * headDim;
  const out: { name: string; shape: number[]; kind: 'matrix' | 'norm' | 'embedding' }[] = [
    { name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden], kind: 'embedding' },
  ];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [s.hidden], kind: 'norm' },
      { name: `${p}.self_attn.q_proj.weight`, shape: [s.hidden, s.hidden], kind: 'matrix' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, s.hidden], kind: 'matrix' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, s.hidden], kind: 'matrix' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [s.hidden, s.hidden], kind: 'matrix' },
      { name: `${p}.post_attention_layernorm.weight`, shape: [s.hidden], kind: 'norm' },
      { name: `${p}.mlp.gate_proj.weight`, shape: [s.intermediate, s.hidden], kind: 'matrix' },
      { name: `${p}.mlp.up_proj.weight`, shape: [s.intermediate, s.hidden], kind: 'matrix' },
      { name: `${p}.mlp.down_proj.weight`, shape: [s.hidden, s.intermediate], kind: 'matrix' },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [s.hidden], kind: 'norm' });
  if (!s.tieEmbeddings) out.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden], kind: 'embedding' });
  return out;
}

export function llamaConfig(s: LlamaShape, dtype: string): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.hidden / s.heads,
    vocab_size: s.vocab,
    hidden_act: 'silu',
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: s.tieEmbeddings,
    torch_dtype: { BF16: 'bfloat16', F16: 'float16', F32: 'float32' }[dtype] ?? 'bfloat16',
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

const SIDE_FILES: Record<string, string> = {
  'generation_config.json': JSON.stringify({ bos_token_id: 1, eos_token_id: 2, do_sample: false }, null, 2) + '\n',
  'tokenizer_config.json': JSON.stringify({ model_max_length: 4096, bos_token: '<s>', eos_token: '</s>', tokenizer_class: 'PreTrainedTokenizerFast' }, null, 2) + '\n',
  'special_tokens_map.json': JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }, null, 2) + '\n',
};

export const synthOp: OpDef<SynthSpec> = {
  op: 'synth',
  async plan(spec) {
    const dtype = spec.dtype ?? 'BF16';
    if (spec.like) {
      const like = await openCheckpoint(spec.like);
      const tensors: TensorRecipe[] = [...like.tensors.values()]
        .sort((a, b) => compareNames(a.name, b.name))
        .map((ref) => isFloatDType(ref.dtype)
          ? {
            name: ref.name,
            kernel: 'synth' as const,
            params: { key: noiseKey(spec.seed, ref.name), mode: 'perturb', mean: 0, std: spec.deltaScale, ...(spec.deltaRank !== undefined && ref.shape.length === 2 ? { rank: spec.deltaRank } : {}) },
            inputs: [inputOf(ref)],
            shape: ref.shape,
            dtype: outputDtype(ref.dtype, spec.dtype),
          }
          : { name: ref.name, kernel: 'copy' as const, params: {}, inputs: [inputOf(ref)], shape: ref.shape, dtype: ref.dtype });
      return buildPlan({
        op: 'synth', spec, tensors, shardSize: spec.shardSize,
        outputs: [{ subdir: '', label: `like ${spec.like}`, copyFilesFrom: like.dir }],
      });
    }
    const shape = llamaShape(spec);
    const tensors: TensorRecipe[] = llamaTensors(shape).map((t) => ({
      name: t.name,
      kernel: 'synth',
      params: { key: noiseKey(spec.seed, t.name), mode: 'generate', mean: t.kind === 'norm' ? 1 : 0, std: 0.02 },
      inputs: [],
      shape: t.shape,
      dtype,
    }));
    return buildPlan({
      op: 'synth', spec, tensors, shardSize: spec.shardSize,
      outputs: [{ subdir: '', label: 'synthetic llama', copyFilesFrom: undefined, configPatch: llamaConfig(shape, dtype), extraFiles: SIDE_FILES }],
    });
  },
};
