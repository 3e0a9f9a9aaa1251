import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileForContainer, load } from '@capulator/policy';

/**
 * The agent's table parser and request-line parser under mutated input, built with
 * AddressSanitizer + UBSan (make -C agent asan): every input must give exit 0 or 2, never a crash.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const asan = join(repo, 'agent/build/capulator-agent-asan');

// a small deterministic PRNG (xorshift32): the corpus is the same on every run
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function mutate(text: string, r: () => number): string {
  const b = Buffer.from(text);
  const out = [...b];
  const n = 1 + Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * out.length);
    const op = Math.floor(r() * 5);
    if (op === 0) out[at] = Math.floor(r() * 256);
    else if (op === 1) out.splice(at, 1);
    else if (op === 2) out.splice(at, 0, ...Buffer.from(['%', '%0', ' ', '\n', '-', ',', '=', '~', '999999999999', '\0'][Math.floor(r() * 10)]));
    else if (op === 3) out.splice(at, Math.floor(r() * 40));
    else out.splice(at, 0, ...out.slice(at, at + Math.floor(r() * 200)));
  }
  return Buffer.from(out).toString('latin1');
}

const POLICY = readFileSync0(join(repo, 'examples/policies/web.yaml'));
function readFileSync0(p: string): string {
  return require('node:fs').readFileSync(p, 'utf8');
}

describe('capulator-agent parsers (ASan/UBSan build)', () => {
  let dir: string;
  before(() => {
    const m = spawnSync('make', ['-s', '-C', join(repo, 'agent'), 'asan'], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    dir = mkdtempSync(join(tmpdir(), 'capulator-fuzz-'));
  });

  describe('when the compiled table is mutated', () => {
    it('accepts or refuses each variant cleanly (exit 0 or 2)', () => {
      const l = load(POLICY, 'web.yaml');
      const table = compileForContainer(l.policy!, {});
      const r = rng(0xcab1e);
      let refused = 0;
      for (let i = 0; i < 300; i++) {
        const p = join(dir, `t${i}`);
        writeFileSync(p, mutate(table.text, r), 'latin1');
        const res = spawnSync(asan, ['check-table', p], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
        assert.ok(res.status === 0 || res.status === 2, `variant ${i}: exit ${res.status} ${res.signal ?? ''}\n${res.stderr.slice(0, 2000)}`);
        if (res.status === 2) refused++;
      }
      assert.ok(refused > 250, `only ${refused} of 300 mutated tables were refused`);
    });
  });

  describe('when request lines are mutated', () => {
    it('answers every line without crashing', () => {
      const l = load(POLICY, 'web.yaml');
      const table = compileForContainer(l.policy!, {});
      const tp = join(dir, 'ok.table');
      writeFileSync(tp, table.text);
      const base = 'syscall=bind family=AF_INET port=80 @exe=/usr/sbin/nginx @uid=0 uids=[0,1000] caps=[CAP_NET_RAW,CAP_CHOWN] hostname=a%20b';
      const r = rng(42);
      const lines: string[] = [];
      for (let i = 0; i < 2000; i++) lines.push(mutate(base, r).replace(/\n/g, ' '));
      const res = spawnSync(asan, ['eval', tp], { input: lines.join('\n') + '\n', encoding: 'latin1', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' }, maxBuffer: 64 << 20 });
      assert.equal(res.status, 0, res.stderr.slice(0, 2000));
      assert.equal(res.stdout.trim().split('\n').length, lines.length);
    });
  });
});
