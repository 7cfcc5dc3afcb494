/**
 * Tensor-name patterns: globs (`*` any run of characters, dots included; `?` one character;
 * `{a,b}` alternatives; `[0-9]` classes) or, written as `/…/`, regular expressions.
 */
import { WeightspaceError, q } from './errors.js';

export function globToRegExp(pattern: string): RegExp {
  if (pattern.length > 2 && pattern.startsWith('/') && pattern.endsWith('/')) {
    try {
      return new RegExp(pattern.slice(1, -1));
    } catch (err) {
      throw new WeightspaceError('usage', `invalid regular expression ${q(pattern)}: ${(err as Error).message}`);
    }
  }
  let re = '';
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '{') {
      re += '(?:';
      depth++;
    } else if (c === '}' && depth > 0) {
      re += ')';
      depth--;
    } else if (c === ',' && depth > 0) re += '|';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new WeightspaceError('usage', `unclosed '[' in pattern ${q(pattern)}`);
      re += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  if (depth !== 0) throw new WeightspaceError('usage', `unclosed '{' in pattern ${q(pattern)}`);
  return new RegExp(`^${re}$`);
}

/** A predicate over names from include and exclude patterns (include: all when empty). */
export function nameFilter(include: readonly string[] = [], exclude: readonly string[] = []): (name: string) => boolean {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (name) => (inc.length === 0 || inc.some((r) => r.test(name))) && !exc.some((r) => r.test(name));
}

/** Fails with `no-match` if any pattern matches none of `names` (a typo should not silently select nothing). */
export function requireMatches(patterns: readonly string[], names: readonly string[], what: string): void {
  for (const p of patterns) {
    const r = globToRegExp(p);
    if (!names.some((n) => r.test(n))) {
      const sample = names.slice(0, 3).map(q).join(', ');
      throw new WeightspaceError('no-match', `${what} pattern ${q(p)} matches no tensor (names look like ${sample})`);
    }
  }
}
