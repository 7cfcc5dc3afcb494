/**
 * Shared staging, the worker's side: a task's output bytes written straight into the
 * coordinator's staging files, by offset, instead of streamed to it as chunks (the same
 * idea as HDFS short-circuit local reads: co-located processes, or pods on one shared
 * volume, need not push bytes through a socket).
 *
 * Only after the staging directory's token file holds the token the coordinator sent: a
 * path that exists is no proof it is the coordinator's directory (docs/cluster.md). The
 * pool threads then write as they do in embedded mode (the executor's file sink, files
 * opened without creating or truncating them: the coordinator created them at their full
 * size), so no output byte leaves its thread. As each tensor completes, its ranges are
 * read back here (page cache) in notes of at most STAGED_PIECE_BYTES with their CRC-32,
 * which the coordinator compares with what it reads. The files are closed (the threads'
 * too) before the task reports done: on NFS, close-to-open consistency then makes the
 * bytes visible to the coordinator's next open.
 */
import { closeSync, openSync } from 'node:fs';
import { join, sep } from 'node:path';
import { readAt } from '../core/byte-source.js';
import { chunkChecksum } from '../core/cluster/checksum.js';
import { STAGING_TOKEN_FILE, staysInside, tokenMatches } from '../core/cluster/volume-token.js';
import { STAGED_PIECE_BYTES, type TaskWrittenMsg } from '../core/cluster/wire-messages.js';
import { WeightspaceError, q } from '../core/errors.js';
import type { LayerTask } from '../core/plan.js';

/** Where the coordinator stages a job's output (ExecuteTaskRequest.staging_*). */
export interface StagingTarget {
  /** absolute, as the coordinator sees it */
  readonly dir: string;
  readonly token: string;
  /** each output's subdirectory under `dir` */
  readonly subdirs: readonly string[];
}

const key = (output: number, file: string): string => `${output}\u0000${file}`;

export class StagingWriter {
  /** per staging file of the task: a descriptor to read its ranges back */
  private readonly fds = new Map<string, number>();
  private buffer: Buffer | undefined;

  private constructor(
    /** each output's directory in the staging, for the executor's file sink */
    readonly outputDirs: readonly string[],
  ) {}

  /**
   * Checks the token and opens every staging file `task` writes (read-write: a file this
   * worker could not write shows now, not mid-task). Returns the reason (for a log line)
   * when this worker cannot write there: the task then sends chunks.
   */
  static open(target: StagingTarget, task: LayerTask): StagingWriter | { readonly fallback: string } {
    if (!tokenMatches(target.dir, STAGING_TOKEN_FILE, target.token)) {
      return { fallback: `no staging token matching the coordinator's at ${q(target.dir)}` };
    }
    if (!target.subdirs.every(staysInside)) return { fallback: `output subdirectories ${q(target.subdirs.join(', '))} leave the staging directory` };
    const w = new StagingWriter(target.subdirs.map((s) => join(target.dir, s)));
    try {
      for (const job of task.jobs) {
        for (const o of job.outputs) {
          const k = key(o.output, o.file);
          if (w.fds.has(k)) continue;
          const dir = w.outputDirs[o.output];
          if (dir === undefined || o.file === '' || o.file.includes(sep) || !staysInside(o.file)) {
            throw new WeightspaceError('cluster-protocol', `output ${o.output} file ${q(o.file)} has no place in the staging directory`);
          }
          // 'r+': neither created nor truncated; the coordinator made it full-size
          w.fds.set(k, openSync(join(dir, o.file), 'r+'));
        }
      }
    } catch (err) {
      w.close();
      return { fallback: `cannot open the staging files: ${(err as Error).message}` };
    }
    return w;
  }

  /** Reads back a range the threads have written (a finished tensor's output) as notes with CRC-32s. */
  notes(output: number, file: string, offset: number, length: number): TaskWrittenMsg[] {
    const fd = this.fds.get(key(output, file));
    if (fd === undefined) throw new WeightspaceError('internal', `output ${output} file ${q(file)} is not among the task's staging files`);
    const buf = (this.buffer ??= Buffer.allocUnsafe(STAGED_PIECE_BYTES));
    const out: TaskWrittenMsg[] = [];
    for (let at = offset; at < offset + length;) {
      const piece = buf.subarray(0, Math.min(STAGED_PIECE_BYTES, offset + length - at));
      const got = readAt(fd, piece, at);
      if (got < piece.length) throw new WeightspaceError('internal', `staging file ${q(file)} ends at ${at + got}, inside its written range ${offset}+${length}`);
      out.push({ output, file, offset: at, length: piece.length, crc32: chunkChecksum(piece) });
      at += piece.length;
    }
    return out;
  }

  /** Closes the files (idempotent). */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
