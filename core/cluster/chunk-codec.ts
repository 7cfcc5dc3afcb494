/**
 * Hand-written protobuf encoding of the two messages that carry output bytes
 * (TaskMessage.chunk, OutputChunk), so a chunk's bytes are copied into its message once
 * (or read from disk straight into it) instead of going through protobufjs's writer.
 * The servers' response serializers pass an EncodedMessage through as it is; every
 * other message, and every decoder, is protobufjs as usual (proto3 decoders accept
 * fields in any order, so the header can hold every field but the payload).
 *
 * Field numbers are those of proto/weightspace.proto (test/core/cluster/chunk-codec.test.ts
 * decodes these bytes with the .proto to keep both in step).
 */
import type * as grpc from '@grpc/grpc-js';

/** A message already encoded as protobuf bytes: the serializer sends it as it is. */
export class EncodedMessage {
  constructor(readonly bytes: Buffer, private readonly pooled?: { pool: FramePool; buffer: Buffer }) {}

  /** gRPC has copied the message out (its write callback): its buffer may serve the next one. */
  release(): void {
    if (this.pooled) this.pooled.pool.give(this.pooled.buffer);
  }
}

/**
 * Buffers for chunk messages, reused once gRPC has copied a message into its frame, so a
 * stream of chunks does not allocate (and page-fault, and collect) a fresh buffer per
 * chunk: with large external buffers, garbage collection is much of a data plane's cost.
 */
export class FramePool {
  private readonly free: Buffer[] = [];

  /** `payloadBytes`: the largest payload a pooled buffer holds; `keep`: buffers kept for reuse. */
  constructor(readonly payloadBytes: number, private readonly keep: number) {}

  get capacity(): number {
    return this.payloadBytes + POOL_HEADER_ROOM;
  }

  take(size: number): Buffer | undefined {
    if (size > this.capacity) return undefined;
    return this.free.pop() ?? Buffer.allocUnsafe(this.capacity);
  }

  give(buffer: Buffer): void {
    if (buffer.length === this.capacity && this.free.length < this.keep && !this.free.includes(buffer)) this.free.push(buffer);
  }
}

