/**
 * Where checkpoint bytes come from: a local file (positional reads) or an http(s) URL
 * (range requests). Nothing ever reads a whole file; callers ask for byte ranges.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { WeightspaceError, q } from './errors.js';

export interface ByteSource {
  readonly location: string;
  readonly size: number;
  /** Fills `dst` with the bytes at [pos, pos + dst.length). */
  read(pos: number, dst: Uint8Array): Promise<void>;
  close(): void;
}

export function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

export async function openByteSource(location: string): Promise<ByteSource> {
  return isUrl(location) ? HttpSource.open(location) : FileSource.open(location);
}

/**
 * Reads `dst.length` bytes of `fd` at `pos` (positional reads may return less than asked);
 * returns how many it got, fewer only where the file ends.
 */
export function readAt(fd: number, dst: Uint8Array, pos: number): number {
  let done = 0;
  while (done < dst.length) {
    const n = readSync(fd, dst, done, dst.length - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export class FileSource implements ByteSource {
  private constructor(readonly location: string, readonly size: number, private fd: number) {}

  static open(path: string): FileSource {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new WeightspaceError('not-found', `${q(path)}: no such file`);
      throw new WeightspaceError('read-failed', `${q(path)}: cannot open: ${(err as Error).message}`);
    }
    return new FileSource(path, fstatSync(fd).size, fd);
  }

  read(pos: number, dst: Uint8Array): Promise<void> {
    this.readSync(pos, dst);
    return Promise.resolve();
  }

  /** Synchronous read, for worker threads where blocking is the point. */
  readSync(pos: number, dst: Uint8Array): void {
    if (pos + dst.length > this.size) {
      throw new WeightspaceError('truncated-file', `${q(this.location)}: read of ${dst.length} bytes at ${pos} runs past the end (${this.size} bytes)`);
    }
    const done = readAt(this.fd, dst, pos);
    if (done < dst.length) {
      throw new WeightspaceError('truncated-file', `${q(this.location)}: file ended at ${pos + done}, expected ${pos + dst.length} bytes`);
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/** Range reads over HTTP. The server must answer `Range` with 206 and say the size in `Content-Range`. */
export class HttpSource implements ByteSource {
  private constructor(readonly location: string, readonly size: number) {}

  static async open(url: string): Promise<HttpSource> {
    let res: Response;
    try {
      res = await fetch(url, { headers: { range: 'bytes=0-0' } });
    } catch (err) {
      throw new WeightspaceError('read-failed', `${q(url)}: cannot fetch: ${(err as Error).message}`);
    }
    if (res.status === 404) throw new WeightspaceError('not-found', `${q(url)}: not found (HTTP 404)`);
    if (res.status !== 206) {
      throw new WeightspaceError('read-failed', `${q(url)}: expected HTTP 206 to a range request, got ${res.status}`);
    }
    await res.arrayBuffer();
    const range = res.headers.get('content-range') ?? '';
    const m = /\/(\d+)$/.exec(range);
    if (!m?.[1]) throw new WeightspaceError('read-failed', `${q(url)}: server did not say the file size (Content-Range ${q(range)})`);
    return new HttpSource(url, Number(m[1]));
  }

  async read(pos: number, dst: Uint8Array): Promise<void> {
    if (dst.length === 0) return;
    if (pos + dst.length > this.size) {
      throw new WeightspaceError('truncated-file', `${q(this.location)}: read of ${dst.length} bytes at ${pos} runs past the end (${this.size} bytes)`);
    }
    const res = await fetch(this.location, { headers: { range: `bytes=${pos}-${pos + dst.length - 1}` } });
    if (res.status !== 206) {
      throw new WeightspaceError('read-failed', `${q(this.location)}: range ${pos}+${dst.length}: expected HTTP 206, got ${res.status}`);
    }
    const body = new Uint8Array(await res.arrayBuffer());
    if (body.length !== dst.length) {
      throw new WeightspaceError('truncated-file', `${q(this.location)}: range ${pos}+${dst.length}: got ${body.length} bytes`);
    }
    dst.set(body);
  }

  close(): void {}
}

/** Fetches a small whole file (config.json, an index) from a directory URL or path. */
export async function readSmallFile(location: string): Promise<Buffer | undefined> {
  if (isUrl(location)) {
    const res = await fetch(location);
    if (res.status === 404) return undefined;
    if (!res.ok) throw new WeightspaceError('read-failed', `${q(location)}: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  }
  const { readFile } = await import('node:fs/promises');
  try {
    return await readFile(location);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WeightspaceError('read-failed', `${q(location)}: ${(err as Error).message}`);
  }
}
