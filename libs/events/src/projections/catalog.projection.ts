import type { EventTypes, StoredEvent } from '../contracts';

export interface PolicyVersionRow {
  name: string;
  version: number;
  hash: string;
  description: string | null;
  publishedAt: string;
  position: number;
}

export interface ImageRow {
  digest: string;
  tags: string[];
  platform: string;
  sizeBytes: number;
  source: string;
  importedAt: string;
  position: number;
}

/** Pure: the policies read-model row a PolicyPublished event adds (null for other events). */
export function evolvePolicyVersion(e: StoredEvent): PolicyVersionRow | null {
  if (e.type !== 'PolicyPublished') return null;
  const p = e.payload as EventTypes['PolicyPublished'];
  return { name: p.name, version: p.version, hash: p.hash, description: p.description ?? null, publishedAt: e.at, position: e.position };
}

/** Pure: the image row after an ImageImported event (tags merged with an earlier import). */
export function evolveImage(state: ImageRow | undefined, e: StoredEvent): ImageRow | undefined {
  if (e.type !== 'ImageImported') return state;
  if (state && e.position <= state.position) return state;
  const p = e.payload as EventTypes['ImageImported'];
  const pl = p.platform;
  const tags = Array.from(new Set([...(state?.tags ?? []), ...p.tags])).sort();
  return {
    digest: p.digest,
    tags,
    platform: `${pl.os}/${pl.architecture}${pl.variant ? '/' + pl.variant : ''}`,
    sizeBytes: p.sizeBytes,
    source: p.source,
    importedAt: state?.importedAt ?? e.at,
    position: e.position,
  };
}
