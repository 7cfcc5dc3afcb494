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
 * Local copy: when this machine sees the coordinator's data dir at the same path (same
 * host, or a volume mounted at the same path; proven by a token file, see
 * core/cluster/volume-token.ts), bytes are copied from its files instead of fetched. While
 * the job runs, finished tasks' ranges are read from the staging shards (the planned event
 * names the staging dir and its token) and written and hashed exactly as fetched chunks
 * are; when the job is done, what is missing comes from the finished output dir (Done
 * names it), a file nothing of which was copied yet whole with fs.copyFile and
 * COPYFILE_FICLONE (a reflink where the filesystem has them, else a copy in the kernel).
 * Every copied file is checked as a fetched one is at its end: its size and its sha256
 * against the coordinator's (a fetch's chunk CRCs guard its transport, which a copy does
 * not have). A file whose check fails, or whose copy cannot be made, is fetched again over
 * gRPC from its first byte.
 *
 * Lifecycle: 'collecting' (job running) → 'completing' → 'done' | 'failed'.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync, constants as fsConstants, existsSync, ftruncateSync, linkSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync,
} from 'node:fs';
import { copyFile, open } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { readAt } from '../core/byte-source.js';
import { chunkChecksum } from '../core/cluster/checksum.js';
import { codedErrorOf } from '../core/cluster/grpc-errors.js';
import { OUTPUT_TOKEN_FILE, STAGING_TOKEN_FILE, staysInside, tokenMatches } from '../core/cluster/volume-token.js';
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
  /**
   * Copy the files from the coordinator's data dir when it is visible here (default
   * true); false: always fetch them over gRPC (FetchOutput).
   */
  readonly localCopy?: boolean;
  /**
   * With local copy, when the coordinator's data dir is on the same filesystem as `dir`:
   * hard-link its finished files instead of copying them (default true; uv links its cache
   * the same way). No byte is copied or re-hashed: the link is the very file whose sha256 the
   * coordinator computed, and the coordinator makes finished outputs read-only, so neither
   * side can change the other's. false: copy (an independent, writable file).
   */
  readonly link?: boolean;
  readonly onProgress?: (bytes: number) => void;
}

export interface TransferStats {
  /** bytes received over gRPC (every byte once, resumed or not) */
  readonly bytes: number;
  /** times a stream was resumed after a drop */
  readonly resumes: number;
  readonly files: number;
  /** bytes fetched or copied while the job was still running */
  readonly early: number;
  /** bytes copied from the coordinator's data dir (local copy) */
  readonly copied: number;
  /** bytes hard-linked from the coordinator's data dir (local copy on the same filesystem) */
  readonly linked: number;
  /** files whose local copy failed its check (or could not be made) and were fetched over gRPC instead */
  readonly copyFallbacks: number;
}

/** A directory of the coordinator and the token its token file should hold (Planned.staging_*, Done.local_*). */
export interface SharedDir {
  readonly dir: string;
  readonly token: string;
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
  /** bytes of it copied locally rather than fetched: a failed check then gets one fetch from scratch */
  copied: number;
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

/** Bytes per read when hashing a copied file, or copying a range. */
const HASH_READ_BYTES = 4 << 20;

/** Milliseconds of copying per event-loop turn: the job's events keep flowing meanwhile. */
const COPY_TURN_MS = 4;

/** Whether `a` and the nearest existing ancestor of `b` are on one filesystem (a hard link between them can work). */
function sameFilesystem(a: string, b: string): boolean {
  let at = b;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    return statSync(a).dev === statSync(at).dev;
  } catch {
    return false;
  }
}

/** Size and sha256 of a file, read in slices (reads off the event loop, hashing on it). */
async function sha256Of(path: string): Promise<{ size: number; sha256: string }> {
  const fh = await open(path, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(HASH_READ_BYTES);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { size, sha256: h.digest('hex') };
  } finally {
    await fh.close();
  }
}

