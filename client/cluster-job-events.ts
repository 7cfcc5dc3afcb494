/**
 * What a cluster job reports to SDK users: the same planned / progress / warning events
 * as embedded mode (client/job-events.ts), plus the cluster's own: the job was accepted
 * (or resumed by a restarted coordinator), and each layer task started or finished on a
 * worker.
 */
import type { JobEvent } from './job-events.js';

export interface AcceptedEvent {
  readonly type: 'accepted';
  readonly jobId: string;
  readonly resumed: boolean;
}

export interface TaskStartedEvent {
  readonly type: 'task-started';
  readonly taskId: string;
  readonly layer: string;
  readonly workerId: string;
  readonly attempt: number;
}

export interface TaskFinishedEvent {
  readonly type: 'task-finished';
  readonly taskId: string;
  readonly layer: string;
  readonly workerId: string;
  readonly attempt: number;
  readonly tasksDone: number;
  readonly tasks: number;
}

export type ClusterJobEvent = JobEvent | AcceptedEvent | TaskStartedEvent | TaskFinishedEvent;
