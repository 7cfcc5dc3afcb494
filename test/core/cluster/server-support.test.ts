import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { writeMessage } from '../../../core/cluster/server-support.js';

/** A server stream whose buffer is full and never drains (as a cancelled call). */
function fullStream(): grpc.ServerWritableStream<unknown, string> & { written: string[] } {
  const s = new EventEmitter() as EventEmitter & { written: string[]; write: (m: string) => boolean };
  s.written = [];
  s.write = (m: string) => {
    s.written.push(m);
    return false;
  };
  return s as unknown as grpc.ServerWritableStream<unknown, string> & { written: string[] };
}

describe('writeMessage (server stream backpressure)', () => {
  it("waits for 'drain' when write() returns false", async () => {
    const call = fullStream();
    let resolved = false;
    const p = writeMessage(call, 'a', new AbortController().signal).then(() => {
      resolved = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(resolved).toBe(false);
    call.emit('drain');
    await p;
    expect(resolved).toBe(true);
    expect(call.written).toEqual(['a']);
  });

  it('rejects, never hangs, when the call is cancelled while full', async () => {
    const call = fullStream();
    const ac = new AbortController();
    const p = writeMessage(call, 'a', ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'cancelled' });
    await expect(writeMessage(call, 'b', ac.signal)).rejects.toMatchObject({ code: 'cancelled' });
    expect(call.written).toEqual(['a']);
  });
});
