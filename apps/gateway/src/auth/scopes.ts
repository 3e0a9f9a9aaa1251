/**
 * Token scopes. `*` grants everything. `runs:write` submits runs under a published policy (or the
 * built-in default); learn mode, inline policies and bind mounts each need their own scope on top
 * (docs/api.md, "Authentication and scopes"). A run is stopped, fed stdin and resized by the token
 * that submitted it; `runs:admin` does that for every run.
 */
export const SCOPES = ['runs:write', 'runs:learn', 'runs:inline-policy', 'runs:mount', 'runs:network', 'runs:host-network', 'runs:admin', 'runs:read', 'audit:read', 'policies:write', 'images:write', 'images:read', '*'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function hasScope(granted: readonly string[], needed: Scope): boolean {
  return granted.includes('*') || granted.includes(needed);
}
