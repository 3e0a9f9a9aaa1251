import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEvent } from '@capulator/events';
import { runEvents } from '../../../../test/fixtures/events';
import { fixtureImages } from '../../../../test/fixtures/images';
import { ImageStore } from '../../../runtime/src/images';

/** `capulator run` end to end: real runc, the agent, the SQLite event store, JSON lines. */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');

let home: string;
let rootfs: string;
const cap = (args: string[]) => spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });

const stream = (id: string): Promise<StoredEvent[]> => runEvents(home, id);

describe('capulator run', () => {
  before(() => {
    rootfs = fixtureImages().rootfs;
    home = mkdtempSync(join(tmpdir(), 'capulator-cli-run-'));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  describe('when ping runs under the ping policy', () => {
    it('passes output and exit code through and records the run in order', async () => {
      const ev = join(home, 'ping.jsonl');
      const r = cap(['run', '--id', 'ping1', '--policy', join(repo, 'examples/policies/ping.yaml'), '--events-json', ev, rootfs, '--', '/bin/ping', '-c1', '127.0.0.1']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /1 received/);
      const lines = readFileSync(ev, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const raw = lines.find((l) => l.syscall === 'socket' && l.args.type === 'SOCK_RAW');
      assert.equal(raw.type, 'PrivilegeChecked');
      assert.equal(raw.ruleId, 'ping-raw');
      assert.equal(raw.runId, 'ping1');
      assert.equal(raw.policy.name, 'ping');
      assert.ok(lines.some((l) => l.type === 'CapabilitiesQueried'));
      const events = await stream('ping1');
      const types = events.map((e) => e.type);
      assert.equal(types[0], 'RunRequested');
      assert.equal(types[1], 'RunStarted');
      assert.equal(types[types.length - 1], 'RunExited');
      // the agent's decisions (kernel-record rows carry the seq of the agent decision they join, or 0)
      const decisions = events.filter((e) => !e.type.startsWith('Run') && (e.payload as { source?: string }).source !== 'kernel').map((e) => (e.payload as { seq: number }).seq);
      assert.deepEqual(decisions, decisions.map((_, i) => i + 1));
      const started = events[1].payload as { capabilities: { effective: string[]; bounding: string[] }; provenance: Record<string, string[]> };
      assert.deepEqual([started.capabilities.bounding, started.capabilities.effective], [['CAP_NET_RAW'], []]); // ping's own file capability, not the container's
      assert.deepEqual(started.provenance.CAP_NET_RAW, ['ping-raw']);
      const exited = events[events.length - 1].payload as { exitCode: number; counts: { allow: number }; lostEvents: number };
      assert.equal(exited.exitCode, 0);
      assert.equal(exited.lostEvents, 0);
      assert.equal(exited.counts.allow, lines.filter((l) => l.decision === 'allow' && l.source !== 'kernel').length);
    });
  });

  describe('when a run id is used again', () => {
    it('is refused with exit 2 before anything starts, and the first run is untouched', async () => {
      const first = cap(['run', '--id', 'dup1', rootfs, '--', '/bin/true']);
      assert.equal(first.status, 0, first.stderr);
      const before = await stream('dup1');
      const ev = join(home, 'dup.jsonl');
      const again = cap(['run', '--id', 'dup1', '--events-json', ev, rootfs, '--', '/bin/sh', '-c', 'echo ran']);
      assert.equal(again.status, 2);
      assert.equal(again.stdout, '');
      assert.equal(again.stderr, 'capulator: run id dup1 already exists (exited); choose another --id\n');
      assert.throws(() => readFileSync(ev), /ENOENT/);
      assert.deepEqual((await stream('dup1')).map((e) => e.hash), before.map((e) => e.hash));
    });
  });

  describe('without a daemon, after npm run build', () => {
    it('loads the CLI as its bundle (21-odd files, not the ~190 modules), and the run is the same as from the modules', () => {
      // a preload that lists the files this Node process loaded, at its exit
      const listed = join(home, 'loaded.txt');
      const preload = join(home, 'list-loaded.js');
      writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(listed)}, Object.keys(require.cache).join('\\n')));\n`);
      const inputs = join(repo, 'dist/apps/cli/src/main.bundle.js.inputs');
      assert.ok(existsSync(inputs), 'no CLI bundle: npm run build makes it (scripts/bundle-cli.mjs)');
      const script = ['/bin/sh', '-c', 'echo out; echo err >&2; exit 3'];
      const withBundle = spawnSync(process.execPath, ['-r', preload, '--', bin, 'run', '--no-store', rootfs, '--', ...script], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home } });
      const loaded = readFileSync(listed, 'utf8').split('\n');
      assert.ok(loaded.some((f) => f.endsWith('/dist/apps/cli/src/main.bundle.js')), `the bundle was not loaded (stale? npm run build): ${loaded.length} files`);
      assert.ok(!loaded.some((f) => f.endsWith('/dist/apps/cli/src/commands/run.command.js')), 'a module the bundle holds was loaded too');
      const modules = spawnSync(process.execPath, ['--', bin, 'run', '--no-store', rootfs, '--', ...script], { encoding: 'utf8', env: { ...process.env, CAPULATOR_HOME: home, CAPULATOR_BUNDLE: '0' } });
      assert.deepEqual([withBundle.status, withBundle.stdout, withBundle.stderr], [3, 'out\n', 'err\n']);
      assert.deepEqual([modules.status, modules.stdout, modules.stderr], [withBundle.status, withBundle.stdout, withBundle.stderr]);
    });
  });

  describe('when a run id is not one', () => {
    it('is refused with one line and exit 2 before anything is recorded or made, detached or not', async () => {
      for (const args of [['--id', ''], ['--id', '../escape'], ['-d', '--id', '../../escape']]) {
        const r = cap(['run', ...args, rootfs, '--', '/bin/true']);
        assert.equal(r.status, 2, r.stderr);
        assert.equal(r.stderr, `capulator: run id "${args[args.length - 1]}" must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$\n`);
      }
      assert.deepEqual(await stream(''), [], 'no run recorded under the empty id');
      assert.equal(existsSync(join(home, '..', 'escape')), false, 'no directory made outside the home');
      const empty = cap(['run', '', '--', '/bin/true']);
      assert.equal(empty.status, 2);
      assert.match(empty.stderr, /^capulator: an image .* is required, not ""\n$/);
    });
  });

  describe("when runc already has a container of the run's name (from another home, or one since removed)", () => {
    it('is refused with one line naming it, and the container is left alone', () => {
      const id = `taken${process.pid}`;
      const other = join('/run/capulator/runc', `capulator-${id}`);
      mkdirSync(other, { recursive: true });
      writeFileSync(join(other, 'state.json'), '{}');
      try {
        const r = cap(['run', '--id', id, rootfs, '--', '/bin/sh', '-c', 'echo ran']);
        assert.equal(r.status, 2, r.stderr);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr.split('\n').length, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`a container capulator-${id} already exists`));
        assert.equal(readFileSync(join(other, 'state.json'), 'utf8'), '{}');
        // run -d says the same, and does not take the other container for its own
        const d = cap(['run', '-d', '--id', `${id}`, rootfs, '--', 'sleep', '5']);
        assert.notEqual(d.status, 0);
        assert.match(d.stderr, /already exists/);
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    });
  });

  describe('when the agent cannot start', () => {
    it('the run fails with its one line and the command ends (the kernel record it started is ended too: it kept the CLI waiting)', () => {
      const r = spawnSync(bin, ['run', '--id', `noagent${process.pid}`, rootfs, '--', '/bin/true'], {
        encoding: 'utf8',
        env: { ...process.env, CAPULATOR_HOME: home, CAPULATOR_AGENT: '/bin/false' },
        timeout: 30_000,
      });
      assert.notEqual(r.status, null, 'capulator run ended by itself');
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /^capulator: the agent exited before it was ready/m);
    });
  });

  describe('when the program exits non-zero', () => {
    it('capulator exits with the same code', () => {
      const r = cap(['run', '--no-store', rootfs, '--', '/bin/sh', '-c', 'echo out; echo err >&2; exit 7']);
      assert.equal(r.status, 7);
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
    });
  });

  describe('when the input is bad', () => {
    it('a missing command is one line and exit 2', () => {
      const r = cap(['run', '--no-store', rootfs, '--', '/bin/nope']);
      assert.equal(r.status, 2);
      assert.equal(r.stderr, 'capulator: /bin/nope: not found in the image\n');
    });
    it('a bad mount is refused', () => {
      const r = cap(['run', '--no-store', '--mount', 'nocolon', rootfs, '--', '/bin/true']);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /--mount nocolon: want SRC:DST\[:ro\]/);
    });
    it("docker's privilege flags say where privilege comes from here, before anything is made", () => {
      for (const flags of [['--cap-add', 'NET_ADMIN'], ['--cap-drop', 'ALL'], ['--privileged'], ['--security-opt', 'seccomp=unconfined']]) {
        const r = cap(['run', '--id', `priv${process.pid}`, ...flags, rootfs, '--', '/bin/true']);
        assert.equal(r.status, 2, flags.join(' '));
        assert.match(r.stderr, new RegExp(`^capulator: ${flags[0]}: [^\n]*policy[^\n]*\n$`));
      }
      assert.equal(existsSync(join(home, 'runs', `priv${process.pid}`)), false);
      assert.doesNotMatch(cap(['run', '--help']).stdout, /cap-add|privileged/);
      // docker's -m is --memory
      const m = cap(['run', '--no-store', '-m', '5x', rootfs, '--', '/bin/true']);
      assert.deepEqual([m.status, m.stderr], [2, 'capulator: --memory 5x: want a size such as 256m or 1g\n']);
    });
  });

  describe('when the command follows the image without --', () => {
    it("every word after the image is the program's, its options too (as docker's), and a -- there is ours", () => {
      const r = cap(['run', '--no-store', rootfs, 'sh', '-c', 'echo "$0" "$1"', '--id', '-d']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '--id -d\n');
      assert.equal(cap(['run', '--no-store', rootfs, '--', 'echo', '-n', 'x']).stdout, 'x');
      assert.equal(cap(['run', '--no-store', rootfs, 'echo', '--', 'y']).stdout, '-- y\n');
    });
  });

  describe('when --mount and --env are given', () => {
    it('the container sees them', () => {
      const r = cap(['run', '--no-store', '--mount', `${join(repo, 'agent')}:/mnt/agent:ro`, '--env', 'GREETING=hi', rootfs, '--', '/bin/sh', '-c', 'echo $GREETING; test -f /mnt/agent/PROTOCOL.md && echo mounted; touch /mnt/agent/x 2>/dev/null || echo readonly']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'hi\nmounted\nreadonly\n');
    });

    it("-v/--volume takes docker's SRC:DST[:ro] the same way, and refuses a named volume with one line", () => {
      const r = cap(['run', '--no-store', '-v', `${join(repo, 'agent')}:/mnt/agent:ro`, rootfs, '--', '/bin/sh', '-c', 'test -f /mnt/agent/PROTOCOL.md && echo mounted; touch /mnt/agent/x 2>/dev/null || echo readonly']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'mounted\nreadonly\n');
      const named = cap(['run', '--no-store', '--volume', 'data:/data', rootfs, '--', '/bin/true']);
      assert.equal(named.status, 2);
      assert.equal(named.stderr, 'capulator: --volume data:/data: data is not a path (named volumes are not supported: give a host directory, e.g. ./data)\n');
    });

    it("--mount takes docker's type=bind,source=,target=[,readonly] too, and says why not for its other types", () => {
      const agent = join(repo, 'agent');
      const check = 'test -f /mnt/agent/PROTOCOL.md && echo mounted; touch /mnt/agent/x 2>/dev/null && rm /mnt/agent/x && echo writable || echo readonly';
      for (const [spec, want] of [[`type=bind,source=${agent},target=/mnt/agent,readonly`, 'readonly'], [`type=bind,src=${agent},dst=/mnt/agent`, 'writable']]) {
        const r = cap(['run', '--no-store', '--mount', spec, rootfs, '--', '/bin/sh', '-c', check]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, `mounted\n${want}\n`);
      }
      for (const [spec, why] of [
        ['type=volume,source=data,target=/data', 'only type=bind (a host path) is supported: type=bind,source=HOST-PATH,target=PATH'],
        ['type=tmpfs,target=/t', 'for a tmpfs, --tmpfs PATH[:OPTIONS]'],
        [`type=bind,source=${agent}`, 'want type=bind,source=SRC,target=DST[,readonly]'],
        [`type=bind,source=${agent},target=/a,bind-propagation=rslave`, 'bind-propagation is not supported (type, source, target, readonly)'],
        ['type=bind,source=/no/such,target=/a', '/no/such does not exist'],
      ]) {
        const r = cap(['run', '--no-store', '--mount', spec, rootfs, '--', '/bin/true']);
        assert.deepEqual([r.status, r.stderr], [2, `capulator: --mount ${spec}: ${why}\n`]);
      }
    });
  });

  describe('when IMAGE is a reference in the image store', () => {
    before(async () => {
      const store = new ImageStore(join(home, 'images'));
      await store.importArchive(fixtureImages().busyboxPing.dockerArchive, {});
      await store.importArchive(fixtureImages().arm64.dockerArchive, {});
      await store.importArchive(fixtureImages().entrypoint.dockerArchive, {});
    });
    it('runs it from its unpacked layers', () => {
      const r = cap(['run', '--no-store', '--policy', join(repo, 'examples/policies/ping.yaml'), 'capulator-test/busybox-ping:latest', '--', 'ping', '-c1', '127.0.0.1']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /1 received/);
    });
    it("makes the program's argv as docker run does: Entrypoint, then the command given or the Cmd; --entrypoint drops the Cmd", async () => {
      // the image: Entrypoint [/bin/echo, entrypoint:], Cmd [default, cmd]
      const ep = 'capulator-test/entrypoint:latest';
      const out = (args: string[]) => {
        const r = cap(['run', '--no-store', ...args]);
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
      };
      assert.equal(out([ep]), 'entrypoint: default cmd\n');
      assert.equal(out([ep, '--', 'given', 'args']), 'entrypoint: given args\n');
      assert.equal(out(['--entrypoint', '/bin/echo', ep]), '\n');
      assert.equal(out(['--entrypoint', '/bin/echo', ep, '--', 'only', 'this']), 'only this\n');
      assert.equal(out(['--entrypoint', '', ep, '--', '/bin/echo', 'no', 'entrypoint']), 'no entrypoint\n');
      const none = cap(['run', '--no-store', '--entrypoint', '', ep]);
      assert.deepEqual([none.status, none.stderr], [2, 'capulator: no command: the image has no Entrypoint/Cmd and none was given\n']);
      // what is recorded is what ran
      const id = `ep${process.pid}`;
      assert.equal(cap(['run', '--id', id, ep, '--', 'x']).status, 0);
      const requested = (await stream(id)).find((e) => e.type === 'RunRequested')!;
      assert.deepEqual((requested.payload as { command: string[] }).command, ['/bin/echo', 'entrypoint:', 'x']);
    });
    it('refuses an image for another ISA with one line', () => {
      const r = cap(['run', '--no-store', 'capulator-test/arm64:latest']);
      assert.equal(r.status, 2);
      assert.equal(r.stderr, 'capulator: image is linux/arm64, this host is x86_64\n');
    });
  });
});
