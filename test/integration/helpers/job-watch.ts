/**
 * Follows a cluster job's events in the background for the tests: which worker ran which
 * task, how many tasks finished, and promises that resolve when a condition is met.
 */
import type { ClusterJobEvent } from '../../../client/cluster-job-events.js';
import type { JobHandle } from '../../../client/job-handle.js';

export class JobWatch {
  readonly events: ClusterJobEvent[] = [];
  readonly started = new Map<string, string[]>();
  readonly finishedBy = new Map<string, string>();
  tasks = 0;
  readonly ended: Promise<void>;
  private readonly waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(handle: JobHandle) {
    this.ended = (async () => {
      for await (const e of handle.events) {
        this.events.push(e);
        if (e.type === 'planned') this.tasks = e.tasks;
        if (e.type === 'task-started') this.started.set(e.taskId, [...(this.started.get(e.taskId) ?? []), e.workerId]);
        if (e.type === 'task-finished') this.finishedBy.set(e.taskId, e.workerId);
        for (const w of [...this.waiters]) {
          if (w.test()) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      }
    })();
  }

  get finished(): number {
    return this.finishedBy.size;
  }

  /** Workers that started at least one task. */
  workersUsed(): Set<string> {
    return new Set([...this.started.values()].flat());
  }

  /** Tasks started but not finished, by worker. */
  runningOn(workerId: string): string[] {
    return [...this.started.entries()].filter(([t, ws]) => ws[ws.length - 1] === workerId && !this.finishedBy.has(t)).map(([t]) => t);
  }

  /** Resolves when `test` holds (checked after each event), or rejects after `timeoutMs`. */
  until(what: string, test: () => boolean, timeoutMs = 60_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.waiters.push({ test, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }
}
