/**
 * The Worker gRPC service: thin handlers that decode, call the TaskService, and encode.
 * ExecuteTask streams a task's chunks (or, with shared staging, its `written` notes) with
 * backpressure (a full stream pauses the executor) and stops dispatching blocks as soon as
 * the coordinator cancels the call.
 */
import * as grpc from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import { FramePool, encodeTaskChunk, type EncodedMessage } from '../core/cluster/chunk-codec.js';
import { toServiceError } from '../core/cluster/grpc-errors.js';
import { SERVER_OPTIONS, WORKER_SERVICE, weightspaceProto } from '../core/cluster/proto.js';
import { addHealthAndReflection, bindServer, callSignal, writeMessage } from '../core/cluster/server-support.js';
import { CHUNK_BYTES, type CapacityReply, type ExecuteTaskRequest } from '../core/cluster/wire-messages.js';
import { WeightspaceError } from '../core/errors.js';
import type { LayerTask } from '../core/plan.js';
import type { StagingTarget } from './staging-writer.js';
import type { TaskMessageOut, TaskService } from './task-service.js';

export interface WorkerServer {
  readonly server: grpc.Server;
  readonly port: number;
  readonly health: HealthImplementation;
}

function decodeTask(req: ExecuteTaskRequest): LayerTask {
  try {
    return JSON.parse(req.taskJson) as LayerTask;
  } catch (err) {
    throw new WeightspaceError('cluster-protocol', `task of job '${req.jobId}' is not valid JSON: ${(err as Error).message}`);
  }
}

function decodeStaging(req: ExecuteTaskRequest): StagingTarget | undefined {
  if (!req.stagingDir) return undefined;
  return { dir: req.stagingDir, token: req.stagingToken ?? '', subdirs: req.stagingSubdirs ?? [] };
}

/** Chunk message buffers, reused across tasks (16 × 1 MiB at most kept). */
const chunkFrames = new FramePool(CHUNK_BYTES, 16);

async function executeTask(service: TaskService, call: grpc.ServerWritableStream<ExecuteTaskRequest, TaskMessageOut | EncodedMessage>): Promise<void> {
  const ac = callSignal(call);
  try {
    const task = decodeTask(call.request);
    await service.run(task, {
      // chunks are encoded by hand: their bytes copied once into the message
      send: (msg) => {
        if (!('chunk' in msg)) return writeMessage(call, msg, ac.signal);
        const encoded = encodeTaskChunk(msg.chunk, chunkFrames);
        return writeMessage(call, encoded, ac.signal, () => encoded.release());
      },
      offer: (msg) => {
        if (!ac.signal.aborted) call.write(msg);
      },
    }, ac.signal, decodeStaging(call.request));
    if (!ac.signal.aborted) call.end();
  } catch (err) {
    // a cancelled call has no one to tell
    if (!ac.signal.aborted) call.emit('error', Object.assign(new Error('task failed'), toServiceError(err)));
  }
}

export async function startWorkerServer(service: TaskService, options: { host: string; port: number; workerId: () => string }): Promise<WorkerServer> {
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(weightspaceProto().workerService, {
    ExecuteTask: (call: grpc.ServerWritableStream<ExecuteTaskRequest, TaskMessageOut | EncodedMessage>) => void executeTask(service, call),
    Capacity: (_call: grpc.ServerUnaryCall<unknown, CapacityReply>, callback: grpc.sendUnaryData<CapacityReply>) => {
      callback(null, {
        workerId: options.workerId(),
        threads: service.options.threads,
        maxTasks: service.options.maxTasks,
        runningTasks: service.running,
        state: service.state === 'ready' ? 'ready' : 'draining',
      });
    },
  });
  const health = addHealthAndReflection(server, WORKER_SERVICE);
  const port = await bindServer(server, options.host, options.port);
  return { server, port, health };
}
