/**
 * An operation as the coordinator sees it: how its spec becomes a plan, and (for report
 * operations) how per-tensor results combine into the report, in a fixed order.
 */
import type { Plan } from '../../core/plan.js';

export interface OpDef<S> {
  readonly op: string;
  plan(spec: S): Promise<Plan>;
  /** combines per-job results (by job id) into the job's report; called with results of every job */
  report?(plan: Plan, results: ReadonlyMap<number, unknown>): unknown;
}
