import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ProgressiveHash } from '../../coordinator/progressive-hash.js';
import { tmp } from '../helpers/models.js';

const SIZE = 13 * (1 << 20) + 12345;

function file(): { path: string; want: string } {
  const data = randomBytes(SIZE);
  const path = join(tmp('ws-hash-'), 'shard.safetensors');
  writeFileSync(path, data);
  return { path, want: createHash('sha256').update(data).digest('hex') };
}

describe('progressive sha256 of an out-of-order written file', () => {
  it('equals the whole-file hash whatever order the ranges complete in', async () => {
    const { path, want } = file();
    const h = new ProgressiveHash(path, SIZE);
    // ranges in a scrambled order, some overlapping, reported between event-loop turns
    const cuts = [0, 1000, 5 << 20, 7 << 20, 9 << 20, 11 << 20, SIZE];
    const order = [3, 0, 5, 1, 4, 2];
    for (const i of order) {
      h.written(cuts[i]!, cuts[i + 1]! - cuts[i]!);
      h.written(cuts[i]!, 10); // a re-write of the same bytes (a retried chunk)
      await tick();
    }
    expect(h.digest()).toBe(want);
  });
  it('hashes what was never reported at the end (gaps, or nothing at all)', () => {
    const { path, want } = file();
    const a = new ProgressiveHash(path, SIZE);
    a.written(4 << 20, 1 << 20);
    expect(a.digest()).toBe(want);
    expect(new ProgressiveHash(path, SIZE).digest()).toBe(want);
  });
});
