import type { CapabilitySets, DecisionPayload, EventTypes, NewEvent, PolicyRef } from '../contracts';

/** Builders for recorded runs (tests, benchmarks, examples). Times are derived from a base, never the clock. */
export const T0 = Date.parse('2026-01-01T00:00:00.000Z');
export const isoAt = (ms: number) => new Date(T0 + ms).toISOString();

export const TEST_POLICY: PolicyRef = { name: 'test', version: 1, hash: 'sha256:' + '0'.repeat(64) };

export function decision(runId: string, seq: number, o: Partial<DecisionPayload> & { exe?: string } = {}): NewEvent<'PrivilegeChecked'> {
  const { exe, ...rest } = o;
  const payload: DecisionPayload = {
    runId,
    seq,
    key: `${runId}:${seq}`,
    at: isoAt(seq),
    subject: { pid: 100, tid: 100, uid: 0, gid: 0, exe: exe ?? '/usr/bin/ping' },
    arch: 'x86_64',
    syscall: 'socket',
    nr: 41,
    args: { family: 'AF_INET', type: 'SOCK_RAW', protocol: 1 },
    privileges: ['PRIV_NETINET_RAW'],
    capability: 'CAP_NET_RAW',
    decision: 'allow',
    ruleId: 'ping-raw',
    policy: TEST_POLICY,
    answeredBy: 'continue',
    latencyNs: 6000,
    ...rest,
  };
  return { type: 'PrivilegeChecked', at: payload.at, payload };
}

export function caps(permitted: string[]): CapabilitySets {
  return { bounding: permitted.slice(), permitted: permitted.slice(), effective: permitted.slice(), inheritable: [], ambient: [] };
}

export function runRequested(runId: string, o: Partial<EventTypes['RunRequested']> = {}): NewEvent<'RunRequested'> {
  return {
    type: 'RunRequested',
    at: isoAt(0),
    payload: { runId, image: 'debian:12', command: ['ping', '-c1', '127.0.0.1'], env: [], policy: TEST_POLICY, learn: false, mounts: [], ...o },
  };
}

export function runStarted(runId: string, permitted: string[], o: Partial<EventTypes['RunStarted']> = {}): NewEvent<'RunStarted'> {
  return {
    type: 'RunStarted',
    at: isoAt(0),
    payload: { runId, imageDigest: 'sha256:' + 'd'.repeat(64), user: { uid: 0, gid: 0 }, capabilities: caps(permitted), provenance: {}, policy: TEST_POLICY, pid: 4242, ...o },
  };
}

export function runExited(runId: string, o: Partial<EventTypes['RunExited']> = {}): NewEvent<'RunExited'> {
  return {
    type: 'RunExited',
    at: isoAt(1_000_000),
    payload: { runId, exitCode: 0, signal: null, counts: { allow: 0, deny: 0, emulate: 0 }, lostEvents: 0, durationMs: 1000, ...o },
  };
}
