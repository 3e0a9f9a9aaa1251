import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@capulator/events';

const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');
const OTHER = 12345;

/**
 * A home this user may not write (another uid's, as when a non-root user points at root's home):
 * every command says which file and why in one line with its documented exit status, never a
 * stack trace. Run as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so that file modes
 * bind it as they bind any other user (and the repository, root's, stays readable).
 */
function asUserWithoutOverride(home: string, args: string[]) {
  const r = spawnSync('setpriv', ['--bounding-set', '-dac_override,-dac_read_search', '--inh-caps', '-all', bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CAPULATOR_HOME: home },
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe("commands on another user's home", () => {
  let work: string;
  let rootfs: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'capulator-foreign-'));
    chmodSync(work, 0o755);
    rootfs = join(work, 'rootfs');
    mkdirSync(rootfs);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const oneLine = (stderr: string, what: RegExp) => {
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, what);
  };

  describe('when the home holds an event log this user may read but not write', () => {
    let home: string;
    before(async () => {
      home = join(work, 'readable');
      mkdirSync(home, { mode: 0o755 });
      const store = SqliteEventStore.open(join(home, 'events.db'));
      await store.close();
      for (const f of ['', ...readdirSync(home)]) chownSync(join(home, f), OTHER, OTHER);
    });
    for (const [args, code, what] of [
      [['run', 'ROOTFS', '--', '/x'], 125, /^capulator: the event store cannot be used \(cannot open .*events\.db: uid 0 may not write in /],
      [['serve', '--http', 'off', '--grpc', 'off'], 74, /^capulator: the event store cannot be used \(cannot open .*events\.db: uid 0 may not write in /],
      [['audit', 'log'], 1, /^capulator: cannot open .*events\.db: uid 0 may not write in /],
      [['ps'], 1, /^capulator: cannot open .*events\.db: uid 0 may not write in .*shared-memory file/],
    ] as const) {
      it(`\`${args.join(' ')}\` exits ${code} with one line naming the file and the reason`, () => {
        const r = asUserWithoutOverride(home, args.map((a) => (a === 'ROOTFS' ? rootfs : a)));
        assert.equal(r.status, code, r.stderr);
        oneLine(r.stderr, what);
      });
    }
  });

  describe('when the home is a directory this user may not enter', () => {
    it('`run`, `serve` and `ps` say so in one line (ps lists no runs of a log it cannot see)', () => {
      const home = join(work, 'closed');
      mkdirSync(home, { mode: 0o700 });
      chownSync(home, OTHER, OTHER);
      for (const args of [['run', rootfs, '--', '/x'], ['serve', '--http', 'off', '--grpc', 'off'], ['ps']]) {
        const r = asUserWithoutOverride(home, args);
        assert.notEqual(r.status, 0);
        assert.notEqual(r.status, 70, `internal error: ${r.stderr}`);
        oneLine(r.stderr, /^capulator: .*(uid 0|permission denied|EACCES)/i);
      }
    });
  });
});
