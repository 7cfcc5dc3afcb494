import { join } from 'node:path';
import { isUrl, readSmallFile } from '../../core/byte-source.js';
import { openCheckpoint } from '../../core/checkpoint.js';
import { WeightspaceError, fmtShape, q } from '../../core/errors.js';
import type { LoraApplySpec } from '../../core/job-spec.js';
import { buildPlan, inputOf, openModels, outputDtype, selectTensors, type TensorRecipe } from '../plan-builder.js';
import { ADAPTER_FILE } from './lora-extract-op.js';
import type { OpDef } from './op-def.js';

interface AdapterConfig {
  r: number;
  lora_alpha: number;
  use_rslora?: boolean;
  fan_in_fan_out?: boolean;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
}

const inside = (dir: string, name: string): string => (isUrl(dir) ? `${dir.replace(/\/+$/, '')}/${name}` : join(dir, name));

/** PEFT's pattern lookup: an exact module name, else the longest key the module name ends with. */
function patternValue(pattern: Record<string, number> | undefined, module: string): number | undefined {
  if (!pattern) return undefined;
  if (pattern[module] !== undefined) return pattern[module];
  const keys = Object.keys(pattern).filter((k) => module.endsWith(`.${k}`) || module === k).sort((a, b) => b.length - a.length);
  return keys.length > 0 ? pattern[keys[0]!] : undefined;
}

async function readAdapterConfig(dir: string): Promise<AdapterConfig> {
  const file = inside(dir, 'adapter_config.json');
  const bytes = await readSmallFile(file);
  if (!bytes) throw new WeightspaceError('not-found', `${q(file)}: no such file: expected a PEFT adapter directory`);
  let c: unknown;
  try {
    c = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new WeightspaceError('invalid-spec', `${q(file)}: not valid JSON: ${(err as Error).message}`);
  }
  const cfg = c as Partial<AdapterConfig> & { peft_type?: unknown };
  if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') throw new WeightspaceError('unsupported-option', `${q(file)}: peft_type ${q(String(cfg.peft_type))}: only LORA adapters can be merged`);
  if (!Number.isInteger(cfg.r) || (cfg.r ?? 0) < 1 || typeof cfg.lora_alpha !== 'number') {
    throw new WeightspaceError('invalid-spec', `${q(file)}: expected a whole number 'r' ≥ 1 and a number 'lora_alpha'`);
  }
  return cfg as AdapterConfig;
}

/**
 * Merging a PEFT LoRA adapter into its base: W′ = W + s·(α/r)·B·A per target module (α/√r
 * with use_rslora; rank_pattern/alpha_pattern per module; (B·A)ᵀ with fan_in_fan_out), so a
 * LoRA fine-tune becomes a checkpoint every other operation can use. Other tensors are copied.
 */
export const loraApplyOp: OpDef<LoraApplySpec> = {
  op: 'lora-apply',
  async plan(spec) {
    const cfg = await readAdapterConfig(spec.adapter);
    const adapter = await openCheckpoint(inside(spec.adapter, ADAPTER_FILE));
    const base = (await openModels([{ name: 'base', location: spec.base }])).get('base')!;
    const factors = new Map<string, { a?: string; b?: string }>();
    for (const key of adapter.tensors.keys()) {
      const m = /^base_model\.model\.(.+)\.lora_([AB])\.weight$/.exec(key) ?? /^base_model\.model\.(.+)\.lora_([AB])\.default\.weight$/.exec(key);
      if (!m) {
        throw new WeightspaceError('unsupported-option', `adapter tensor ${q(key)} in ${q(adapter.location)} is not a LoRA factor 'base_model.model.<module>.lora_A|lora_B.weight' (embedding LoRA and modules_to_save are not supported)`);
      }
      const f = factors.get(m[1]!) ?? {};
      if (m[2] === 'A') f.a = key;
      else f.b = key;
      factors.set(m[1]!, f);
    }
    if (factors.size === 0) throw new WeightspaceError('invalid-spec', `adapter ${q(adapter.location)} holds no LoRA factors`);
    const fifo = cfg.fan_in_fan_out === true;
    const recipes = new Map<string, TensorRecipe>();
    for (const [module, f] of factors) {
      const target = `${module}.weight`;
      if (!f.a || !f.b) throw new WeightspaceError('invalid-spec', `adapter module ${q(module)} has lora_${f.a ? 'A' : 'B'} but no lora_${f.a ? 'B' : 'A'}`);
      const w = base.tensors.get(target);
      if (!w) throw new WeightspaceError('missing-tensor', `adapter targets ${q(target)}, which is not in the base ${q(spec.base)}`);
      const a = adapter.tensors.get(f.a)!;
      const b = adapter.tensors.get(f.b)!;
      const r = a.shape[0]!;
      const [rows, cols] = w.shape as [number, number];
      const [out, inn] = fifo ? [cols, rows] : [rows, cols];
      if (w.shape.length !== 2 || a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== inn || b.shape[0] !== out || b.shape[1] !== r) {
        throw new WeightspaceError('shape-mismatch', `adapter module ${q(module)}: lora_A ${fmtShape(a.shape)} and lora_B ${fmtShape(b.shape)} do not fit base weight ${fmtShape(w.shape)}${fifo ? ' (fan_in_fan_out)' : ''}: expected lora_A [r,${inn}] and lora_B [${out},r]`);
      }
      const rank = patternValue(cfg.rank_pattern, module) ?? cfg.r;
      if (rank !== r) throw new WeightspaceError('shape-mismatch', `adapter module ${q(module)}: lora_A has rank ${r} but adapter_config.json says ${rank}`);
      const alpha = patternValue(cfg.alpha_pattern, module) ?? cfg.lora_alpha;
      const scale = (spec.scale ?? 1) * (cfg.use_rslora ? alpha / Math.sqrt(r) : alpha / r);
      recipes.set(target, {
        name: target,
        kernel: 'lora-apply',
        params: { rank: r, scale, ...(fifo ? { fanInFanOut: true } : {}) },
        inputs: [inputOf(w), inputOf(b, fifo ? 'whole' : 'rows'), inputOf(a, 'whole')],
        shape: w.shape,
        dtype: outputDtype(w.dtype, spec.dtype),
      });
    }
    const { selected, rest } = selectTensors(base, spec.include, spec.exclude);
    const keep = new Set(selected);
    const tensors: TensorRecipe[] = [...selected, ...rest].map((name) => {
      const ref = base.tensors.get(name)!;
      const recipe = keep.has(name) ? recipes.get(name) : undefined;
      return recipe ?? { name, kernel: 'copy', params: {}, inputs: [inputOf(ref)], shape: ref.shape, dtype: outputDtype(ref.dtype, spec.dtype) };
    });
    return buildPlan({
      op: 'lora-apply',
      spec,
      outputs: [{ subdir: '', label: `base + lora (${recipes.size} modules)`, copyFilesFrom: base.dir, manifest: { lora: { adapter: spec.adapter, modules: [...recipes.keys()] } } }],
      tensors,
      ...(spec.shardSize ? { shardSize: spec.shardSize } : {}),
    });
  },
};
