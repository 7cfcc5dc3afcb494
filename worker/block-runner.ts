/**
 * Runs one block of one tensor job: read the input byte ranges, decode to f32, run the
 * kernel's reduce or map step, encode and write (or return) the output bytes. One runner
 * per thread; it keeps its scratch buffers and open files between blocks, so the steady
 * state allocates nothing.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FileSource, openByteSource, isUrl, type ByteSource } from '../core/byte-source.js';
import { DTYPE_SIZE, decodeBlock, encodeBlock, isFloatDType, isWritableFloatDType, type FloatDType } from '../core/dtypes.js';
import { WeightspaceError, q } from '../core/errors.js';
import type { BlockInfo } from '../core/kernel-contract.js';
import { rowLengthOf, type Block, type InputRef, type TensorJob } from '../core/plan.js';
import { kernelFor } from './kernels/registry.js';
import { decodeInto, encodeFrom } from './simd/simd-codec.js';
import { simdBytes, simdFloats, simdFor } from './simd/simd-module.js';

export interface BlockRequest {
  readonly job: TensorJob;
  /** reduce pass number, or 'map' */
  readonly pass: number | 'map';
  readonly block: Block;
  readonly state: unknown;
  /** file sink: directory of each output checkpoint; undefined: return the bytes */
  readonly outputDirs: readonly string[] | undefined;
}

export interface OutputChunk {
  readonly output: number;
  readonly file: string;
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** A mostly-zero partial, as (index, value) pairs. */
export interface SparsePartial {
  readonly length: number;
  readonly index: Uint32Array;
  readonly values: Float64Array;
}

export interface BlockResult {
  readonly partial?: Float64Array;
  readonly sparse?: SparsePartial;
  readonly chunks?: OutputChunk[];
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

const MAX_OPEN = 64;

export class BlockRunner {
  private readonly sources = new Map<string, ByteSource>();
  private readonly outFds = new Map<string, number>();
  /** whole side inputs, decoded once per thread: small by contract */
  private readonly wholes = new Map<string, Float32Array>();
  private raw: Uint8Array[] = [];
  private f32In: Float32Array[] = [];
  private f32Out: Float32Array[] = [];
  private encoded = new Uint8Array(0);
  private partial = new Float64Array(0);

