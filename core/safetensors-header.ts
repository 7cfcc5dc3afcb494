/**
 * The safetensors header: parsing and validation exactly as the reference implementation
 * (huggingface/safetensors) does it, one error code per way a file can be wrong:
 *
 * - 8-byte little-endian header length N; N ≤ 100 MB; 8 + N ≤ file size
 * - the header is UTF-8 JSON, an object starting with '{' (trailing spaces allowed)
 * - `__metadata__`, when present, maps strings to strings
 * - every other key is a tensor: known dtype, shape of non-negative integers,
 *   data_offsets [begin, end] with begin ≤ end
 * - sorted by begin, offsets are contiguous from 0, and each byte length is numel × size
 *   (computed without overflow)
 * - the data section ends exactly at the end of the file
 * - a name given twice is rejected (JSON.parse would silently keep the last)
 */
import { DTYPE_SIZE, isKnownSafetensorsDType, isSubByteDType, type DType } from './dtypes.js';
import { WeightspaceError, fmtShape, q } from './errors.js';
import { JsonDuplicateKeyError, JsonSyntaxError, parseStrictJson, type JsonValue } from './strict-json.js';

export const MAX_HEADER_SIZE = 100_000_000;

export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** byte offsets relative to the start of the data section */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** size of the whole file in bytes */
  readonly fileSize: number;
  /** absolute byte position where the data section starts (8 + header length) */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** tensors in header (JSON) order */
  readonly tensors: readonly TensorEntry[];
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Reads the header length from the first 8 bytes and checks it against the file size. */
export function parseHeaderLength(file: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new WeightspaceError('header-too-small', `${q(file)}: file is ${fileSize} bytes, a safetensors file needs at least 8 (the header length)`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new WeightspaceError('header-too-large', `${q(file)}: header length ${n} exceeds the limit of ${MAX_HEADER_SIZE} bytes`);
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw new WeightspaceError('invalid-header-length', `${q(file)}: header length ${len} runs past the end of the file (${fileSize} bytes)`);
  }
  return len;
}

/** Parses and validates a header given its bytes (the N bytes after the length prefix). */
export function parseHeader(file: string, headerBytes: Uint8Array, fileSize: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new WeightspaceError('invalid-header-utf8', `${q(file)}: header is not valid UTF-8`);
  }
  if (!text.startsWith('{')) {
    throw new WeightspaceError('invalid-header-start', `${q(file)}: header must start with '{', found ${JSON.stringify(text.slice(0, 8))}`);
  }
  let json: JsonValue;
  try {
    json = parseStrictJson(text);
  } catch (err) {
    if (err instanceof JsonDuplicateKeyError) {
      throw new WeightspaceError('duplicate-tensor', `${q(file)}: tensor ${q(err.key)} is named twice in the header`);
    }
    const why = err instanceof JsonSyntaxError ? err.message : String(err);
    throw new WeightspaceError('invalid-header-json', `${q(file)}: header is not valid JSON: ${why}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new WeightspaceError('invalid-header-json', `${q(file)}: header must be a JSON object`);
  }

  const metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new WeightspaceError('invalid-metadata', `${q(file)}: __metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') {
          throw new WeightspaceError('invalid-metadata', `${q(file)}: __metadata__ value ${q(k)} must be a string, found ${JSON.stringify(v)}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseTensorInfo(file, name, value));
  }

  const dataStart = 8 + headerBytes.length;
  validateOffsets(file, tensors, fileSize - dataStart);
  return { fileSize, dataStart, metadata, tensors };
}

function parseTensorInfo(file: string, name: string, value: JsonValue): TensorEntry {
  const bad = (what: string): never => {
    throw new WeightspaceError('invalid-tensor-info', `${q(file)}: tensor ${q(name)}: ${what}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad('entry must be an object');
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') return bad('missing dtype');
  if (!isKnownSafetensorsDType(dtype)) {
    throw new WeightspaceError('unknown-dtype', `${q(file)}: tensor ${q(name)}: unknown dtype ${q(dtype)}`);
  }
  if (isSubByteDType(dtype)) {
    throw new WeightspaceError('unsupported-dtype', `${q(file)}: tensor ${q(name)}: dtype ${q(dtype)} (sub-byte) is not supported`);
  }
  if (!Array.isArray(shape)) return bad('shape must be an array');
  const dims: number[] = [];
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) return bad(`shape must hold non-negative integers, found ${JSON.stringify(shape)}`);
    if (!Number.isSafeInteger(d)) {
      throw new WeightspaceError('validation-overflow', `${q(file)}: tensor ${q(name)}: dimension ${d} overflows`);
    }
    dims.push(d);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) return bad('data_offsets must be [begin, end]');
  const [b, e] = offsets;
  if (typeof b !== 'number' || typeof e !== 'number' || !Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0) {
    return bad(`data_offsets must be non-negative integers, found ${JSON.stringify(offsets)}`);
  }
  if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e)) {
    throw new WeightspaceError('validation-overflow', `${q(file)}: tensor ${q(name)}: data_offsets ${JSON.stringify(offsets)} overflow`);
  }
  return { name, dtype: dtype as DType, shape: dims, begin: b, end: e };
}

function validateOffsets(file: string, tensors: readonly TensorEntry[], dataSize: number): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let start = 0;
  for (const t of sorted) {
    if (t.begin !== start || t.end < t.begin) {
      throw new WeightspaceError('invalid-offset', `${q(file)}: tensor ${q(t.name)}: data_offsets [${t.begin},${t.end}] expected to begin at ${start} (offsets must be contiguous)`);
    }
    let numel = 1;
    for (const d of t.shape) {
      numel *= d;
      if (!Number.isSafeInteger(numel)) {
        throw new WeightspaceError('validation-overflow', `${q(file)}: tensor ${q(t.name)}: shape ${fmtShape(t.shape)} overflows`);
      }
    }
    const nbytes = numel * DTYPE_SIZE[t.dtype];
    if (!Number.isSafeInteger(nbytes)) {
      throw new WeightspaceError('validation-overflow', `${q(file)}: tensor ${q(t.name)}: byte size of shape ${fmtShape(t.shape)} overflows`);
    }
    if (t.end - t.begin !== nbytes) {
      throw new WeightspaceError('tensor-size-mismatch', `${q(file)}: tensor ${q(t.name)}: ${t.dtype} ${fmtShape(t.shape)} needs ${nbytes} bytes, data_offsets give ${t.end - t.begin}`);
    }
    start = t.end;
  }
  if (start !== dataSize) {
    const code = start > dataSize ? 'truncated-file' : 'incomplete-data';
    const what = start > dataSize ? 'file is truncated' : 'data section has bytes no tensor covers';
    throw new WeightspaceError(code, `${q(file)}: ${what}: tensors cover ${start} bytes, data section has ${dataSize}`);
  }
}

/** Serialises a header: `__metadata__` first, then tensors in the given (data) order, padded with spaces so data starts 8-byte aligned. */
export function serializeHeader(metadata: Readonly<Record<string, string>>, tensors: readonly TensorEntry[]): Uint8Array {
  const obj: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) obj['__metadata__'] = metadata;
  for (const t of tensors) obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
  const json = Buffer.from(JSON.stringify(obj), 'utf8');
  const padded = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const out = new Uint8Array(8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length);
  return out;
}
