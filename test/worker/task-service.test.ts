/**
 * The worker's task service without gRPC: chunks carry checksums and cover the output;
 * a full transport holds the executor back; a cancelled task stops even though its
 * transport never drains; inputs outside the storage roots are refused. Shared staging:
 * with the coordinator's token in place the bytes land in the staging files (the same
 * bytes the chunks carry) and only written notes go out; with another token, or with
 * staging turned off, chunks as before.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEmbedded } from '../../client/embedded-runner.js';
import { OutputAssembler } from '../../coordinator/output-assembler.js';
import { planJob } from '../../coordinator/ops/registry.js';
import { chunkChecksum } from '../../core/cluster/checksum.js';
import { STAGING_TOKEN_FILE, newToken, writeToken } from '../../core/cluster/volume-token.js';
import { STAGED_PIECE_BYTES, type TaskChunkMsg, type TaskWrittenMsg } from '../../core/cluster/wire-messages.js';
import { WeightspaceError } from '../../core/errors.js';
import { parseJobSpec } from '../../core/job-spec.js';
import type { LayerTask, Plan } from '../../core/plan.js';
import type { StagingTarget } from '../../worker/staging-writer.js';
import { TaskService, type TaskMessageOut } from '../../worker/task-service.js';

async function runTask(service: TaskService, task: LayerTask, staging?: StagingTarget): Promise<TaskMessageOut[]> {
  const msgs: TaskMessageOut[] = [];
  // written notes are offered (small, sent without waiting); progress is left out
  await service.run(task, { send: async (m) => { msgs.push(m); }, offer: (m) => { if (!('progress' in m)) msgs.push(m); } }, new AbortController().signal, staging);
  return msgs;
}

const chunksOf = (msgs: readonly TaskMessageOut[]): TaskChunkMsg[] => msgs.flatMap((m) => ('chunk' in m ? [m.chunk] : []));
const notesOf = (msgs: readonly TaskMessageOut[]): TaskWrittenMsg[] => msgs.flatMap((m) => ('written' in m ? [m.written] : []));

describe('TaskService', () => {
  let dir: string;
  let plan: Plan;
  let task: LayerTask;
  let service: TaskService;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weightspace-task-'));
    await runEmbedded(parseJobSpec({ op: 'synth', out: join(dir, 'base'), layers: 1, hidden: 512, intermediate: 1024, vocab: 256 }), { threads: 0 });
    plan = await planJob(parseJobSpec({ op: 'eval', expr: '2*base', models: { base: join(dir, 'base') }, out: join(dir, 'out') }));
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

  describe('shared staging', () => {
    let staging: OutputAssembler;
    let target: StagingTarget;
    let chunks: TaskChunkMsg[];

    beforeAll(async () => {
      chunks = chunksOf(await runTask(service, task));
      staging = OutputAssembler.prepare(plan, join(dir, 'staged'));
      target = { dir: staging.tmp, token: newToken(), subdirs: plan.outputs.map((o) => o.subdir) };
      writeToken(staging.tmp, STAGING_TOKEN_FILE, target.token);
    });

    afterAll(() => staging.abort());

    it('writes the bytes into the staging files and sends only written notes, then done', async () => {
      const msgs = await runTask(service, task, target);
      expect(chunksOf(msgs)).toHaveLength(0);
      const notes = notesOf(msgs);
      expect(notes.reduce((a, n) => a + n.length, 0)).toBe(task.outputBytes);
      // one note per tensor (none larger than a piece), written before done
      expect(notes.length).toBe(task.jobs.length);
      for (const n of notes) expect(n.length).toBeLessThanOrEqual(STAGED_PIECE_BYTES);
      expect(msgs.findIndex((m) => 'done' in m)).toBe(msgs.length - 1);
      const file = readFileSync(staging.shardPath(0, notes[0]!.file));
      for (const n of notes) expect(chunkChecksum(file.subarray(n.offset, n.offset + n.length))).toBe(n.crc32);
      // the same bytes the chunks carry, at the same offsets
      for (const c of chunks) expect(Buffer.compare(file.subarray(c.offset, c.offset + c.bytes.length), Buffer.from(c.bytes))).toBe(0);
      const last = msgs[msgs.length - 1]!;
      expect('done' in last && last.done.tensorsDone).toBe(task.jobs.length);
    });

    it('sends chunks when the token in the staging directory is not the one it was given', async () => {
      const reasons: string[] = [];
      const told = await TaskService.create({ threads: 0, maxTasks: 1, roots: [dir], onStagingFallback: (_t, _s, why) => reasons.push(why) });
      try {
        const msgs = await runTask(told, task, { ...target, token: newToken() });
        expect(notesOf(msgs)).toHaveLength(0);
        expect(chunksOf(msgs).reduce((a, c) => a + c.bytes.length, 0)).toBe(task.outputBytes);
        expect(reasons).toHaveLength(1);
        expect(reasons[0]).toContain('no staging token');
        // a directory that does not exist here either
        expect(notesOf(await runTask(told, task, { ...target, dir: join(dir, 'elsewhere') }))).toHaveLength(0);
      } finally {
        await told.close();
      }
    });

    it('sends chunks with shared staging turned off (--no-shared-staging)', async () => {
      const off = await TaskService.create({ threads: 0, maxTasks: 1, roots: [dir], sharedStaging: false });
      try {
        const msgs = await runTask(off, task, target);
        expect(notesOf(msgs)).toHaveLength(0);
        expect(chunksOf(msgs).reduce((a, c) => a + c.bytes.length, 0)).toBe(task.outputBytes);
      } finally {
        await off.close();
      }
    });

    it('refuses an output subdirectory that climbs out of the staging directory', async () => {
      const msgs = await runTask(service, task, { ...target, subdirs: plan.outputs.map(() => '../x') });
      expect(notesOf(msgs)).toHaveLength(0);
      expect(chunksOf(msgs).length).toBeGreaterThan(0);
    });
  });
});
