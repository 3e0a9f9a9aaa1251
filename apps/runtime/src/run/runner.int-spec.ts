import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capabilitySets, compileForContainer, load, type Policy } from '@capulator/policy';
import { fixtureImages } from '../../../../test/fixtures/images';
import type { DecisionPayload } from '@capulator/events';
import { readCountFile, type AgentDecision } from './agent-process';
import { Runner, type RunResult } from './runner';

/** Real runc, real agent, the busybox-ping fixture rootfs (test/fixtures/images). */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const RUNC_ROOT = '/run/capulator/runc';

const PING = readFileSync(join(repo, 'examples/policies/ping.yaml'), 'utf8');
// examples/policies/web.yaml audits denials only; record everything here
const WEB = readFileSync(join(repo, 'examples/policies/web.yaml'), 'utf8').replace('audit: denials', 'audit: all');
const DENY_ALL = `
apiVersion: capulator/v1
kind: Policy
metadata: { name: nothing }
defaults: { action: deny, audit: all }
rules: []
`;
const policy = (rules: string, name = 't') => `
apiVersion: capulator/v1
kind: Policy
metadata: { name: ${name} }
defaults: { action: deny, audit: all }
rules:
${rules}`;

function parse(text: string): Policy {
  const l = load(text, 'test.yaml');
  assert.deepEqual(l.errors, [], JSON.stringify(l.errors));
  return l.policy!;
}

let home: string;
let rootfs: string;
let helperDir: string;
let runner: Runner;
let seq = 0;

interface Ran {
  result: RunResult;
  events: DecisionPayload[];
  sets: ReturnType<typeof capabilitySets>['sets'];
}

async function run(
  policyText: string,
  command: string[],
  opts: { learn?: boolean; onStarted?: (i: { containerId: string; agentPid: number; pid: number }) => void; id?: string } = {},
): Promise<Ran> {
  const p = parse(policyText);
  const pol = opts.learn ? { ...p, learn: true } : p;
  const table = compileForContainer(pol, {});
  const caps = capabilitySets(pol, { uid: 0, gid: 0 });
  const sets = caps.sets;
  const events: DecisionPayload[] = [];
  const result = await runner.run({
    id: opts.id ?? `t${process.pid}-${++seq}`,
    image: { ref: 'fixture', layers: [rootfs], config: {} },
    command,
    mounts: [{ source: helperDir, destination: '/t', readonly: true }],
    table,
    capabilities: sets,
    kernelSets: caps,
    learn: opts.learn,
    stdio: 'pipe',
    onDecision: (d) => events.push(d.payload),
    onStarted: opts.onStarted,
  });
  return { result, events, sets };
}

/** The sets and kernel-side grants a run of policy `p` starts with (as `capulator run` computes them). */
function startOf(p: Policy, uid = 0) {
  const c = capabilitySets(p, { uid, gid: uid });
  return { capabilities: c.sets, kernelSets: c };
}

const of = (events: DecisionPayload[], syscall: string) => events.filter((e) => e.syscall === syscall);

