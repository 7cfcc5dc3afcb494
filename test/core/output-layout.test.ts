import { describe, expect, it } from 'vitest';
import { WeightspaceError } from '../../core/errors.js';
import { compareNames, parseSize, planOutputLayout } from '../../core/output-layout.js';
import { parseHeader } from '../../core/safetensors-header.js';

describe('output layout', () => {
  const tensors = [
    { name: 'model.layers.10.w', dtype: 'BF16' as const, shape: [4, 4] },
    { name: 'model.layers.2.w', dtype: 'BF16' as const, shape: [4, 4] },
    { name: 'model.layers.2.n', dtype: 'F32' as const, shape: [3] },
    { name: 'model.embed_tokens.weight', dtype: 'BF16' as const, shape: [8, 4] },
    { name: 'ids', dtype: 'I64' as const, shape: [5] },
  ];
  it('orders names naturally', () => {
    expect(['a.10.x', 'a.2.x', 'a.1.x'].sort(compareNames)).toEqual(['a.1.x', 'a.2.x', 'a.10.x']);
  });
  it('puts every tensor at an offset aligned to its element size, contiguous, with a valid header', () => {
    const l = planOutputLayout(tensors, 1e9);
    expect(l.shards).toHaveLength(1);
    expect(l.index).toBeUndefined();
    const s = l.shards[0]!;
    expect(s.file).toBe('model.safetensors');
    const h = parseHeader('x', s.header.subarray(8), s.size);
    expect(h.tensors.map((t) => t.name)).toEqual(['ids', 'model.layers.2.n', 'model.embed_tokens.weight', 'model.layers.2.w', 'model.layers.10.w']);
    for (const t of h.tensors) expect((h.dataStart + t.begin) % { I64: 8, F32: 4, BF16: 2 }[t.dtype as 'I64']).toBe(0);
    expect(s.header.length % 8).toBe(0);
    for (const t of h.tensors) expect(l.placement.get(t.name)!.offset).toBe(h.dataStart + t.begin);
  });
  it('shards in layer order above the shard size and writes an index that lists every tensor', () => {
    const l = planOutputLayout(tensors, 40);
    expect(l.shards.length).toBeGreaterThan(1);
    expect(l.shards.map((s) => s.file)[0]).toMatch(/^model-00001-of-0000\d\.safetensors$/);
    const index = JSON.parse(l.index!) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(Object.keys(index.weight_map).sort()).toEqual(tensors.map((t) => t.name).sort());
    expect(index.metadata.total_size).toBe(l.totalBytes);
    for (const s of l.shards) parseHeader(s.file, s.header.subarray(8), s.size);
  });
  it("bounds shards by elements with unit 'elements' (mergekit's out_shard_size), whatever each element's size", () => {
    // natural order: ids (5), embed (32), layers.2.n (3, F32: 12 bytes), layers.2.w (16), layers.10.w (16)
    const shardsOf = (l: ReturnType<typeof planOutputLayout>): string[][] => l.shards.map((s) => s.tensors.map((t) => t.name).sort());
    const byElements = planOutputLayout(tensors, 40, { format: 'pt' }, 'elements');
    // a shard closes before the tensor that would take it over 40: 5+32+3 = 40 | 16+16
    expect(shardsOf(byElements)).toEqual([
      ['ids', 'model.embed_tokens.weight', 'model.layers.2.n'],
      ['model.layers.10.w', 'model.layers.2.w'],
    ]);
    // the same limit in bytes splits elsewhere: ids is 40 bytes alone, embed 64, 12+32 = 44 > 40
    const byBytes = planOutputLayout(tensors, 40);
    expect(shardsOf(byBytes)).toEqual([['ids'], ['model.embed_tokens.weight'], ['model.layers.2.n'], ['model.layers.2.w'], ['model.layers.10.w']]);
    // a tensor above the limit gets a shard of its own
    expect(shardsOf(planOutputLayout(tensors, 20, { format: 'pt' }, 'elements'))).toEqual([
      ['ids'], ['model.embed_tokens.weight'], ['model.layers.2.n', 'model.layers.2.w'], ['model.layers.10.w'],
    ]);
  });
  it('parses sizes in decimal and binary units', () => {
    expect(parseSize('5GB')).toBe(5e9);
    expect(parseSize('500MB')).toBe(5e8);
    expect(parseSize('2GiB')).toBe(2 * 1024 ** 3);
    expect(parseSize('1e6')).toBe(1e6);
    expect(parseSize('123')).toBe(123);
    expect(() => parseSize('lots')).toThrow(WeightspaceError);
  });
});
