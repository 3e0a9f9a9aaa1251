import type { EventType, NewEvent, StoredEvent } from './contracts';

export type ExpectedVersion = number | 'any' | 'no-stream';

/** One stream's part of an appendBatch. */
export interface AppendRequest {
  streamId: string;
  expectedVersion: ExpectedVersion;
  events: NewEvent[];
}

export interface ReadAllOptions {
  /** events fetched per round trip (default 1000) */
  batch?: number;
  /** only these types (others are skipped without parsing their payload) */
  types?: EventType[];
}

/** The event store contract; SQLite (embedded default) and Kafka adapters run the same suite. */
export interface EventStore {
  /** Appends atomically; throws WrongExpectedVersion (nothing written) on a version conflict. */
  append(streamId: string, expectedVersion: ExpectedVersion, events: NewEvent[]): Promise<StoredEvent[]>;
  /** Appends to many streams in one transaction: all or nothing. */
  appendBatch(requests: AppendRequest[]): Promise<StoredEvent[][]>;
  readStream(streamId: string, fromVersion?: number): AsyncIterable<StoredEvent>;
  /** Events with position >= fromPosition (default 1) in position order. */
  readAll(fromPosition?: number, opts?: ReadAllOptions): AsyncIterable<StoredEvent>;
  /** Delivers every event with position >= fromPosition, in order, then new ones as they are appended. */
  subscribe(fromPosition: number, onEvent: (e: StoredEvent) => void | Promise<void>): { close(): Promise<void> };
  /** The position of the last event (0 when empty). */
  headPosition(): Promise<number>;
  close(): Promise<void>;
}
