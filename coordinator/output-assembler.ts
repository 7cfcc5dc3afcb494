/**
 * Assembles a job's output checkpoints. Everything is written under a temporary directory
 * beside the destination (`.<name>.weightspace-tmp-…`); shards are created full-size with
 * their headers first, blocks land at their known offsets in any order, and only when all
 * is complete are hashes, index, copied files and weightspace.json written and the
 * directory renamed into place. A failure removes the temporary directory: no partial
 * output is ever visible under the destination name.
 */
import { createHash } from 'node:crypto';
import { close, createReadStream, closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isUrl, readSmallFile } from '../core/byte-source.js';
import { INDEX_FILE } from '../core/checkpoint.js';
import { WeightspaceError, q } from '../core/errors.js';
import type { OutputPlan, Plan } from '../core/plan.js';
import { VERSION } from '../core/version.js';
import { ProgressiveHash } from './progressive-hash.js';

/** The tokenizer's files (left out with OutputPlan.copyTokenizer false). */
const TOKENIZER_NAMES = String.raw`tokenizer.*|special_tokens_map\.json|added_tokens\.json|vocab\.(json|txt)|merges\.txt|chat_template\.(json|jinja)|.*\.tiktoken|spiece\.model`;
const TOKENIZER_FILE = new RegExp(`^(${TOKENIZER_NAMES})$`);
/** Non-weight files copied from the base: config, generation config, tokenizer. */
const COPIED_FILE = new RegExp(String.raw`^(config\.json|generation_config\.json|preprocessor_config\.json|` + TOKENIZER_NAMES + ')$');
const KNOWN_COPIED = [
  'config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'tokenizer.model',
  'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'vocab.txt', 'merges.txt', 'chat_template.jinja',
];

export interface ShardDigest {
  readonly file: string;
  readonly sha256: string;
  readonly size: number;
}

export interface FinishedOutput {
  readonly dir: string;
  readonly label: string;
  readonly shards: readonly ShardDigest[];
}

export class OutputAssembler {
  private finished = false;
  private readonly fds = new Map<string, number>();
  /** per shard path: its sha256, computed as its bytes complete */
  private readonly hashes = new Map<string, ProgressiveHash>();

  private constructor(
    readonly plan: Plan,
    readonly dest: string,
    readonly tmp: string,
    private readonly force: boolean,
    private readonly createdParent: string | undefined,
  ) {}

