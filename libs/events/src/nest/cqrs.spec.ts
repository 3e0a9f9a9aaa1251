import 'reflect-metadata';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventBus, EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import { capulatorCqrsModule, DomainEvent, PrivilegeChecked, RunStarted, toDomainEvent, typeEventIdProvider } from './cqrs';
import { decision } from '../testing/fixtures';
import type { StoredEvent } from '../contracts';

const seen: string[] = [];

@EventsHandler(PrivilegeChecked)
@Injectable()
class PrivilegeCheckedHandler implements IEventHandler<PrivilegeChecked> {
  handle(e: PrivilegeChecked) {
    seen.push(`checked:${e.payload.seq}:${e.meta?.position ?? '-'}`);
  }
}

@EventsHandler(RunStarted)
@Injectable()
class RunStartedHandler implements IEventHandler<RunStarted> {
  handle(e: RunStarted) {
    seen.push(`started:${e.payload.runId}`);
  }
}

@Module({ imports: [capulatorCqrsModule()], providers: [PrivilegeCheckedHandler, RunStartedHandler] })
class AppModule {}

describe('capulatorCqrsModule', () => {
  describe('when an event class is asked for its routing id', () => {
    it('answers its stable type string, never a per-process id', () => {
      assert.equal(typeEventIdProvider.getEventId(PrivilegeChecked), 'PrivilegeChecked');
      assert.equal(PrivilegeChecked.schemaVersion, 2);
      class Untyped {}
      assert.equal(typeEventIdProvider.getEventId(Untyped), null);
    });
  });

  describe('when events are published on the bus', () => {
    it('routes by type: a stored event and a class defined elsewhere with the same type reach the handler', async () => {
      seen.length = 0;
      const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
      try {
        const bus = app.get(EventBus);
        const p = decision('r', 7).payload;
        const stored: StoredEvent = { position: 42, streamId: 'run-r', streamVersion: 3, type: 'PrivilegeChecked', schemaVersion: 1, at: p.at, payload: p, prevHash: '0', hash: '1' };
        bus.publish(toDomainEvent(stored));
        // Another process's copy of the class: different identity, same `type`.
        class PrivilegeCheckedFromKafka extends DomainEvent<'PrivilegeChecked'> {
          static override readonly type = 'PrivilegeChecked';
          static override readonly schemaVersion = 1;
        }
        bus.publish(new PrivilegeCheckedFromKafka({ ...p, seq: 8 }));
        const deadline = Date.now() + 2000;
        while (seen.length < 2 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
        assert.deepEqual(seen.sort(), ['checked:7:42', 'checked:8:-']);
      } finally {
        await app.close();
      }
    });
  });
});
