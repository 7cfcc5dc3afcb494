/**
 * The worker's task service without gRPC: chunks carry checksums and cover the output;
 * a full transport holds the executor back; a cancelled task stops even though its
 * transport never drains; inputs outside the storage roots are refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEmbedded } from '../../client/embedded-runner.js';
import { planJob } from '../../coordinator/ops/registry.js';
import { chunkChecksum } from '../../core/cluster/checksum.js';
import { WeightspaceError } from '../../core/errors.js';
import { parseJobSpec } from '../../core/job-spec.js';
import type { LayerTask } from '../../core/plan.js';
import { TaskService, type TaskMessageOut } from '../../worker/task-service.js';

describe('TaskService', () => {
  let dir: string;
  let task: LayerTask;
  let service: TaskService;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weightspace-task-'));
    await runEmbedded(parseJobSpec({ op: 'synth', out: join(dir, 'base'), layers: 1, hidden: 512, intermediate: 1024, vocab: 256 }), { threads: 0 });
    const plan = await planJob(parseJobSpec({ op: 'eval', expr: '2*base', models: { base: join(dir, 'base') }, out: join(dir, 'out') }));
    task = plan.tasks.find((t) => t.layer === 'layer.0')!;
    service = await TaskService.create({ threads: 0, maxTasks: 2, roots: [dir] });
  });

  afterAll(async () => {
    await service.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('streams checksummed chunks covering every output byte, then done', async () => {
    const msgs: TaskMessageOut[] = [];
    await service.run(task, { send: async (m) => { msgs.push(m); }, offer: () => undefined }, new AbortController().signal);
    const chunks = msgs.flatMap((m) => ('chunk' in m ? [m.chunk] : []));
    for (const c of chunks) expect(c.crc32).toBe(chunkChecksum(c.bytes));
    expect(chunks.reduce((a, c) => a + c.bytes.length, 0)).toBe(task.outputBytes);
    const last = msgs[msgs.length - 1]!;
    expect('done' in last && last.done.tensorsDone).toBe(task.jobs.length);
  });

  it('holds the executor back while the transport is full, and stops when cancelled', async () => {
    const ac = new AbortController();
    let sends = 0;
    const run = service.run(task, {
      // a transport that is full and never drains; rejects once the call is cancelled
      send: () => {
        sends++;
        return new Promise((_, reject) => ac.signal.addEventListener('abort', () => reject(new WeightspaceError('cancelled', 'call cancelled'))));
      },
      offer: () => undefined,
    }, ac.signal);
    await new Promise((r) => setTimeout(r, 300));
    // inline pool: parallelism 1, so at most a couple of blocks got through before the stall
    expect(sends).toBeGreaterThan(0);
    expect(sends).toBeLessThanOrEqual(3);
    const before = sends;
    ac.abort();
    await expect(run).rejects.toMatchObject({ code: 'cancelled' });
    await new Promise((r) => setTimeout(r, 100));
    expect(sends).toBe(before);
    expect(service.running).toBe(0);
  });

  it('refuses inputs outside its storage roots', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'weightspace-root-'));
    const confined = await TaskService.create({ threads: 0, maxTasks: 1, roots: [elsewhere] });
    try {
      await expect(confined.run(task, { send: async () => undefined, offer: () => undefined }, new AbortController().signal))
        .rejects.toMatchObject({ code: 'read-failed', message: expect.stringContaining("outside this worker's storage roots") });
    } finally {
      await confined.close();
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});
