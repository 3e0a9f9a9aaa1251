import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredEvent } from '../contracts';
import { InvalidEvent, WrongExpectedVersion } from '../errors';
import { advanceCursor, emptyCursor, partitionOfPosition } from '../positions';
import type { EventStore } from '../store';
import { decision, runRequested } from './fixtures';

export interface ContractFixture {
  store: EventStore;
  /** a second, independent connection to the same store (another process or client would do the same) */
  connect(): Promise<EventStore>;
  dispose(): Promise<void>;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * The EventStore contract, written once; every adapter runs it (SQLite now, Kafka later).
 * `make` returns a fresh, empty store for each `describe` block.
 */
export function runEventStoreContract(name: string, make: () => Promise<ContractFixture>): void {
  describe(`EventStore contract: ${name}`, () => {
    let fx: ContractFixture;
    let store: EventStore;
    let n = 0;
    const stream = () => `run-c${++n}`;
    /** a new stream in the given partition */
    const streamIn = (partition: number) => {
      for (;;) {
        const s = stream();
        if (store.partitionOf(s) === partition) return s;
      }
    };
    /** positions of one partition step by the partition count */
    const consecutive = (positions: number[]) => positions.every((x, i) => i === 0 || x === positions[i - 1] + store.partitions);
    before(async () => {
      fx = await make();
      store = fx.store;
    });
    after(async () => fx.dispose());

    describe('when appending to a new stream', () => {
      it('numbers versions from 1 and positions in order, chaining hashes', async () => {
        const s = stream();
        const head = await store.headPosition();
        const out = await store.append(s, 'no-stream', [runRequested(s), decision(s, 1), decision(s, 2)]);
        assert.deepEqual(out.map((e) => e.streamVersion), [1, 2, 3]);
        if (store.partitions === 1) assert.deepEqual(out.map((e) => e.position), [head + 1, head + 2, head + 3]);
        assert.ok(consecutive(out.map((e) => e.position)));
        assert.ok(out.every((e) => partitionOfPosition(e.position, store.partitions) === store.partitionOf(s)));
        assert.equal(out[1].prevHash, out[0].hash);
        assert.equal(out[2].prevHash, out[1].hash);
        assert.match(out[0].hash, /^[0-9a-f]{64}$/);
        assert.equal(await store.headPosition(), Math.max(head, out[2].position));
        const read = await collect(store.readStream(s));
        assert.deepEqual(read, out);
      });
      it('reads a stream from a version', async () => {
        const s = stream();
        await store.append(s, 'no-stream', [decision(s, 1), decision(s, 2), decision(s, 3)]);
        const read = await collect(store.readStream(s, 2));
        assert.deepEqual(read.map((e) => (e.payload as { seq: number }).seq), [2, 3]);
      });
      it('returns nothing for a stream that does not exist', async () => {
        assert.deepEqual(await collect(store.readStream('run-never')), []);
      });
    });

    describe('when the expected version is wrong', () => {
      it('throws WrongExpectedVersion and writes nothing', async () => {
        const s = stream();
        await store.append(s, 'no-stream', [decision(s, 1)]);
        const head = await store.headPosition();
        await assert.rejects(store.append(s, 0, [decision(s, 2)]), (e: unknown) => {
          assert.ok(e instanceof WrongExpectedVersion);
          assert.equal(e.streamId, s);
          assert.equal(e.expected, 0);
          assert.equal(e.actual, 1);
          return true;
        });
        await assert.rejects(store.append(s, 'no-stream', [decision(s, 2)]), WrongExpectedVersion);
        await assert.rejects(store.append(s, 5, [decision(s, 2)]), WrongExpectedVersion);
        assert.equal(await store.headPosition(), head);
        assert.equal((await collect(store.readStream(s))).length, 1);
      });
      it("appends with the right version and with 'any'", async () => {
        const s = stream();
        await store.append(s, 'no-stream', [decision(s, 1)]);
        await store.append(s, 1, [decision(s, 2)]);
        const out = await store.append(s, 'any', [decision(s, 3)]);
        assert.equal(out[0].streamVersion, 3);
      });
    });

    describe('when appending a batch for many streams', () => {
      it('writes all streams in one position range', async () => {
        const a = stream();
        const b = streamIn(store.partitionOf(a));
        const out = await store.appendBatch([
          { streamId: a, expectedVersion: 'no-stream', events: [decision(a, 1), decision(a, 2)] },
          { streamId: b, expectedVersion: 'no-stream', events: [decision(b, 1)] },
          { streamId: a, expectedVersion: 2, events: [decision(a, 3)] },
        ]);
        assert.deepEqual(out.map((x) => x.map((e) => e.streamVersion)), [[1, 2], [1], [3]]);
        const positions = out.flat().map((e) => e.position);
        assert.deepEqual(positions, positions.slice().sort((x, y) => x - y));
        assert.equal(positions[positions.length - 1] - positions[0], 3 * store.partitions);
        assert.ok(consecutive(positions));
      });
      it('writes nothing when one part conflicts', async () => {
        const a = stream();
        const b = streamIn(store.partitionOf(a));
        await store.append(b, 'no-stream', [decision(b, 1)]);
        const head = await store.headPosition();
        await assert.rejects(
          store.appendBatch([
            { streamId: a, expectedVersion: 'no-stream', events: [decision(a, 1)] },
            { streamId: b, expectedVersion: 'no-stream', events: [decision(b, 2)] },
          ]),
          WrongExpectedVersion,
        );
        assert.equal(await store.headPosition(), head);
        assert.deepEqual(await collect(store.readStream(a)), []);
      });
    });

    describe('when reading all events', () => {
      it('returns every event in position order from a position, across streams', async () => {
        const a = stream();
        const b = streamIn(store.partitionOf(a));
        const [first] = await store.append(a, 'no-stream', [decision(a, 1)]);
        const start = first.position;
        await store.append(b, 'no-stream', [decision(b, 1), decision(b, 2)]);
        await store.append(a, 1, [decision(a, 2)]);
        const ours = (e: StoredEvent) => e.streamId === a || e.streamId === b;
        const all = (await collect(store.readAll(start, { batch: 2 }))).filter(ours);
        assert.deepEqual(all.map((e) => [e.streamId, e.streamVersion]), [[a, 1], [b, 1], [b, 2], [a, 2]]);
        const P = store.partitions;
        assert.deepEqual(all.map((e) => e.position), [start, start + P, start + 2 * P, start + 3 * P]);
        const fromMiddle = (await collect(store.readAll(start + 2 * P))).filter(ours);
        assert.deepEqual(fromMiddle.map((e) => e.position), [start + 2 * P, start + 3 * P]);
        assert.equal(fromMiddle[0].prevHash, all[1].hash);
      });
      it('returns the whole log in position order, and links every event to the one before it in its partition', async () => {
        const last = new Map<number, StoredEvent>();
        let prevPosition = 0;
        let n = 0;
        for await (const e of store.readAll(1)) {
          assert.ok(e.position > prevPosition, `position ${e.position} after ${prevPosition}`);
          prevPosition = e.position;
          const p = partitionOfPosition(e.position, store.partitions);
          assert.equal(p, store.partitionOf(e.streamId));
          const prev = last.get(p);
          if (prev) {
            assert.equal(e.position, prev.position + store.partitions);
            assert.equal(e.prevHash, prev.hash);
          } else {
            assert.equal(e.position, p + 1);
          }
          last.set(p, e);
          n++;
        }
        assert.ok(n > 0);
      });
      it('filters by type', async () => {
        const s = stream();
        const [first] = await store.append(s, 'no-stream', [runRequested(s), decision(s, 1)]);
        const only = (await collect(store.readAll(first.position, { types: ['RunRequested'] }))).filter((e) => e.streamId === s);
        assert.deepEqual(only.map((e) => e.type), ['RunRequested']);
      });
      it('refuses a batch that spans partitions, or writes it atomically when there is one', async () => {
        const a = stream();
        const b = store.partitions > 1 ? streamIn((store.partitionOf(a) + 1) % store.partitions) : stream();
        const batch = store.appendBatch([
          { streamId: a, expectedVersion: 'no-stream', events: [decision(a, 1)] },
          { streamId: b, expectedVersion: 'no-stream', events: [decision(b, 1)] },
        ]);
        if (store.partitions === 1) {
          assert.equal((await batch).length, 2);
        } else {
          await assert.rejects(batch, InvalidEvent);
          assert.deepEqual(await collect(store.readStream(a)), []);
          assert.deepEqual(await collect(store.readStream(b)), []);
        }
      });
    });

    describe('when subscribed', () => {
      it('delivers past events, then new ones, in order, until closed', async () => {
        const s = stream();
        const [first] = await store.append(s, 'no-stream', [decision(s, 1)]);
        const got: number[] = [];
        const sub = store.subscribe(first.position, (e) => {
          if (e.streamId === s) got.push((e.payload as { seq: number }).seq);
        });
        await until(() => got.length === 1, 'the past event');
        await store.append(s, 1, [decision(s, 2), decision(s, 3)]);
        await until(() => got.length === 3, 'the new events');
        await sub.close();
        await store.append(s, 3, [decision(s, 4)]);
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(got, [1, 2, 3]);
      });
      it('resumes from a cursor across partitions without gaps or duplicates', async () => {
        const streams = Array.from({ length: 8 }, () => stream());
        for (const s of streams) await store.append(s, 'no-stream', [decision(s, 1), decision(s, 2)]);
        const everything: StoredEvent[] = [];
        const sub = store.subscribe(1, (e) => {
          everything.push(e);
        });
        const total = (await collect(store.readAll(1))).length;
        await until(() => everything.length === total, 'the whole log');
        await sub.close();
        // a reader that stopped after k events resumes with its cursor (one position per partition)
        const k = Math.floor(total / 2);
        const cursor = emptyCursor(store.partitions);
        for (const e of everything.slice(0, k)) assert.ok(advanceCursor(cursor, e.position), `position ${e.position} delivered twice`);
        const rest: number[] = [];
        const resumed = store.subscribe(cursor, (e) => {
          rest.push(e.position);
        });
        // and events appended after it stopped arrive too
        const late = stream();
        const lateEvents = await store.append(late, 'no-stream', [decision(late, 1)]);
        await until(() => rest.includes(lateEvents[0].position), 'the late event');
        await resumed.close();
        const expected = everything.slice(k).map((e) => e.position).concat(lateEvents[0].position);
        assert.deepEqual(rest.slice().sort((x, y) => x - y), expected.slice().sort((x, y) => x - y));
        assert.equal(new Set(rest).size, rest.length);
      });
    });

    describe('when two connections share the store', () => {
      it('each sees the other, and a race on one version lets exactly one append win', async () => {
        const other = await fx.connect();
        try {
          const s = stream();
          await store.append(s, 'no-stream', [decision(s, 1)]);
          const seen = await collect(other.readStream(s));
          assert.equal(seen.length, 1);
          const results = await Promise.allSettled([store.append(s, 1, [decision(s, 2)]), other.append(s, 1, [decision(s, 2, { key: 'other' })])]);
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
          const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
          assert.ok(rejected.reason instanceof WrongExpectedVersion);
          assert.equal((await collect(store.readStream(s))).length, 2);
          // A write through the other connection after ours is detected too (stale expected version).
          await assert.rejects(other.append(s, 1, [decision(s, 3)]), WrongExpectedVersion);
        } finally {
          await other.close();
        }
      });
      it('a subscriber on one connection receives appends made through the other', async () => {
        const other = await fx.connect();
        try {
          const s = stream();
          const got: string[] = [];
          const sub = other.subscribe(1, (e) => {
            if (e.streamId === s) got.push(e.streamId);
          });
          await store.append(s, 'no-stream', [decision(s, 1)]);
          await until(() => got.length === 1, 'the event from the other connection');
          await sub.close();
          assert.deepEqual(got, [s]);
        } finally {
          await other.close();
        }
      });
      it('interleaved appends from both get distinct, gapless positions', async () => {
        const other = await fx.connect();
        try {
          const before = await collect(store.readAll(1));
          const jobs: Promise<StoredEvent[]>[] = [];
          const ours = new Set<string>();
          for (let i = 0; i < 20; i++) {
            const s = stream();
            ours.add(s);
            jobs.push((i % 2 ? other : store).append(s, 'no-stream', [decision(s, 1), decision(s, 2)]));
          }
          const written = (await Promise.all(jobs)).flat();
          assert.equal(new Set(written.map((e) => e.position)).size, 40);
          const all = await collect(store.readAll(1));
          assert.equal(all.length, before.length + 40);
          assert.equal(all.filter((e) => ours.has(e.streamId)).length, 40);
          // every partition's positions are gapless
          for (let p = 0; p < store.partitions; p++) {
            const positions = all.filter((e) => partitionOfPosition(e.position, store.partitions) === p).map((e) => e.position);
            assert.deepEqual(positions, positions.map((_, i) => p + 1 + i * store.partitions));
          }
        } finally {
          await other.close();
        }
      });
    });
  });
}
