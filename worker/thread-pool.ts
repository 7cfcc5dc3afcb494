/**
 * A pool of worker_threads that run blocks. With zero threads, blocks run inline on the
 * calling thread (handy for tests and debugging; same results, by construction).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { WeightspaceError } from '../core/errors.js';
import { BlockRunner, type BlockRequest, type BlockResult } from './block-runner.js';
import type { CloseOutputsRequest } from './pool-thread.js';

interface Pending {
  resolve: (r: BlockResult) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  readonly worker: Worker;
  inflight: number;
}

/** Finds the compiled thread script, also when running from TypeScript sources (tests). */
function threadScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'pool-thread.js');
  const compiled = join(dirname(dirname(here)), 'dist', 'worker', 'pool-thread.js');
  if (!existsSync(compiled)) {
    throw new WeightspaceError('internal', `thread script ${compiled} is missing: run 'npm run build' first`);
  }
  return compiled;
}

export class ThreadPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private inline: BlockRunner | undefined;
  private closed = false;
  private failure: Error | undefined;

  private constructor(readonly size: number) {
    this.slots = [];
    if (size === 0) {
      this.inline = new BlockRunner();
      return;
    }
    const script = threadScript();
    for (let i = 0; i < size; i++) {
      const worker = new Worker(script);
      const slot: Slot = { worker, inflight: 0 };
      worker.on('message', (msg: { id: number; result?: BlockResult; error?: { code: string; message: string } }) => {
        slot.inflight--;
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
        else p.resolve(msg.result!);
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new WeightspaceError('internal', `a pool thread exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  /** Starts `size` threads (0: run inline). */
  static async create(size: number): Promise<ThreadPool> {
    if (!Number.isInteger(size) || size < 0 || size > 256) {
      throw new WeightspaceError('usage', `--threads must be a whole number from 0 to 256, got ${size}`);
    }
    const pool = new ThreadPool(size);
    await Promise.all(pool.slots.map((s) => new Promise<void>((resolve, reject) => {
      s.worker.once('online', () => resolve());
      s.worker.once('error', reject);
    })));
    return pool;
  }

  /**
   * How many blocks to keep in flight to keep every thread busy: sixteen a thread, since the
   * main thread answers them between its own work (hashing the output a slice at a time), and a
   * linear block takes about 1 ms; with four, the threads sat idle 40% of a linear merge.
   */
  get parallelism(): number {
    return Math.max(1, this.size * 16);
  }

  run(req: BlockRequest): Promise<BlockResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.inline) return this.inline.run(req);
    let best = this.slots[0]!;
    for (const s of this.slots) if (s.inflight < best.inflight) best = s;
    const id = this.nextId++;
    best.inflight++;
    return new Promise<BlockResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      best.worker.postMessage({ id, req });
    });
  }

  /** Asks every thread to close its output files (they are about to be renamed). */
  closeOutputs(): void {
    if (this.inline) this.inline.closeOutputs();
    for (const s of this.slots) s.worker.postMessage('close-outputs');
  }

  /**
   * Closes every thread's output files and resolves once all have: what the threads wrote
   * is then visible to an open elsewhere, even on NFS (close-to-open consistency). Threads
   * reopen a file on their next write to it.
   */
  async closeOutputsAndWait(): Promise<void> {
    if (this.inline) {
      this.inline.closeOutputs();
      return;
    }
    if (this.failure) throw this.failure;
    await Promise.all(this.slots.map((slot) => new Promise<BlockResult>((resolve, reject) => {
      const id = this.nextId++;
      slot.inflight++;
      this.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, closeOutputs: true } satisfies CloseOutputsRequest);
    })));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.inline?.close();
    await Promise.all(this.slots.map((s) => new Promise<void>((resolve) => {
      s.worker.once('exit', () => resolve());
      s.worker.postMessage('close');
      setTimeout(() => void s.worker.terminate(), 2000).unref();
    })));
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
