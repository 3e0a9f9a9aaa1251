import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess, parseDecisionLine } from './agent-process';

/**
 * AgentProcess against a scripted agent (a shell script speaking protocol 2 on fd 3), so the
 * timing of lines is exact: here the `attached` line and the first decisions arrive in one write.
 */
const PAYLOAD = '{"seq":1,"key":"1:1:125:0000000000000000:0","at":"2026-11-28T06:40:01.123Z","subject":{"pid":1,"tid":1,"uid":0,"gid":0,"exe":"/x"},"arch":"x86_64","syscall":"capget","nr":125,"args":{},"privileges":[],"capability":null,"decision":"allow","ruleId":null,"answeredBy":"continue","latencyNs":1,"runId":"r","policy":{"name":"p","version":1,"hash":"sha256:00"}}';

function fakeAgent(dir: string, lines: string): string {
  const p = join(dir, 'fake-agent');
  writeFileSync(
    p,
    `#!/bin/sh
printf '%s\\n' '{"type":"ready","protocol":2,"policy":"p","version":"1","hash":"sha256:00","learn":false,"pid":1}' >&3
sleep 0.2
printf '${lines.replace(/\t/g, '\\t').replace(/\n/g, '\\n')}' >&3
`,
  );
  chmodSync(p, 0o755);
  return p;
}

describe('AgentProcess', () => {
  it('calls onAttached before the decisions that follow the attached line in the same read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capulator-agentproc-'));
    try {
      const lines =
        '{"type":"attached","pid":42,"syncWakeUp":true}\n' +
        `decision\tCapabilitiesQueried\tallow\t2026-11-28T06:40:01.123Z\t${PAYLOAD}\n` +
        `decision\tCapabilitiesQueried\t-\t2026-11-28T06:40:01.123Z\t${PAYLOAD.replace('"seq":1', '"seq":2')}\n` +
        'decision\tNotAType\tallow\t2026-11-28T06:40:01.123Z\t{}\n' +
        '{"type":"exit","handled":3,"events":3,"dropped":0,"abandoned":1,"allow":1,"deny":0,"emulate":0}\n';
      const order: string[] = [];
      const a = await AgentProcess.start({
        binary: fakeAgent(dir, lines),
        socketPath: join(dir, 's'),
        tablePath: join(dir, 't'),
        learn: false,
        run: { runId: 'r', policy: { name: 'p', version: 1, hash: 'sha256:00' } },
        onDecision: (d) => order.push(`decision ${d.payload.seq} ${d.count ?? '-'}`),
      });
      a.onAttached(() => order.push(`attached ${a.attached!.pid}`));
      await a.exited;
      assert.deepEqual(order, ['attached 42', 'decision 1 allow', 'decision 2 -']);
      assert.equal(a.received, 2);
      assert.equal(a.malformed, 1);
      assert.equal(a.lostEvents(), 1, 'numbered 3, received 2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Framing only: the payload must be one object on the line; whether it is valid JSON is the
  // agent's writer's job (tested with hostile names in runner.int-spec), not re-checked per event.
  it('parses decision lines strictly', () => {
    const ok = parseDecisionLine(`decision\tPrivilegeChecked\tdeny\t2026-11-28T06:40:01.123Z\t${PAYLOAD}`);
    assert.equal(ok?.type, 'PrivilegeChecked');
    assert.equal(ok?.count, 'deny');
    assert.equal(ok?.payloadText, PAYLOAD);
    assert.equal(ok?.payload.syscall, 'capget');
    for (const bad of [
      `decision\tPrivilegeChecked\tmaybe\t2026-11-28T06:40:01.123Z\t${PAYLOAD}`,
      `decision\tPrivilegeChecked\tallow\tyesterday\t${PAYLOAD}`,
      `decision\tPrivilegeChecked\tallow\t2026-11-28T06:40:01.123Z\t[1]`,
      `decision\tPrivilegeChecked\tallow\t2026-11-28T06:40:01.123Z\t"${PAYLOAD}"`,
      `decisions\tPrivilegeChecked\tallow\t2026-11-28T06:40:01.123Z\t${PAYLOAD}`,
      'decision\tPrivilegeChecked\tallow',
    ]) {
      assert.equal(parseDecisionLine(bad), undefined, bad.slice(0, 60));
    }
  });
});
