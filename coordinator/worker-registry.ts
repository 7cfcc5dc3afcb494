/**
 * The coordinator's view of the workers: polls the NATS registry bucket and judges
 * liveness from heartbeats. A worker is live while its record's revision has moved within
 * HEARTBEAT_TIMEOUT_MS, as seen by this coordinator (no clocks compared). Heartbeats are
 * judged only while the view is fresh and NATS has been connected for a full timeout:
 * when nats-server itself is away, workers cannot beat and are not to blame. A worker
 * whose gRPC stream just failed is quarantined briefly, so its tasks go elsewhere.
 */
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { HEARTBEAT_TIMEOUT_MS, WORKERS_BUCKET, type WorkerRecord } from '../core/cluster/control-plane.js';
import type { NatsLink } from '../core/cluster/nats-link.js';

const POLL_MS = 250;
/** a lost worker's record is removed after this long without a beat */
const FORGET_MS = 30_000;

/**
 * A poll still waiting on NATS after `pollDeadlineMs` is abandoned (its key listing stopped, its
 * results ignored) and the next one starts: one stalled call must not freeze the view, or new
 * workers would never be seen and lost ones never judged. Mutable for tests.
 */
export const REGISTRY_LIMITS = { pollDeadlineMs: 10_000 };

export type WorkerHealth = 'ready' | 'draining' | 'lost' | 'unconfirmed';

export interface WorkerView {
  readonly id: string;
  record: WorkerRecord;
  revision: number;
  /** performance.now() when the revision last moved */
  lastBeat: number;
  /** the record's revision moved at least once while we watched (or the record is brand new) */
  confirmed: boolean;
  lost: boolean;
  quarantinedUntil: number;
  /** tasks running on it now, and their bytes (inputBytes + outputBytes) */
  running: number;
  load: number;
  tasksDone: number;
}

export interface RegistryEvents {
  /** a worker became eligible, or capacity may have changed: schedule */
  readonly onChange: () => void;
  /** a worker missed its heartbeats or left: re-run its tasks elsewhere */
  readonly onLost: (id: string) => void;
}

export class WorkerRegistry {
  private readonly views = new Map<string, WorkerView>();
  private timer: NodeJS.Timeout | undefined;
  private lastPollOk = 0;
  private polling = false;
  private pollStarted = 0;
  /** the current poll's number: an abandoned poll sees it moved and drops what it read */
  private pollGen = 0;
  private listing: { stop(): void } | undefined;
  private closed = false;

  private constructor(private readonly kv: KV, private readonly link: NatsLink, private readonly events: RegistryEvents, private readonly log: Logger) {}

  static async open(link: NatsLink, events: RegistryEvents, log: Logger): Promise<WorkerRegistry> {
    const kv = await link.bucket(WORKERS_BUCKET);
    const reg = new WorkerRegistry(kv, link, events, log);
    await reg.poll();
    reg.timer = setInterval(() => void reg.poll(), POLL_MS);
    return reg;
  }

  /** Workers that may take a task now. */
  eligible(): WorkerView[] {
    const now = performance.now();
    return [...this.views.values()].filter((w) => this.health(w) === 'ready' && w.quarantinedUntil <= now && w.running < w.record.maxTasks);
  }

  /** How many workers are alive (ready or draining), whatever their load. */
  liveCount(): number {
    return [...this.views.values()].filter((w) => { const h = this.health(w); return h === 'ready' || h === 'draining'; }).length;
  }

  get(id: string): WorkerView | undefined {
    return this.views.get(id);
  }

