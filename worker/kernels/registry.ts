/**
 * The kernel registry: a typed constant map, filled explicitly (nothing registers by being
 * imported). A name missing here is a type error against core/kernel-contract.ts.
 */
import type { KernelDef, KernelName } from '../../core/kernel-contract.js';
import { WeightspaceError, q } from '../../core/errors.js';
import { copyKernel } from './copy.js';
import { linearKernel } from './linear.js';
import { analyzeKernel } from './analyze.js';
import { loraApplyKernel } from './lora-apply.js';
import { loraExtractKernel } from './lora-extract.js';
import { monitorKernel } from './monitor.js';
import { projectKernel } from './project.js';
import { synthKernel } from './synth.js';
import { taskArithmeticKernel } from './task-arithmetic.js';
import { slerpKernel } from './slerp.js';
import { nuslerpKernel } from './nuslerp.js';
import { multislerpKernel } from './multislerp.js';
import { karcherKernel } from './karcher.js';
import { modelStockKernel } from './model-stock.js';
import { sceKernel } from './sce.js';
import { nearswapKernel } from './nearswap.js';
import { ramKernel } from './ram.js';

export const KERNELS = {
  copy: copyKernel,
  linear: linearKernel,
  monitor: monitorKernel,
  project: projectKernel,
  analyze: analyzeKernel,
  'lora-extract': loraExtractKernel,
  'lora-apply': loraApplyKernel,
  synth: synthKernel,
  'task-arithmetic': taskArithmeticKernel,
  slerp: slerpKernel,
  nuslerp: nuslerpKernel,
  multislerp: multislerpKernel,
  karcher: karcherKernel,
  'model-stock': modelStockKernel,
  sce: sceKernel,
  nearswap: nearswapKernel,
  ram: ramKernel,
} satisfies Partial<Record<KernelName, KernelDef<never, unknown>>>;

export function kernelFor(name: KernelName): KernelDef {
  const k = (KERNELS as Partial<Record<KernelName, KernelDef<never, unknown>>>)[name];
  if (!k) throw new WeightspaceError('internal', `kernel ${q(name)} is not registered`);
  return k as unknown as KernelDef;
}
