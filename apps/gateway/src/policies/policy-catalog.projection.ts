import type { StoredEvent } from '@capulator/events';

export interface PolicyVersion {
  name: string;
  version: number;
  hash: string;
  description?: string;
  yaml: string;
  publishedAt: string;
  position: number;
}

/** Pure: name → versions (ascending), folded from PolicyPublished. */
export type PolicyCatalogState = ReadonlyMap<string, readonly PolicyVersion[]>;

export function evolvePolicyCatalog(state: Map<string, PolicyVersion[]>, e: StoredEvent): Map<string, PolicyVersion[]> {
  if (e.type !== 'PolicyPublished') return state;
  const p = e.payload as StoredEvent<'PolicyPublished'>['payload'];
  const versions = state.get(p.name) ?? [];
  if (versions.some((v) => v.version === p.version)) return state;
  state.set(p.name, [...versions, { name: p.name, version: p.version, hash: p.hash, description: p.description, yaml: p.yaml, publishedAt: e.at, position: e.position }].sort((a, b) => a.version - b.version));
  return state;
}