  /** Checks the destination, creates the temporary directory and full-size shards with headers. */
  static prepare(plan: Plan, out: string, options: { force?: boolean } = {}): OutputAssembler {
    const dest = resolve(out);
    if (existsSync(dest)) {
      if (!options.force) {
        throw new WeightspaceError('output-exists', `output ${q(out)} already exists: choose another --out or pass --force to replace it`);
      }
    }
    const parent = dirname(dest);
    // missing parents are created, and removed again if the job fails
    const createdParent = mkdirSync(parent, { recursive: true });
    const tmp = join(parent, `.${basename(dest)}.weightspace-tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(tmp);
    const asm = new OutputAssembler(plan, dest, tmp, options.force ?? false, createdParent);
    try {
      for (const o of plan.outputs) {
        const dir = join(tmp, o.subdir);
        mkdirSync(dir, { recursive: true });
        for (const s of o.shards) {
          const header = Buffer.from(s.headerBase64, 'base64');
          const fd = openSync(join(dir, s.file), 'w');
          try {
            writeSync(fd, header, 0, header.length, 0);
            if (s.size > header.length) writeSync(fd, new Uint8Array(1), 0, 1, s.size - 1);
          } finally {
            closeSync(fd);
          }
        }
      }
    } catch (err) {
      asm.abort();
      throw err;
    }
    return asm;
  }

  /**
   * Re-opens the temporary directory an earlier process prepared for the same plan (a
   * restarted coordinator resuming a job): checks every shard is there at its full size.
   */
  static reopen(plan: Plan, out: string, tmp: string, options: { force?: boolean } = {}): OutputAssembler {
    for (const o of plan.outputs) {
      for (const s of o.shards) {
        const path = join(tmp, o.subdir, s.file);
        const size = existsSync(path) ? statSync(path).size : -1;
        if (size !== s.size) {
          throw new WeightspaceError('internal', `staging shard ${q(path)} has ${size} bytes, expected ${s.size}: cannot resume`);
        }
      }
    }
    return new OutputAssembler(plan, resolve(out), tmp, options.force ?? false, undefined);
  }

  /** The temporary directory of each output (for writers that write by offset themselves). */
  get outputDirs(): string[] {
    return this.plan.outputs.map((o) => join(this.tmp, o.subdir));
  }

  /** Writes one chunk at its offset (chunks may arrive in any order). */
  writeChunk(chunk: { output: number; file: string; offset: number; bytes: Uint8Array }): void {
    const o = this.plan.outputs[chunk.output];
    const shard = o?.shards.find((s) => s.file === chunk.file);
    if (!o || !shard || chunk.offset < 0 || chunk.offset + chunk.bytes.length > shard.size) {
      throw new WeightspaceError('internal', `chunk for output ${chunk.output} file ${q(chunk.file)} at ${chunk.offset}+${chunk.bytes.length} is outside the plan`);
    }
    const path = join(this.tmp, o.subdir, chunk.file);
    let fd = this.fds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r+');
      this.fds.set(path, fd);
    }
    let done = 0;
    while (done < chunk.bytes.length) done += writeSync(fd, chunk.bytes, done, chunk.bytes.length - done, chunk.offset + done);
    // the bytes are in hand: hashed now when they continue the hashed prefix, not read back later
    this.writtenBytes(chunk.output, chunk.file, chunk.offset, chunk.bytes);
  }

  /** Where a shard is staged; throws for a file the plan does not have. */
  shardPath(output: number, file: string): string {
    const o = this.plan.outputs[output];
    if (!o || !o.shards.some((s) => s.file === file)) {
      throw new WeightspaceError('internal', `output ${output} has no shard ${q(file)}`);
    }
    return join(this.tmp, o.subdir, file);
  }

  /**
   * Records that a byte range of a shard holds its final bytes (written by a thread, or a
   * chunk): the shard's sha256 advances over what became contiguous while the job runs.
   */
  written(output: number, file: string, offset: number, length: number): void {
    this.hashOf(output, file)?.written(offset, length);
  }

  /**
   * As `written`, for a range whose bytes the caller holds (read back from the shard and
   * checked): hashed from memory when it continues the hashed prefix.
   */
  writtenBytes(output: number, file: string, offset: number, bytes: Uint8Array): void {
    this.hashOf(output, file)?.writtenBytes(offset, bytes);
  }

  private hashOf(output: number, file: string): ProgressiveHash | undefined {
    const o = this.plan.outputs[output];
    const shard = o?.shards.find((s) => s.file === file);
    if (!o || !shard) return undefined;
    const path = join(this.tmp, o.subdir, file);
    let h = this.hashes.get(path);
    if (!h) {
      h = new ProgressiveHash(path, shard.size);
      this.hashes.set(path, h);
      // the header was written at prepare
      h.written(0, Buffer.from(shard.headerBase64, 'base64').length);
    }
    return h;
  }

  /**
   * Closes the files chunks were written through (the next chunk opens its file again),
   * off the event loop: on NFS a close writes the dirty pages back, and only then does
   * another host that opens the file see them (close-to-open consistency).
   */
  async closeWrites(): Promise<void> {
    const fds = [...this.fds.values()];
    this.fds.clear();
    await Promise.all(fds.map((fd) => new Promise<void>((resolve, reject) => close(fd, (err) => (err ? reject(err) : resolve())))));
  }

  /**
   * Completes every output: shard hashes, index, copied non-weight files, weightspace.json;
   * then renames the temporary directory into place.
   */
  async finalize(extra: { report?: unknown } = {}): Promise<FinishedOutput[]> {
    this.closeFds();
    const finished: FinishedOutput[] = [];
    try {
      for (const o of this.plan.outputs) {
        const dir = join(this.tmp, o.subdir);
        const shards: ShardDigest[] = [];
        for (const s of o.shards) {
          const path = join(dir, s.file);
          const h = this.hashes.get(path) ?? new ProgressiveHash(path, s.size);
          shards.push({ file: s.file, sha256: h.digest(), size: s.size });
        }
        if (o.index) writeFileSync(join(dir, INDEX_FILE), o.index);
        await copyNonWeightFiles(o, dir);
        for (const [name, content] of Object.entries(o.extraFiles)) writeFileSync(join(dir, name), content);
        const manifest = {
          tool: 'weightspace',
          version: VERSION,
          op: this.plan.op,
          output: o.label,
          spec: this.plan.spec,
          shards: Object.fromEntries(shards.map((s) => [s.file, { sha256: s.sha256, size: s.size }])),
          ...o.manifest,
          ...(extra.report !== undefined ? { report: extra.report } : {}),
        };
        writeFileSync(join(dir, 'weightspace.json'), JSON.stringify(manifest, null, 2) + '\n');
        finished.push({ dir: join(this.dest, o.subdir), label: o.label, shards });
      }
      if (existsSync(this.dest)) {
        if (!this.force) throw new WeightspaceError('output-exists', `output ${q(this.dest)} appeared while the job ran`);
        rmSync(this.dest, { recursive: true, force: true });
      }
      renameSync(this.tmp, this.dest);
      this.finished = true;
      return finished;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Removes the temporary directory (idempotent; nothing under the destination is touched). */
  abort(): void {
    this.closeFds();
    if (this.finished) return;
    rmSync(this.tmp, { recursive: true, force: true });
    if (this.createdParent) rmSync(this.createdParent, { recursive: true, force: true });
  }

  private closeFds(): void {
    for (const h of this.hashes.values()) h.close();
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 8 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function copyNonWeightFiles(o: OutputPlan, dir: string): Promise<void> {
  const from = o.copyFilesFrom;
  const names: string[] = [];
  if (from && !isUrl(from)) {
    if (existsSync(from)) for (const n of readdirSync(from)) if (COPIED_FILE.test(n)) names.push(n);
  } else if (from) {
    names.push(...KNOWN_COPIED);
  }
  for (const name of names.sort()) {
    if (o.copyTokenizer === false && TOKENIZER_FILE.test(name)) continue;
    const loc = isUrl(from!) ? `${from!.replace(/\/+$/, '')}/${name}` : join(from!, name);
    const bytes = await readSmallFile(loc);
    if (!bytes) continue;
    if (name === 'config.json' && Object.keys(o.configPatch).length > 0) {
      const config = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, name), JSON.stringify({ ...config, ...o.configPatch }, null, 2) + '\n');
    } else {
      writeFileSync(join(dir, name), bytes);
    }
  }
  if (!names.includes('config.json') && Object.keys(o.configPatch).length > 0 && !existsSync(join(dir, 'config.json'))) {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(o.configPatch, null, 2) + '\n');
  }
}
