import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CODE_METADATA_KEY, codedErrorOf, fromServiceError, isTransportError, toServiceError } from '../../../core/cluster/grpc-errors.js';
import { WeightspaceError } from '../../../core/errors.js';

describe('errors across gRPC', () => {
  it('rebuilds the same code and message from trailing metadata', () => {
    const original = new WeightspaceError('shape-mismatch', "tensor 'w': shape [2,3] in 'a' does not match [3,2] in 'base'");
    const se = toServiceError(original);
    expect(se.code).toBe(status.FAILED_PRECONDITION);
    expect(se.metadata.get(CODE_METADATA_KEY)).toEqual(['shape-mismatch']);
    const back = fromServiceError({ ...se, message: 'x' }, 'peer:1');
    expect(back).toBeInstanceOf(WeightspaceError);
    expect(back.code).toBe(original.code);
    expect(back.message).toBe(original.message);
    expect(isTransportError(se)).toBe(false);
  });

  it('maps kinds to statuses', () => {
    expect(toServiceError(new WeightspaceError('cancelled', 'job cancelled')).code).toBe(status.CANCELLED);
    expect(toServiceError(new WeightspaceError('worker-lost', 'w')).code).toBe(status.UNAVAILABLE);
    expect(toServiceError(new Error('boom')).code).toBe(status.INTERNAL);
  });

  it('names the peer for a status without a weightspace code (transport failure)', () => {
    const err = { code: status.UNAVAILABLE, details: 'connection refused', metadata: new Metadata() };
    expect(codedErrorOf(err)).toBeUndefined();
    expect(isTransportError(err)).toBe(true);
    const e = fromServiceError(err, '127.0.0.1:9');
    expect(e.code).toBe('cluster-unavailable');
    expect(e.message).toBe("cannot reach '127.0.0.1:9': connection refused");
  });

  it('ignores unknown codes in metadata', () => {
    const md = new Metadata();
    md.set(CODE_METADATA_KEY, 'no-such-code');
    expect(codedErrorOf({ code: status.INTERNAL, details: 'x', metadata: md })).toBeUndefined();
  });
});
