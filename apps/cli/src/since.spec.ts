import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CliError } from './cli-error';
import { parseSince } from './since';

describe('parseSince (--since of audit log, audit replay and logs)', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  it('takes a duration back from now in s, m, h or d', () => {
    assert.equal(parseSince('30s', now), now - 30_000);
    assert.equal(parseSince('10m', now), now - 600_000);
    assert.equal(parseSince('2h', now), now - 7_200_000);
    assert.equal(parseSince('7d', now), now - 7 * 86_400_000);
  });
  it('takes an ISO time, with or without a zone or time of day', () => {
    assert.equal(parseSince('2026-12-04T10:00:00Z', now), Date.parse('2026-12-04T10:00:00Z'));
    assert.equal(parseSince('2026-12-04T10:00:00+02:00', now), Date.parse('2026-12-04T08:00:00Z'));
    assert.equal(parseSince('2026-12-04', now), Date.parse('2026-12-04'));
  });
  it('refuses anything else with the value named', () => {
    for (const v of ['yesterday', '10', '5w', '-1h', '2026-13-45T99:00:00Z', '1e3s', '']) {
      assert.throws(() => parseSince(v, now), (e: unknown) => e instanceof CliError && e.message.startsWith(`--since ${v}: want a time`), v);
    }
  });
});
