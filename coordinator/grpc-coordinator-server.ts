/**
 * The Coordinator gRPC service: thin handlers that decode, call the JobManager or the
 * WorkerRegistry, and encode. Job streams end with done, or with the failed event and
 * then a coded status (`weightspace-code` in trailing metadata).
 */
import { open, type FileHandle } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import { chunkChecksum } from '../core/cluster/checksum.js';
import { FramePool, outputChunkFrame, type EncodedMessage } from '../core/cluster/chunk-codec.js';
import { toServiceError } from '../core/cluster/grpc-errors.js';
import { COORDINATOR_SERVICE, SERVER_OPTIONS, weightspaceProto } from '../core/cluster/proto.js';
import { addHealthAndReflection, bindServer, callSignal, writeMessage } from '../core/cluster/server-support.js';
import {
  FETCH_CHUNK_BYTES,
  type CancelJobReply, type CancelJobRequest, type FetchOutputRequest, type JobEventMsg, type JobStatusReply, type JobStatusRequest,
  type ListWorkersReply, type SubmitJobRequest, type WatchJobRequest,
} from '../core/cluster/wire-messages.js';
import { WeightspaceError, q } from '../core/errors.js';
import type { JobManager } from './job-manager.js';
import type { JobRun } from './job-run.js';
import type { WorkerRegistry } from './worker-registry.js';

export interface CoordinatorServer {
  readonly server: grpc.Server;
  readonly port: number;
  readonly health: HealthImplementation;
}

function fail(call: grpc.ServerWritableStream<unknown, unknown>, err: unknown): void {
  call.emit('error', Object.assign(new Error('call failed'), toServiceError(err)));
}

function unary<Req, Res>(fn: (req: Req) => Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    try {
      callback(null, fn(call.request));
    } catch (err) {
      callback(Object.assign(new Error('call failed'), toServiceError(err)));
    }
  };
}

/** Streams a job's events until it ends; a failed job ends the call with its coded error. */
function streamJob(call: grpc.ServerWritableStream<unknown, JobEventMsg>, run: JobRun): void {
  let closed = false;
  const unsubscribe = run.subscribe((e) => {
    if (closed) return;
    call.write(e);
    if (e.event === 'done') {
      closed = true;
      call.end();
    } else if (e.event === 'failed') {
      closed = true;
      fail(call, new WeightspaceError(e.failed.code as never, e.failed.message));
    }
  });
  if (closed) return;
  call.on('cancelled', () => {
    closed = true;
    unsubscribe();
  });
}

/** Opens the first of `paths` that exists (a running job's staging is renamed into place when it finishes). */
async function openFirst(paths: readonly string[]): Promise<FileHandle> {
  let last: unknown;
  for (const p of paths) {
    try {
      return await open(p, 'r');
    } catch (err) {
      last = err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') break;
    }
  }
  throw new WeightspaceError('not-found', `output file is gone: ${(last as Error).message}`);
}

/** FetchOutput's message buffers, reused across calls (8 × 4 MiB at most kept). */
const fetchFrames = new FramePool(FETCH_CHUNK_BYTES, 8);

async function fetchOutput(jobs: JobManager, call: grpc.ServerWritableStream<FetchOutputRequest, EncodedMessage>): Promise<void> {
  const ac = callSignal(call);
  try {
    const req = call.request;
    const f = jobs.outputFile(req.jobId, req.output, req.file);
    const end = req.length > 0 ? req.offset + req.length : f.size;
    if (req.offset > f.size || end > f.size) {
      throw new WeightspaceError('usage', `range ${req.offset}+${req.length} is past the end of ${q(f.file)} (${f.size} bytes)`);
    }
    const fd = await openFirst(f.paths);
    try {
      let offset = req.offset;
      do {
        const n = Math.min(FETCH_CHUNK_BYTES, end - offset);
        // the file's bytes are read straight into the encoded message: no further copy before gRPC's framing
        const frame = outputChunkFrame({ output: f.output, subdir: f.subdir, file: f.file, offset, fileSize: f.size }, n, fetchFrames);
        let got = 0;
        while (got < n) {
          const r = await fd.read(frame.payload, got, n - got, offset + got);
          if (r.bytesRead === 0) throw new WeightspaceError('internal', `output ${q(f.file)} is shorter than its ${f.size} bytes`);
          got += r.bytesRead;
        }
        // the sha256 travels with the chunk that reaches the end of a finished file
        const last = offset + n === f.size && f.sha256 !== '';
        const msg = frame.finish(chunkChecksum(frame.payload), last ? f.sha256 : '');
        await writeMessage(call, msg, ac.signal, () => msg.release());
        offset += n;
      } while (offset < end);
    } finally {
      await fd.close();
    }
    if (!ac.signal.aborted) call.end();
  } catch (err) {
    if (!ac.signal.aborted) fail(call, err);
  }
}

export async function startCoordinatorServer(jobs: JobManager, registry: WorkerRegistry, options: { host: string; port: number }): Promise<CoordinatorServer> {
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(weightspaceProto().coordinatorService, {
    SubmitJob: (call: grpc.ServerWritableStream<SubmitJobRequest, JobEventMsg>) => {
      let run: JobRun;
      try {
        run = jobs.submit(call.request.specJson);
      } catch (err) {
        fail(call, err);
        return;
      }
      streamJob(call, run);
    },
    WatchJob: (call: grpc.ServerWritableStream<WatchJobRequest, JobEventMsg>) => {
      let run: JobRun;
      try {
        run = jobs.get(call.request.jobId);
      } catch (err) {
        fail(call, err);
        return;
      }
      streamJob(call, run);
    },
    FetchOutput: (call: grpc.ServerWritableStream<FetchOutputRequest, EncodedMessage>) => void fetchOutput(jobs, call),
    CancelJob: unary<CancelJobRequest, CancelJobReply>((req) => ({ status: jobs.cancel(req.jobId) })),
    JobStatus: unary<JobStatusRequest, JobStatusReply>((req) => jobs.status(req.jobId)),
    ListWorkers: unary<unknown, ListWorkersReply>(() => ({
      workers: registry.list().map(({ view, health, ageMs }) => ({
        id: view.id,
        address: view.record.address,
        threads: view.record.threads,
        maxTasks: view.record.maxTasks,
        state: health,
        runningTasks: view.running,
        heartbeatAgeMs: ageMs,
        tasksDone: view.tasksDone,
      })),
    })),
  });
  const health = addHealthAndReflection(server, COORDINATOR_SERVICE);
  const port = await bindServer(server, options.host, options.port);
  return { server, port, health };
}
