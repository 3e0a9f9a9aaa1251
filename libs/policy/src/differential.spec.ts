import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compile, compileForContainer, evaluate, load, lookup, parseTable, type DecisionRequest } from './index';

const PRIVS = ['PRIV_NETINET_RAW', 'PRIV_NET_RAW', 'PRIV_VFS_CHOWN', 'PRIV_CRED_SETUID', 'PRIV_CRED_SETGID', 'PRIV_NETINET_RESERVEDPORT', 'PRIV_VFS_MKNOD_DEV', 'PRIV_LINUX_SETPCAP', 'PRIV_CRED_*', 'PRIV_NET*', 'PRIV_VFS_CH*'];
const CAPS = ['CAP_NET_RAW', 'CAP_CHOWN', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'CAP_MKNOD'];
const EXES = ['/usr/bin/ping', '/bin/*', '/usr/*/ping', '/usr/bin/[pq]ing', '*', '/bin/sh'];
const UIDS: Array<string | number> = ['0', '0-999', '1000-65535,0', 33, '33-33,101'];
const IMAGES = ['nginx:*', 'redis:7', 'docker.io/*'];
const SYSCALLS = ['socket', 'bind', 'setsockopt', 'setuid', 'capset', 'capget', 'chown', 'mknod', 'prctl'];
const EMULATABLE = ['setsockopt', 'capset', 'prctl', 'chown', 'capget', 'bind'];

const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });
const subset = <T>(xs: T[]) => fc.subarray(xs, { minLength: 1, maxLength: Math.min(3, xs.length) });

const whenArb = fc.record(
  {
    syscall: opt(fc.constantFrom(...SYSCALLS)),
    port: opt(fc.constantFrom('80,443', '0-1023', '22', 8080)),
    family: opt(subset(['AF_INET', 'AF_INET6', 'AF_PACKET'])),
    type: opt(fc.constantFrom('SOCK_RAW', 'SOCK_DGRAM')),
    level: opt(fc.constantFrom('SOL_IP', 'SOL_SOCKET')),
    option: opt(subset(['IP_RECVERR', 'SO_MARK', 'SO_PRIORITY'])),
    uid: opt(fc.constantFrom('0', '1-65535', 1000)),
    caps: opt(subset(['CAP_NET_RAW', 'CAP_CHOWN'])),
  },
  { requiredKeys: [] },
);

const ruleArb = fc
  .record(
    {
      match: opt(fc.record({ exe: opt(subset(EXES)), uid: opt(fc.constantFrom(...UIDS)), gid: opt(fc.constantFrom(0, '0-100')), image: opt(subset(IMAGES)), labels: opt(fc.constant({ tier: 'web' })) }, { requiredKeys: [] })),
      privileges: opt(subset(PRIVS)),
      capabilities: opt(subset(CAPS)),
      when: opt(whenArb),
      action: fc.constantFrom('allow', 'deny', 'emulate'),
      errno: opt(fc.constantFrom('EPERM', 'EACCES', 38)),
      ret: opt(fc.constantFrom(0, -1, 5)),
      audit: opt(fc.constantFrom('all', 'denials', 'none')),
    },
    { requiredKeys: ['action'] },
  )
  .map((r) => {
    const out: Record<string, unknown> = {};
    if (r.match) out.match = Object.fromEntries(Object.entries(r.match).filter(([, v]) => v !== undefined));
    if (r.privileges) out.privileges = r.privileges;
    if (r.capabilities) out.capabilities = r.capabilities;
    let action = r.action;
    if (r.when) {
      const w = Object.fromEntries(Object.entries(r.when).filter(([, v]) => v !== undefined));
      if (Object.keys(w).length > 0) out.when = w;
    }
    const sys = (out.when as { syscall?: string } | undefined)?.syscall;
    if (action === 'emulate' && !(sys && EMULATABLE.includes(sys))) action = 'deny';
    out.action = action;
    if (action === 'deny' && r.errno !== undefined) out.errno = r.errno;
    if (action === 'emulate' && r.ret !== undefined) out.return = r.ret;
    if (r.audit) out.audit = r.audit;
    return out;
  });

const policyArb = fc.record({
  rules: fc.array(ruleArb, { minLength: 0, maxLength: 12 }),
  action: fc.constantFrom('allow', 'deny', 'emulate'),
  audit: fc.constantFrom('all', 'denials', 'none'),
  learn: fc.constantFrom(false, false, false, false, true),
});

