/**
 * The body of one pool thread: runs block requests with its own BlockRunner and answers
 * with the result (partials and chunks transferred, not copied) or a coded error.
 */
import { parentPort } from 'node:worker_threads';
import { toWeightspaceError } from '../core/errors.js';
import { BlockRunner, type BlockRequest } from './block-runner.js';

export interface ThreadRequest {
  readonly id: number;
  readonly req: BlockRequest;
}

/** Close the output files now (between blocks: each block's writes are synchronous) and answer `id`. */
export interface CloseOutputsRequest {
  readonly id: number;
  readonly closeOutputs: true;
}

const runner = new BlockRunner();
// blocks run one at a time: the runner's scratch buffers are shared, and http reads yield
let queue: Promise<void> = Promise.resolve();
const port = parentPort;
if (!port) throw new Error('pool-thread must run in a worker thread');

port.on('message', (msg: ThreadRequest | CloseOutputsRequest | 'close-outputs' | 'close') => {
  if (msg === 'close-outputs') {
    runner.closeOutputs();
    return;
  }
  if (typeof msg === 'object' && 'closeOutputs' in msg) {
    runner.closeOutputs();
    port.postMessage({ id: msg.id, result: { bytesRead: 0, bytesWritten: 0 } });
    return;
  }
  if (msg === 'close') {
    runner.close();
    port.close();
    return;
  }
  queue = queue.then(() => runner.run(msg.req)).then(
    (result) => {
      const transfer: ArrayBuffer[] = [];
      if (result.partial) transfer.push(result.partial.buffer as ArrayBuffer);
      if (result.sparse) transfer.push(result.sparse.index.buffer as ArrayBuffer, result.sparse.values.buffer as ArrayBuffer);
      for (const c of result.chunks ?? []) transfer.push(c.bytes.buffer as ArrayBuffer);
      port.postMessage({ id: msg.id, result }, transfer);
    },
    (err: unknown) => {
      const e = toWeightspaceError(err);
      port.postMessage({ id: msg.id, error: { code: e.code, message: e.message } });
    },
  );
});
