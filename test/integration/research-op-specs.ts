/**
 * Spec builders of the research operations (monitor, project, patch, analyze, lora-extract,
 * lora-apply) for the cluster-vs-embedded test; side files (a direction, a PEFT adapter) are
 * written next to `out`. monitor and analyze are report operations: their specs have no `out`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { JobSpec } from '../../core/job-spec.js';
import type { Family } from './helpers/checkpoints.js';
import type { SpecBuilder } from './op-specs.js';

/** F32 tensors as safetensors bytes, by hand. */
function safetensors(tensors: Record<string, { shape: number[]; values: (i: number) => number }>): Buffer {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let off = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const b = Buffer.alloc(4 * n);
    for (let i = 0; i < n; i++) b.writeFloatLE(t.values(i), 4 * i);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + b.length] };
    parts.push(b);
    off += b.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...parts]);
}

export function researchSpecs(spec: (value: Record<string, unknown>) => JobSpec): Record<string, SpecBuilder> {
  return {
    monitor: (fx: Family) => [spec({ op: 'monitor', before: fx.base, after: { a: fx.ft1, b: fx.ft2 }, positive: fx.ft1, negative: fx.ft2 })],
    analyze: (fx: Family) => [spec({ op: 'analyze', base: fx.base, models: { a: fx.ft1, b: fx.ft2 }, ranks: [4, 16] })],
    project: (fx: Family, out: string) => {
      mkdirSync(dirname(out), { recursive: true });
      const dir = `${out}-direction.safetensors`;
      writeFileSync(dir, safetensors({ direction: { shape: [128], values: (i) => Math.sin(i + 1) } }));
      return [spec({ op: 'project', model: fx.base, direction: dir, normPreserving: 'column', out })];
    },
    patch: (fx: Family, out: string) => [spec({ op: 'patch', base: fx.base, donor: fx.ft1, modules: ['*.mlp.*'], layers: '1-2', randomControl: 1, seed: 5, out })],
    'lora-extract': (fx: Family, out: string) => [spec({ op: 'lora-extract', base: fx.base, model: fx.ft2, rank: 4, out })],
    'lora-apply': (fx: Family, out: string) => {
      const adapter = `${out}-adapter`;
      mkdirSync(adapter, { recursive: true });
      writeFileSync(join(adapter, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'] }));
      const m = 'base_model.model.model.layers.0.self_attn.q_proj';
      writeFileSync(join(adapter, 'adapter_model.safetensors'), safetensors({
        [`${m}.lora_A.weight`]: { shape: [2, 128], values: (i) => Math.cos(i) / 64 },
        [`${m}.lora_B.weight`]: { shape: [128, 2], values: (i) => Math.sin(i) / 64 },
      }));
      return [spec({ op: 'lora-apply', base: fx.base, adapter, out })];
    },
  };
}
