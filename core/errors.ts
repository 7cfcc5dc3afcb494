/**
 * The one error type of weightspace. Every failure carries a stable `code`; the code
 * decides the exit status and crosses gRPC in metadata, so a client rebuilds the same
 * error. Messages are lowercase, quote the entity, and say expected vs actual.
 * Never branch on message text: branch on `code`.
 */

/** What kind of failure a code is: it decides the CLI's exit status. */
export type ErrorKind = 'usage' | 'input' | 'cluster' | 'cancelled' | 'internal';

/** Every code weightspace raises, with its kind. Stable: tests and clients depend on them. */
export const ERROR_CODES = {
  // usage (exit 2)
  'usage': 'usage',
  // bad input (exit 3): files and directories
  'not-found': 'input',
  'not-a-checkpoint': 'input',
  'output-exists': 'input',
  'read-failed': 'input',
  // bad input: safetensors format (one code per way a file can be wrong)
  'header-too-small': 'input',
  'header-too-large': 'input',
  'invalid-header-length': 'input',
  'invalid-header-utf8': 'input',
  'invalid-header-start': 'input',
  'invalid-header-json': 'input',
  'duplicate-tensor': 'input',
  'invalid-metadata': 'input',
  'invalid-tensor-info': 'input',
  'unknown-dtype': 'input',
  'unsupported-dtype': 'input',
  'invalid-offset': 'input',
  'tensor-size-mismatch': 'input',
  'validation-overflow': 'input',
  'incomplete-data': 'input',
  'truncated-file': 'input',
  'invalid-index': 'input',
  // bad input: jobs and models
  'missing-tensor': 'input',
  'extra-tensor': 'input',
  'shape-mismatch': 'input',
  'dtype-mismatch': 'input',
  'unknown-model': 'input',
  'expression-syntax': 'input',
  'expression-not-linear': 'input',
  'invalid-spec': 'input',
  'invalid-recipe': 'input',
  'unknown-method': 'input',
  'unknown-parameter': 'input',
  'unsupported-option': 'input',
  'no-match': 'input',
  'checksum-mismatch': 'input',
  // cluster (exit 4)
  'cluster-unavailable': 'cluster',
  'worker-lost': 'cluster',
  'job-not-found': 'cluster',
  'cluster-protocol': 'cluster',
  // cancelled (exit 130, like an interrupted command)
  'cancelled': 'cancelled',
  // internal (exit 1)
  'internal': 'internal',
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

const EXIT_CODES: Record<ErrorKind, number> = {
  usage: 2,
  input: 3,
  cluster: 4,
  cancelled: 130,
  internal: 1,
};

export class WeightspaceError extends Error {
  override readonly name = 'WeightspaceError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  get kind(): ErrorKind {
    return ERROR_CODES[this.code];
  }

  get exitCode(): number {
    return EXIT_CODES[this.kind];
  }
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

/** Wraps anything thrown into a WeightspaceError, keeping codes that are already ours. */
export function toWeightspaceError(err: unknown): WeightspaceError {
  if (err instanceof WeightspaceError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  if (e && typeof e.code === 'string' && isErrorCode(e.code) && typeof e.message === 'string') {
    // errors rebuilt across threads or processes keep their code
    return new WeightspaceError(e.code, e.message);
  }
  const message = e && typeof e.message === 'string' ? e.message : String(err);
  return new WeightspaceError('internal', `internal error: ${message}`, { cause: err });
}

/** Quotes an entity for a message: `'name'`. */
export function q(entity: string | number): string {
  return `'${String(entity)}'`;
}

/** Formats a shape for a message: `[688,256]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
