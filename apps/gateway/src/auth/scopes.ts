/** Token scopes. `*` grants everything. */
export const SCOPES = ['runs:write', 'runs:read', 'audit:read', 'policies:write', 'images:write', '*'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function hasScope(granted: readonly string[], needed: Scope): boolean {
  return granted.includes('*') || granted.includes(needed);
}
