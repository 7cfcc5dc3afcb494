import { WeightspaceError, q } from '../../core/errors.js';
import type { LoraExtractSpec } from '../../core/job-spec.js';
import { moduleKindOf, type ModuleKind } from '../../core/module-kind.js';
import type { OutputRef, Plan, TensorJob } from '../../core/plan.js';
import { buildPlan, inputOf, openModels, outputDtype, requireCompatible, selectTensors, type TensorRecipe } from '../plan-builder.js';
import type { OpDef } from './op-def.js';

export const DEFAULT_LORA_TARGETS: readonly ModuleKind[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
export const ADAPTER_FILE = 'adapter_model.safetensors';
const DEFAULT_MAX_RANK = 128;

/** `model.layers.0.self_attn.q_proj.weight` → `model.layers.0.self_attn.q_proj` */
const moduleOf = (tensor: string): string => tensor.replace(/\.weight$/, '');
/** PEFT's key of a LoRA factor. */
export const peftKey = (module: string, factor: 'lora_A' | 'lora_B'): string => `base_model.model.${module}.${factor}.weight`;

/** Per-module result of an energy probe. */
export interface LoraProbeEntry {
  readonly tensor: string;
  readonly rank: number;
  readonly energy: number;
  readonly reached: boolean;
}

/** Smallest r with Σ_{i≤r} σᵢ² ≥ E·‖ΔW‖_F² (σ from the probe; the cap when not reached). */
export function rankForEnergy(sigma: readonly number[], frobenius2: number, energy: number, cap: number): { rank: number; energy: number; reached: boolean } {
  if (!(frobenius2 > 0)) return { rank: 1, energy: 1, reached: true };
  let kept = 0;
  for (let r = 1; r <= Math.min(cap, sigma.length); r++) {
    kept += sigma[r - 1]! ** 2;
    if (kept >= energy * frobenius2) return { rank: r, energy: kept / frobenius2, reached: true };
  }
  return { rank: Math.min(cap, sigma.length), energy: kept / frobenius2, reached: false };
}

/**
 * LoRA extraction: for every target module, ΔW = W_ft − W_base ≈ B·A (worker/kernels/
 * lora-extract.ts), written as a PEFT adapter directory. With --rank R every module gets R;
 * with --energy E the job first runs as a probe (a report of each module's spectrum, nothing
 * written), the client picks each module's smallest rank keeping E of ‖ΔW‖_F², and runs the
 * job again with those ranks (PEFT `rank_pattern`; `alpha_pattern` keeps every scale α/r = 1).
 */
export const loraExtractOp: OpDef<LoraExtractSpec> = {
  op: 'lora-extract',
  async plan(spec) {
    if ((spec.rank === undefined) === (spec.energy === undefined)) {
      throw new WeightspaceError('usage', 'lora extract needs exactly one of --rank R and --energy E');
    }
    const models = await openModels([{ name: 'base', location: spec.base }, { name: 'model', location: spec.model }]);
    const base = models.get('base')!;
    const ft = models.get('model')!;
    const targets = new Set(spec.targets ?? DEFAULT_LORA_TARGETS);
    const { selected } = selectTensors(base, spec.include, spec.exclude);
    const names = selected.filter((n) => n.endsWith('.weight') && targets.has(moduleKindOf(n)) && base.tensors.get(n)!.shape.length === 2);
    if (names.length === 0) throw new WeightspaceError('no-match', `no target module (${[...targets].join(',')}) among the selected tensors of ${q(spec.base)}`);
    requireCompatible({ name: 'base', ckpt: base }, [{ name: 'model', ckpt: ft }], names);
    const common = { seed: spec.seed ?? 0, ...(spec.split ? { split: spec.split } : {}), ...(spec.powerIters !== undefined ? { powerIters: spec.powerIters } : {}) };
    const probe = spec.energy !== undefined && spec.ranks === undefined;
    const cap = spec.maxRank ?? DEFAULT_MAX_RANK;
    const rankOf = (n: string): number => {
      const [m, k] = base.tensors.get(n)!.shape as [number, number];
      const r = probe ? cap : spec.rank ?? spec.ranks?.[n];
      if (r === undefined) throw new WeightspaceError('invalid-spec', `lora extract: no rank for ${q(n)} in 'ranks'`);
      return Math.min(r, m, k);
    };
    if (probe) {
      const tensors: TensorRecipe[] = names.map((n) => ({
        name: n, kernel: 'lora-extract', params: { ...common, rank: rankOf(n) },
        inputs: [inputOf(ft.tensors.get(n)!), inputOf(base.tensors.get(n)!)], shape: base.tensors.get(n)!.shape, dtype: 'F32', outputs: [],
      }));
      return buildPlan({ op: 'lora-extract', spec, outputs: [], tensors });
    }
    // two output tensors per module, computed by one job: plan both, then give A's job B's output too
    const tensors: TensorRecipe[] = [];
    const rankPattern: Record<string, number> = {};
    for (const n of names) {
      const ref = base.tensors.get(n)!;
      const [m, k] = ref.shape as [number, number];
      const r = rankOf(n);
      rankPattern[moduleOf(n)] = r;
      const dtype = outputDtype(ref.dtype, spec.dtype);
      const inputs = [inputOf(ft.tensors.get(n)!), inputOf(ref)];
      const params = { ...common, rank: r };
      tensors.push({ name: peftKey(moduleOf(n), 'lora_A'), kernel: 'lora-extract', params, inputs, shape: [r, k], dtype });
      tensors.push({ name: peftKey(moduleOf(n), 'lora_B'), kernel: 'lora-extract', params, inputs, shape: [m, r], dtype });
    }
    const ranks = Object.values(rankPattern);
    const r0 = spec.rank ?? Math.max(...ranks);
    const uniform = ranks.every((r) => r === r0);
    const config = {
      alpha_pattern: uniform ? {} : rankPattern,
      base_model_name_or_path: spec.base,
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      lora_alpha: r0,
      lora_dropout: 0,
      modules_to_save: null,
      peft_type: 'LORA',
      r: r0,
      rank_pattern: uniform ? {} : rankPattern,
      target_modules: [...new Set(names.map((n) => moduleOf(n).split('.').pop()!))].sort(),
      task_type: 'CAUSAL_LM',
      use_rslora: false,
    };
    const plan = buildPlan({
      op: 'lora-extract',
      spec,
      outputs: [{
        subdir: '', label: `lora adapter (${names.length} modules)`, copyFilesFrom: undefined,
        extraFiles: { 'adapter_config.json': JSON.stringify(config, null, 2) + '\n' },
        manifest: { lora: { ranks: rankPattern, ...(spec.energy !== undefined ? { energy: spec.energy } : {}) } },
      }],
      tensors,
      shardSize: Number.MAX_SAFE_INTEGER,
    });
    return asAdapterPlan(plan, names);
  },
  report(plan, results) {
    const spec = plan.spec as LoraExtractSpec;
    const jobs = plan.tasks.flatMap((t) => t.jobs).sort((a, b) => a.id - b.id);
    const modules = jobs.map((j) => {
      const r = results.get(j.id) as LoraExtractSummary;
      const tensor = j.name.startsWith('base_model.model.') ? `${j.name.slice('base_model.model.'.length).replace(/\.lora_A\.weight$/, '')}.weight` : j.name;
      const chosen = spec.energy !== undefined && spec.ranks === undefined
        ? rankForEnergy(r.sigma, r.frobenius2, spec.energy, (j.params as { rank: number }).rank)
        : undefined;
      return {
        tensor,
        rank: chosen?.rank ?? r.rank,
        relativeError: r.frobenius2 > 0 ? Math.sqrt((chosen ? Math.max(0, 1 - chosen.energy) * r.frobenius2 : r.residual2) / r.frobenius2) : 0,
        ...(chosen ? { energy: chosen.energy, reached: chosen.reached } : {}),
      };
    });
    return { probe: spec.energy !== undefined && spec.ranks === undefined, modules };
  },
};

/** The lora-extract kernel's result (worker/kernels/lora-extract.ts). */
interface LoraExtractSummary {
  readonly rank: number;
  readonly sigma: readonly number[];
  readonly frobenius2: number;
  readonly residual2: number;
}

export interface LoraExtractReport {
  /** true: an energy probe (nothing written), `modules[].rank` are the chosen ranks */
  readonly probe: boolean;
  readonly modules: { tensor: string; rank: number; relativeError: number; energy?: number; reached?: boolean }[];
}

/** Merges each module's lora_B job into its lora_A job (one SVD, two outputs) and names the shard as PEFT expects. */
function asAdapterPlan(plan: Plan, names: readonly string[]): Plan {
  const rename = (o: OutputRef): OutputRef => ({ ...o, file: ADAPTER_FILE });
  const known = new Set(names.map((n) => peftKey(moduleOf(n), 'lora_A')));
  const bJobs = new Map<string, TensorJob>();
  for (const t of plan.tasks) for (const j of t.jobs) if (j.name.endsWith('.lora_B.weight')) bJobs.set(j.name, j);
  const tasks = plan.tasks.map((t) => {
    const jobs: TensorJob[] = [];
    for (const j of t.jobs) {
      if (j.name.endsWith('.lora_B.weight')) continue;
      const b = bJobs.get(j.name.replace(/\.lora_A\.weight$/, '.lora_B.weight'))!;
      const p = j.params as { rank: number };
      const weightShape = [b.shape[0]!, j.shape[1]!];
      if (!known.has(j.name) || b.shape[1] !== p.rank) throw new WeightspaceError('internal', `lora plan: unpaired job ${q(j.name)}`);
      jobs.push({ ...j, shape: weightShape, outputs: [...j.outputs.map(rename), ...b.outputs.map(rename)] });
    }
    return { ...t, jobs };
  });
  return {
    ...plan,
    tasks,
    outputs: plan.outputs.map((o) => ({ ...o, shards: o.shards.map((s) => ({ ...s, file: ADAPTER_FILE })), index: undefined })),
  };
}
