/**
 * A JSON parser that reports duplicate object keys, which `JSON.parse` silently merges.
 * A safetensors header that names a tensor twice is ambiguous (which offsets win?), so
 * it is rejected rather than resolved by whichever parser the reader happens to use.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly position: number) {
    super(message);
  }
}

export class JsonDuplicateKeyError extends Error {
  constructor(readonly key: string, readonly path: string) {
    super(`duplicate key '${key}'${path ? ` in ${path}` : ''}`);
  }
}

export function parseStrictJson(text: string): JsonValue {
  let i = 0;
  const n = text.length;

  const ws = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at position ${i}`, i);
  };

  const str = (): string => {
    // delegate escapes to JSON.parse on the exact token: correct and fast
    const start = i;
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        try {
          return JSON.parse(text.slice(start, i)) as string;
        } catch {
          return fail('invalid string');
        }
      }
      if (c === 0x5c) i += 2;
      else if (c < 0x20) return fail('control character in string');
      else i++;
    }
    return fail('unterminated string');
  };

  const value = (path: string): JsonValue => {
    ws();
    if (i >= n) return fail('unexpected end');
    const c = text[i];
    if (c === '{') {
      i++;
      const out: { [k: string]: JsonValue } = Object.create(null) as { [k: string]: JsonValue };
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return out;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') return fail('expected a key');
        const key = str();
        if (seen.has(key)) throw new JsonDuplicateKeyError(key, path);
        seen.add(key);
        ws();
        if (text[i] !== ':') return fail("expected ':'");
        i++;
        out[key] = value(path ? `${path}.${key}` : key);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return out;
        }
        return fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const arr: JsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(path));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        return fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    return Number(m[0]);
  };

  const v = value('');
  ws();
  if (i !== n) fail('trailing characters');
  return v;
}
