/** Asks a worker process itself (Worker.Capacity) how many tasks it is running. */
import * as grpc from '@grpc/grpc-js';
import { weightspaceProto } from '../../../core/cluster/proto.js';
import type { CapacityReply } from '../../../core/cluster/wire-messages.js';

export async function workerCapacity(address: string): Promise<CapacityReply> {
  const { WorkerClient } = weightspaceProto();
  const client = new WorkerClient(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Capacity(req: object, options: grpc.CallOptions, cb: grpc.requestCallback<CapacityReply>): void;
  };
  try {
    return await new Promise<CapacityReply>((resolve, reject) => {
      client.Capacity({}, { deadline: Date.now() + 5_000 }, (err, reply) => (err ? reject(err) : resolve(reply!)));
    });
  } finally {
    client.close();
  }
}
