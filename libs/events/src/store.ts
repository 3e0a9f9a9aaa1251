import type { EventType, NewEvent, StoredEvent } from './contracts';

export type ExpectedVersion = number | 'any' | 'no-stream';

/** The event store contract; SQLite (embedded default) and Kafka adapters run the same suite. */
export interface EventStore {
  append(streamId: string, expectedVersion: ExpectedVersion, events: NewEvent[]): Promise<StoredEvent[]>;
  readStream(streamId: string, fromVersion?: number): AsyncIterable<StoredEvent>;
  readAll(fromPosition?: number, opts?: { batch?: number; types?: EventType[] }): AsyncIterable<StoredEvent>;
  subscribe(fromPosition: number, onEvent: (e: StoredEvent) => void | Promise<void>): { close(): Promise<void> };
  close(): Promise<void>;
}
