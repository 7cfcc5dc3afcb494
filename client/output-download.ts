/**
 * Downloads a job's output from the coordinator into a directory, the way embedded mode
 * writes it: everything under a temporary name beside the destination, renamed into place
 * only when every file is complete and verified.
 *
 * It can start while the job runs: each finished task's shard ranges are final (tasks are
 * deterministic), so they are fetched as the tasks finish, overlapping the transfer with
 * the computation. When the job is done, whatever is still missing (shard headers, ranges
 * whose events were missed, every non-shard file) is fetched, and each file's sha256 is
 * checked against the coordinator's. Every chunk's CRC-32 is checked before it is written
 * at its offset. Shard headers are fetched first and each file is hashed as its verified
 * prefix grows (bytes that arrived ahead of it are read back once), so verifying does not
 * re-read whole files after the job. A dropped connection resumes a range from its last verified offset, until
 * no byte has arrived for `reconnectTimeoutMs`.
 *
 * Lifecycle: 'collecting' (job running) → 'completing' → 'done' | 'failed'.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { chunkChecksum } from '../core/cluster/checksum.js';
import { codedErrorOf } from '../core/cluster/grpc-errors.js';
import type { ByteRangeMsg, ClusterJobResult, OutputFileMsg } from '../core/cluster/wire-messages.js';
import { WeightspaceError, q } from '../core/errors.js';
import type { CoordinatorRpc } from './coordinator-rpc.js';
import type { JobOutput } from './job-events.js';

export interface DownloadOptions {
  /** replace an existing directory */
  readonly force?: boolean;
  /** ranges or files fetched at once (default 2) */
  readonly concurrency?: number;
  /** give up after this long without a byte (default: the client's reconnect timeout) */
  readonly reconnectTimeoutMs?: number;
  readonly onProgress?: (bytes: number) => void;
}

export interface TransferStats {
  /** bytes received (every byte once, resumed or not) */
  readonly bytes: number;
  /** times a stream was resumed after a drop */
  readonly resumes: number;
  readonly files: number;
  /** bytes fetched while the job was still running */
  readonly early: number;
}

export interface DownloadedOutputs {
  readonly outputs: JobOutput[];
  readonly transfer: TransferStats;
}

export type DownloadState = 'collecting' | 'completing' | 'done' | 'failed';

/** The same check as embedded mode, before any work: an existing output needs --force. */
export function checkOutputDestination(out: string, force: boolean): void {
  if (existsSync(resolve(out)) && !force) {
    throw new WeightspaceError('output-exists', `output ${q(out)} already exists: choose another --out or pass --force to replace it`);
  }
}

interface FileState {
  readonly output: number;
  readonly subdir: string;
  readonly file: string;
  readonly size: number;
  readonly path: string;
  fd: number;
  /** verified byte intervals [start, end), merged */
  received: [number, number][];
  /** sha256 of the verified prefix [0, hashed): a shard is hashed as its bytes arrive, not re-read at the end */
  readonly hash: Hash;
  hashed: number;
}

class Resumable extends Error {}

const key = (output: number, file: string): string => `${output}\u0000${file}`;

function addInterval(list: [number, number][], start: number, end: number): [number, number][] {
  const all = [...list, [start, end] as [number, number]].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const iv of all) {
    const last = out[out.length - 1];
    if (last && iv[0] <= last[1]) last[1] = Math.max(last[1], iv[1]);
    else out.push([iv[0], iv[1]]);
  }
  return out;
}

function gaps(list: readonly [number, number][], size: number): [number, number][] {
  const out: [number, number][] = [];
  let at = 0;
  for (const [s, e] of list) {
    if (s > at) out.push([at, s]);
    at = Math.max(at, e);
  }
  if (at < size) out.push([at, size]);
  return out;
}

/** Bytes read back at once when a file's hashed prefix catches up with bytes that arrived out of order. */
const REHASH_BYTES = 4 << 20;

