/**
 * The messages of proto/weightspace.proto as TypeScript sees them after
 * @grpc/proto-loader (camelCase fields, 64-bit integers as numbers, bytes as Buffers,
 * `defaults: true`, and the name of a oneof's set field in a virtual property).
 * Kept by hand beside the .proto: one small file instead of generated trees.
 */

export interface SubmitJobRequest { readonly specJson: string }
export interface WatchJobRequest { readonly jobId: string }

export interface AcceptedMsg { readonly resumed: boolean }
export interface ByteRangeMsg { readonly output: number; readonly file: string; readonly offset: number; readonly length: number }
export interface PlannedMsg {
  readonly op: string;
  readonly tasks: number;
  readonly tensors: number;
  readonly inputBytes: number;
  readonly outputBytes: number;
  readonly outputs: readonly string[];
  readonly tasksDone: number;
  readonly shards: readonly OutputFileMsg[];
  /** the job's staging directory and its token ('' without output): a client that reads the token there shares the coordinator's volume */
  readonly stagingDir: string;
  readonly stagingToken: string;
}
export interface TaskStartedMsg { readonly taskId: string; readonly layer: string; readonly workerId: string; readonly attempt: number }
export interface TaskFinishedMsg extends TaskStartedMsg { readonly tasksDone: number; readonly tasks: number; readonly ranges: readonly ByteRangeMsg[] }
export interface ProgressMsg {
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly tensorsDone: number;
  readonly tensors: number;
  readonly tasksDone: number;
  readonly tasks: number;
}
export interface WarningMsg { readonly message: string }
export interface OutputFileMsg {
  readonly output: number;
  readonly subdir: string;
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
  /** a planned shard's header length (its bytes are final from the start); 0 or absent when unknown */
  readonly headerLength?: number;
}
export interface DoneMsg {
  readonly resultJson: string;
  readonly resultV8: Uint8Array;
  readonly files: readonly OutputFileMsg[];
  /** the finished output's directory on the coordinator and its token ('' or absent: no local copy offered) */
  readonly localDir?: string;
  readonly localToken?: string;
}
export interface FailedMsg { readonly code: string; readonly message: string }

export type JobEventMsg = { readonly jobId: string } & (
  | { readonly event: 'accepted'; readonly accepted: AcceptedMsg }
  | { readonly event: 'planned'; readonly planned: PlannedMsg }
  | { readonly event: 'taskStarted'; readonly taskStarted: TaskStartedMsg }
  | { readonly event: 'taskFinished'; readonly taskFinished: TaskFinishedMsg }
  | { readonly event: 'progress'; readonly progress: ProgressMsg }
  | { readonly event: 'warning'; readonly warning: WarningMsg }
  | { readonly event: 'done'; readonly done: DoneMsg }
  | { readonly event: 'failed'; readonly failed: FailedMsg }
);

export interface FetchOutputRequest { readonly jobId: string; readonly output: number; readonly file: string; readonly offset: number; readonly length: number }
export interface OutputChunkMsg {
  readonly output: number;
  readonly subdir: string;
  readonly file: string;
  readonly offset: number;
  readonly bytes: Uint8Array;
  readonly crc32: number;
  readonly fileSize: number;
  readonly fileSha256: string;
}

export interface CancelJobRequest { readonly jobId: string }
export interface CancelJobReply { readonly status: string }
export interface JobStatusRequest { readonly jobId: string }
export interface JobStatusReply {
  readonly jobId: string;
  readonly status: string;
  readonly op: string;
  readonly tasks: number;
  readonly tasksDone: number;
  readonly bytesWritten: number;
  readonly error: FailedMsg | null;
  readonly resumes: number;
  readonly tasksKeptOnResume: number;
  readonly retries: number;
  readonly attempts: number;
  readonly stagedBytes: number;
  readonly streamedBytes: number;
}

export interface WorkerInfoMsg {
  readonly id: string;
  readonly address: string;
  readonly threads: number;
  readonly maxTasks: number;
  readonly state: string;
  readonly runningTasks: number;
  readonly heartbeatAgeMs: number;
  readonly tasksDone: number;
}
export interface ListWorkersReply { readonly workers: readonly WorkerInfoMsg[] }

export interface ExecuteTaskRequest {
  readonly jobId: string;
  readonly taskJson: string;
  readonly attempt: number;
  /** shared staging: '' (or absent) to receive chunks */
  readonly stagingDir?: string;
  readonly stagingToken?: string;
  readonly stagingSubdirs?: readonly string[];
}
export interface TaskChunkMsg { readonly output: number; readonly file: string; readonly offset: number; readonly bytes: Uint8Array; readonly crc32: number }
export interface TaskWrittenMsg { readonly output: number; readonly file: string; readonly offset: number; readonly length: number; readonly crc32: number }
export interface PartialResultMsg { readonly jobId: number; readonly valueV8: Uint8Array }
export interface TaskProgressMsg { readonly bytesRead: number; readonly bytesWritten: number; readonly tensorsDone: number }
export interface TaskDoneMsg extends TaskProgressMsg { readonly results: number }

export type TaskMessageMsg =
  | { readonly message: 'chunk'; readonly chunk: TaskChunkMsg }
  | { readonly message: 'result'; readonly result: PartialResultMsg }
  | { readonly message: 'progress'; readonly progress: TaskProgressMsg }
  | { readonly message: 'done'; readonly done: TaskDoneMsg }
  | { readonly message: 'written'; readonly written: TaskWrittenMsg };

export interface CapacityReply {
  readonly workerId: string;
  readonly threads: number;
  readonly maxTasks: number;
  readonly runningTasks: number;
  readonly state: string;
}

/** Largest `bytes` payload one message carries: big blocks are split (and each piece checksummed). */
export const CHUNK_BYTES = 1 << 20;

/**
 * A finished job as the coordinator reports it (Done.result_json / result_v8): the
 * client's JobResult with each output's directory given relative to the job's `out`.
 */
export interface ClusterJobResult {
  readonly op: string;
  readonly outputs: readonly {
    readonly subdir: string;
    readonly label: string;
    readonly shards: readonly { readonly file: string; readonly sha256: string; readonly size: number }[];
  }[];
  readonly report?: unknown;
  readonly seconds: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

/** Bytes per FetchOutput chunk: larger than task chunks, fewer messages per output byte. */
export const FETCH_CHUNK_BYTES = 4 << 20;

/**
 * Largest range one TaskWritten note covers: a worker merges adjacent writes up to this
 * (continuing their CRC-32), and the coordinator reads each note back whole to check it.
 */
export const STAGED_PIECE_BYTES = 4 << 20;
