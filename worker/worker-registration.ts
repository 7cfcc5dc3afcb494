/**
 * A worker's entry in the NATS registry: its address and capacity, rewritten every
 * HEARTBEAT_INTERVAL_MS (the coordinator reads liveness from the revision moving; 2.9 has
 * no per-key TTL). Writes that fail while nats-server is away are simply retried at the
 * next beat, so heartbeats resume by themselves after a restart.
 */
import type { KV } from '@nats-io/kv';
import { HEARTBEAT_INTERVAL_MS, WORKERS_BUCKET, type WorkerRecord, type WorkerState } from '../core/cluster/control-plane.js';
import type { NatsLink } from '../core/cluster/nats-link.js';
import { VERSION } from '../core/version.js';

export class WorkerRegistration {
  private beat = 0;
  private timer: NodeJS.Timeout | undefined;
  private state: WorkerState = 'ready';
  private writing: Promise<void> = Promise.resolve();
  private failures = 0;

  private constructor(
    private readonly kv: KV,
    private readonly base: Omit<WorkerRecord, 'beat' | 'state' | 'version'>,
    private readonly onError: (err: unknown, failures: number) => void,
  ) {}

  /** Writes the first beat and starts beating. */
  static async register(
    link: NatsLink,
    record: Omit<WorkerRecord, 'beat' | 'state' | 'version'>,
    onError: (err: unknown, failures: number) => void,
  ): Promise<WorkerRegistration> {
    const kv = await link.bucket(WORKERS_BUCKET);
    const reg = new WorkerRegistration(kv, record, onError);
    await kv.put(record.id, reg.encode());
    reg.timer = setInterval(() => void reg.heartbeat(), HEARTBEAT_INTERVAL_MS);
    return reg;
  }

  /** Announces a state change (draining) at once. */
  async setState(state: WorkerState): Promise<void> {
    this.state = state;
    await this.heartbeat();
  }

  /** Stops beating and removes the entry. */
  async deregister(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
    try {
      await this.kv.delete(this.base.id);
    } catch (err) {
      this.onError(err, ++this.failures);
    }
  }

  private heartbeat(): Promise<void> {
    this.writing = this.writing.then(async () => {
      try {
        await this.kv.put(this.base.id, this.encode());
        this.failures = 0;
      } catch (err) {
        this.onError(err, ++this.failures);
      }
    });
    return this.writing;
  }

  private encode(): string {
    const rec: WorkerRecord = { ...this.base, state: this.state, beat: ++this.beat, version: VERSION };
    return JSON.stringify(rec);
  }
}