  async run(req: BlockRequest): Promise<BlockResult> {
    const { job, block } = req;
    if (req.pass === 'map' && job.kernel === 'copy' && job.outputs.every((o) => o.dtype === job.inputs[0]!.dtype)) {
      return this.copyRaw(req);
    }
    const kernel = kernelFor(job.kernel);
    const n = block.length;
    let bytesRead = 0;
    const inputs: Float32Array[] = [];
    const rowLength = rowLengthOf(job.shape);
    const tensorInfo = { tensor: job.name, shape: job.shape, numel: job.shape.reduce((a, b) => a * b, 1), blockCount: -1 };
    // a kernel that reads BF16 itself on this pass gets the raw bytes, decoded only if it asks
    const bf16 = job.inputs.every((r) => r.dtype === 'BF16' && (r.mode ?? 'block') === 'block')
      && kernel.readsRawBf16?.(req.pass, job.params, tensorInfo) === true ? [] as Uint8Array[] : undefined;
    for (let i = 0; i < job.inputs.length; i++) {
      const ref = job.inputs[i]!;
      if (!isFloatDType(ref.dtype)) {
        throw new WeightspaceError('internal', `tensor ${q(job.name)}: kernel ${q(job.kernel)} given a ${ref.dtype} input`);
      }
      const mode = ref.mode ?? 'block';
      if (mode === 'whole') {
        inputs.push(await this.wholeInput(ref));
        continue;
      }
      let start = block.start;
      let count = n;
      if (mode === 'rows') {
        const own = rowLengthOf(ref.shape ?? job.shape);
        start = (block.start / rowLength) * own;
        count = (n / rowLength) * own;
      }
      const size = DTYPE_SIZE[ref.dtype];
      const raw = this.rawBuffer(i, count * size);
      await this.readInto(ref.file, ref.offset + start * size, raw);
      bytesRead += raw.length;
      const f = this.floatBuffer(this.f32In, i, count);
      if (bf16) bf16.push(raw);
      else decodeInto(ref.dtype as FloatDType, raw, f, count);
      inputs.push(f);
    }
    let undecoded = bf16 !== undefined && simdFor(...bf16) !== undefined;
    if (bf16 && !undecoded) for (let i = 0; i < inputs.length; i++) decodeInto('BF16', bf16[i]!, inputs[i]!, n);
    const info: BlockInfo = {
      tensor: job.name,
      shape: job.shape,
      blockIndex: block.index,
      start: block.start,
      length: n,
      rowLength,
      ...(bf16 && undecoded ? {
        bf16: {
          raw: bf16,
          decode: () => {
            if (!undecoded) return;
            undecoded = false;
            for (let i = 0; i < inputs.length; i++) decodeInto('BF16', bf16[i]!, inputs[i]!, n);
          },
        },
      } : {}),
    };

    if (req.pass !== 'map') {
      const len = kernel.partialLength?.(req.pass, job.params, req.state, tensorInfo) ?? 0;
      const partial = this.partialBuffer(len);
      const own = kernel.reduce?.(req.pass, job.params, req.state, inputs, info, partial);
      if (own) return { partial: own, bytesRead, bytesWritten: 0 };
      return { ...packPartial(partial), bytesRead, bytesWritten: 0 };
    }

    const outputs: Float32Array[] = [];
    for (let k = 0; k < job.outputs.length; k++) outputs.push(this.floatBuffer(this.f32Out, k, n));
    // one BF16 output: the kernel may encode it itself, in its own loop
    const bf16Out = job.outputs.length === 1 && job.outputs[0]!.dtype === 'BF16' ? this.encodedBuffer(2 * n) : undefined;
    const done = kernel.map?.(job.params, req.state, inputs, outputs, bf16Out ? { ...info, bf16Out } : info);
    let bytesWritten = 0;
    const chunks: OutputChunk[] = [];
    for (let k = 0; k < job.outputs.length; k++) {
      const o = job.outputs[k]!;
      if (!isWritableFloatDType(o.dtype)) throw new WeightspaceError('internal', `tensor ${q(job.name)}: cannot encode ${o.dtype}`);
      const size = DTYPE_SIZE[o.dtype];
      const bytes = this.encodedBuffer(n * size);
      if (done !== 'encoded') encodeFrom(o.dtype, outputs[k]!, bytes, n);
      bytesWritten += bytes.length;
      const chunk = this.emit(req, k, o.offset + block.start * size, bytes);
      if (chunk) chunks.push(chunk);
    }
    return { chunks, bytesRead, bytesWritten };
  }

  /** Writes outputs a kernel computed from its final state (whole, small tensors). */
  writeWhole(req: Omit<BlockRequest, 'block' | 'pass' | 'state'>, outputs: readonly Float32Array[]): BlockResult {
    const chunks: OutputChunk[] = [];
    let bytesWritten = 0;
    for (let k = 0; k < req.job.outputs.length; k++) {
      const o = req.job.outputs[k]!;
      const x = outputs[k];
      if (!x || !isWritableFloatDType(o.dtype)) throw new WeightspaceError('internal', `tensor ${q(req.job.name)}: emit gave no output ${k}`);
      const bytes = new Uint8Array(x.length * DTYPE_SIZE[o.dtype]);
      encodeBlock(o.dtype, x, bytes, x.length);
      bytesWritten += bytes.length;
      const chunk = this.emit({ ...req, pass: 'map', block: { index: 0, start: 0, length: x.length }, state: undefined }, k, o.offset, bytes);
      if (chunk) chunks.push(chunk);
    }
    return { chunks, bytesRead: 0, bytesWritten };
  }

  close(): void {
    for (const s of this.sources.values()) s.close();
    this.sources.clear();
    for (const fd of this.outFds.values()) closeSync(fd);
    this.outFds.clear();
  }

  /** Forgets open output files (after a job's outputs are complete). */
  closeOutputs(): void {
    for (const fd of this.outFds.values()) closeSync(fd);
    this.outFds.clear();
  }

