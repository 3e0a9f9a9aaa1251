import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isScope, Scope, SCOPES } from './scopes';

/**
 * API tokens, stored hashed in $CAPULATOR_HOME/tokens.json (mode 0600). A token is 32 random
 * bytes, shown once as `cap_<base64url>`; the file keeps `sha256:<hex>` of the token string.
 * Plain node (no Nest), so the CLI can use it on its fast path.
 */
export interface TokenRecord {
  name: string;
  scopes: Scope[];
  hash: string;
  createdAt: string;
}

export interface Principal {
  name: string;
  scopes: Scope[];
}

export class TokenError extends Error {}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function hashToken(token: string): string {
  return 'sha256:' + createHash('sha256').update(token, 'utf8').digest('hex');
}

export class TokenStore {
  private cache: { mtimeMs: number; size: number; records: TokenRecord[] } | undefined;

  constructor(readonly file: string) {}

  list(): TokenRecord[] {
    if (!existsSync(this.file)) return [];
    const st = statSync(this.file);
    if (this.cache && this.cache.mtimeMs === st.mtimeMs && this.cache.size === st.size) return this.cache.records;
    const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { tokens?: TokenRecord[] };
    const records = Array.isArray(parsed.tokens) ? parsed.tokens : [];
    this.cache = { mtimeMs: st.mtimeMs, size: st.size, records };
    return records;
  }

  /** Creates a token and returns it; this is the only time the token itself is known. */
  create(name: string, scopes: string[], now: Date = new Date()): { token: string; record: TokenRecord } {
    if (!NAME_RE.test(name)) throw new TokenError(`invalid token name ${JSON.stringify(name)} (letters, digits, . _ -; at most 64)`);
    if (scopes.length === 0) throw new TokenError('at least one scope is needed');
    for (const s of scopes) if (!isScope(s)) throw new TokenError(`unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(', ')})`);
    const records = this.list();
    if (records.some((r) => r.name === name)) throw new TokenError(`a token named ${name} already exists`);
    const token = 'cap_' + randomBytes(32).toString('base64url');
    const record: TokenRecord = { name, scopes: [...new Set(scopes)] as Scope[], hash: hashToken(token), createdAt: now.toISOString() };
    this.write([...records, record]);
    return { token, record };
  }

  revoke(name: string): boolean {
    const records = this.list();
    const kept = records.filter((r) => r.name !== name);
    if (kept.length === records.length) return false;
    this.write(kept);
    return true;
  }

  /** The principal a presented token stands for, or undefined; compares hashes in constant time. */
  verify(token: string): Principal | undefined {
    const presented = Buffer.from(hashToken(token));
    let found: TokenRecord | undefined;
    for (const r of this.list()) {
      const stored = Buffer.from(r.hash);
      if (stored.length === presented.length && timingSafeEqual(stored, presented)) found = r;
    }
    return found ? { name: found.name, scopes: found.scopes } : undefined;
  }

  private write(records: TokenRecord[]): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ tokens: records }, null, 2) + '\n', { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
    this.cache = undefined;
  }
}
