/**
 * Layer ranges ('4-12', '7') and mergekit-style gradients: a list of values spread evenly
 * over the layers, linearly interpolated in between (mergekit's `gradient` parameters).
 */
import { WeightspaceError, q } from '../../core/errors.js';

export interface LayerRange {
  readonly from: number;
  readonly to: number;
}

export function parseLayerRange(text: string, flag = '--layers'): LayerRange {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!m) throw new WeightspaceError('usage', `${flag} expects a layer range like '4-12' or '7', got ${q(text)}`);
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (to < from) throw new WeightspaceError('usage', `${flag} ${q(text)}: the range ends before it starts`);
  return { from, to };
}

export function inRange(layer: number | undefined, range: LayerRange | undefined): boolean {
  return range === undefined || (layer !== undefined && layer >= range.from && layer <= range.to);
}

/** Value of a gradient at layer `i` of `count` layers (a scalar is constant). */
export function gradientAt(values: number | readonly number[], i: number, count: number): number {
  if (typeof values === 'number') return values;
  if (values.length === 1 || count <= 1) return values[0]!;
  const t = (i / (count - 1)) * (values.length - 1);
  const k = Math.min(values.length - 2, Math.floor(t));
  const f = t - k;
  return values[k]! * (1 - f) + values[k + 1]! * f;
}
