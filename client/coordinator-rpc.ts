/**
 * The Coordinator service as the SDK calls it: a typed face over the grpc-js client, with
 * unary calls as promises and every failure rebuilt as a WeightspaceError (the coded one
 * the coordinator sent, or 'cluster-unavailable' naming the address).
 */
import * as grpc from '@grpc/grpc-js';
import { fromServiceError } from '../core/cluster/grpc-errors.js';
import { CHANNEL_OPTIONS, weightspaceProto } from '../core/cluster/proto.js';
import type {
  CancelJobReply, FetchOutputRequest, JobEventMsg, JobStatusReply, ListWorkersReply, OutputChunkMsg,
} from '../core/cluster/wire-messages.js';
import { WeightspaceError, q } from '../core/errors.js';

interface CoordinatorStub extends grpc.Client {
  SubmitJob(req: { specJson: string }): grpc.ClientReadableStream<JobEventMsg>;
  WatchJob(req: { jobId: string }): grpc.ClientReadableStream<JobEventMsg>;
  FetchOutput(req: FetchOutputRequest): grpc.ClientReadableStream<OutputChunkMsg>;
  CancelJob(req: { jobId: string }, cb: grpc.requestCallback<CancelJobReply>): grpc.ClientUnaryCall;
  JobStatus(req: { jobId: string }, cb: grpc.requestCallback<JobStatusReply>): grpc.ClientUnaryCall;
  ListWorkers(req: object, cb: grpc.requestCallback<ListWorkersReply>): grpc.ClientUnaryCall;
}

export class CoordinatorRpc {
  private closedValue = false;

  private constructor(readonly address: string, private readonly stub: CoordinatorStub) {}

  /** Opens a channel and waits until it is ready (or `timeoutMs` passes). */
  static async connect(address: string, timeoutMs: number): Promise<CoordinatorRpc> {
    const { CoordinatorClient } = weightspaceProto();
    const stub = new CoordinatorClient(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as CoordinatorStub;
    await new Promise<void>((resolve, reject) => {
      stub.waitForReady(Date.now() + timeoutMs, (err) => {
        if (err) {
          stub.close();
          reject(new WeightspaceError('cluster-unavailable', `cannot reach coordinator ${q(address)} within ${timeoutMs} ms: ${err.message}`));
        } else {
          resolve();
        }
      });
    });
    return new CoordinatorRpc(address, stub);
  }

  get closed(): boolean {
    return this.closedValue;
  }

  submit(specJson: string): grpc.ClientReadableStream<JobEventMsg> {
    return this.stub.SubmitJob({ specJson });
  }

  watch(jobId: string): grpc.ClientReadableStream<JobEventMsg> {
    return this.stub.WatchJob({ jobId });
  }

  fetchOutput(req: FetchOutputRequest): grpc.ClientReadableStream<OutputChunkMsg> {
    return this.stub.FetchOutput(req);
  }

  cancel(jobId: string): Promise<CancelJobReply> {
    return this.unary((cb) => this.stub.CancelJob({ jobId }, cb));
  }

  status(jobId: string): Promise<JobStatusReply> {
    return this.unary((cb) => this.stub.JobStatus({ jobId }, cb));
  }

  workers(): Promise<ListWorkersReply> {
    return this.unary((cb) => this.stub.ListWorkers({}, cb));
  }

  /** Rebuilds the error a call failed with. */
  errorOf(err: unknown): WeightspaceError {
    return fromServiceError(err, this.address);
  }

  close(): void {
    this.closedValue = true;
    this.stub.close();
  }

  private unary<T>(call: (cb: grpc.requestCallback<T>) => unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      call((err, value) => {
        if (err) reject(this.errorOf(err));
        else resolve(value!);
      });
    });
  }
}
