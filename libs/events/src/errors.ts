import type { ExpectedVersion } from './store';

export type EventStoreErrorCode = 'WRONG_EXPECTED_VERSION' | 'INVALID_EVENT' | 'CLOSED' | 'UNKNOWN_SCHEMA' | 'NOT_FOUND' | 'UNAVAILABLE';

/** Base class of every error the event store raises; `code` is stable, the message is for people. */
export class EventStoreError extends Error {
  constructor(readonly code: EventStoreErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An append whose expectedVersion does not match the stream: a conflict, never an overwrite. */
export class WrongExpectedVersion extends EventStoreError {
  constructor(readonly streamId: string, readonly expected: ExpectedVersion, readonly actual: number) {
    super('WRONG_EXPECTED_VERSION', `stream ${streamId}: expected version ${String(expected)}, actual ${actual === 0 ? 'no stream' : actual}`);
  }
}

export class InvalidEvent extends EventStoreError {
  constructor(message: string) {
    super('INVALID_EVENT', message);
  }
}

/**
 * The log could not be reached (a broker outage): nothing was written, or — when `ambiguous` —
 * the write may still land later (the caller must settle it, e.g. by appending a compensating
 * event once the log is back).
 */
export class StoreUnavailable extends EventStoreError {
  constructor(message: string, readonly ambiguous = false) {
    super('UNAVAILABLE', message);
  }
}
