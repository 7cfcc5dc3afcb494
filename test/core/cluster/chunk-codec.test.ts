/**
 * The hand-encoded chunk messages decode, with the .proto, to what protobufjs would have
 * encoded: every field, large offsets, empty strings and payloads, a file's sha256.
 */
import { describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { EncodedMessage, FramePool, encodeTaskChunk, outputChunkFrame } from '../../../core/cluster/chunk-codec.js';
import { weightspaceProto } from '../../../core/cluster/proto.js';

function method(service: grpc.ServiceDefinition, name: string): grpc.MethodDefinition<unknown, unknown> {
  return service[name] as grpc.MethodDefinition<unknown, unknown>;
}

describe('chunk codec', () => {
  const { workerService, coordinatorService } = weightspaceProto();
  const execute = method(workerService, 'ExecuteTask');
  const fetch = method(coordinatorService, 'FetchOutput');

  it('encodes a task chunk as the TaskMessage oneof', () => {
    const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    for (const offset of [0, 1, 127, 128, 2 ** 32 + 5, 2 ** 52 + 3]) {
      const msg = encodeTaskChunk({ output: 3, file: 'model-00001-of-00002.safetensors', offset, bytes, crc32: 0xfedcba98 });
      const wire = execute.responseSerialize(msg);
      const back = execute.responseDeserialize(wire) as { message: string; chunk: { output: number; file: string; offset: number; bytes: Buffer; crc32: number } };
      expect(back.message).toBe('chunk');
      expect(back.chunk.output).toBe(3);
      expect(back.chunk.file).toBe('model-00001-of-00002.safetensors');
      expect(back.chunk.offset).toBe(offset);
      expect(back.chunk.crc32).toBe(0xfedcba98);
      expect(Buffer.compare(back.chunk.bytes, bytes)).toBe(0);
    }
  });

  it('encodes an output chunk filled in place, with and without the sha256', () => {
    for (const [sha, subdir, output, length] of [['', '', 0, 0], ['ab'.repeat(32), 'merged/é', 7, 5000]] as const) {
      const frame = outputChunkFrame({ output, subdir, file: 'w.safetensors', offset: 4096, fileSize: 1e12 }, length);
      frame.payload.fill(0x5a);
      const msg = frame.finish(12345, sha);
      expect(msg).toBeInstanceOf(EncodedMessage);
      const back = fetch.responseDeserialize(fetch.responseSerialize(msg)) as Record<string, unknown>;
      expect(back).toMatchObject({ output, subdir, file: 'w.safetensors', offset: 4096, crc32: 12345, fileSize: 1e12, fileSha256: sha });
      expect(Buffer.compare(back['bytes'] as Buffer, Buffer.alloc(length, 0x5a))).toBe(0);
    }
  });

  it('still encodes plain messages with the .proto', () => {
    const wire = execute.responseSerialize({ done: { bytesRead: 1, bytesWritten: 2, tensorsDone: 3, results: 0 } });
    expect(execute.responseDeserialize(wire)).toMatchObject({ message: 'done', done: { bytesRead: 1, bytesWritten: 2, tensorsDone: 3 } });
  });
});

describe('frame pool', () => {
  it('reuses a released buffer, and never one still in use', () => {
    const pool = new FramePool(1024, 2);
    const a = encodeTaskChunk({ output: 0, file: 'a', offset: 0, bytes: Buffer.alloc(1000, 1), crc32: 1 }, pool);
    const b = encodeTaskChunk({ output: 0, file: 'b', offset: 0, bytes: Buffer.alloc(1000, 2), crc32: 2 }, pool);
    expect(a.bytes.buffer).not.toBe(b.bytes.buffer);
    a.release();
    a.release();
    const c = encodeTaskChunk({ output: 0, file: 'c', offset: 0, bytes: Buffer.alloc(10, 3), crc32: 3 }, pool);
    expect(c.bytes.buffer).toBe(a.bytes.buffer);
    const d = encodeTaskChunk({ output: 0, file: 'd', offset: 0, bytes: Buffer.alloc(10, 4), crc32: 4 }, pool);
    expect(d.bytes.buffer).not.toBe(c.bytes.buffer);
    // larger than the pool's buffers: a buffer of its own, not kept
    const big = encodeTaskChunk({ output: 0, file: 'e', offset: 0, bytes: Buffer.alloc(10_000, 5), crc32: 5 }, pool);
    big.release();
    expect(pool.take(10)).not.toBe(big.bytes.buffer);
  });
});
