/** Turning parsed CLI values into the shared parts of a job spec. */
import { parseDTypeName } from '../../core/dtypes.js';
import { WeightspaceError, q } from '../../core/errors.js';
import { parseSize } from '../../core/output-layout.js';
import { parseJobSpec, type JobSpec } from '../../core/job-spec.js';
import type { ParsedArgs } from './command.js';

export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function strs(args: ParsedArgs, name: string): string[] | undefined {
  const v = args.values[name];
  return Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : undefined;
}

export function required(args: ParsedArgs, name: string): string {
  const v = str(args, name);
  if (v === undefined || v === '') throw new WeightspaceError('usage', `missing --${name}`);
  return v;
}

export function num(args: ParsedArgs, name: string): number | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new WeightspaceError('usage', `--${name} expects a number, got ${q(v)}`);
  return n;
}

export function int(args: ParsedArgs, name: string): number | undefined {
  const n = num(args, name);
  if (n !== undefined && !Number.isInteger(n)) throw new WeightspaceError('usage', `--${name} expects a whole number, got ${n}`);
  return n;
}

export function numberList(args: ParsedArgs, name: string): number[] | undefined {
  const v = str(args, name);
  if (v === undefined) return undefined;
  return v.split(',').map((s) => {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n)) throw new WeightspaceError('usage', `--${name} expects numbers separated by commas, got ${q(v)}`);
    return n;
  });
}

/** `--out`, `--dtype`, `--shard-size`, `--include`, `--exclude`, `--force` as spec fields. */
export function outputFields(args: ParsedArgs): {
  out: string; dtype?: 'F32' | 'F16' | 'BF16'; shardSize?: number; include?: string[]; exclude?: string[]; force?: boolean;
} {
  const dtype = str(args, 'dtype');
  const shard = str(args, 'shard-size');
  const include = strs(args, 'include');
  const exclude = strs(args, 'exclude');
  return {
    out: required(args, 'out'),
    ...(dtype ? { dtype: parseDTypeName(dtype) } : {}),
    ...(shard ? { shardSize: parseSize(shard) } : {}),
    ...(include ? { include } : {}),
    ...(exclude ? { exclude } : {}),
    ...(args.values['force'] === true ? { force: true } : {}),
  };
}

/** `NAME=PATH` pairs (`--model base=./models/base`). */
export function namedPaths(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const i = v.indexOf('=');
    if (i <= 0 || i === v.length - 1) throw new WeightspaceError('usage', `--${flag} expects NAME=PATH, got ${q(v)}`);
    const name = v.slice(0, i);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new WeightspaceError('usage', `--${flag} name ${q(name)} must be an identifier (letters, digits, _)`);
    }
    if (name in out) throw new WeightspaceError('usage', `--${flag} names ${q(name)} twice`);
    out[name] = v.slice(i + 1);
  }
  return out;
}

/** Validates a spec built from CLI values (undefined fields dropped), so the CLI and files share one schema. */
export function specFrom<S extends JobSpec>(value: Record<string, unknown>): S {
  const clean = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
  return parseJobSpec(clean, `weightspace ${String(value['op'])}`) as S;
}