export class OutputDownload {
  private stateValue: DownloadState = 'collecting';
  private tmp: string | undefined;
  private createdParent: string | undefined;
  private readonly files = new Map<string, FileState>();
  private readonly queue: { f: FileState; start: number; end: number }[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly stats = { bytes: 0, resumes: 0, files: 0, early: 0, copied: 0, linked: 0, copyFallbacks: 0 };
  private rehashBuffer: Buffer | undefined;
  private copyBuffer: Buffer | undefined;
  /** the job's staging dir as last planned, and whether it is visible here (then ranges are copied from it, not fetched) */
  private stagingSeen: string | undefined;
  private stagingDir: string | undefined;
  /** the staging is visible and on this filesystem: the finished files will be linked, so nothing is fetched or copied early */
  private linkPlanned = false;

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

  /**
   * The job's shards (from its planned event): files to write by offset. `staging`: the
   * job's staging dir and its token; when they check out here, ranges are copied from it
   * rather than fetched.
   */
  addShards(shards: readonly OutputFileMsg[], staging?: SharedDir): void {
    if (this.stateValue !== 'collecting') return;
    if (staging && staging.dir !== this.stagingSeen) {
      // a resumed job may stage elsewhere (its plan changed): decided again
      this.stagingSeen = staging.dir;
      this.stagingDir = this.options.localCopy !== false && tokenMatches(staging.dir, STAGING_TOKEN_FILE, staging.token) ? staging.dir : undefined;
      this.linkPlanned = this.stagingDir !== undefined && this.options.link !== false && sameFilesystem(this.stagingDir, dirname(this.dest));
    }
    if (this.linkPlanned) return;
    for (const s of shards) {
      const known = this.files.has(key(s.output, s.file));
      const f = this.fileFor(s);
      // the header is final from the start: fetched first, so the shard's hash can follow its bytes
      const header = Math.min(s.headerLength ?? 0, s.size);
      if (!known && header > 0) this.queue.push({ f, start: 0, end: header });
    }
    this.pump();
  }

  /** Ranges a finished task wrote: final bytes, fetched (or copied) now. */
  addRanges(ranges: readonly ByteRangeMsg[]): void {
    if (this.stateValue !== 'collecting' || this.linkPlanned) return;
    for (const r of ranges) {
      const f = this.files.get(key(r.output, r.file));
      if (!f || r.length <= 0) continue;
      this.queue.push({ f, start: r.offset, end: r.offset + r.length });
    }
    this.pump();
  }

  /**
   * The job is done: copy (`local`: the finished output's dir on the coordinator, when
   * visible here) or fetch what is missing, verify every file, rename into place.
   */
  async complete(result: ClusterJobResult, files: readonly OutputFileMsg[], local?: SharedDir): Promise<DownloadedOutputs> {
    try {
      this.stateValue = 'completing';
      // ranges being fetched finish; queued ones are left to the gap pass below
      this.queue.length = 0;
      while (this.running.size > 0) await Promise.allSettled([...this.running]);
      if (files.length > 0) this.ensureTmp();
      const copyFrom = this.options.localCopy !== false && local && local.dir !== '' && tokenMatches(local.dir, OUTPUT_TOKEN_FILE, local.token)
        ? local.dir
        : undefined;
      const pending = [...files];
      const worker = async (): Promise<void> => {
        for (let desc = pending.shift(); desc; desc = pending.shift()) await this.completeOne(desc, copyFrom);
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

  /**
   * Completes one file: from the coordinator's output dir (`copyFrom`) when visible here,
   * else over gRPC; a file any of whose bytes were copied and that fails its check is
   * fetched again over gRPC from scratch (which then says what is wrong, if anything is).
   */
  private async completeOne(desc: OutputFileMsg, copyFrom: string | undefined): Promise<void> {
    const f = this.files.get(key(desc.output, desc.file));
    if (copyFrom !== undefined && staysInside(join(desc.subdir, desc.file))) {
      const src = join(copyFrom, desc.subdir, desc.file);
      if (!f && this.options.link !== false && this.linkWhole(desc, src)) return;
      if (f ? await this.fillLocally(f, desc, src) : await this.copyWhole(desc, src)) return;
    } else if (!f || f.copied === 0) {
      await this.completeFile(desc);
      return;
    } else {
      try {
        await this.completeFile(desc);
        return;
      } catch (err) {
        if (!(err instanceof WeightspaceError && err.code === 'checksum-mismatch')) throw err;
      }
    }
    this.stats.copyFallbacks++;
    this.forget(desc);
    await this.completeFile(desc);
  }

  /**
   * Copies a whole finished file (nothing of it is here yet) and checks its size and
   * sha256, of the copy as written here. False when either fails or the copy cannot be made.
   */
  private async copyWhole(desc: OutputFileMsg, src: string): Promise<boolean> {
    const dir = join(this.ensureTmp(), desc.subdir);
    const path = join(dir, desc.file);
    try {
      mkdirSync(dir, { recursive: true });
      // a reflink where the filesystem has them (btrfs, XFS), else a copy inside the kernel
      await copyFile(src, path, fsConstants.COPYFILE_FICLONE);
      const { size, sha256 } = await sha256Of(path);
      if (size === desc.size && sha256 === desc.sha256) {
        this.stats.copied += size;
        this.options.onProgress?.(this.stats.bytes + this.stats.copied);
        return true;
      }
    } catch {
      // unreadable, vanished, out of space here...: fetched instead, which says what is wrong if it fails too
    }
    rmSync(path, { force: true });
    return false;
  }

  /**
   * Hard-links a finished file (nothing of it is here yet): checked by being that very file
   * (same device and inode, the size the coordinator reported) and read-only, as the
   * coordinator leaves finished outputs, so its sha256 is the one the coordinator computed
   * over these bytes. False (nothing left here) when it cannot be linked (another filesystem,
   * not allowed) or is not such a file: it is then copied.
   */
  private linkWhole(desc: OutputFileMsg, src: string): boolean {
    const dir = join(this.ensureTmp(), desc.subdir);
    const path = join(dir, desc.file);
    try {
      mkdirSync(dir, { recursive: true });
      linkSync(src, path);
      const a = statSync(src);
      const b = statSync(path);
      if (a.dev === b.dev && a.ino === b.ino && b.size === desc.size && (b.mode & 0o222) === 0) {
        this.stats.linked += b.size;
        this.options.onProgress?.(this.stats.bytes + this.stats.copied + this.stats.linked);
        return true;
      }
    } catch {
      // EXDEV, EPERM...: copied instead
    }
    rmSync(path, { force: true });
    return false;
  }

  /** Copies a file's missing bytes from `src` and checks its sha256. False when that fails. */
  private async fillLocally(f: FileState, desc: OutputFileMsg, src: string): Promise<boolean> {
    try {
      for (const [s, e] of gaps(f.received, f.size)) await this.copyRange(f, s, e, src);
      return this.finishFile(f) === desc.sha256;
    } catch {
      return false;
    }
  }

  /** Fetches a file's missing bytes and checks its sha256. */
  private async completeFile(desc: OutputFileMsg): Promise<void> {
    const f = this.fileFor(desc);
    for (const [s, e] of gaps(f.received, f.size)) await this.fetchRange(f, s, e);
    const got = this.finishFile(f);
    if (got === undefined) throw new WeightspaceError('internal', `output ${q(desc.file)}: hashed ${f.hashed} of ${f.size} bytes`);
    if (got !== desc.sha256) {
      throw new WeightspaceError('checksum-mismatch', `output ${q(join(desc.subdir, desc.file))}: sha256 ${got}, expected ${desc.sha256}`);
    }
  }

  /** Hashes what is left, closes the file; its sha256 (undefined if not every byte is there). */
  private finishFile(f: FileState): string | undefined {
    this.catchUpHash(f);
    closeSync(f.fd);
    f.fd = -1;
    return f.hashed === f.size ? f.hash.digest('hex') : undefined;
  }

  /** Drops what is here of a file, so it can be fetched from scratch. */
  private forget(desc: OutputFileMsg): void {
    const k = key(desc.output, desc.file);
    const f = this.files.get(k);
    if (f && f.fd >= 0) closeSync(f.fd);
    this.files.delete(k);
    if (this.tmp) rmSync(join(this.tmp, desc.subdir, desc.file), { force: true });
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
      f = {
        output: desc.output, subdir: desc.subdir, file: desc.file, size: desc.size, path, fd, received: [], hash: createHash('sha256'), hashed: 0, copied: 0,
      };
      this.files.set(k, f);
    }
    return f;
  }

  /** Fetches (or copies) ranges while the job runs (best effort: what fails is done again at the end). */
  private pump(): void {
    const limit = Math.max(1, this.options.concurrency ?? 2);
    while (this.running.size < limit && this.queue.length > 0 && this.stateValue === 'collecting') {
      const r = this.queue.shift()!;
      const staging = this.stagingDir !== undefined && staysInside(join(r.f.subdir, r.f.file)) ? this.stagingDir : undefined;
      const p: Promise<void> = (staging !== undefined ? this.copyRange(r.f, r.start, r.end, join(staging, r.f.subdir, r.f.file)) : this.fetchRange(r.f, r.start, r.end))
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

  /**
   * Copies [start, end) of a file from `src` (a staging or finished file of the
   * coordinator, opened afresh: on NFS an open after the writer's close sees its bytes),
   * written and hashed as a fetched chunk is. Throws when `src` cannot be read (a staging
   * file is renamed away when its job finishes): what is missing is then done at the end.
   */
  private async copyRange(f: FileState, start: number, end: number, src: string): Promise<void> {
    const early = this.stateValue === 'collecting';
    const fd = openSync(src, 'r');
    try {
      let turn = performance.now();
      for (let at = start; at < end;) {
        if (f.fd < 0 || this.stateValue === 'failed') throw new WeightspaceError('cancelled', 'download aborted');
        // shared by every copy: each slice is read, written and hashed within one turn
        const bytes = (this.copyBuffer ??= Buffer.allocUnsafe(HASH_READ_BYTES)).subarray(0, Math.min(HASH_READ_BYTES, end - at));
        const got = readAt(fd, bytes, at);
        if (got < bytes.length) throw new WeightspaceError('read-failed', `${q(src)} ends at ${at + got}, before ${end}`);
        let done = 0;
        while (done < bytes.length) done += writeSync(f.fd, bytes, done, bytes.length - done, at + done);
        f.received = addInterval(f.received, at, at + bytes.length);
        this.hashChunk(f, at, bytes);
        at += bytes.length;
        f.copied += bytes.length;
        this.stats.copied += bytes.length;
        if (early) this.stats.early += bytes.length;
        this.options.onProgress?.(this.stats.bytes + this.stats.copied);
        if (performance.now() - turn >= COPY_TURN_MS) {
          await nextTurn();
          turn = performance.now();
        }
      }
    } finally {
      closeSync(fd);
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
            this.options.onProgress?.(this.stats.bytes + this.stats.copied);
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
