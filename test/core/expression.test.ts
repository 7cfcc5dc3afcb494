import { describe, expect, it } from 'vitest';
import { WeightspaceError } from '../../core/errors.js';
import { linearize, modelsOf, parseExpression } from '../../core/expression.js';

const lin = (src: string, known = ['base', 'a', 'b', 'math', 'toxic']) => {
  const r = linearize(src, parseExpression(src), known);
  return { c: Object.fromEntries(r.coefficients), k: r.constant };
};

function fails(src: string, code: string, col: number | undefined, known = ['base', 'a', 'b']): WeightspaceError {
  try {
    linearize(src, parseExpression(src), known);
  } catch (e) {
    const err = e as WeightspaceError;
    expect(err).toBeInstanceOf(WeightspaceError);
    expect(err.code).toBe(code);
    expect(err.exitCode).toBe(3);
    if (col !== undefined) {
      expect(err.message).toContain(`column ${col}`);
      // the caret sits under the column
      const lines = err.message.split('\n');
      expect(lines[lines.length - 1]!.indexOf('^')).toBe(2 + col - 1);
    }
    return err;
  }
  throw new Error(`expected ${code} for ${src}`);
}

describe('task arithmetic expressions', () => {
  it('reduces the classic forms to coefficients', () => {
    expect(lin('base + 0.8*(math - base) - 0.5*(toxic - base)')).toEqual({ c: { base: 0.7, math: 0.8, toxic: -0.5 }, k: 0 });
    expect(lin('base + 0.5*(a - base) + 0.5*(b - base)')).toEqual({ c: { base: 0, a: 0.5, b: 0.5 }, k: 0 });
    expect(lin('-a')).toEqual({ c: { a: -1 }, k: 0 });
    expect(lin('a - -b')).toEqual({ c: { a: 1, b: 1 }, k: 0 });
    expect(lin('(a + b) / 2')).toEqual({ c: { a: 0.5, b: 0.5 }, k: 0 });
    expect(lin('2 * 3 * a + 1')).toEqual({ c: { a: 6 }, k: 1 });
    expect(lin('a*2e-1')).toEqual({ c: { a: 0.2 }, k: 0 });
    expect(lin('a - b - base')).toEqual({ c: { a: 1, b: -1, base: -1 }, k: 0 });
    expect(lin('.5*a')).toEqual({ c: { a: 0.5 }, k: 0 });
  });
  it('keeps precedence: * binds tighter than +, unary minus tighter than *', () => {
    expect(lin('a + 2 * b')).toEqual({ c: { a: 1, b: 2 }, k: 0 });
    expect(lin('-2 * a')).toEqual({ c: { a: -2 }, k: 0 });
    expect(lin('a - b + base')).toEqual({ c: { a: 1, b: -1, base: 1 }, k: 0 });
  });
  it('lists the models it mentions', () => {
    expect(modelsOf(parseExpression('base + 0.8*(math - base)'))).toEqual(['base', 'math']);
  });
  it('syntax errors point at the column', () => {
    fails('base + )', 'expression-syntax', 8);
    fails('base + (a - b', 'expression-syntax', 14);
    fails('base $ a', 'expression-syntax', 6);
    fails('base a', 'expression-syntax', 6);
    fails('', 'expression-syntax', 1);
    fails('a / 0', 'expression-syntax', 3);
  });
  it('an unknown model names itself, its column and the known ones', () => {
    const e = fails('base + 0.5*(mth - base)', 'unknown-model', 13);
    expect(e.message).toContain("'mth'");
    expect(e.message).toContain("'base', 'a', 'b'");
  });
  it('products and quotients of models are not task arithmetic', () => {
    fails('a * b', 'expression-not-linear', 3);
    fails('2 / a', 'expression-not-linear', 3);
    fails('3 + 4', 'expression-not-linear', undefined);
  });
});
