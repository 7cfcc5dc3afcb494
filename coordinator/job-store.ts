/**
 * Job state in NATS (JetStream KV): one record per job, latest state wins. Writes go
 * through a write-behind queue that keeps only each job's newest record and retries
 * while nats-server is away, so a restart of NATS loses no state and never stalls a job.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { JOBS_BUCKET, type JobRecord } from '../core/cluster/control-plane.js';
import type { NatsLink } from '../core/cluster/nats-link.js';

const RETRY_MS = 500;

export class JobStore {
  private readonly pending = new Map<string, JobRecord | 'delete'>();
  private flushing: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;

  private constructor(private readonly kv: KV, private readonly log: Logger) {}

  static async open(link: NatsLink, log: Logger): Promise<JobStore> {
    return new JobStore(await link.bucket(JOBS_BUCKET), log);
  }

  /** Every job record (for resuming after a restart). */
  async list(): Promise<JobRecord[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    const out: JobRecord[] = [];
    for (const k of keys) {
      const e = await this.kv.get(k);
      if (e && e.operation === 'PUT') {
        try {
          out.push(e.json<JobRecord>());
        } catch {
          this.log.warn({ jobId: k }, 'unreadable job record ignored');
        }
      }
    }
    return out;
  }

  put(record: JobRecord): void {
    this.pending.set(record.id, record);
    void this.flush();
  }

  delete(id: string): void {
    this.pending.set(id, 'delete');
    void this.flush();
  }

  /** Waits (up to `timeoutMs`) until every queued write reached NATS. */
  async settle(timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.pending.size > 0 || this.flushing) {
      if (performance.now() > deadline) return false;
      if (this.flushing) {
        await this.flushing;
      } else {
        void this.flush();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return true;
  }

  close(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
  }

  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    this.flushing = (async () => {
      try {
        while (this.pending.size > 0) {
          const [id, rec] = this.pending.entries().next().value as [string, JobRecord | 'delete'];
          this.pending.delete(id);
          try {
            if (rec === 'delete') await this.kv.delete(id);
            else await this.kv.put(id, JSON.stringify(rec));
            this.failures = 0;
          } catch (err) {
            // keep it unless a newer record was queued meanwhile
            if (!this.pending.has(id)) this.pending.set(id, rec);
            if (++this.failures === 1 || this.failures % 20 === 0) this.log.warn({ err: (err as Error).message, failures: this.failures }, 'job state write failed; retrying');
            clearTimeout(this.retry);
            this.retry = setTimeout(() => void this.flush(), RETRY_MS);
            return;
          }
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }
}
