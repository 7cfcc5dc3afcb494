import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkerRecord } from '../../core/cluster/control-plane.js';
import type { NatsLink } from '../../core/cluster/nats-link.js';
import { REGISTRY_LIMITS, WorkerRegistry } from '../../coordinator/worker-registry.js';
import { sleep, waitFor } from '../integration/helpers/wait.js';

/** The registry bucket's calls the registry makes, in memory; `stallNext` key listings never end until stopped. */
class FakeBucket {
  readonly records = new Map<string, { revision: number; created: Date; value: WorkerRecord }>();
  stallNext = 0;
  stopped = 0;

  beat(id: string): void {
    const prev = this.records.get(id);
    this.records.set(id, {
      revision: (prev?.revision ?? 0) + 1,
      created: prev?.created ?? new Date(),
      value: { id, address: `127.0.0.1:${1000 + this.records.size}`, threads: 1, maxTasks: 2, state: 'ready', beat: (prev?.value.beat ?? 0) + 1, version: 'test' },
    });
  }

  async keys(): Promise<AsyncIterable<string> & { stop(): void }> {
    const stall = this.stallNext > 0;
    if (stall) this.stallNext--;
    const keys = [...this.records.keys()];
    let release = (): void => undefined;
    const released = new Promise<void>((r) => (release = r));
    return {
      stop: () => {
        this.stopped++;
        release();
      },
      async *[Symbol.asyncIterator]() {
        if (stall) {
          await released;
          return;
        }
        yield* keys;
      },
    };
  }

  async get(key: string): Promise<unknown> {
    const r = this.records.get(key);
    return r ? { key, operation: 'PUT', revision: r.revision, created: r.created, json: () => r.value } : null;
  }

  async delete(key: string): Promise<void> {
    this.records.delete(key);
  }
}

const silent = pino({ level: 'silent' });
const saved = { ...REGISTRY_LIMITS };
let registry: WorkerRegistry | undefined;

afterEach(() => {
  registry?.close();
  registry = undefined;
  Object.assign(REGISTRY_LIMITS, saved);
});

async function openWith(bucket: FakeBucket): Promise<WorkerRegistry> {
  const link = { bucket: async () => bucket, connectedFor: () => 60_000 } as unknown as NatsLink;
  return WorkerRegistry.open(link, { onChange: () => undefined, onLost: () => undefined }, silent);
}

describe('worker registry polls', () => {
  it('abandon a key listing that stalls past the deadline and see the workers that joined since', async () => {
    REGISTRY_LIMITS.pollDeadlineMs = 400;
    const bucket = new FakeBucket();
    bucket.beat('w1');
    registry = await openWith(bucket);
    expect(registry.list().map((w) => w.view.id)).toEqual(['w1']);
    bucket.stallNext = 1;
    bucket.beat('w2');
    const ids = await waitFor('w2 in the view', () => {
      const seen = registry!.list().map((w) => w.view.id);
      return seen.length === 2 ? seen : undefined;
    }, 5_000, 50);
    expect(ids).toEqual(['w1', 'w2']);
    expect(registry.list().map((w) => w.health)).toEqual(['ready', 'ready']);
    // the stalled listing was stopped, not left open
    expect(bucket.stopped).toBe(1);
  });

  it('without a deadline, one stalled listing freezes the view (what the deadline is for)', async () => {
    REGISTRY_LIMITS.pollDeadlineMs = Infinity;
    const bucket = new FakeBucket();
    bucket.beat('w1');
    registry = await openWith(bucket);
    bucket.stallNext = 1;
    bucket.beat('w2');
    await sleep(1_500);
    expect(registry.list().map((w) => w.view.id)).toEqual(['w1']);
    expect(bucket.stopped).toBe(0);
  });
});
