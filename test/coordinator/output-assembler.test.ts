/**
 * The coordinator's assembly of streamed chunks: whatever order the chunks arrive in, and
 * with retried chunks written twice, the shards hold the embedded run's bytes and
 * weightspace.json records their sha256 (chunks that continue the hashed prefix are hashed
 * from memory as they are written, the rest read back).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEmbedded } from '../../client/embedded-runner.js';
import { OutputAssembler } from '../../coordinator/output-assembler.js';
import { planJob } from '../../coordinator/ops/registry.js';
import type { TaskChunkMsg } from '../../core/cluster/wire-messages.js';
import { parseJobSpec } from '../../core/job-spec.js';
import type { Plan } from '../../core/plan.js';
import { TaskService } from '../../worker/task-service.js';
import { rng } from '../helpers/kernel-runner.js';

describe('OutputAssembler with streamed chunks', () => {
  let dir: string;
  let plan: Plan;
  let chunks: TaskChunkMsg[];
  let want: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weightspace-assembler-'));
    await runEmbedded(parseJobSpec({ op: 'synth', out: join(dir, 'base'), layers: 2, hidden: 256, intermediate: 512, vocab: 256 }), { threads: 0 });
    const spec = { op: 'eval', expr: '2*base', models: { base: join(dir, 'base') } };
    await runEmbedded(parseJobSpec({ ...spec, out: join(dir, 'embedded') }), { threads: 0 });
    want = readFileSync(join(dir, 'embedded', 'model.safetensors'));
    plan = await planJob(parseJobSpec({ ...spec, out: join(dir, 'unused') }));
    const service = await TaskService.create({ threads: 0, maxTasks: 1, roots: [dir] });
    chunks = [];
    try {
      for (const task of plan.tasks) {
        await service.run(task, {
          send: async (m) => { if ('chunk' in m) chunks.push(m.chunk); },
          offer: () => undefined,
        }, new AbortController().signal);
      }
    } finally {
      await service.close();
    }
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const assemble = async (order: readonly TaskChunkMsg[], out: string): Promise<{ bytes: Buffer; sha: string }> => {
    const a = OutputAssembler.prepare(plan, join(dir, out));
    for (const c of order) a.writeChunk(c);
    const [o] = await a.finalize();
    const bytes = readFileSync(join(o!.dir, 'model.safetensors'));
    const manifest = JSON.parse(readFileSync(join(o!.dir, 'weightspace.json'), 'utf8')) as { shards: Record<string, { sha256: string }> };
    return { bytes, sha: manifest.shards['model.safetensors']!.sha256 };
  };

  it('records the sha256 of the bytes written, in order and scrambled with retries', async () => {
    expect(chunks.length).toBeGreaterThan(4);
    const sha = createHash('sha256').update(want).digest('hex');
    const inOrder = await assemble([...chunks].sort((x, y) => x.offset - y.offset), 'in-order');
    expect(inOrder.bytes.equals(want)).toBe(true);
    expect(inOrder.sha).toBe(sha);
    // scrambled, and a third of the chunks sent again (a task re-run after its worker died)
    const r = rng(7);
    const scrambled = [...chunks, ...chunks.filter(() => r() < 0.33)].map((c) => ({ c, k: r() })).sort((x, y) => x.k - y.k).map((x) => x.c);
    const shuffled = await assemble(scrambled, 'scrambled');
    expect(shuffled.bytes.equals(want)).toBe(true);
    expect(shuffled.sha).toBe(sha);
  });
});