describe('Runner (runc + capulator-agent)', () => {
  before(() => {
    rootfs = fixtureImages().rootfs;
    home = mkdtempSync(join(tmpdir(), 'capulator-run-'));
    helperDir = join(home, 'helper');
    mkdirSync(helperDir);
    const cc = spawnSync('gcc', ['-O2', '-static', '-o', join(helperDir, 'caphelper'), join(repo, 'test/fixtures/run/caphelper.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    runner = new Runner({ home, repo });
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  describe('when the policy allows PRIV_NETINET_RAW for ping', () => {
    it('ping works and the raw socket, capget and capset are recorded with the rule id', async () => {
      const { result, events } = await run(PING, ['/bin/ping', '-c1', '127.0.0.1']);
      assert.equal(result.status, 'exited', JSON.stringify(result));
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout!, /1 packets transmitted, 1 received/);
      const raw = of(events, 'socket').find((e) => e.args.type === 'SOCK_RAW' && e.args.family === 'AF_INET');
      assert.ok(raw, 'no raw socket event');
      assert.equal(raw.decision, 'allow');
      assert.equal(raw.ruleId, 'ping-raw');
      assert.deepEqual(raw.privileges, ['PRIV_NETINET_RAW']);
      assert.equal(raw.answeredBy, 'continue');
      assert.equal(raw.subject.exe, '/bin/ping');
      assert.ok(of(events, 'capget').length > 0, 'no capget event');
      assert.ok(of(events, 'capset').length > 0, 'no capset event');
      const recverr = of(events, 'setsockopt').find((e) => e.args.option === 'IP_RECVERR');
      assert.equal(recverr?.decision, 'emulate');
      assert.equal(recverr?.answeredBy, 'emulated');
      assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1), 'seq must be 1, 2, 3, …');
      assert.equal(result.lostEvents, 0);
    });
  });

  describe('the decision records the agent writes', () => {
    it('carry the event type, run id, policy version and time, and count as their outcome', async () => {
      const p = parse(PING);
      const table = compileForContainer(p, {});
      const got: AgentDecision[] = [];
      const before = Date.now();
      const id = `rec${process.pid}`;
      const result = await runner.run({
        id,
        image: { ref: 'fixture', layers: [rootfs], config: {} },
        command: ['/bin/ping', '-c1', '127.0.0.1'],
        table,
        policy: { name: 'ping-test', version: 7, hash: table.hash },
        ...startOf(p),
        stdio: 'pipe',
        onDecision: (d) => got.push(d),
      });
      assert.equal(result.exitCode, 0, result.stderr);
      const types = (s: string) => got.filter((d) => d.payload.syscall === s).map((d) => d.type);
      assert.ok(types('capget').length > 0 && types('capget').every((t) => t === 'CapabilitiesQueried'));
      assert.ok(types('capset').length > 0 && types('capset').every((t) => t === 'CapabilitiesChangeRequested'));
      assert.deepEqual([...new Set(types('socket'))], ['PrivilegeChecked']);
      for (const d of got) {
        const payload = JSON.parse(d.payloadText) as DecisionPayload;
        assert.equal(payload.runId, id);
        assert.deepEqual(payload.policy, { name: 'ping-test', version: 7, hash: table.hash });
        assert.equal(payload.at, d.at);
        assert.equal(new Date(d.at).toISOString(), d.at);
        assert.ok(Date.parse(d.at) >= before - 1000 && Date.parse(d.at) <= Date.now() + 1000, d.at);
        assert.equal(d.count, payload.decision);
      }
      const allowed = got.filter((d) => d.count === 'allow').length;
      assert.equal(result.counts.allow, allowed);
    });
  });

  describe('when the program has a hostile name', () => {
    it('the decision payloads are still valid JSON, with every byte outside printable ASCII escaped', async () => {
      const name = 'we"ird\\ \n\t\u00e9\u0001.bin';
      const dir = mkdtempSync(join(home, 'names-'));
      copyFileSync(join(helperDir, 'caphelper'), join(dir, name));
      chmodSync(join(dir, name), 0o755);
      const p = parse(DENY_ALL);
      const table = compileForContainer(p, {});
      const got: AgentDecision[] = [];
      const result = await runner.run({
        id: `name${process.pid}`,
        image: { ref: 'fixture', layers: [rootfs], config: {} },
        command: [`/n/${name}`, 'capget', '3'],
        mounts: [{ source: dir, destination: '/n', readonly: true }],
        table,
        capabilities: capabilitySets(p, { uid: 0, gid: 0 }).sets,
        stdio: 'pipe',
        onDecision: (d) => got.push(d),
      });
      assert.equal(result.exitCode, 0, result.stderr);
      const capgets = got.filter((d) => d.payload.syscall === 'capget');
      assert.equal(capgets.length, 3);
      // UTF-8 é is two bytes, each written as \u00XX (the agent escapes bytes, not characters)
      const expected = '/n/' + Buffer.from(name, 'utf8').toString('latin1');
      for (const d of capgets) {
        assert.equal((JSON.parse(d.payloadText) as DecisionPayload).subject.exe, expected);
        assert.ok(!/[\u0000-\u001f\u007f-\uffff]/.test(d.payloadText), 'raw control or non-ASCII byte in the line');
      }
    });
  });

  describe('when the policy does not allow it', () => {
    it("ping fails with its own EPERM error and the denial is recorded", async () => {
      const { result, events } = await run(DENY_ALL, ['/bin/ping', '-c1', '127.0.0.1']);
      assert.equal(result.status, 'exited');
      assert.notEqual(result.exitCode, 0);
      assert.match(result.stderr!, /Operation not permitted/);
      const raw = of(events, 'socket').find((e) => e.args.type === 'SOCK_RAW');
      assert.equal(raw?.decision, 'deny');
      assert.equal(raw?.ruleId, null);
      assert.equal(raw?.errno, 1);
      assert.equal(raw?.answeredBy, 'errno');
    });
  });

  describe('when capsh --print runs inside', () => {
    it('shows exactly the capability sets computed from the policy', async () => {
      const text = policy(`  - id: some\n    capabilities: [CAP_NET_RAW, CAP_CHOWN, CAP_KILL]\n    action: allow\n`);
      const { result, sets } = await run(text, ['/sbin/capsh', '--print']);
      assert.equal(result.exitCode, 0, result.stderr);
      const names = (l: string[]) => l.map((c) => c.toLowerCase()).sort().join(',');
      const bounding = /^Bounding set =(.*)$/m.exec(result.stdout!)?.[1] ?? '';
      assert.equal(bounding.split(',').sort().join(','), names(sets.bounding));
      assert.deepEqual(names(sets.bounding), 'cap_chown,cap_kill,cap_net_raw');
      const current = /^Current: (.*)$/m.exec(result.stdout!)?.[1] ?? '';
      assert.equal(current, `${names(sets.effective)}=ep`);
    });
  });

  describe('when a rule emulates sethostname', () => {
    it('the call succeeds and the hostname is unchanged', async () => {
      const text = policy(`  - id: hostname-no-op\n    when: { syscall: sethostname }\n    action: emulate\n    return: 0\n`);
      const id = `emu${process.pid}`;
      const { result, events } = await run(text, ['/t/caphelper', 'sethostname', 'changed'], { id });
      assert.equal(result.exitCode, 0);
      assert.equal(result.stdout!.trim(), `sethostname=0 errno=0 hostname=${id}`);
      const e = of(events, 'sethostname')[0];
      assert.equal(e.decision, 'emulate');
      assert.equal(e.ruleId, 'hostname-no-op');
      assert.equal(e.args.hostname, 'changed');
    });
  });

  describe('when a rule denies with a named errno', () => {
    it('the call fails with that errno', async () => {
      const text = policy(`  - id: no-chown\n    privileges: [PRIV_VFS_CHOWN]\n    action: deny\n    errno: EACCES\n  - id: caps\n    capabilities: [CAP_CHOWN]\n    action: allow\n`);
      const { result, events } = await run(text, ['/t/caphelper', 'chown', '/tmp', '1000', '1000']);
      assert.equal(result.stdout!.trim(), 'chown: errno=13 (Permission denied)');
      const e = of(events, 'chown')[0];
      assert.equal(e.ruleId, 'no-chown');
      assert.equal(e.errno, 13);
    });
  });

  describe('when an allow rests on a path the tracee could rewrite', () => {
    it('the agent cannot perform it in the container and refuses with EPERM (PROTOCOL.md)', async () => {
      const text = policy(`  - id: chown-tmp\n    privileges: [PRIV_VFS_CHOWN]\n    when: { path: "/tmp/*" }\n    action: allow\n`);
      const { result, events } = await run(text, ['/t/caphelper', 'chown', '/tmp/x', '1000', '1000']);
      assert.equal(result.stdout!.trim(), 'chown: errno=1 (Operation not permitted)');
      const e = of(events, 'chown')[0];
      assert.equal(e.args.path, '/tmp/x');
      assert.equal(e.ruleId, 'chown-tmp');
      assert.equal(e.decision, 'allow');
      assert.equal(e.answeredBy, 'errno');
    });
  });

  describe('when running in learn mode', () => {
    it('allows and records everything', async () => {
      const { result, events } = await run(DENY_ALL, ['/bin/ping', '-c1', '127.0.0.1'], { learn: true });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.ok(events.length > 5);
      assert.ok(events.every((e) => e.learn === true && e.decision === 'allow'));
      assert.ok(of(events, 'socket').some((e) => e.args.type === 'SOCK_RAW'));
    });
  });

  describe('when a web policy allows port 80', () => {
    it('the agent performs bind(80) itself with the checked address', async () => {
      const { result, events } = await run(WEB, ['/t/caphelper', 'bind', '80']);
      assert.equal(result.stdout!.trim(), 'bound 80');
      const e = of(events, 'bind')[0];
      assert.equal(e.answeredBy, 'performed');
      assert.equal(e.ruleId, 'web-ports');
      assert.equal(e.args.port, 80);
    });
    it('another reserved port is refused with the rule errno', async () => {
      const { result, events } = await run(WEB, ['/t/caphelper', 'bind', '22']);
      assert.equal(result.stdout!.trim(), 'bind: errno=13 (Permission denied)');
      assert.equal(of(events, 'bind')[0].ruleId, 'no-other-ports');
    });
    it('an unprivileged port is bound by the agent too (the port is tracee memory)', async () => {
      const { result, events } = await run(WEB, ['/t/caphelper', 'bind', '8080']);
      assert.equal(result.stdout!.trim(), 'bound 8080');
      assert.equal(of(events, 'bind')[0].answeredBy, 'performed');
    });
    it('without such a rule bind(80) is denied', async () => {
      const { result } = await run(DENY_ALL, ['/t/caphelper', 'bind', '80']);
      assert.equal(result.stdout!.trim(), 'bind: errno=1 (Operation not permitted)');
    });
  });

  describe('when a socket is not raw', () => {
    it('is not trapped: the seccomp argument filter lets AF_INET SOCK_STREAM through with no event', async () => {
      const { result, events } = await run(DENY_ALL, ['/t/caphelper', 'stream']);
      assert.equal(result.stdout!.trim(), 'stream ok');
      assert.equal(of(events, 'socket').length, 0);
    });
  });

  describe('when the agent is killed mid-run', () => {
    it('the run fails and the container is gone', async () => {
      let cid = '';
      const started = Date.now();
      const { result } = await run(DENY_ALL, ['/t/caphelper', 'sleep', '30'], {
        onStarted: (i) => {
          cid = i.containerId;
          process.kill(i.agentPid, 'SIGKILL');
        },
      });
      assert.equal(result.status, 'failed');
      assert.equal(result.failure?.stage, 'agent');
      assert.ok(Date.now() - started < 20000, 'the container was not killed');
      const st = spawnSync('runc', ['--root', RUNC_ROOT, 'state', cid], { encoding: 'utf8' });
      assert.notEqual(st.status, 0, 'the container still exists');
    });
  });

  describe('when the runtime stops reading decisions for a while', () => {
    it('the container never waits and nothing is lost: the spool holds what the runtime has not read yet', async () => {
      // a small agent buffer, and a runtime that blocks its event loop on the first decision
      const small = new Runner({ home, repo, agentEventsBuffer: 128 * 1024 });
      const p = parse(DENY_ALL);
      const table = compileForContainer(p, {});
      const got: DecisionPayload[] = [];
      const t0 = Date.now();
      let exitedWhileBlocked = false;
      const result = await small.run({
        id: `gap${process.pid}`,
        image: { ref: 'fixture', layers: [rootfs], config: {} },
        command: ['/t/caphelper', 'capget', '20000'],
        mounts: [{ source: helperDir, destination: '/t', readonly: true }],
        table,
        capabilities: capabilitySets(p, { uid: 0, gid: 0 }).sets,
        stdio: 'pipe',
        onDecision: (d) => {
          if (got.length === 0) {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);
            // the container went on while this process did not read
            const count = readCountFile(join(home, 'runs', `gap${process.pid}`, 'decisions.count'));
            exitedWhileBlocked = count !== undefined && count.decided > 1000;
          }
          got.push(d.payload);
        },
      });
      assert.equal(result.status, 'exited', JSON.stringify(result));
      assert.match(result.stdout!, /capget 20000\/20000/);
      assert.ok(exitedWhileBlocked, 'the agent kept deciding while the runtime was blocked');
      assert.equal(result.lostEvents, 0);
      assert.equal(got.length, result.events);
      for (let i = 0; i < got.length; i++) assert.equal(got[i].seq, i + 1);
      assert.ok(Date.now() - t0 < 60000);
    });
  });

  describe('when two runs happen at once', () => {
    it('each has its own agent and events', async () => {
      const [a, b] = await Promise.all([run(PING, ['/bin/ping', '-c1', '127.0.0.1']), run(DENY_ALL, ['/bin/ping', '-c1', '127.0.0.1'])]);
      assert.equal(a.result.exitCode, 0);
      assert.notEqual(b.result.exitCode, 0);
      assert.equal(of(a.events, 'socket').find((e) => e.args.type === 'SOCK_RAW')?.decision, 'allow');
      assert.equal(of(b.events, 'socket').find((e) => e.args.type === 'SOCK_RAW')?.decision, 'deny');
    });
  });

  describe('when the program exits or is killed', () => {
    it('passes the exit code through', async () => {
      const { result } = await run(DENY_ALL, ['/bin/sh', '-c', 'exit 7']);
      assert.equal(result.status, 'exited');
      assert.equal(result.exitCode, 7);
    });
    it('reports a signal as 128+N', async () => {
      const { result } = await run(DENY_ALL, ['/t/caphelper', 'sleep', '30'], {
        onStarted: (i) => {
          spawnSync('runc', ['--root', RUNC_ROOT, 'kill', i.containerId, 'KILL']);
        },
      });
      assert.equal(result.exitCode, 137);
      assert.equal(result.signal, 'SIGKILL');
    });
  });

  describe('when the entrypoint cannot run here', () => {
    it('refuses a missing command with one line', async () => {
      await assert.rejects(run(DENY_ALL, ['/bin/nope']), /\/bin\/nope: not found in the image/);
    });
  });
});
