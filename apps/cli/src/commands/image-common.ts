import { imageStream, SqliteEventStore } from '@capulator/events';
import { imageImportedPayload, type ResolvedImage } from '../../../runtime/src/images';

/** Sizes as people read them: 8.5 MB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/**
 * Records ImageImported for each image in the embedded event store (`image import` and
 * `image pull` alike); a store that cannot be written is a warning, the image is in the store.
 */
export async function recordImported(storePath: string, images: ResolvedImage[], verb = 'import'): Promise<void> {
  let store: SqliteEventStore | undefined;
  try {
    store = SqliteEventStore.open(storePath);
    const at = new Date().toISOString();
    for (const img of images) {
      await store.append(imageStream(img.digest), 'any', [{ type: 'ImageImported', at, payload: imageImportedPayload(img) }]);
    }
  } catch (err) {
    process.stderr.write(`capulator: warning: the ${verb} was not recorded in the event store: ${(err as Error).message}\n`);
  } finally {
    await store?.close();
  }
}
