/**
 * Task-arithmetic expressions: numbers, model names, `+ - * /`, unary minus, parentheses.
 * `base + 0.8*(math - base) - 0.5*(toxic - base)`.
 *
 * An expression must be affine in the models (scalars times models, sums of those, plus a
 * scalar): that is task arithmetic (Ilharco et al. 2023). It is reduced to one coefficient
 * per model and a constant, so the engine computes Σ cᵢθᵢ + b in one fused pass that reads
 * each model once. Errors point at the column.
 */
import { WeightspaceError, q } from './errors.js';

export type Expr =
  | { kind: 'num'; value: number; col: number }
  | { kind: 'model'; name: string; col: number }
  | { kind: 'neg'; arg: Expr; col: number }
  | { kind: 'bin'; op: '+' | '-' | '*' | '/'; left: Expr; right: Expr; col: number };

interface Token {
  kind: 'num' | 'name' | 'op' | 'lparen' | 'rparen' | 'end';
  text: string;
  col: number; // 1-based
}

function pointer(source: string, col: number): string {
  return `\n  ${source}\n  ${' '.repeat(Math.max(0, col - 1))}^`;
}

function syntaxError(source: string, col: number, what: string): WeightspaceError {
  return new WeightspaceError('expression-syntax', `expression: ${what} at column ${col}${pointer(source, col)}`);
}

function tokenize(source: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const col = i + 1;
    const num = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(source.slice(i));
    if (num) {
      out.push({ kind: 'num', text: num[0], col });
      i += num[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(i));
    if (name) {
      out.push({ kind: 'name', text: name[0], col });
      i += name[0].length;
      continue;
    }
    if ('+-*/'.includes(c)) out.push({ kind: 'op', text: c, col });
    else if (c === '(') out.push({ kind: 'lparen', text: c, col });
    else if (c === ')') out.push({ kind: 'rparen', text: c, col });
    else throw syntaxError(source, col, `unexpected character ${q(c)}`);
    i++;
  }
  out.push({ kind: 'end', text: '', col: source.length + 1 });
  return out;
}

/** Parses with the usual precedence: unary minus > * / > + -, left-associative. */
export function parseExpression(source: string): Expr {
  const tokens = tokenize(source);
  let p = 0;
  const peek = (): Token => tokens[p]!;
  const next = (): Token => tokens[p++]!;
  const describe = (t: Token): string => (t.kind === 'end' ? 'end of expression' : q(t.text));

  const primary = (): Expr => {
    const t = next();
    if (t.kind === 'num') return { kind: 'num', value: Number(t.text), col: t.col };
    if (t.kind === 'name') return { kind: 'model', name: t.text, col: t.col };
    if (t.kind === 'lparen') {
      const e = sum();
      const close = next();
      if (close.kind !== 'rparen') throw syntaxError(source, close.col, `expected ')' to close the '(' at column ${t.col}, found ${describe(close)}`);
      return e;
    }
    if (t.kind === 'op' && t.text === '-') return { kind: 'neg', arg: primary(), col: t.col };
    if (t.kind === 'op' && t.text === '+') return primary();
    throw syntaxError(source, t.col, `expected a number, a model name or '(', found ${describe(t)}`);
  };
  const product = (): Expr => {
    let left = primary();
    while (peek().kind === 'op' && (peek().text === '*' || peek().text === '/')) {
      const op = next();
      left = { kind: 'bin', op: op.text as '*' | '/', left, right: primary(), col: op.col };
    }
    return left;
  };
  const sum = (): Expr => {
    let left = product();
    while (peek().kind === 'op' && (peek().text === '+' || peek().text === '-')) {
      const op = next();
      left = { kind: 'bin', op: op.text as '+' | '-', left, right: product(), col: op.col };
    }
    return left;
  };

  const e = sum();
  const rest = peek();
  if (rest.kind !== 'end') throw syntaxError(source, rest.col, `unexpected ${describe(rest)}`);
  return e;
}

/** An affine combination: Σ coefficients[name]·θ_name + constant. */
export interface Affine {
  readonly coefficients: ReadonlyMap<string, number>;
  readonly constant: number;
}

/** Names of models an expression mentions, in order of first appearance. */
export function modelsOf(e: Expr): string[] {
  const out: string[] = [];
  const walk = (x: Expr): void => {
    if (x.kind === 'model') {
      if (!out.includes(x.name)) out.push(x.name);
    } else if (x.kind === 'neg') walk(x.arg);
    else if (x.kind === 'bin') {
      walk(x.left);
      walk(x.right);
    }
  };
  walk(e);
  return out;
}

/**
 * Reduces an expression to an affine combination of the known models. A model name not
 * in `known` is `unknown-model`; a product or quotient of models is `expression-not-linear`.
 */
export function linearize(source: string, e: Expr, known: readonly string[]): Affine {
  const go = (x: Expr): { c: Map<string, number>; k: number } => {
    switch (x.kind) {
      case 'num':
        return { c: new Map(), k: x.value };
      case 'model':
        if (!known.includes(x.name)) {
          throw new WeightspaceError('unknown-model', `expression: unknown model ${q(x.name)} at column ${x.col}: expected one of ${known.map(q).join(', ')}${pointer(source, x.col)}`);
        }
        return { c: new Map([[x.name, 1]]), k: 0 };
      case 'neg': {
        const a = go(x.arg);
        return scale(a, -1);
      }
      case 'bin': {
        const a = go(x.left);
        const b = go(x.right);
        if (x.op === '+' || x.op === '-') {
          const s = x.op === '+' ? 1 : -1;
          const c = new Map(a.c);
          for (const [n, v] of b.c) c.set(n, (c.get(n) ?? 0) + s * v);
          return { c, k: a.k + s * b.k };
        }
        if (x.op === '*') {
          if (a.c.size > 0 && b.c.size > 0) {
            throw new WeightspaceError('expression-not-linear', `expression: '*' at column ${x.col} multiplies two models; task arithmetic scales models by numbers${pointer(source, x.col)}`);
          }
          return a.c.size > 0 ? scale(a, b.k) : scale(b, a.k);
        }
        if (b.c.size > 0) {
          throw new WeightspaceError('expression-not-linear', `expression: '/' at column ${x.col} divides by a model; divide models by numbers only${pointer(source, x.col)}`);
        }
        if (b.k === 0) throw new WeightspaceError('expression-syntax', `expression: division by zero at column ${x.col}${pointer(source, x.col)}`);
        return scale(a, 1 / b.k);
      }
    }
  };
  const scale = (a: { c: Map<string, number>; k: number }, s: number): { c: Map<string, number>; k: number } => {
    const c = new Map<string, number>();
    for (const [n, v] of a.c) c.set(n, v * s);
    return { c, k: a.k * s };
  };
  const r = go(e);
  if (r.c.size === 0) {
    throw new WeightspaceError('expression-not-linear', `expression: mentions no model; it must combine at least one${pointer(source, 1)}`);
  }
  return { coefficients: r.c, constant: r.k + 0 }; // + 0 turns -0 into 0
}
