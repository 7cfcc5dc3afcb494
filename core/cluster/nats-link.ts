/**
 * One NATS connection that outlives nats-server restarts: reconnects forever, waits for the
 * first connection, and knows since when it has been connected (the coordinator judges
 * heartbeats only after a grace period following a reconnect: workers could not beat
 * while the server was down). KV buckets are opened with retries, because JetStream
 * answers only once it has recovered its store.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { WeightspaceError, q } from '../errors.js';

export type NatsLinkState = 'connected' | 'disconnected' | 'closed';

export interface NatsLinkOptions {
  readonly name: string;
  readonly onState?: (state: NatsLinkState) => void;
  /** give up on the first connection after this long (default: keep trying) */
  readonly connectTimeoutMs?: number;
}

export class NatsLink {
  private stateValue: NatsLinkState = 'connected';
  private since = performance.now();

  private constructor(readonly nc: NatsConnection, readonly url: string, private readonly onState?: (s: NatsLinkState) => void) {}

  static async connect(url: string, options: NatsLinkOptions): Promise<NatsLink> {
    const servers = url.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const attempt = connect({
      servers,
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      waitOnFirstConnect: true,
      pingInterval: 2_000,
      maxPingOut: 2,
      timeout: 3_000,
    });
    let nc: NatsConnection;
    if (options.connectTimeoutMs !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WeightspaceError('cluster-unavailable', `cannot reach nats at ${q(url)} within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
      });
      try {
        nc = await Promise.race([attempt, timeout]);
      } finally {
        clearTimeout(timer);
      }
    } else {
      nc = await attempt;
    }
    const link = new NatsLink(nc, url, options.onState);
    void link.follow();
    return link;
  }

  get state(): NatsLinkState {
    return this.stateValue;
  }

  /** ms (performance.now clock) the link has been connected without a break; 0 when it is not. */
  connectedFor(): number {
    return this.stateValue === 'connected' ? performance.now() - this.since : 0;
  }

  /** Opens (creating if needed) a KV bucket; retries while JetStream is not ready. */
  async bucket(name: string, options: { deadlineMs?: number } = {}): Promise<KV> {
    const deadline = performance.now() + (options.deadlineMs ?? 60_000);
    const kvm = new Kvm(this.nc);
    let last: unknown;
    while (performance.now() < deadline && this.stateValue !== 'closed') {
      try {
        return await kvm.create(name, { history: 1 });
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    throw new WeightspaceError('cluster-unavailable', `nats at ${q(this.url)}: cannot open bucket ${q(name)}: ${(last as Error | undefined)?.message ?? 'closed'}`);
  }

  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.set('closed');
    let timer: NodeJS.Timeout | undefined;
    try {
      // a drain needs the server; without one, give up after a moment and just close
      await Promise.race([
        this.nc.drain(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('drain timed out')), 2_000);
        }),
      ]);
    } catch {
      await this.nc.close().catch(() => undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  private set(state: NatsLinkState): void {
    if (this.stateValue === state) return;
    if (this.stateValue === 'closed') return;
    this.stateValue = state;
    if (state === 'connected') this.since = performance.now();
    this.onState?.(state);
  }

  private async follow(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.set('disconnected');
      else if (s.type === 'reconnect') this.set('connected');
      else if (s.type === 'close') this.set('closed');
    }
    this.set('closed');
  }
}
