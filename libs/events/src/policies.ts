import { policyStream, type EventTypes } from './contracts';
import { EventStoreError } from './errors';
import type { EventStore } from './store';

export interface PublishedPolicy {
  name: string;
  version: number;
  hash: string;
  yaml: string;
  description?: string;
  position: number;
  at: string;
}

/** Parses a policy reference: `name` (the latest version) or `name@version`. */
export function parsePolicyRef(ref: string): { name: string; version?: number } {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:@([1-9][0-9]*))?$/.exec(ref);
  if (!m) throw new EventStoreError('INVALID_EVENT', `bad policy reference "${ref}" (want NAME or NAME@VERSION)`);
  return { name: m[1], version: m[2] === undefined ? undefined : Number(m[2]) };
}

/** Every published version of a policy, oldest first. */
export async function policyVersions(store: EventStore, name: string): Promise<PublishedPolicy[]> {
  const out: PublishedPolicy[] = [];
  for await (const e of store.readStream(policyStream(name))) {
    if (e.type !== 'PolicyPublished') continue;
    const p = e.payload as EventTypes['PolicyPublished'];
    out.push({ name: p.name, version: p.version, hash: p.hash, yaml: p.yaml, description: p.description, position: e.position, at: e.at });
  }
  return out;
}

/** Resolves `name` (latest) or `name@version` to the published policy; throws NOT_FOUND. */
export async function resolvePolicy(store: EventStore, ref: string): Promise<PublishedPolicy> {
  const { name, version } = parsePolicyRef(ref);
  const versions = await policyVersions(store, name);
  const found = version === undefined ? versions[versions.length - 1] : versions.find((v) => v.version === version);
  if (!found) {
    throw new EventStoreError(
      'NOT_FOUND',
      versions.length === 0 ? `policy ${name} was never published` : `policy ${name} has no version ${version} (latest is ${versions[versions.length - 1].version})`,
    );
  }
  return found;
}

/**
 * Appends PolicyPublished with the next version to `policy-<name>` (optimistic concurrency: two
 * publishers racing get WrongExpectedVersion, not two version 3s). Publishing the same compiled
 * hash and the same YAML text as the latest version is a no-op that returns it with `published: false`.
 */
export async function publishPolicy(
  store: EventStore,
  p: { name: string; yaml: string; hash: string; description?: string },
  at: string,
): Promise<PublishedPolicy & { published: boolean }> {
  parsePolicyRef(p.name);
  const versions = await policyVersions(store, p.name);
  const latest = versions[versions.length - 1];
  if (latest && latest.hash === p.hash && latest.yaml === p.yaml) return { ...latest, published: false };
  const version = (latest?.version ?? 0) + 1;
  const streamVersion = versions.length === 0 ? 'no-stream' : await lastStreamVersion(store, policyStream(p.name));
  const payload: EventTypes['PolicyPublished'] = { name: p.name, version, hash: p.hash, yaml: p.yaml, ...(p.description ? { description: p.description } : {}) };
  const [e] = await store.append(policyStream(p.name), streamVersion, [{ type: 'PolicyPublished', at, payload }]);
  return { ...payload, position: e.position, at, published: true };
}

async function lastStreamVersion(store: EventStore, streamId: string): Promise<number> {
  let v = 0;
  for await (const e of store.readStream(streamId)) v = e.streamVersion;
  return v;
}
