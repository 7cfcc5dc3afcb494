/**
 * WeightspaceError across gRPC: the code rides in trailing metadata (`weightspace-code`),
 * the message in the status details, so the far side rebuilds the same error. A status
 * without the code is a transport failure: the peer is gone or unreachable.
 */
import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { WeightspaceError, isErrorCode, q, toWeightspaceError, type ErrorKind } from '../errors.js';

export const CODE_METADATA_KEY = 'weightspace-code';

const STATUS_OF_KIND: Record<ErrorKind, status> = {
  usage: status.INVALID_ARGUMENT,
  input: status.FAILED_PRECONDITION,
  cluster: status.UNAVAILABLE,
  cancelled: status.CANCELLED,
  internal: status.INTERNAL,
};

/** A status to end a call with (callback(err) or call.destroy(err) / emit('error', err)). */
export function toServiceError(err: unknown): Partial<StatusObject> & { code: status; details: string; metadata: Metadata } {
  const e = toWeightspaceError(err);
  const metadata = new Metadata();
  metadata.set(CODE_METADATA_KEY, e.code);
  return { code: STATUS_OF_KIND[e.kind], details: e.message, metadata };
}

/** The WeightspaceError a failed call carries; undefined when the status has no weightspace code. */
export function codedErrorOf(err: unknown): WeightspaceError | undefined {
  const se = err as Partial<ServiceError> | null;
  const value = se?.metadata?.get(CODE_METADATA_KEY)[0];
  const code = typeof value === 'string' ? value : value instanceof Buffer ? value.toString('utf8') : undefined;
  if (code === undefined || !isErrorCode(code)) return undefined;
  return new WeightspaceError(code, se?.details ?? se?.message ?? '');
}

/** True when a call failed for want of a peer (not because the peer said no). */
export function isTransportError(err: unknown): boolean {
  if (codedErrorOf(err) !== undefined) return false;
  const c = (err as Partial<ServiceError> | null)?.code;
  return c === status.UNAVAILABLE || c === status.CANCELLED || c === status.DEADLINE_EXCEEDED
    || c === status.INTERNAL || c === status.UNKNOWN || c === status.RESOURCE_EXHAUSTED || c === status.ABORTED;
}

/** Rebuilds the error of a failed call: the coded one, else a cluster error naming the peer. */
export function fromServiceError(err: unknown, peer: string): WeightspaceError {
  const coded = codedErrorOf(err);
  if (coded) return coded;
  if (err instanceof WeightspaceError) return err;
  const se = err as Partial<ServiceError> | null;
  const details = se?.details ?? se?.message ?? String(err);
  return new WeightspaceError('cluster-unavailable', `cannot reach ${q(peer)}: ${details}`);
}