export class OutputDownload {
  private stateValue: DownloadState = 'collecting';
  private tmp: string | undefined;
  private createdParent: string | undefined;
  private readonly files = new Map<string, FileState>();
  private readonly queue: { f: FileState; start: number; end: number }[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly stats = { bytes: 0, resumes: 0, files: 0, early: 0 };
  private rehashBuffer: Buffer | undefined;

  private constructor(
    private readonly rpc: CoordinatorRpc,
    private readonly jobId: string,
    readonly out: string,
    private readonly dest: string,
    private readonly options: DownloadOptions & { reconnectTimeoutMs: number },
  ) {}

  /** Checks the destination (as embedded mode does); nothing is created until there is something to write. */
  static start(rpc: CoordinatorRpc, jobId: string, out: string, options: DownloadOptions & { reconnectTimeoutMs: number }): OutputDownload {
    checkOutputDestination(out, options.force ?? false);
    return new OutputDownload(rpc, jobId, out, resolve(out), options);
  }

  get state(): DownloadState {
    return this.stateValue;
  }

  /** The job's shards (from its planned event): files to write by offset. */
  addShards(shards: readonly OutputFileMsg[]): void {
    if (this.stateValue !== 'collecting') return;
    for (const s of shards) {
      const known = this.files.has(key(s.output, s.file));
      const f = this.fileFor(s);
      // the header is final from the start: fetched first, so the shard's hash can follow its bytes
      const header = Math.min(s.headerLength ?? 0, s.size);
      if (!known && header > 0) this.queue.push({ f, start: 0, end: header });
    }
    this.pump();
  }

  /** Ranges a finished task wrote: final bytes, fetched now. */
  addRanges(ranges: readonly ByteRangeMsg[]): void {
    if (this.stateValue !== 'collecting') return;
    for (const r of ranges) {
      const f = this.files.get(key(r.output, r.file));
      if (!f || r.length <= 0) continue;
      this.queue.push({ f, start: r.offset, end: r.offset + r.length });
    }
    this.pump();
  }

  /** The job is done: fetch what is missing, verify every file, rename into place. */
  async complete(result: ClusterJobResult, files: readonly OutputFileMsg[]): Promise<DownloadedOutputs> {
    try {
      this.stateValue = 'completing';
      // ranges being fetched finish; queued ones are left to the gap pass below
      this.queue.length = 0;
      while (this.running.size > 0) await Promise.allSettled([...this.running]);
      if (files.length > 0) this.ensureTmp();
      const pending = [...files];
      const worker = async (): Promise<void> => {
        for (let desc = pending.shift(); desc; desc = pending.shift()) await this.completeFile(desc);
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(this.options.concurrency ?? 2, files.length)) }, worker));
      this.stats.files = files.length;
      if (this.tmp) {
        if (existsSync(this.dest)) {
          if (!this.options.force) throw new WeightspaceError('output-exists', `output ${q(this.dest)} appeared while the job ran`);
          rmSync(this.dest, { recursive: true, force: true });
        }
        renameSync(this.tmp, this.dest);
        this.tmp = undefined;
      }
      this.stateValue = 'done';
      return {
        outputs: result.outputs.map((o) => ({ dir: join(this.dest, o.subdir), label: o.label, shards: o.shards })),
        transfer: { ...this.stats },
      };
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Fetches a file's missing bytes and checks its sha256. */
  private async completeFile(desc: OutputFileMsg): Promise<void> {
    const f = this.fileFor(desc);
    for (const [s, e] of gaps(f.received, f.size)) await this.fetchRange(f, s, e);
    this.catchUpHash(f);
    closeSync(f.fd);
    f.fd = -1;
    if (f.hashed !== f.size) throw new WeightspaceError('internal', `output ${q(desc.file)}: hashed ${f.hashed} of ${f.size} bytes`);
    const got = f.hash.digest('hex');
    if (got !== desc.sha256) {
      throw new WeightspaceError('checksum-mismatch', `output ${q(join(desc.subdir, desc.file))}: sha256 ${got}, expected ${desc.sha256}`);
    }
  }

  /** Removes everything written so far (idempotent). */
  abort(): void {
    if (this.stateValue !== 'done') this.stateValue = 'failed';
    this.queue.length = 0;
    for (const f of this.files.values()) {
      if (f.fd >= 0) closeSync(f.fd);
      f.fd = -1;
    }
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
    this.tmp = undefined;
    if (this.createdParent) rmSync(this.createdParent, { recursive: true, force: true });
    this.createdParent = undefined;
  }