  list(): { view: WorkerView; health: WorkerHealth; ageMs: number }[] {
    const now = performance.now();
    return [...this.views.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((view) => ({ view, health: this.health(view), ageMs: Math.max(0, Math.round(now - view.lastBeat)) }));
  }

  /** Keeps tasks off a worker for a while (its stream just failed). */
  quarantine(id: string, ms: number): void {
    const w = this.views.get(id);
    if (w) w.quarantinedUntil = performance.now() + ms;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.listing?.stop();
  }

  private health(w: WorkerView): WorkerHealth {
    if (w.lost) return 'lost';
    if (!w.confirmed) return 'unconfirmed';
    return w.record.state === 'draining' ? 'draining' : 'ready';
  }

  /** Heartbeats count only when this view is fresh and NATS has been up for a whole timeout. */
  private canJudge(now: number): boolean {
    return now - this.lastPollOk < 1_000 && this.link.connectedFor() > HEARTBEAT_TIMEOUT_MS;
  }

  private async poll(): Promise<void> {
    if (this.closed) return;
    if (this.polling) {
      const stalled = performance.now() - this.pollStarted;
      if (stalled < REGISTRY_LIMITS.pollDeadlineMs) return;
      this.log.warn({ stalledMs: Math.round(stalled) }, 'registry poll stalled: abandoned, polling again');
      this.listing?.stop();
    }
    const gen = ++this.pollGen;
    this.polling = true;
    this.pollStarted = performance.now();
    try {
      const seen = new Set<string>();
      const keys: string[] = [];
      const listing = await this.kv.keys();
      if (gen !== this.pollGen) {
        listing.stop();
        return;
      }
      this.listing = listing;
      for await (const k of listing) keys.push(k);
      const entries = await Promise.all(keys.map((k) => this.kv.get(k)));
      if (gen !== this.pollGen) return;
      const now = performance.now();
      let changed = false;
      for (const e of entries) {
        if (!e || e.operation !== 'PUT') continue;
        let record: WorkerRecord;
        try {
          record = e.json<WorkerRecord>();
        } catch {
          continue;
        }
        seen.add(e.key);
        const prev = this.views.get(e.key);
        if (!prev) {
          // brand new records (written in the last two seconds) count as confirmed at once
          const fresh = Date.now() - e.created.getTime() < 2 * 1_000;
          this.views.set(e.key, {
            id: e.key, record, revision: e.revision, lastBeat: now, confirmed: fresh, lost: false,
            quarantinedUntil: 0, running: 0, load: 0, tasksDone: 0,
          });
          if (fresh) this.log.info({ workerId: e.key, address: record.address }, 'worker joined');
          changed = true;
        } else if (prev.revision !== e.revision) {
          const wasEligible = prev.confirmed && !prev.lost && prev.record.state === 'ready';
          prev.revision = e.revision;
          prev.record = record;
          prev.lastBeat = now;
          if (!prev.confirmed) this.log.info({ workerId: e.key, address: record.address }, 'worker joined');
          if (prev.lost) this.log.info({ workerId: e.key }, 'worker is back');
          prev.confirmed = true;
          prev.lost = false;
          if (!wasEligible) changed = true;
        }
      }
      this.lastPollOk = now;
      for (const [id, w] of this.views) {
        if (!seen.has(id)) {
          // deregistered (drained) or removed
          this.views.delete(id);
          this.log.info({ workerId: id }, 'worker left');
          this.events.onLost(id);
          changed = true;
        } else if (!w.lost && this.canJudge(now) && now - w.lastBeat > HEARTBEAT_TIMEOUT_MS) {
          w.lost = true;
          this.log.warn({ workerId: id, silentMs: Math.round(now - w.lastBeat) }, 'worker lost: missed heartbeats');
          this.events.onLost(id);
          changed = true;
        } else if (w.lost && this.canJudge(now) && now - w.lastBeat > FORGET_MS) {
          this.kv.delete(id).catch(() => undefined);
        }
      }
      if (changed) this.events.onChange();
    } catch (err) {
      if (gen === this.pollGen) this.log.debug({ err: (err as Error).message }, 'registry poll failed');
    } finally {
      if (gen === this.pollGen) {
        this.polling = false;
        this.listing = undefined;
      }
    }
  }
}
