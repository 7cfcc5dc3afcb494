/**
 * The gRPC contract (proto/weightspace.proto), loaded once per process. Coordinator,
 * worker and client meet here: none of them imports another's code.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { WeightspaceError } from '../errors.js';
import { passEncodedResponses } from './chunk-codec.js';

export const PROTO_PACKAGE = 'weightspace.v1';
export const COORDINATOR_SERVICE = `${PROTO_PACKAGE}.Coordinator`;
export const WORKER_SERVICE = `${PROTO_PACKAGE}.Worker`;

/** Messages up to 64 MiB (chunks are at most 4 MiB; plans of huge models are large JSON). */
export const MAX_MESSAGE_BYTES = 64 << 20;

/** Channel options shared by every client: large messages, keepalive so a dead peer is noticed. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
  // HTTP/2 starts with a 64 KiB window: 1 MiB chunks would stall on every WINDOW_UPDATE
  'grpc-node.flow_control_window': 32 << 20,
};

export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
};

/** Where proto/weightspace.proto is, from sources (core/cluster) or the build (dist/core/cluster). */
export function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto', 'weightspace.proto');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new WeightspaceError('internal', 'proto/weightspace.proto is missing from this installation');
}

export interface WeightspaceProto {
  readonly packageDefinition: protoLoader.PackageDefinition;
  readonly coordinatorService: grpc.ServiceDefinition;
  readonly workerService: grpc.ServiceDefinition;
  readonly CoordinatorClient: grpc.ServiceClientConstructor;
  readonly WorkerClient: grpc.ServiceClientConstructor;
}

let loaded: WeightspaceProto | undefined;

/** Field names in camelCase, 64-bit integers as numbers (safe to 2^53 bytes), bytes as Buffers. */
export function weightspaceProto(): WeightspaceProto {
  if (loaded) return loaded;
  const packageDefinition = protoLoader.loadSync(protoPath(), {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const root = grpc.loadPackageDefinition(packageDefinition) as unknown as {
    weightspace: { v1: { Coordinator: grpc.ServiceClientConstructor; Worker: grpc.ServiceClientConstructor } };
  };
  const { Coordinator, Worker } = root.weightspace.v1;
  loaded = {
    packageDefinition,
    // the messages that carry output bytes are encoded by hand (chunk-codec.ts)
    coordinatorService: passEncodedResponses(Coordinator.service, ['FetchOutput']),
    workerService: passEncodedResponses(Worker.service, ['ExecuteTask']),
    CoordinatorClient: Coordinator,
    WorkerClient: Worker,
  };
  return loaded;
}
