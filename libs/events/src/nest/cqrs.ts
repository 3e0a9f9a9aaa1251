import { CqrsModule, type CqrsModuleOptions, type EventIdProvider, type IEvent } from '@nestjs/cqrs';
import type { DynamicModule, Type } from '@nestjs/common';
import { SCHEMA_VERSIONS, type EventType, type EventTypes, type StoredEvent } from '../contracts';

/**
 * @nestjs/cqrs wiring for capulator's events. Nest's default routing id is a random UUID stamped on
 * each event class per process, which breaks as soon as an event comes back from the store or Kafka.
 * Here the routing id of an event class is its stable `type` string; handlers, sagas and `ofType`
 * all route by it, and a stored event is turned back into its class by `type` alone.
 */

/** Envelope metadata a domain event carries when it came from the store. */
export interface EventMeta {
  position: number;
  streamId: string;
  streamVersion: number;
  at: string;
}

/** The base of every domain event class: `static type` and `static schemaVersion` are the contract. */
export abstract class DomainEvent<T extends EventType = EventType> implements IEvent {
  static readonly type: string;
  static readonly schemaVersion: number;
  constructor(readonly payload: EventTypes[T], readonly meta?: EventMeta) {}
  get type(): T {
    return (this.constructor as typeof DomainEvent).type as T;
  }
  get schemaVersion(): number {
    return (this.constructor as typeof DomainEvent).schemaVersion;
  }
}

type DomainEventClass<T extends EventType> = (new (payload: EventTypes[T], meta?: EventMeta) => DomainEvent<T>) & {
  readonly type: T;
  readonly schemaVersion: number;
};

function defineEvent<T extends EventType>(type: T): DomainEventClass<T> {
  // A named class per type (stack traces and Nest's logs show the type name; routing never uses it).
  const cls = {
    [type]: class extends DomainEvent<T> {
      static override readonly type = type;
      static override readonly schemaVersion = SCHEMA_VERSIONS[type];
    },
  }[type];
  return cls as unknown as DomainEventClass<T>;
}

export const PolicyPublished = defineEvent('PolicyPublished');
export type PolicyPublished = InstanceType<typeof PolicyPublished>;
export const ImageImported = defineEvent('ImageImported');
export type ImageImported = InstanceType<typeof ImageImported>;
export const RunRequested = defineEvent('RunRequested');
export type RunRequested = InstanceType<typeof RunRequested>;
export const RunClaimed = defineEvent('RunClaimed');
export type RunClaimed = InstanceType<typeof RunClaimed>;
export const RunStarted = defineEvent('RunStarted');
export type RunStarted = InstanceType<typeof RunStarted>;
export const CapabilitiesQueried = defineEvent('CapabilitiesQueried');
export type CapabilitiesQueried = InstanceType<typeof CapabilitiesQueried>;
export const CapabilitiesChangeRequested = defineEvent('CapabilitiesChangeRequested');
export type CapabilitiesChangeRequested = InstanceType<typeof CapabilitiesChangeRequested>;
export const PrivilegeChecked = defineEvent('PrivilegeChecked');
export type PrivilegeChecked = InstanceType<typeof PrivilegeChecked>;
export const RunExited = defineEvent('RunExited');
export type RunExited = InstanceType<typeof RunExited>;
export const RunFailed = defineEvent('RunFailed');
export type RunFailed = InstanceType<typeof RunFailed>;
export const RunRecordCompleted = defineEvent('RunRecordCompleted');
export type RunRecordCompleted = InstanceType<typeof RunRecordCompleted>;

const classes = new Map<string, DomainEventClass<any>>();
/** Registers an event class under its `type` (the built-in ones are registered already). */
export function registerEventClass(cls: { readonly type: string; readonly schemaVersion: number } & Type<IEvent>): void {
  const existing = classes.get(cls.type);
  if (existing && existing !== (cls as unknown)) throw new Error(`event type ${cls.type} is already registered to another class`);
  classes.set(cls.type, cls as unknown as DomainEventClass<any>);
}
for (const c of [PolicyPublished, ImageImported, RunRequested, RunClaimed, RunStarted, CapabilitiesQueried, CapabilitiesChangeRequested, PrivilegeChecked, RunExited, RunFailed, RunRecordCompleted]) {
  registerEventClass(c as never);
}

/** The routing id of an event class is its static `type`; classes without one are not routed. */
export const typeEventIdProvider: EventIdProvider = {
  getEventId(event: Type<IEvent>): string | null {
    const t = (event as unknown as { type?: unknown }).type;
    return typeof t === 'string' && t !== '' ? t : null;
  },
};

/** Options for CqrsModule.forRoot: route by `type`. */
export function cqrsOptions(extra: Omit<CqrsModuleOptions, 'eventIdProvider'> = {}): CqrsModuleOptions {
  return { ...extra, eventIdProvider: typeEventIdProvider };
}

/** `CqrsModule.forRoot` configured to route events by their stable `type` string. */
export function capulatorCqrsModule(extra: Omit<CqrsModuleOptions, 'eventIdProvider'> = {}): DynamicModule {
  return CqrsModule.forRoot(cqrsOptions(extra));
}

/** A stored event (already upcast by the store) as an instance of its domain event class. */
export function toDomainEvent<T extends EventType>(e: StoredEvent<T>): DomainEvent<T> {
  const cls = classes.get(e.type);
  if (!cls) throw new Error(`no event class registered for type ${e.type}`);
  return new cls(e.payload, { position: e.position, streamId: e.streamId, streamVersion: e.streamVersion, at: e.at }) as DomainEvent<T>;
}

/** The run lifecycle's event types (decision events are not published on the EventBus: the hot path). */
export const RUN_LIFECYCLE_TYPES: ReadonlySet<string> = new Set(['RunRequested', 'RunClaimed', 'RunStarted', 'RunExited', 'RunFailed']);
