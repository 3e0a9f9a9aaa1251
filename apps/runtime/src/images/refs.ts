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

/**
 * Why `ref` is not a valid name[:tag] (the rule it breaks), or undefined when it is one.
 * The rules are the distribution reference grammar that docker and podman apply.
 */
export function tagError(ref: string): string | undefined {
  if (normalizeTag(ref) !== undefined) return undefined;
  const r = ref.trim();
  if (r === '') return 'a tag reference is not empty';
  if (r.includes('@')) return 'a tag reference holds no "@" (a digest names an image, it is not a tag)';
  const slash = r.lastIndexOf('/');
  const colon = r.lastIndexOf(':');
  const name = colon > slash ? r.slice(0, colon) : r;
  const tag = colon > slash ? r.slice(colon + 1) : 'latest';
  if (name.length > 255) return `the name is at most 255 characters (it has ${name.length})`;
  if (!TAG_RE.test(tag)) return 'the tag is 1 to 128 of [A-Za-z0-9_.-] and does not start with "." or "-"';
  return 'the name is [host[:port]/]path, each path component lowercase letters and digits joined by ".", "_", "__" or "-" (no empty, "." or ".." components)';
}

/** Something `ImageStore.resolve` can look up: a digest, a name[:tag], or a digest prefix (12+ hex). */
export function isImageRef(ref: string): boolean {
  return isDigest(ref) || normalizeTag(ref) !== undefined || digestPrefix(ref) !== undefined;
}
