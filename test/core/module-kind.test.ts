import { describe, it, expect } from 'vitest';
import { moduleKindOf, projectionRoleOf } from '../../core/module-kind.js';

describe('moduleKindOf', () => {
  it('classifies Llama-style names', () => {
    const cases: [string, string][] = [
      ['model.embed_tokens.weight', 'embed'],
      ['lm_head.weight', 'head'],
      ['model.norm.weight', 'norms'],
      ['model.layers.0.input_layernorm.weight', 'norms'],
      ['model.layers.0.self_attn.q_norm.weight', 'norms'],
      ['model.layers.0.self_attn.q_proj.weight', 'q'],
      ['model.layers.0.self_attn.k_proj.bias', 'k'],
      ['model.layers.0.self_attn.v_proj.weight', 'v'],
      ['model.layers.0.self_attn.o_proj.weight', 'o'],
      ['model.layers.0.mlp.gate_proj.weight', 'gate'],
      ['model.layers.0.mlp.up_proj.weight', 'up'],
      ['model.layers.0.mlp.down_proj.weight', 'down'],
      ['model.layers.0.block_sparse_moe.experts.3.w2.weight', 'down'],
      ['model.layers.0.block_sparse_moe.gate.weight', 'other'],
      ['model.rotary_emb.inv_freq', 'other'],
    ];
    for (const [name, kind] of cases) expect([name, moduleKindOf(name)]).toEqual([name, kind]);
  });
});

describe('projectionRoleOf', () => {
  it('writers and readers by role, whatever the shape', () => {
    expect(projectionRoleOf('model.layers.3.self_attn.o_proj.weight')).toBe('writer');
    expect(projectionRoleOf('model.layers.3.mlp.down_proj.weight')).toBe('writer');
    expect(projectionRoleOf('model.layers.3.mlp.experts.7.down_proj.weight')).toBe('writer');
    expect(projectionRoleOf('model.embed_tokens.weight')).toBe('reader');
    expect(projectionRoleOf('lm_head.weight')).toBe('reader');
    expect(projectionRoleOf('model.layers.3.self_attn.q_proj.weight')).toBe('reader');
    expect(projectionRoleOf('model.layers.3.self_attn.o_proj.bias')).toBeUndefined();
    expect(projectionRoleOf('model.layers.3.input_layernorm.weight')).toBeUndefined();
  });
});
