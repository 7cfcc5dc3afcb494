/**
 * sha256 of a file that is written out of order, computed while it is written: ranges are
 * reported as they complete, and whenever the contiguous prefix from the hashed position
 * grows, it is read back (from the page cache) and hashed, a megabyte or so per event-loop
 * turn (under a millisecond), so that the scheduler answers the threads between slices. At the
 * end only the unhashed rest is read, instead of the whole file after the job.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { readAt } from '../core/byte-source.js';

const SLICE = 1 << 20;
const TURN_MS = 1;

export class ProgressiveHash {
  private readonly hash: Hash = createHash('sha256');
  /** bytes [0, hashed) are in the hash */
  private hashed = 0;
  /** completed ranges beyond `hashed`: start → end, merged on arrival */
  private readonly ranges = new Map<number, number>();
  /** how far the contiguous completed prefix reaches */
  private ready = 0;
  private scheduled = false;
  private fd: number | undefined;
  private buf: Buffer | undefined;
  private digestValue: string | undefined;

  constructor(readonly path: string, readonly size: number) {}

  /** Records that [offset, offset + length) holds its final bytes; hashes what became contiguous, later. */
  written(offset: number, length: number): void {
    if (length <= 0 || this.digestValue !== undefined) return;
    const end = offset + length;
    if (offset <= this.ready) {
      this.ready = Math.max(this.ready, end);
    } else {
      this.ranges.set(offset, Math.max(end, this.ranges.get(offset) ?? 0));
      return;
    }
    // absorb ranges that now touch the prefix
    let grew = true;
    while (grew) {
      grew = false;
      for (const [s, e] of this.ranges) {
        if (s <= this.ready) {
          this.ranges.delete(s);
          if (e > this.ready) this.ready = e;
          grew = true;
        }
      }
    }
    this.schedule();
  }

  /**
   * Records a completed range whose bytes the caller holds (just read back and checked):
   * when it continues the hashed prefix, they are hashed from memory, not read again.
   */
  writtenBytes(offset: number, bytes: Uint8Array): void {
    if (this.digestValue !== undefined) return;
    if (offset === this.hashed && bytes.length > 0) {
      this.hash.update(bytes);
      this.hashed += bytes.length;
    }
    this.written(offset, bytes.length);
  }

  /** Hashes the rest of the file (whatever was not reported) and returns the hex digest. */
  digest(): string {
    if (this.digestValue !== undefined) return this.digestValue;
    this.ready = this.size;
    this.step(Infinity);
    this.digestValue = this.hash.digest('hex');
    this.close();
    return this.digestValue;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private schedule(): void {
    if (this.scheduled || this.hashed >= this.ready) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.digestValue !== undefined) return;
      this.step(TURN_MS);
      this.schedule();
    });
  }

  /** Hashes from `hashed` towards `ready` for at most `ms` milliseconds. */
  private step(ms: number): void {
    const t0 = performance.now();
    this.fd ??= openSync(this.path, 'r');
    this.buf ??= Buffer.allocUnsafe(SLICE);
    while (this.hashed < this.ready && performance.now() - t0 < ms) {
      const len = Math.min(SLICE, this.ready - this.hashed);
      const got = readAt(this.fd, this.buf.subarray(0, len), this.hashed);
      if (got < len) throw new Error(`${this.path}: ended at ${this.hashed + got}, expected ${this.size} bytes`);
      this.hash.update(this.buf.subarray(0, len));
      this.hashed += len;
    }
  }
}