  private async copyRaw(req: BlockRequest): Promise<BlockResult> {
    const { job, block } = req;
    const ref = job.inputs[0]!;
    const size = DTYPE_SIZE[ref.dtype];
    const raw = this.rawBuffer(0, block.length * size);
    await this.readInto(ref.file, ref.offset + block.start * size, raw);
    const chunks: OutputChunk[] = [];
    for (let k = 0; k < job.outputs.length; k++) {
      const chunk = this.emit(req, k, job.outputs[k]!.offset + block.start * size, raw);
      if (chunk) chunks.push(chunk);
    }
    return { chunks, bytesRead: raw.length, bytesWritten: raw.length * job.outputs.length };
  }

  private emit(req: BlockRequest, k: number, offset: number, bytes: Uint8Array): OutputChunk | undefined {
    const o = req.job.outputs[k]!;
    if (req.outputDirs) {
      const dir = req.outputDirs[o.output];
      if (dir === undefined) throw new WeightspaceError('internal', `no directory for output ${o.output}`);
      const fd = this.outFd(join(dir, o.file));
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, offset + done);
      return undefined;
    }
    return { output: o.output, file: o.file, offset, bytes: bytes.slice() };
  }

  private async readInto(file: string, pos: number, dst: Uint8Array): Promise<void> {
    let src = this.sources.get(file);
    if (!src) {
      if (this.sources.size >= MAX_OPEN) {
        const [first] = this.sources;
        first![1].close();
        this.sources.delete(first![0]);
      }
      src = isUrl(file) ? await openByteSource(file) : FileSource.open(file);
      this.sources.set(file, src);
    }
    await src.read(pos, dst);
  }

  private async wholeInput(ref: InputRef): Promise<Float32Array> {
    const key = `${ref.file}@${ref.offset}`;
    let f = this.wholes.get(key);
    if (!f) {
      const numel = (ref.shape ?? []).reduce((a, b) => a * b, 1);
      const raw = new Uint8Array(numel * DTYPE_SIZE[ref.dtype]);
      await this.readInto(ref.file, ref.offset, raw);
      f = new Float32Array(numel);
      decodeBlock(ref.dtype as FloatDType, raw, f, numel);
      if (this.wholes.size >= MAX_OPEN) this.wholes.clear();
      this.wholes.set(key, f);
    }
    return f;
  }

  private outFd(path: string): number {
    let fd = this.outFds.get(path);
    if (fd === undefined) {
      if (this.outFds.size >= MAX_OPEN) this.closeOutputs();
      fd = openSync(path, 'r+');
      this.outFds.set(path, fd);
    }
    return fd;
  }

  // scratch lives in the SIMD backend's memory when it has room (simd-module.ts), so the
  // decode, the kernel and the encode can run there; replaced only when a larger block comes
  private rawBuffer(i: number, bytes: number): Uint8Array {
    const cur = this.raw[i];
    if (cur && cur.length >= bytes) return cur.subarray(0, bytes);
    const next = simdBytes(Math.max(bytes, cur?.length ?? 0));
    this.raw[i] = next;
    return next.subarray(0, bytes);
  }

  private floatBuffer(pool: Float32Array[], i: number, n: number): Float32Array {
    const cur = pool[i];
    if (cur && cur.length >= n) return cur.subarray(0, n);
    const next = simdFloats(n);
    pool[i] = next;
    return next;
  }

  /** The dense partial scratch, zeroed: reused, since what leaves the thread is a packed copy. */
  private partialBuffer(len: number): Float64Array {
    if (this.partial.length < len) this.partial = new Float64Array(len);
    const p = this.partial.subarray(0, len);
    p.fill(0);
    return p;
  }

  private encodedBuffer(bytes: number): Uint8Array {
    if (this.encoded.length < bytes) this.encoded = simdBytes(bytes);
    return this.encoded.subarray(0, bytes);
  }
}

/** A copy of a partial to send: (index, value) pairs when at most a quarter is non-zero, else dense. */
export function packPartial(p: Float64Array): { partial: Float64Array } | { sparse: SparsePartial } {
  let nnz = 0;
  for (let i = 0; i < p.length; i++) if (p[i] !== 0) nnz++;
  if (nnz * 4 > p.length) return { partial: p.slice() };
  const index = new Uint32Array(nnz);
  const values = new Float64Array(nnz);
  for (let i = 0, k = 0; i < p.length; i++) {
    const v = p[i]!;
    if (v !== 0) {
      index[k] = i;
      values[k++] = v;
    }
  }
  return { sparse: { length: p.length, index, values } };
}
