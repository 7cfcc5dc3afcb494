/**
 * What a running job reports, embedded or on a cluster: the same events, so the CLI and
 * SDK users handle both alike.
 */
export interface PlannedEvent {
  readonly type: 'planned';
  readonly op: string;
  readonly tasks: number;
  readonly tensors: number;
  readonly inputBytes: number;
  readonly outputBytes: number;
  readonly outputs: readonly string[];
}
export interface ProgressEvent {
  readonly type: 'progress';
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly tensorsDone: number;
  readonly tensors: number;
}
export interface WarningEvent {
  readonly type: 'warning';
  readonly message: string;
}
export type JobEvent = PlannedEvent | ProgressEvent | WarningEvent;

export interface JobOutput {
  readonly dir: string;
  readonly label: string;
  readonly shards: readonly { readonly file: string; readonly sha256: string; readonly size: number }[];
}

export interface JobResult {
  readonly op: string;
  readonly outputs: readonly JobOutput[];
  /** the report of report operations (monitor, analyze), also recorded in weightspace.json */
  readonly report?: unknown;
  readonly seconds: number;
  readonly bytesRead: number;
  readonly bytesWritten: number;
}
