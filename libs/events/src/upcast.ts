import type { EventType } from './contracts';
import { SCHEMA_VERSIONS } from './contracts';
import { EventStoreError } from './errors';

/** Turns a payload of `type` at `fromVersion` into the payload of version fromVersion + 1. */
export type Upcaster = (payload: any) => unknown;

/**
 * (type, fromVersion) → payload transform. Reading applies the chain fromVersion → current; the stored
 * event is never rewritten (its hash covers the bytes as written).
 */
export class UpcasterRegistry {
  private readonly map = new Map<string, Upcaster>();

  constructor(private readonly current: Record<string, number> = SCHEMA_VERSIONS) {}

  register(type: EventType | string, fromVersion: number, up: Upcaster): this {
    this.map.set(type + '@' + fromVersion, up);
    return this;
  }

  currentVersion(type: string): number {
    return this.current[type] ?? 1;
  }

  /** The payload upcast to the current schema version of its type, and that version. */
  upcast(type: string, schemaVersion: number, payload: unknown): { schemaVersion: number; payload: unknown } {
    const target = this.currentVersion(type);
    let v = schemaVersion;
    let p = payload;
    while (v < target) {
      const up = this.map.get(type + '@' + v);
      if (!up) throw new EventStoreError('UNKNOWN_SCHEMA', `no upcaster for ${type} schema version ${v} → ${v + 1}`);
      p = up(p);
      v++;
    }
    return { schemaVersion: v, payload: p };
  }
}

/**
 * The upcasters capulator ships. Version 0 is the pre-release shape of the decision events:
 * a single `privilege` string and `rule` instead of `privileges[]` and `ruleId`, no `answeredBy`.
 */
export function defaultUpcasters(): UpcasterRegistry {
  const decisionV0 = (p: any) => {
    const { privilege, rule, ...rest } = p ?? {};
    return {
      ...rest,
      privileges: rest.privileges ?? (privilege ? [privilege] : []),
      ruleId: rest.ruleId ?? rule ?? null,
      answeredBy: rest.answeredBy ?? (rest.decision === 'deny' ? 'errno' : rest.decision === 'emulate' ? 'emulated' : 'continue'),
      latencyNs: rest.latencyNs ?? 0,
    };
  };
  return new UpcasterRegistry()
    .register('PrivilegeChecked', 0, decisionV0)
    .register('CapabilitiesQueried', 0, decisionV0)
    .register('CapabilitiesChangeRequested', 0, decisionV0)
    // PrivilegeChecked v1 was written by the seccomp agent only (v2 adds source 'kernel' rows).
    .register('PrivilegeChecked', 1, (p: any) => ({ source: 'agent', ...p }))
    // RunExited v0 had no loss accounting.
    .register('RunExited', 0, (p: any) => ({ lostEvents: 0, ...p }));
}
