import type { EventType, NewEvent, StoredEvent } from './contracts';
import type { Cursor } from './positions';

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
  /**
   * Partitions of the log (1: one total order, as SQLite). Streams are spread over partitions
   * by partitionOf; positions encode (partition, sequence), see positions.ts.
   */
  readonly partitions: number;
  /** The partition a stream lives in (every event of a stream is in one partition). */
  partitionOf(streamId: string): number;
  /** Appends atomically; throws WrongExpectedVersion (nothing written) on a version conflict. */
  append(streamId: string, expectedVersion: ExpectedVersion, events: NewEvent[]): Promise<StoredEvent[]>;
  /** Appends to many streams in one transaction: all or nothing. The streams must share one partition. */
  appendBatch(requests: AppendRequest[]): Promise<StoredEvent[][]>;
  readStream(streamId: string, fromVersion?: number): AsyncIterable<StoredEvent>;
  /** Events with position >= fromPosition (default 1) in position order. */
  readAll(fromPosition?: number, opts?: ReadAllOptions): AsyncIterable<StoredEvent>;
  /**
   * Delivers every event with position >= from (or, given a Cursor, every event after the
   * cursor's position in each partition), in order within each partition, then new ones as they
   * are appended. With one partition, that is position order.
   */
  subscribe(from: number | Cursor, onEvent: (e: StoredEvent) => void | Promise<void>): { close(): Promise<void> };
  /** The highest position in the log (0 when empty); with partitions, the highest of any partition. */
  headPosition(): Promise<number>;
  close(): Promise<void>;
}
