/**
 * One test per way a safetensors file can be wrong (after the reference implementation's
 * attacks/ and its validation rules), each on byte literals, each checking the code and that
 * the message names the file and the tensor.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader } from '../../core/checkpoint.js';
import { WeightspaceError, type ErrorCode } from '../../core/errors.js';
import { parseHeader, serializeHeader } from '../../core/safetensors-header.js';
import { stFile } from '../helpers/safetensors-bytes.js';

const dir = mkdtempSync(join(tmpdir(), 'ws-st-'));
let n = 0;
function write(bytes: Uint8Array): string {
  const p = join(dir, `f${n++}.safetensors`);
  writeFileSync(p, bytes);
  return p;
}

async function rejects(bytes: Uint8Array, code: ErrorCode, ...mentions: string[]): Promise<void> {
  const file = write(bytes);
  let err: unknown;
  try {
    await readSafetensorsHeader(file);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(WeightspaceError);
  const e = err as WeightspaceError;
  expect(e.code).toBe(code);
  expect(e.exitCode).toBe(3);
  expect(e.message).toContain(file);
  for (const m of mentions) expect(e.message).toContain(m);
}

const t = (dtype: string, shape: number[], begin: number, end: number): unknown => ({ dtype, shape, data_offsets: [begin, end] });

describe('safetensors header validation', () => {
  it('accepts a valid file, with metadata and trailing-space padding', async () => {
    const header = new TextEncoder().encode(JSON.stringify({ __metadata__: { format: 'pt' }, a: t('F32', [2], 0, 8), b: t('BF16', [1, 2], 8, 12) }) + '   ');
    const h = await readSafetensorsHeader(write(stFile(null, 12, { rawHeader: header })));
    expect(h.tensors.map((x) => x.name)).toEqual(['a', 'b']);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.dataStart).toBe(8 + header.length);
  });
  it('accepts an empty header object and zero-sized tensors', async () => {
    await expect(readSafetensorsHeader(write(stFile({})))).resolves.toBeTruthy();
    const h = await readSafetensorsHeader(write(stFile({ z: t('F32', [0, 4], 0, 0), a: t('F16', [1], 0, 2) }, 2)));
    expect(h.tensors).toHaveLength(2);
  });
  it('header-too-small: fewer than 8 bytes', () => rejects(new Uint8Array([1, 0, 0]), 'header-too-small'));
  it('header-too-large: length over 100 MB', () => rejects(stFile({}, 0, { lengthOverride: 100_000_001n }), 'header-too-large', '100000000'));
  it('header-too-large: a u64 length near 2^64 does not overflow', () => rejects(stFile({}, 0, { lengthOverride: 0xffffffffffffffffn }), 'header-too-large'));
  it('invalid-header-length: length past the end of the file', () => rejects(stFile({}, 0, { lengthOverride: 1000n }), 'invalid-header-length'));
  it('invalid-header-utf8', () => rejects(stFile(null, 0, { rawHeader: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }), 'invalid-header-utf8'));
  it('invalid-header-start: not an object', () => rejects(stFile(null, 0, { rawHeader: new TextEncoder().encode(' {}') }), 'invalid-header-start'));
  it('invalid-header-json: broken JSON', () => rejects(stFile(null, 0, { rawHeader: new TextEncoder().encode('{"a": ') }), 'invalid-header-json'));
  it('duplicate-tensor: a name given twice', () => rejects(stFile(null, 16, { rawHeader: new TextEncoder().encode('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}') }), 'duplicate-tensor', "'w'"));
  it('invalid-metadata: non-string metadata value', () => rejects(stFile({ __metadata__: { step: 3 } }), 'invalid-metadata', "'step'"));
  it('invalid-tensor-info: negative dimension', () => rejects(stFile({ w: t('F32', [-1], 0, 0) }), 'invalid-tensor-info', "'w'"));
  it('invalid-tensor-info: missing data_offsets', () => rejects(stFile({ w: { dtype: 'F32', shape: [1] } }, 4), 'invalid-tensor-info', "'w'"));
  it('unknown-dtype', () => rejects(stFile({ w: t('F12', [1], 0, 2) }, 2), 'unknown-dtype', "'F12'", "'w'"));
  it('unsupported-dtype: sub-byte F4', () => rejects(stFile({ w: t('F4', [2], 0, 1) }, 1), 'unsupported-dtype', "'w'"));
  it('invalid-offset: a gap between tensors', () => rejects(stFile({ a: t('F32', [1], 0, 4), b: t('F32', [1], 8, 12) }, 12), 'invalid-offset', "'b'"));
  it('invalid-offset: overlapping tensors', () => rejects(stFile({ a: t('F32', [2], 0, 8), b: t('F32', [1], 4, 8) }, 8), 'invalid-offset'));
  it('invalid-offset: end before begin', () => rejects(stFile({ a: t('F32', [0], 4, 0) }, 4), 'invalid-offset', "'a'"));
  it('tensor-size-mismatch: byte length is not numel × size', () => rejects(stFile({ w: t('BF16', [3], 0, 4) }, 4), 'tensor-size-mismatch', "'w'", '6'));
  it('validation-overflow: shape product beyond 2^53', () => rejects(stFile({ w: t('F32', [2 ** 30, 2 ** 30, 2 ** 10], 0, 4) }, 4), 'validation-overflow', "'w'"));
  it('validation-overflow: offsets beyond 2^53', () => rejects(stFile(null, 0, { rawHeader: new TextEncoder().encode('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551615]}}') }), 'validation-overflow', "'w'"));
  it('incomplete-data: bytes after the last tensor', () => rejects(stFile({ a: t('F32', [1], 0, 4) }, 8), 'incomplete-data'));
  it('truncated-file: data section shorter than the tensors', () => rejects(stFile({ a: t('F32', [4], 0, 16) }, 10), 'truncated-file'));
});

describe('serializeHeader', () => {
  it('pads to 8 bytes with spaces and round-trips through the validating parser', () => {
    const tensors = [{ name: 'x', dtype: 'BF16' as const, shape: [3], begin: 0, end: 6 }];
    const h = serializeHeader({ format: 'pt' }, tensors);
    expect(h.length % 8).toBe(0);
    const len = Number(new DataView(h.buffer).getBigUint64(0, true));
    expect(len).toBe(h.length - 8);
    expect(h[h.length - 1]).toBe(0x20);
    const parsed = parseHeader('mem', h.subarray(8), h.length + 6);
    expect(parsed.tensors).toEqual(tensors);
    expect(parsed.metadata).toEqual({ format: 'pt' });
  });
});