/** Header room of a pooled buffer (file names longer than this get a buffer of their own). */
const POOL_HEADER_ROOM = 4096;

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes an unsigned integer (up to 2^53) as a varint at `at`; returns the next position. */
function putVarint(buf: Buffer, at: number, v: number): number {
  while (v >= 0x80) {
    buf[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

type HeaderField = readonly [field: number, value: number | string];

/** Encoded size of the fields (a zero number and an empty string are left out, as proto3 does). */
function fieldsSize(fields: readonly HeaderField[]): number {
  let n = 0;
  for (const [field, value] of fields) {
    if (typeof value === 'number') {
      if (value !== 0) n += varintSize(field << 3) + varintSize(value);
    } else if (value !== '') {
      const len = Buffer.byteLength(value);
      n += varintSize(field << 3) + varintSize(len) + len;
    }
  }
  return n;
}

function putFields(buf: Buffer, at: number, fields: readonly HeaderField[]): number {
  for (const [field, value] of fields) {
    if (typeof value === 'number') {
      if (value === 0) continue;
      at = putVarint(buf, at, (field << 3) | WIRE_VARINT);
      at = putVarint(buf, at, value);
    } else if (value !== '') {
      at = putVarint(buf, at, (field << 3) | WIRE_LEN);
      at = putVarint(buf, at, Buffer.byteLength(value));
      at += buf.write(value, at, 'utf8');
    }
  }
  return at;
}

/**
 * Room before a payload for its message's header: the outer tags and lengths (≤ 2 × 11
 * bytes), the numeric fields (≤ 4 × 11), the payload's tag and length, and the strings.
 */
function headerRoom(strings: readonly string[]): number {
  return 96 + strings.reduce((a, s) => a + 6 + Buffer.byteLength(s), 0);
}

/**
 * A message whose payload is filled in place (read from a file, copied from a block):
 * `payload` is where the bytes go; `finish` writes the header just before them, once
 * the fields known only afterwards (the checksum) are, and returns the message.
 */
export interface ChunkFrame {
  readonly payload: Buffer;
  finish(trailing: readonly HeaderField[]): EncodedMessage;
}

/**
 * `outerField`: the message nests the chunk in that field of an outer message (TaskMessage's
 * oneof), or 0 when the chunk is the message itself (OutputChunk).
 */
function chunkFrame(
  outerField: number, leading: readonly HeaderField[], payloadField: number, length: number, strings: readonly string[], pool: FramePool | undefined,
): ChunkFrame {
  const room = headerRoom(strings);
  const pooled = pool?.take(room + length);
  const buf = pooled ?? Buffer.allocUnsafe(room + length);
  const payload = buf.subarray(room, room + length);
  return {
    payload,
    finish(trailing) {
      const fields = [...leading, ...trailing];
      const payloadTag = (payloadField << 3) | WIRE_LEN;
      const innerSize = fieldsSize(fields) + varintSize(payloadTag) + varintSize(length) + length;
      const outerPrefix = outerField > 0 ? varintSize((outerField << 3) | WIRE_LEN) + varintSize(innerSize) : 0;
      const start = room - (innerSize - length) - outerPrefix;
      if (start < 0) throw new RangeError('chunk header larger than its room');
      let at = start;
      if (outerField > 0) {
        at = putVarint(buf, at, (outerField << 3) | WIRE_LEN);
        at = putVarint(buf, at, innerSize);
      }
      at = putFields(buf, at, fields);
      at = putVarint(buf, at, payloadTag);
      at = putVarint(buf, at, length);
      if (at !== room) throw new RangeError(`chunk header is ${at - start} bytes, expected ${room - start}`);
      return new EncodedMessage(buf.subarray(start, room + length), pooled && pool ? { pool, buffer: pooled } : undefined);
    },
  };
}

// TaskMessage { oneof message { TaskChunk chunk = 1; ... } }
// TaskChunk { uint32 output = 1; string file = 2; uint64 offset = 3; bytes bytes = 4; uint32 crc32 = 5; }
/** A TaskMessage carrying one chunk, `bytes` copied once into it. */
export function encodeTaskChunk(chunk: { output: number; file: string; offset: number; bytes: Uint8Array; crc32: number }, pool?: FramePool): EncodedMessage {
  const frame = chunkFrame(1, [[1, chunk.output], [2, chunk.file], [3, chunk.offset]], 4, chunk.bytes.length, [chunk.file], pool);
  frame.payload.set(chunk.bytes);
  return frame.finish([[5, chunk.crc32 >>> 0]]);
}

// OutputChunk { uint32 output = 1; string subdir = 2; string file = 3; uint64 offset = 4; bytes bytes = 5;
//               uint32 crc32 = 6; uint64 file_size = 7; string file_sha256 = 8; }
/** An OutputChunk whose `length` bytes are filled in place; `finish` adds the checksum (and the file's sha256 on the last chunk). */
export function outputChunkFrame(meta: { output: number; subdir: string; file: string; offset: number; fileSize: number }, length: number, pool?: FramePool): {
  readonly payload: Buffer;
  finish(crc32: number, fileSha256: string): EncodedMessage;
} {
  const sha256Room = '0'.repeat(64);
  const frame = chunkFrame(0, [[1, meta.output], [2, meta.subdir], [3, meta.file], [4, meta.offset], [7, meta.fileSize]], 5, length, [meta.subdir, meta.file, sha256Room], pool);
  return { payload: frame.payload, finish: (crc32, fileSha256) => frame.finish([[6, crc32 >>> 0], [8, fileSha256]]) };
}

/**
 * The service definition with the response serializer of `methods` passing EncodedMessage
 * through (and encoding anything else with the .proto as before).
 */
export function passEncodedResponses(service: grpc.ServiceDefinition, methods: readonly string[]): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, def] of Object.entries(service)) {
    const m = def as grpc.MethodDefinition<unknown, unknown>;
    if (!methods.includes(name)) {
      out[name] = m;
      continue;
    }
    const encode = m.responseSerialize;
    out[name] = { ...m, responseSerialize: (value: unknown) => (value instanceof EncodedMessage ? value.bytes : encode(value)) };
  }
  return out as grpc.ServiceDefinition;
}
