/**
 * A TCP proxy on loopback that can drop every connection once, mid-stream: to test that
 * clients resume after a dropped connection. Bounded: one drop per arming.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class DropProxy {
  private readonly sockets = new Set<Socket>();
  private armedAt: number | undefined;
  private downstream = 0;
  drops = 0;

  private constructor(private readonly server: Server, readonly address: string) {}

  static async start(target: string): Promise<DropProxy> {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    const ref: { proxy?: DropProxy } = {};
    const server = createServer((client) => {
      const proxy = ref.proxy;
      const upstream = connect(port, host);
      proxy!.track(client);
      proxy!.track(upstream);
      client.pipe(upstream);
      upstream.on('data', (buf: Buffer) => {
        proxy!.downstream += buf.length;
        client.write(buf);
        proxy!.maybeDrop();
      });
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    ref.proxy = new DropProxy(server, `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`);
    return ref.proxy;
  }

  /** Drops every connection once `bytes` more bytes have gone from the server to the client. */
  armDrop(bytes: number): void {
    this.armedAt = this.downstream + bytes;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }

  private maybeDrop(): void {
    if (this.armedAt === undefined || this.downstream < this.armedAt) return;
    this.armedAt = undefined;
    this.drops++;
    for (const s of this.sockets) s.destroy();
  }
}
