/** Pure helpers for image references as the store records them. */

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const PREFIX_RE = /^(?:sha256:)?([0-9a-f]{12,64})$/;
// name components: lowercase alnum with separators; optional registry host[:port]; tag
const NAME_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** `abc…` or `sha256:abc…` with 12..64 hex digits → the hex part; else undefined. */
export function digestPrefix(s: string): string | undefined {
  const m = PREFIX_RE.exec(s);
  return m ? m[1] : undefined;
}

/**
 * Normalises a tag reference: `busybox` → `busybox:latest`,
 * `docker.io/library/busybox:1` → `busybox:1`, `docker.io/foo/bar` → `foo/bar:latest`.
 * Returns undefined when `ref` is not a valid name[:tag].
 */
export function normalizeTag(ref: string): string | undefined {
  let r = ref.trim();
  if (r.includes('@')) return undefined;
  const slash = r.lastIndexOf('/');
  const colon = r.lastIndexOf(':');
  let name = r, tag = 'latest';
  if (colon > slash) {
    name = r.slice(0, colon);
    tag = r.slice(colon + 1);
  }
  for (const p of ['docker.io/library/', 'index.docker.io/library/', 'docker.io/', 'index.docker.io/']) {
    if (name.startsWith(p)) {
      name = name.slice(p.length);
      break;
    }
  }
  if (!NAME_RE.test(name) || !TAG_RE.test(tag) || name.length > 255) return undefined;
  r = `${name}:${tag}`;
  return r;
}

/** Something `ImageStore.resolve` can look up: a digest, a name[:tag], or a digest prefix (12+ hex). */
export function isImageRef(ref: string): boolean {
  return isDigest(ref) || normalizeTag(ref) !== undefined || digestPrefix(ref) !== undefined;
}