const argsFor: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  socket: fc.record({ family: fc.constantFrom('AF_INET', 'AF_INET6', 'AF_PACKET', 'AF_UNIX'), type: fc.constantFrom('SOCK_RAW', 'SOCK_DGRAM', 'SOCK_STREAM'), protocol: fc.constantFrom(0, 1, 58) }),
  bind: fc.record({ family: fc.constant('AF_INET'), port: fc.constantFrom(0, 22, 80, 443, 1023, 1024, 8080) }),
  setsockopt: fc.record({ level: fc.constantFrom('SOL_IP', 'SOL_SOCKET'), option: fc.constantFrom('IP_RECVERR', 'SO_MARK', 'SO_PRIORITY', 'SO_REUSEADDR') }),
  setuid: fc.record({ uid: fc.constantFrom(0, 33, 1000) }),
  capset: fc.record({ caps: fc.subarray(['CAP_NET_RAW', 'CAP_CHOWN', 'CAP_SYS_ADMIN']) }),
  capget: fc.constant({}),
  chown: fc.record({ uid: fc.constantFrom(0, 1000), gid: fc.constantFrom(0, 1000) }),
  mknod: fc.record({ mode: fc.constantFrom(8192 | 0o600, 4096 | 0o600, 24576 | 0o600) }),
  prctl: fc.record({ option_name: fc.constantFrom('PR_CAPBSET_DROP', 'PR_CAPBSET_READ', 'PR_SET_KEEPCAPS') }),
};

const subjectArb = fc.record(
  {
    exe: fc.constantFrom('/usr/bin/ping', '/bin/ping', '/bin/sh', '/usr/sbin/nginx', '/usr/bin/qing'),
    uid: fc.constantFrom(0, 33, 101, 1000, 65534),
    gid: fc.constantFrom(0, 33, 1000),
    image: fc.constantFrom('nginx:1.27', 'redis:7', 'docker.io/library/alpine:3'),
    labels: fc.constantFrom({ tier: 'web' }, { tier: 'db' }, {}),
  },
  { requiredKeys: [] },
);

const requestArb: fc.Arbitrary<DecisionRequest> = fc.oneof(
  fc.tuple(fc.constantFrom(...PRIVS.filter((p) => !p.includes("*")), "PRIV_VFS_MOUNT", "PRIV_BOGUS"), subjectArb).map(([privilege, s]) => ({ privilege, ...s }) as DecisionRequest),
  fc.constantFrom(...SYSCALLS).chain((syscall) => fc.tuple(argsFor[syscall], subjectArb).map(([args, s]) => ({ syscall, args, ...s }) as DecisionRequest)),
);

describe('compiled table (differential)', () => {
  describe('when generated policies decide generated requests', () => {
    it('lookup on the compiled table agrees with evaluate on every request (>= 10k)', { timeout: 300_000 }, () => {
      let compared = 0;
      let policies = 0;
      let byRule = 0;
      fc.assert(
        fc.property(policyArb, fc.array(requestArb, { minLength: 50, maxLength: 50 }), (p, requests) => {
          const doc = { apiVersion: 'capulator/v1', kind: 'Policy', metadata: { name: 'gen' }, defaults: { action: p.action, audit: p.audit }, learn: p.learn, rules: p.rules.map((r, i) => ({ id: `r${i}`, ...r })) };
          const r = load(stringify(doc), 'gen.yaml');
          if (!r.policy) return; // generated rules may be invalid (e.g. bad combos); those are covered by lint cases
          policies++;
          const table = compile(r.policy);
          const parsed = parseTable(table.text);
          assert.deepEqual(parsed.errors, []);
          const perContainer = new Map<string, ReturnType<typeof compileForContainer>>();
          for (const req of requests) {
            const want = evaluate(r.policy, req);
            assert.deepEqual(lookup(table, req), want, JSON.stringify({ req, doc }));
            const key = JSON.stringify([req.image, req.labels]);
            let forContainer = perContainer.get(key);
            if (!forContainer) perContainer.set(key, (forContainer = compileForContainer(r.policy, { image: req.image, labels: req.labels })));
            assert.deepEqual(lookup(forContainer, req), want, 'compileForContainer: ' + JSON.stringify({ req, doc }));
            compared++;
            if (want.ruleId !== null) byRule++;
          }
        }),
        { numRuns: 300, seed: 2026 },
      );
      assert.ok(policies >= 200, `only ${policies} generated policies loaded`);
      assert.ok(compared >= 10_000, `only ${compared} requests compared`);
      assert.ok(byRule >= compared / 5, `only ${byRule} of ${compared} decisions came from a rule: the generator is too weak`);
    });
  });
});
