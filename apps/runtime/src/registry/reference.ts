import { RegistryError } from './registry.errors';

/** A parsed image reference: `[HOST[:PORT]/]name[:tag][@sha256:…]`. */
export interface ImageReference {
  /** Registry host as written (`127.0.0.1:5000`, `docker.io`). */
  registry: string;
  /** Repository path inside the registry (`library/busybox`, `team/app`). */
  repository: string;
  tag?: string;
  digest?: string;
  /** What to ask the manifests endpoint for: the digest if given, else the tag. */
  reference: string;
  /** The canonical text form (`127.0.0.1:5000/app:1`, `docker.io/library/busybox:latest`). */
  canonical: string;
}

export const DOCKER_HUB = 'docker.io';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Parses an image reference the way Docker does: the first path component is a registry host
 * when it contains `.` or `:` or is `localhost`; otherwise the image lives on Docker Hub and a
 * one-component name gets the `library/` prefix. No tag and no digest means `:latest`.
 */
export function parseReference(text: string): ImageReference {
  const input = text.trim();
  if (input === '') throw new RegistryError('BAD_REFERENCE', 'empty image reference');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new RegistryError('BAD_REFERENCE', `bad digest in image reference ${JSON.stringify(text)} (want sha256:<64 hex>)`);
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new RegistryError('BAD_REFERENCE', `bad tag ${JSON.stringify(tag)} in image reference ${JSON.stringify(text)}`);
  }
  if (rest === '' || !rest.split('/').every((c) => COMPONENT.test(c))) {
    throw new RegistryError('BAD_REFERENCE', `bad repository name in image reference ${JSON.stringify(text)} (lower-case letters, digits, separators . _ -)`);
  }
  if (registry === DOCKER_HUB && !rest.includes('/')) rest = `library/${rest}`;
  if (!tag && !digest) tag = 'latest';
  const canonical = `${registry}/${rest}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository: rest, tag, digest, reference: digest ?? tag!, canonical };
}

/** `host:port` → `host` without port; `[::1]:5000` → `::1`. */
export function hostOnly(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const i = registry.lastIndexOf(':');
  return i >= 0 ? registry.slice(0, i) : registry;
}

/** Plain HTTP is allowed for loopback hosts and hosts named with --insecure-registry (like Docker). */
export function isInsecureHost(registry: string, insecure: readonly string[]): boolean {
  const h = hostOnly(registry);
  if (h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h)) return true;
  return insecure.some((x) => x === registry || x === h);
}

/** The host that actually serves the API: Docker Hub's API lives on registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}
