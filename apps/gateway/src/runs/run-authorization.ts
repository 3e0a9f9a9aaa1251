import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { hasScope, type Scope } from '../auth/scopes';
import { DomainError, Forbidden, ValidationFailed } from '../errors/domain.error';
import { fsErrorText } from '@capulator/host';

/**
 * What a submitted run may do on the host, decided from the token's scopes and the directories
 * the server was started with. `runs:write` alone: a published policy (or the built-in default),
 * no learn mode, no inline policy, no bind mounts. Each further power has its own scope, and bind
 * mounts come only from `--allow-mount` directories, never from the state directory or above it.
 */
export interface RunPowers {
  learn?: boolean;
  policyYaml?: string;
  mounts?: Array<{ source: string; destination: string; readonly?: boolean }>;
  /** the network the run asks for (none by default) */
  network?: 'none' | 'bridge' | 'host';
}

export interface MountAllowList {
  /** realpath'd `--allow-mount` directories */
  dirs: readonly string[];
  /** realpath'd $CAPULATOR_HOME */
  home: string;
}

/** `a` is `b` or below it. */
export function within(a: string, b: string): boolean {
  const r = relative(b, a);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r) && r.split(sep)[0] !== '..');
}

/** Resolves and checks the server's `--allow-mount` directories (at start: an error stops the server). */
export function mountAllowList(dirs: readonly string[], home: string): MountAllowList {
  const realHome = realpathSync(home);
  const out: string[] = [];
  for (const d of dirs) {
    let real: string;
    try {
      real = realpathSync(resolve(d));
    } catch (e) {
      throw new Error(`--allow-mount ${d}: ${fsErrorText(e)}`);
    }
    if (!statSync(real).isDirectory()) throw new Error(`--allow-mount ${d}: not a directory`);
    if (within(realHome, real) || within(real, realHome)) throw new Error(`--allow-mount ${d}: overlaps the state directory ${realHome} (it must be neither inside nor above it)`);
    out.push(real);
  }
  return { dirs: out, home: realHome };
}

export class MountRefused extends DomainError {
  constructor(field: string, message: string) {
    super('forbidden', message, [{ field, messages: [message] }]);
  }
}

/**
 * Checks one bind-mount source and returns its resolved path (every symlink followed): the
 * path the run will mount. Refused: a source outside every allowed directory (after resolution,
 * so a symlink cannot escape), the state directory, anything above it or inside it.
 */
export function checkMountSource(source: string, allow: MountAllowList, field = 'mounts.0.source'): string {
  let real: string;
  try {
    real = realpathSync(source);
  } catch (e) {
    throw new ValidationFailed([{ field, messages: [`${source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`] }]);
  }
  if (within(allow.home, real) || within(real, allow.home)) throw new MountRefused(field, `${source} is or contains the server's state directory; it cannot be mounted`);
  if (!allow.dirs.some((d) => within(real, d))) {
    throw new MountRefused(field, allow.dirs.length === 0 ? 'this server allows no bind mounts (start it with --allow-mount DIR)' : `${source} (${real}) is not under a directory the server allows: ${allow.dirs.join(', ')}`);
  }
  return real;
}

/** The scope each extra power needs (exported for docs and tests). */
export const POWER_SCOPES = { learn: 'runs:learn', policyYaml: 'runs:inline-policy', mounts: 'runs:mount', bridge: 'runs:network', host: 'runs:host-network' } as const satisfies Record<string, Scope>;

/** Checks a submission against the token's scopes; returns the mounts with resolved sources, read-only unless asked. */
export function authorizeRun(scopes: readonly string[], run: RunPowers, allow: MountAllowList): Array<{ source: string; destination: string; readonly: boolean }> {
  if (run.learn === true && !hasScope(scopes, POWER_SCOPES.learn)) throw new Forbidden(`${POWER_SCOPES.learn} (learn mode allows every privileged operation)`);
  if (run.policyYaml !== undefined && !hasScope(scopes, POWER_SCOPES.policyYaml)) throw new Forbidden(`${POWER_SCOPES.policyYaml} (an inline policy can allow more than any published one)`);
  if (run.network === 'bridge' && !hasScope(scopes, POWER_SCOPES.bridge)) throw new Forbidden(`${POWER_SCOPES.bridge} (a bridge network reaches out of the host and publishes ports on it)`);
  if (run.network === 'host' && !hasScope(scopes, POWER_SCOPES.host)) throw new Forbidden(`${POWER_SCOPES.host} (the host's own network namespace: its interfaces, ports and local services)`);
  const mounts = run.mounts ?? [];
  if (mounts.length > 0 && !hasScope(scopes, POWER_SCOPES.mounts)) throw new Forbidden(`${POWER_SCOPES.mounts} (bind mounts expose host files)`);
  return mounts.map((m, i) => ({ source: checkMountSource(m.source, allow, `mounts.${i}.source`), destination: m.destination, readonly: m.readonly !== false }));
}