  private ensureTmp(): string {
    if (!this.tmp) {
      const parent = dirname(this.dest);
      this.createdParent = mkdirSync(parent, { recursive: true });
      this.tmp = join(parent, `.${basename(this.dest)}.weightspace-tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
      mkdirSync(this.tmp);
    }
    return this.tmp;
  }

  private fileFor(desc: OutputFileMsg): FileState {
    const k = key(desc.output, desc.file);
    let f = this.files.get(k);
    if (!f) {
      const dir = join(this.ensureTmp(), desc.subdir);
      mkdirSync(dir, { recursive: true });
      const path = join(dir, desc.file);
      const fd = openSync(path, 'w+');
      ftruncateSync(fd, desc.size);
      f = { output: desc.output, subdir: desc.subdir, file: desc.file, size: desc.size, path, fd, received: [], hash: createHash('sha256'), hashed: 0 };
      this.files.set(k, f);
    }
    return f;
  }

  /** Fetches ranges while the job runs (best effort: what fails is fetched again at the end). */
  private pump(): void {
    const limit = Math.max(1, this.options.concurrency ?? 2);
    while (this.running.size < limit && this.queue.length > 0 && this.stateValue === 'collecting') {
      const r = this.queue.shift()!;
      const p: Promise<void> = this.fetchRange(r.f, r.start, r.end)
        .catch(() => undefined)
        .finally(() => {
          this.running.delete(p);
          this.pump();
        });
      this.running.add(p);
    }
  }

  /**
   * Extends a file's hashed prefix with a verified chunk just written at `at`, then with
   * whatever had already arrived right after it (read back from the file).
   */
  private hashChunk(f: FileState, at: number, bytes: Uint8Array): void {
    if (at <= f.hashed && f.hashed < at + bytes.length) {
      f.hash.update(bytes.subarray(f.hashed - at));
      f.hashed = at + bytes.length;
    }
    this.catchUpHash(f);
  }

  /** Hashes, from the file, verified bytes contiguous with the hashed prefix. */
  private catchUpHash(f: FileState): void {
    const first = f.received[0];
    if (!first || first[0] > 0 || first[1] <= f.hashed || f.fd < 0) return;
    const buf = (this.rehashBuffer ??= Buffer.allocUnsafe(REHASH_BYTES));
    while (f.hashed < first[1]) {
      const n = readSync(f.fd, buf, 0, Math.min(buf.length, first[1] - f.hashed), f.hashed);
      if (n === 0) throw new WeightspaceError('internal', `output ${q(f.file)} is shorter than its verified ${first[1]} bytes`);
      f.hash.update(buf.subarray(0, n));
      f.hashed += n;
    }
  }

  /** Fetches [start, end) of a file; resumes after drops. */
  private async fetchRange(f: FileState, start: number, end: number): Promise<void> {
    let at = start;
    let lastByte = performance.now();
    let backoff = 100;
    const early = this.stateValue === 'collecting';
    for (;;) {
      if (this.rpc.closed) throw new WeightspaceError('cluster-unavailable', `download of ${q(f.file)} stopped: the client was closed`);
      if (this.stateValue === 'failed') throw new WeightspaceError('cancelled', 'download aborted');
      try {
        const call = this.rpc.fetchOutput({ jobId: this.jobId, output: f.output, file: f.file, offset: at, length: end - at });
        let finished = false;
        try {
          for await (const c of call) {
            if (c.offset !== at) throw new WeightspaceError('cluster-protocol', `output ${q(f.file)}: chunk at ${c.offset}, expected ${at}`);
            if (chunkChecksum(c.bytes) !== c.crc32) throw new Resumable(`chunk of ${f.file} at ${at} failed its crc32`);
            if (f.fd < 0) throw new WeightspaceError('cancelled', 'download aborted');
            let done = 0;
            while (done < c.bytes.length) done += writeSync(f.fd, c.bytes, done, c.bytes.length - done, at + done);
            f.received = addInterval(f.received, at, at + c.bytes.length);
            this.hashChunk(f, at, c.bytes);
            at += c.bytes.length;
            this.stats.bytes += c.bytes.length;
            if (early) this.stats.early += c.bytes.length;
            lastByte = performance.now();
            backoff = 100;
            this.options.onProgress?.(this.stats.bytes);
          }
          finished = at === end;
        } finally {
          if (!finished) call.cancel();
        }
        if (finished) return;
        throw new Resumable(`stream of ${f.file} ended at ${at}, expected ${end}`);
      } catch (err) {
        if (err instanceof WeightspaceError) throw err;
        const coded = codedErrorOf(err);
        if (coded) throw coded;
        if (performance.now() - lastByte > this.options.reconnectTimeoutMs) {
          throw new WeightspaceError('cluster-unavailable', `download of ${q(f.file)} from ${q(this.rpc.address)} stalled at ${at} of ${f.size} bytes: ${(err as Error).message}`);
        }
        this.stats.resumes++;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(2_000, backoff * 2);
      }
    }
  }
}
