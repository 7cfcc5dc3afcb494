/**
 * What both servers share: standard health checking (grpc.health.v1) and server
 * reflection beside their own service, port binding, and writing to a server stream with
 * backpressure that never waits on a cancelled call.
 */
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { WeightspaceError, q } from '../errors.js';
import { weightspaceProto } from './proto.js';

/** Adds grpc.health.v1 (service '' and `serviceName`, both SERVING) and reflection. */
export function addHealthAndReflection(server: grpc.Server, serviceName: string): HealthImplementation {
  const health = new HealthImplementation({ '': 'SERVING', [serviceName]: 'SERVING' });
  health.addToServer(server);
  new ReflectionService(weightspaceProto().packageDefinition).addToServer(server);
  return health;
}

/** Binds `host:port` (port 0: any free port); resolves with the bound port. */
export function bindServer(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(new WeightspaceError('cluster-unavailable', `cannot listen on ${q(`${host}:${port}`)}: ${err.message}`));
      else resolve(bound);
    });
  });
}

/** Stops a server: lets calls finish for up to `graceMs`, then cuts them. */
export function shutdownServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Writes one message; resolves at once, or on 'drain' when the stream is full. Rejects
 * (never hangs) when `signal` fires: a cancelled call never drains. `onWritten` runs once
 * gRPC has serialized and sent the message (never, if the call is cancelled first).
 */
export function writeMessage<T>(call: grpc.ServerWritableStream<unknown, T>, msg: T, signal: AbortSignal, onWritten?: () => void): Promise<void> {
  if (signal.aborted) return Promise.reject(new WeightspaceError('cancelled', 'call cancelled'));
  if (onWritten ? call.write(msg, onWritten) : call.write(msg)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    };
    const onAbort = (): void => {
      call.removeListener('drain', onDrain);
      reject(new WeightspaceError('cancelled', 'call cancelled'));
    };
    call.once('drain', onDrain);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** An AbortSignal that fires when the client cancels the call (or the connection dies). */
export function callSignal(call: grpc.ServerWritableStream<unknown, unknown>): AbortController {
  const ac = new AbortController();
  call.on('cancelled', () => ac.abort());
  if (call.cancelled) ac.abort();
  return ac;
}
