import { AGENT_ROWS } from './replay/what-if';
import type Database from 'better-sqlite3';

/** One privilege a run used, with the programs that used it. */
export interface PrivilegeUse {
  privilege: string;
  capability: string | null;
  exes: string[];
  syscalls: string[];
  count: number;
  runIds: string[];
}

export interface SuggestedPolicy {
  name: string;
  yaml: string;
  uses: PrivilegeUse[];
}

/** Reads, from the decisions read model, every privilege the runs used and who used it. */
export function privilegeUses(db: Database.Database, runIds: string[]): PrivilegeUse[] {
  const rows = db
    .prepare(
      `SELECT r.privileges, r.capability, r.exe, r.syscall, d.run_id, count(*) AS n
       FROM rm_decisions d JOIN rm_requests r ON r.id = d.req_id
       WHERE d.run_id IN (${runIds.map(() => '?').join(',')}) AND ${AGENT_ROWS}
       GROUP BY r.id, d.run_id`,
    )
    .raw()
    .all(...runIds) as Array<[string, string | null, string, string, string, number]>;
  const by = new Map<string, { capability: string | null; exes: Set<string>; syscalls: Set<string>; count: number; runs: Set<string> }>();
  for (const [privs, cap, exe, syscall, runId, n] of rows) {
    for (const priv of JSON.parse(privs) as string[]) {
      let u = by.get(priv);
      if (!u) by.set(priv, (u = { capability: cap, exes: new Set(), syscalls: new Set(), count: 0, runs: new Set() }));
      u.exes.add(exe);
      u.syscalls.add(syscall);
      u.count += n;
      u.runs.add(runId);
    }
  }
  return [...by.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([privilege, u]) => ({ privilege, capability: u.capability, exes: [...u.exes].sort(), syscalls: [...u.syscalls].sort(), count: u.count, runIds: [...u.runs].sort() }));
}

const q = (s: string) => JSON.stringify(s); // JSON strings are YAML flow scalars

/**
 * The least-privilege policy that allows what the runs did: default deny, one allow rule per
 * privilege actually used, scoped to the programs that used it, each with a comment saying why.
 */
export function suggestPolicy(name: string, runIds: string[], uses: PrivilegeUse[]): SuggestedPolicy {
  const lines = [
    `# Suggested by \`capulator policy suggest\` from run${runIds.length > 1 ? 's' : ''} ${runIds.join(', ')}.`,
    '# Allows exactly the privileges those runs used, only for the programs that used them.',
    'apiVersion: capulator/v1',
    'kind: Policy',
    'metadata:',
    `  name: ${q(name)}`,
    `  description: ${q(`least privilege for run${runIds.length > 1 ? 's' : ''} ${runIds.join(', ')}`)}`,
    'defaults:',
    '  action: deny',
    '  audit: all',
  ];
  if (uses.length === 0) lines.push('rules: []  # the runs used no privilege');
  else lines.push('rules:');
  for (const u of uses) {
    const id = 'allow-' + u.privilege.toLowerCase().replace(/^priv_/, '').replace(/[^a-z0-9]+/g, '-');
    lines.push(
      `  # ${u.privilege}${u.capability ? ` (${u.capability})` : ''}: ${u.count} use${u.count === 1 ? '' : 's'} via ${u.syscalls.join(', ')} by ${u.exes.join(', ')}`,
      `  - id: ${q(id)}`,
      `    match: { exe: [${u.exes.map(q).join(', ')}] }`,
      `    privileges: [${q(u.privilege)}]`,
      '    action: allow',
    );
  }
  return { name, yaml: lines.join('\n') + '\n', uses };
}
