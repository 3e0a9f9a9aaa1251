import { Command } from 'commander';
import { homePaths } from '@capulator/host';
import { ImageStore, ImageStoreError, limitsFromEnv, ResolvedImage } from '../../../runtime/src/images';
import { CliError } from '../cli-error';
import { formatBytes, recordImported } from './image-common';
import { registerImagePullCommand } from './image-pull.command';
import { printJson, printTable } from '../output';

/**
 * `capulator image import|ls|inspect|rm|prune|pull` on the local image store
 * ($CAPULATOR_HOME/images). Exit codes: 0 ok; 2 bad input (unknown image, bad or hostile
 * archive, digest mismatch, limit); 1 the store could not be used (lock timeout, missing tool).
 */

function openImageStore(): ImageStore {
  try {
    return new ImageStore(homePaths().images, { limits: limitsFromEnv(process.env) });
  } catch (err) {
    if (err instanceof ImageStoreError) throw toCli(err);
    throw new CliError(`cannot open the image store: ${(err as Error).message}`, 1);
  }
}

function toCli(err: unknown): unknown {
  if (!(err instanceof ImageStoreError)) return err;
  const exit = err.code === 'LOCK_TIMEOUT' || err.code === 'UNSUPPORTED' ? 1 : 2;
  return new CliError(err.message, exit);
}

async function guarded<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toCli(err);
  }
}

function platformText(p: ResolvedImage['platform']): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('import, list and remove images in the local store ($CAPULATOR_HOME/images)');

  image
    .command('import')
    .description('import a docker-archive tarball (`docker save`) or an OCI image layout (directory or tar)')
    .argument('<path>', 'archive file or OCI layout directory')
    .option('-t, --tag <name>', 'tag the imported image (name[:tag], default tag latest); the archive must hold one image')
    .option('--json', 'print the imported images as JSON')
    .action(async (path: string, opts: { tag?: string; json?: boolean }) => {
      const store = openImageStore();
      const started = Date.now();
      const images = await guarded(() => store.importArchive(path, {
        tag: opts.tag,
        onWarning: (w) => process.stderr.write(`capulator: warning: ${w}\n`),
      }));
      await recordImported(homePaths().store, images);
      if (opts.json) {
        printJson(images);
        return;
      }
      for (const img of images) {
        const name = img.refs.length ? img.refs.join(', ') : '<untagged>';
        process.stdout.write(`imported ${name} ${img.digest} (${platformText(img.platform)}, ${img.layers.length} layer${img.layers.length === 1 ? '' : 's'}, ${formatBytes(img.sizeBytes)}) in ${Date.now() - started} ms\n`);
      }
    });

  image
    .command('ls')
    .alias('list')
    .description('list images')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const images = guardedSync(() => openImageStore().list());
      if (opts.json) {
        printJson(images);
        return;
      }
      const rows: Array<Array<string | number>> = [];
      for (const img of images) {
        const names = img.refs.length ? img.refs : ['<none>'];
        for (const n of names) {
          rows.push([n, img.digest.slice(7, 19), platformText(img.platform), img.diffIds.length, formatBytes(img.sizeBytes), img.importedAt.replace(/\.\d+Z$/, 'Z')]);
        }
      }
      printTable(['IMAGE', 'ID', 'PLATFORM', 'LAYERS', 'SIZE', 'IMPORTED'], rows);
    });

  image
    .command('inspect')
    .description('show an image: digest, tags, platform, config, layer directories')
    .argument('<ref>', 'tag, digest or digest prefix (12+ hex digits)')
    .action((ref: string) => {
      printJson(guardedSync(() => openImageStore().resolve(ref)));
    });

  image
    .command('rm')
    .alias('remove')
    .description('remove a tag, or an image (by digest or its last tag); layers stay until `image prune`')
    .argument('<refs...>', 'tags, digests or digest prefixes')
    .option('--json', 'print JSON')
    .action((refs: string[], opts: { json?: boolean }) => {
      const store = openImageStore();
      const results = refs.map((r) => guardedSync(() => store.remove(r)));
      if (opts.json) {
        printJson(results);
        return;
      }
      for (const r of results) {
        for (const t of r.untagged) process.stdout.write(`untagged: ${t}\n`);
        if (r.deleted) process.stdout.write(`deleted: ${r.deleted}\n`);
      }
    });

  image
    .command('prune')
    .description('remove unpacked layers no image uses, and staging left by interrupted imports')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const r = guardedSync(() => openImageStore().prune());
      if (opts.json) {
        printJson(r);
        return;
      }
      for (const l of r.layers) process.stdout.write(`removed layer ${l}\n`);
      for (const l of r.inUse) process.stdout.write(`kept layer ${l} (a running container uses it)\n`);
      process.stdout.write(`removed ${r.layers.length} layer${r.layers.length === 1 ? '' : 's'} (${formatBytes(r.bytes)})${r.staging ? `, ${r.staging} interrupted import${r.staging === 1 ? '' : 's'}` : ''}\n`);
    });

  registerImagePullCommand(image);
}

function guardedSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toCli(err);
  }
}
