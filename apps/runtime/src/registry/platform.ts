import { RegistryError } from './registry.errors';

export interface Platform { os: string; architecture: string; variant?: string }

/** Node's `process.arch` → the OCI architecture name. */
const NODE_TO_OCI: Record<string, Platform> = {
  x64: { os: 'linux', architecture: 'amd64' },
  arm64: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  arm: { os: 'linux', architecture: 'arm', variant: 'v7' },
  ia32: { os: 'linux', architecture: '386' },
  ppc64: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
};

export function hostPlatform(arch: string = process.arch): Platform {
  const p = NODE_TO_OCI[arch];
  if (!p) throw new RegistryError('BAD_PLATFORM', `unknown host architecture ${arch}`);
  return { ...p };
}

/** `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_]+$/.test(p))) {
    throw new RegistryError('BAD_PLATFORM', `bad platform ${JSON.stringify(text)}: want OS/ARCH[/VARIANT], e.g. linux/amd64`);
  }
  const aliases: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', x86: '386' };
  return { os: parts[0], architecture: aliases[parts[1]] ?? parts[1], variant: parts[2] };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Whether an index entry's platform runs on `want`. OS and architecture must be equal; a
 * wanted variant must match, except that arm64 treats `v8` and no variant as the same.
 */
export function platformMatches(have: Platform, want: Platform): boolean {
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  const norm = (p: Platform) => (p.architecture === 'arm64' && (p.variant ?? 'v8') === 'v8' ? 'v8' : p.variant);
  if (!want.variant) return true;
  return norm(have) === norm(want) || (have.variant === undefined && want.architecture !== 'arm');
}

/** Picks the best entry for `want` from an index: exact variant first, then any that matches. */
export function selectPlatform<T extends { platform?: Platform }>(entries: T[], want: Platform): T | undefined {
  const candidates = entries.filter((e) => e.platform && platformMatches(e.platform, want));
  if (candidates.length === 0) return undefined;
  return candidates.find((e) => e.platform!.variant === want.variant) ?? candidates[0];
}
