/**
 * Refusal directions from activation means (Arditi et al. 2024): per layer,
 * r = normalize(μ_harmful − μ_harmless); with `orthogonalize`, the component along the
 * harmless mean is removed first, r ← r − (r·μ̂_harmless)μ̂_harmless, μ̂ = normalize(μ_harmless)
 * (grimjim's "projected abliteration"), then r is normalised. Pure math and validation: the
 * means arrive as decoded vectors named `layers.{i}`; reading and writing files is the
 * operation's business. All sums are in f64; directions are returned as f32.
 */
import { WeightspaceError, q } from './errors.js';

/** Tensor name of layer i's mean or direction in the files. */
export const layerEntry = (i: number): string => `layers.${i}`;
/** Tensor name of a single global direction. */
export const GLOBAL_DIRECTION = 'direction';

export interface DirectionOptions {
  readonly orthogonalize?: boolean;
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

function requireFinite(v: ArrayLike<number>, what: string): void {
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i]!)) throw new WeightspaceError('invalid-spec', `${what}: element ${i} is ${v[i]}: expected finite values`);
  }
}

/** One layer's direction; `label` names the layer in messages (e.g. 'layers.12'). */
export function directionFromMeans(harmful: ArrayLike<number>, harmless: ArrayLike<number>, label: string, options: DirectionOptions = {}): Float32Array {
  if (harmful.length !== harmless.length) {
    throw new WeightspaceError('shape-mismatch', `mean ${q(label)}: harmful mean has ${harmful.length} elements but harmless mean has ${harmless.length}`);
  }
  if (harmful.length === 0) throw new WeightspaceError('invalid-spec', `mean ${q(label)} is empty: expected a [hidden] vector`);
  requireFinite(harmful, `harmful mean ${q(label)}`);
  requireFinite(harmless, `harmless mean ${q(label)}`);
  const r = new Float64Array(harmful.length);
  for (let i = 0; i < r.length; i++) r[i] = harmful[i]! - harmless[i]!;
  if (norm(r) === 0) {
    throw new WeightspaceError('invalid-spec', `layer ${q(label)}: harmful and harmless means are equal: the direction is a zero vector`);
  }
  if (options.orthogonalize) {
    const h = norm(harmless);
    if (h === 0) throw new WeightspaceError('invalid-spec', `layer ${q(label)}: harmless mean is a zero vector: cannot orthogonalize against it`);
    let d = 0;
    for (let i = 0; i < r.length; i++) d += r[i]! * (harmless[i]! / h);
    for (let i = 0; i < r.length; i++) r[i]! -= d * (harmless[i]! / h);
    // r parallel to the harmless mean: nothing is left once that component is removed
    if (!(norm(r) > 1e-12 * Math.abs(d))) {
      throw new WeightspaceError('invalid-spec', `layer ${q(label)}: the direction is parallel to the harmless mean: nothing is left after orthogonalizing`);
    }
  }
  const n = norm(r);
  const out = new Float32Array(r.length);
  for (let i = 0; i < r.length; i++) out[i] = r[i]! / n;
  return out;
}

/** Layer index of an entry named `layers.{i}`, or undefined. */
function layerIndex(name: string): number | undefined {
  const m = /^layers\.(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export interface LayerDirectionOptions extends DirectionOptions {
  /** compute only this layer's direction, written as the global `direction` */
  readonly layer?: number;
}

/**
 * Directions for every layer (entries `layers.{i}`), or the one global `direction` from
 * layer `layer`. Both files must hold the same `layers.{i}` entries, all of one size.
 */
export function directionsFromMeans(
  harmful: ReadonlyMap<string, ArrayLike<number>>,
  harmless: ReadonlyMap<string, ArrayLike<number>>,
  options: LayerDirectionOptions = {},
): Map<string, Float32Array> {
  for (const [file, means] of [['harmful', harmful], ['harmless', harmless]] as const) {
    if (means.size === 0) throw new WeightspaceError('invalid-spec', `${file} means hold no tensors: expected entries named 'layers.{i}'`);
    for (const name of means.keys()) {
      if (layerIndex(name) === undefined) {
        throw new WeightspaceError('invalid-spec', `${file} means: entry ${q(name)} is not named 'layers.{i}'`);
      }
    }
  }
  for (const [a, b, an, bn] of [[harmful, harmless, 'harmful', 'harmless'], [harmless, harmful, 'harmless', 'harmful']] as const) {
    for (const name of a.keys()) {
      if (!b.has(name)) throw new WeightspaceError('invalid-spec', `layer ${q(name)} is in the ${an} means but missing from the ${bn} means`);
    }
  }
  const names = [...harmful.keys()].sort((x, y) => layerIndex(x)! - layerIndex(y)!);
  const size = harmful.get(names[0]!)!.length;
  for (const name of names) {
    for (const [file, means] of [['harmful', harmful], ['harmless', harmless]] as const) {
      const n = means.get(name)!.length;
      if (n !== size) {
        throw new WeightspaceError('shape-mismatch', `${file} mean ${q(name)} has ${n} elements, expected ${size} like ${q(names[0]!)}`);
      }
    }
  }
  if (options.layer !== undefined) {
    const name = layerEntry(options.layer);
    if (!harmful.has(name)) {
      const first = layerIndex(names[0]!)!;
      const last = layerIndex(names[names.length - 1]!)!;
      throw new WeightspaceError('invalid-spec', `layer ${options.layer} has no means: the files hold ${names.length} layers (${first}..${last})`);
    }
    return new Map([[GLOBAL_DIRECTION, directionFromMeans(harmful.get(name)!, harmless.get(name)!, name, options)]]);
  }
  const out = new Map<string, Float32Array>();
  for (const name of names) out.set(name, directionFromMeans(harmful.get(name)!, harmless.get(name)!, name, options));
  return out;
}

/**
 * Checks a direction read back from a file against the model it will project: the size of
 * the residual stream, finite, non-zero. `name` is the entry, `source` the file.
 */
export function checkDirection(direction: ArrayLike<number>, hidden: number, name: string, source: string): void {
  if (direction.length !== hidden) {
    throw new WeightspaceError('shape-mismatch', `direction ${q(name)} in ${q(source)} has ${direction.length} elements, expected ${hidden} (the model's hidden size)`);
  }
  requireFinite(direction, `direction ${q(name)} in ${q(source)}`);
  if (norm(direction) === 0) throw new WeightspaceError('invalid-spec', `direction ${q(name)} in ${q(source)} is a zero vector`);
}
