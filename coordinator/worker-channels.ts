/** gRPC channels to workers, one per address, reused across tasks and closed when a worker leaves. */
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, weightspaceProto } from '../core/cluster/proto.js';
import type { ExecuteTaskRequest, TaskMessageMsg } from '../core/cluster/wire-messages.js';

export class WorkerChannels {
  private readonly clients = new Map<string, grpc.Client>();

  /** Starts a task on the worker at `address`; the call streams its messages. */
  executeTask(address: string, req: ExecuteTaskRequest): grpc.ClientReadableStream<TaskMessageMsg> {
    const client = this.client(address) as grpc.Client & {
      ExecuteTask(req: ExecuteTaskRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<TaskMessageMsg>;
    };
    return client.ExecuteTask(req);
  }

  forget(address: string): void {
    const c = this.clients.get(address);
    if (c) {
      c.close();
      this.clients.delete(address);
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(address: string): grpc.Client {
    let c = this.clients.get(address);
    if (!c) {
      const { WorkerClient } = weightspaceProto();
      c = new WorkerClient(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      this.clients.set(address, c);
    }
    return c;
  }
}
