import { Command } from 'commander';
import { MultiBar, Presets, SingleBar } from 'cli-progress';
import { join } from 'node:path';
import { homePaths } from '@capulator/host';
import { ImageStore, ImageStoreError, limitsFromEnv, ResolvedImage } from '../../../runtime/src/images';
import { parsePlatform, pullImage, PullProgress, RegistryError, RegistryErrorCode } from '../../../runtime/src/registry';
import { CliError } from '../cli-error';
import { formatBytes, recordImported } from './image-common';
import { printJson } from '../output';

/**
 * `capulator image pull REF [--platform OS/ARCH[/VARIANT]] [--insecure-registry HOST[:PORT]]… [--quiet] [--json]`
 *
 * Pulls from an OCI registry (Distribution API v2) into $CAPULATOR_HOME/images. Credentials
 * come from $DOCKER_CONFIG/config.json (default ~/.docker/config.json). Progress: one bar per
 * layer on a terminal, plain lines otherwise, nothing with --quiet.
 * Exit codes: 0 pulled; 2 bad reference, no such image, no build for this platform, refused
 * credentials, a blob that fails its digest; 1 the registry could not be reached or kept failing.
 */
export function registerImagePullCommand(image: Command): Command {
  return image
    .command('pull')
    .description('pull an image from an OCI registry (Distribution API v2) into the local store')
    .argument('<ref>', 'HOST[:PORT]/NAME[:TAG] or NAME@sha256:…; no host means Docker Hub')
    .option('--platform <os/arch[/variant]>', "platform to pull from a multi-platform image (default: the host's)")
    .option('--insecure-registry <host[:port]>', 'allow plain HTTP / unverified TLS for this registry (repeatable; loopback always is)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('-q, --quiet', 'print only the image id')
    .option('--json', 'print the pulled image as JSON')
    .action(async (ref: string, opts: { platform?: string; insecureRegistry: string[]; quiet?: boolean; json?: boolean }) => {
      const paths = homePaths();
      let store: ImageStore;
      try {
        store = new ImageStore(paths.images, { limits: limitsFromEnv(process.env) });
      } catch (err) {
        throw new CliError(`cannot open the image store: ${(err as Error).message}`, 1);
      }
      const progress = opts.quiet || opts.json ? undefined : process.stderr.isTTY ? new BarProgress() : new LineProgress();
      let img: ResolvedImage;
      try {
        img = await pullImage(store, ref, {
          platform: opts.platform ? parsePlatform(opts.platform) : undefined,
          insecureRegistries: opts.insecureRegistry,
          stagingDir: join(paths.home, 'pull-staging'),
          onProgress: progress ? (p) => progress.update(p) : undefined,
        });
      } catch (err) {
        throw toCliError(err);
      } finally {
        progress?.stop();
      }
      img = { ...img, source: ref };
      await recordImported(paths.store, [img], 'pull');
      if (opts.json) printJson(img);
      else if (opts.quiet) process.stdout.write(`${img.digest}\n`);
      else {
        const p = img.platform;
        process.stdout.write(`pulled ${img.refs.join(', ') || ref} ${img.digest} (${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}, ${img.layers.length} layer${img.layers.length === 1 ? '' : 's'}, ${formatBytes(img.sizeBytes)})\n`);
      }
    });
}

const NETWORK_CODES: RegistryErrorCode[] = ['NETWORK', 'TLS', 'HTTP_ERROR', 'LOCK_TIMEOUT'];

function toCliError(err: unknown): unknown {
  if (err instanceof RegistryError) return new CliError(err.message, NETWORK_CODES.includes(err.code) ? 1 : 2);
  if (err instanceof ImageStoreError) return new CliError(err.message, err.code === 'LOCK_TIMEOUT' || err.code === 'UNSUPPORTED' ? 1 : 2);
  return err;
}

const short = (digest: string) => digest.slice(7, 19);

interface Progress { update(p: PullProgress): void; stop(): void }

/** One bar per layer: bytes, total and rate (cli-progress). */
class BarProgress implements Progress {
  private readonly multi = new MultiBar({
    stream: process.stderr,
    clearOnComplete: false,
    hideCursor: true,
    format: '{id} {bar} {state} {done}/{size} {rate}',
    barsize: 30,
    autopadding: true,
  }, Presets.shades_classic);
  private readonly bars = new Map<string, { bar: SingleBar; started: number }>();

  update(p: PullProgress): void {
    if (p.kind === 'resolved') {
      this.multi.log(`${p.ref}: ${p.layers.length} layer${p.layers.length === 1 ? '' : 's'}, ${formatBytes(p.layers.reduce((a, l) => a + l.size, 0))}\n`);
      for (const l of p.layers) this.bar(l.digest, l.size);
    } else if (p.kind === 'layer') {
      const b = this.bar(p.digest, p.total);
      if (p.state === 'downloading' && b.started === 0) b.started = Date.now();
      const secs = b.started ? (Date.now() - b.started) / 1000 : 0;
      const rate = p.state === 'downloading' && secs > 0.2 ? `${formatBytes(Math.round(p.bytes / secs))}/s` : '';
      b.bar.update(p.bytes, { state: p.state.padEnd(11), done: formatBytes(p.bytes), rate });
    } else if (p.kind === 'retry') {
      this.multi.log(`${short(p.digest)}: ${p.reason}${p.resumeAt ? ` (resuming at ${formatBytes(p.resumeAt)})` : ''}\n`);
    }
  }

  private bar(digest: string, total: number) {
    let b = this.bars.get(digest);
    if (!b) {
      b = { bar: this.multi.create(Math.max(total, 1), 0, { id: short(digest), state: 'waiting'.padEnd(11), done: '0 B', size: formatBytes(total), rate: '' }), started: 0 };
      this.bars.set(digest, b);
    }
    return b;
  }

  stop(): void {
    this.multi.stop();
  }
}

/** Plain lines for logs and pipes: one line per layer state change, none per byte. */
class LineProgress implements Progress {
  private readonly last = new Map<string, string>();
  private readonly started = new Map<string, number>();

  update(p: PullProgress): void {
    const out = (s: string) => process.stderr.write(s + '\n');
    if (p.kind === 'resolved') out(`${p.ref}: manifest ${p.manifestDigest}, ${p.layers.length} layer${p.layers.length === 1 ? '' : 's'}`);
    else if (p.kind === 'retry') out(`${short(p.digest)}: ${p.reason}${p.resumeAt ? ` (resuming at ${formatBytes(p.resumeAt)})` : ''}`);
    else if (p.kind === 'layer' && this.last.get(p.digest) !== p.state) {
      this.last.set(p.digest, p.state);
      if (p.state === 'downloading') this.started.set(p.digest, Date.now());
      let extra = '';
      if (p.state === 'downloading') extra = ` ${formatBytes(p.total)}`;
      if (p.state === 'storing' && this.started.has(p.digest)) {
        const secs = Math.max(0.001, (Date.now() - this.started.get(p.digest)!) / 1000);
        extra = ` (${formatBytes(p.total)} in ${secs.toFixed(1)} s, ${formatBytes(Math.round(p.total / secs))}/s)`;
      }
      if (p.state === 'cached') extra = ' (already in the store)';
      out(`${short(p.digest)}: ${p.state}${extra}`);
    }
  }

  stop(): void { /* nothing buffered */ }
}
