/**
 * Domain errors: one base class with a stable `code`. The HTTP filter (http-exception.filter.ts)
 * and the gRPC mapping (grpc/grpc-errors.ts) translate codes to statuses from one table
 * (error-status.ts); nothing else decides a status.
 */
export type DomainErrorCode =
  | 'validation_failed'
  | 'policy_invalid'
  | 'not_found'
  | 'conflict'
  | 'illegal_state'
  | 'unauthenticated'
  | 'forbidden'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unprocessable'
  | 'upstream_failed'
  | 'unavailable'
  | 'internal';

export interface FieldError {
  field: string;
  messages: string[];
}

export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationFailed extends DomainError {
  constructor(readonly fields: FieldError[], message = 'request validation failed') {
    super('validation_failed', message, fields);
  }
}

/** A policy that does not lint: details are the lint errors, each with file:line:col. */
export class PolicyInvalid extends DomainError {
  constructor(readonly errors: Array<{ code: string; message: string; location: string }>) {
    super('policy_invalid', `policy has ${errors.length} error(s): ${errors.map((e) => `${e.location}: ${e.message}`).join('; ')}`, errors);
  }
}

export class NotFound extends DomainError {
  constructor(what: string, id: string) {
    super('not_found', `${what} ${id} not found`);
  }
}

export class Conflict extends DomainError {
  constructor(message: string) {
    super('conflict', message);
  }
}

export class IllegalState extends DomainError {
  constructor(message: string) {
    super('illegal_state', message);
  }
}

export class Unauthenticated extends DomainError {
  constructor(message = 'missing or invalid bearer token') {
    super('unauthenticated', message);
  }
}

export class Forbidden extends DomainError {
  constructor(scope: string) {
    super('forbidden', `token lacks scope ${scope}`);
  }
}

/** A run stopped, fed or resized by a token other than the one that submitted it. */
export class NotYourRun extends DomainError {
  constructor(id: string, what: string) {
    super('forbidden', `run ${id} was submitted by another token: to ${what} it, use that token or one with scope runs:admin`);
  }
}

export class PayloadTooLarge extends DomainError {
  constructor(limit: number) {
    super('payload_too_large', `request body exceeds ${limit} bytes`);
  }
}

export class UnsupportedMediaType extends DomainError {
  constructor(expected: string) {
    super('unsupported_media_type', `expected content-type ${expected}`);
  }
}

export class Unavailable extends DomainError {
  constructor(message: string) {
    super('unavailable', message);
  }
}
