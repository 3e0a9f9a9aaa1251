import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEvent } from '@capulator/events';
import { runEvents } from '../../../../test/fixtures/events';
import { fixtureImages } from '../../../../test/fixtures/images';
import { CNI_IPAM_DIR, CNI_NETWORK } from '../../../runtime/src/run/network';

/**
 * `capulator run` for real workloads: CNI networking (bridge, portmap, loopback from Debian's
 * containernetworking-plugins), resource limits (runc's linux.resources on this host's cgroups),
 * user/workdir/read-only/tmpfs/hostname/env-file, core dumps kept as run artifacts.
 *
 * Network tests run the CLI inside a network namespace the test made (nsenter --net, not `ip
 * netns exec`, which remounts /sys and hides the cgroup mounts from runc): the bridge, its
 * addresses, the iptables rules and 127.0.0.1 are that namespace's, never the host's.
 */
const repo = process.env.CAPULATOR_REPO ?? join(__dirname, '../../../../..');
const bin = join(repo, 'bin/capulator');
const NS = `capwl-${process.pid}`;

let home: string;
let rootfs: string;
let work: string;
const env = () => ({ ...process.env, CAPULATOR_HOME: home });
const cap = (args: string[], opts: { ns?: boolean; timeout?: number } = {}) =>
  opts.ns
    ? spawnSync('nsenter', [`--net=/run/netns/${NS}`, bin, ...args], { encoding: 'utf8', env: env(), timeout: opts.timeout ?? 60_000 })
    : spawnSync(bin, args, { encoding: 'utf8', env: env(), timeout: opts.timeout ?? 60_000 });
const inNs = (cmd: string[]) => spawnSync('nsenter', [`--net=/run/netns/${NS}`, ...cmd], { encoding: 'utf8', timeout: 30_000 });

const stream = (id: string): Promise<StoredEvent[]> => runEvents(home, id);
const exitedOf = async (id: string) => (await stream(id)).find((e) => e.type === 'RunExited')?.payload as Record<string, unknown> | undefined;

/** Waits for `cond` (polling) until the deadline. */
async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The host-local leases of the capulator network (files named by address). */
const leases = () => {
  try {
    return readdirSync(join(CNI_IPAM_DIR, CNI_NETWORK.name)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  } catch {
    return [];
  }
};
const netnsOf = (id: string) => existsSync(`/run/netns/capulator-${id}`);

describe('capulator run: workloads', () => {
  before(() => {
    rootfs = fixtureImages().rootfs;
    home = mkdtempSync(join(tmpdir(), 'capulator-workloads-'));
    work = join(home, 'work');
    mkdirSync(work);
    const add = spawnSync('ip', ['netns', 'add', NS], { encoding: 'utf8' });
    assert.equal(add.status, 0, add.stderr);
    assert.equal(inNs(['ip', 'link', 'set', 'lo', 'up']).status, 0);
  });
  after(() => {
    spawnSync('ip', ['netns', 'delete', NS]);
    rmSync(home, { recursive: true, force: true });
  });

  describe('networking', () => {
    it('--network none (the default) has only loopback', () => {
      for (const flags of [['--network', 'none'], []]) {
        const r = cap(['run', '--no-store', ...flags, rootfs, '--', 'sh', '-c', 'ip -o addr | cut -d" " -f2 | sort -u'], { ns: true });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, 'lo\n');
      }
    });

    it('-p publishes busybox httpd to the host (curl on 127.0.0.1), a second container on the bridge reaches it, and everything is released', async () => {
      const share = join(work, 'share');
      const www = join(work, 'www');
      mkdirSync(share);
      mkdirSync(www);
      writeFileSync(join(www, 'index.html'), 'hello from capulator\n');
      const port = 20000 + (process.pid % 20000);
      const before = leases().length;
      // httpd in the background; the container ends when the test creates /share/stop (at most ~60 s)
      const web = spawn('nsenter', [`--net=/run/netns/${NS}`, bin, 'run', '--id', `web${process.pid}`, '-p', `127.0.0.1:${port}:80`,
        '--mount', `${www}:/www:ro`, '--mount', `${share}:/share`, rootfs, '--',
        'sh', '-c', 'hostname -i > /share/ip.tmp && mv /share/ip.tmp /share/ip; httpd -p 80 -h /www; i=0; while [ ! -e /share/stop ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done'],
        { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let webErr = '';
      web.stderr.setEncoding('utf8').on('data', (s: string) => (webErr += s));
      const webExit = new Promise<number | null>((r) => web.on('close', (c) => r(c)));
      try {
        await until('the web container', () => existsSync(join(share, 'ip')) || web.exitCode !== null);
        assert.ok(existsSync(join(share, 'ip')), webErr);
        const ip = readFileSync(join(share, 'ip'), 'utf8').trim();
        assert.match(ip, /^10\.91\.\d+\.\d+$/);
        assert.ok(netnsOf(`web${process.pid}`));
        let curl = inNs(['curl', '-s', '-m', '5', `http://127.0.0.1:${port}/`]);
        for (let i = 0; i < 20 && curl.stdout === ''; i++) {
          await new Promise((r) => setTimeout(r, 200)); // httpd may still be starting
          curl = inNs(['curl', '-s', '-m', '5', `http://127.0.0.1:${port}/`]);
        }
        assert.equal(curl.stdout, 'hello from capulator\n', curl.stderr);
        const peer = cap(['run', '--no-store', '--network', 'bridge', rootfs, '--', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 80`], { ns: true });
        assert.equal(peer.status, 0, peer.stderr);
        assert.match(peer.stdout, /^HTTP\/1\.[01] 200 OK/);
        assert.match(peer.stdout, /hello from capulator/);
        // a port published already is refused, as docker refuses it, and nothing is left set up
        const leased = leases().length;
        const again = cap(['run', '--no-store', '-p', `${port}:80`, rootfs, '--', 'true'], { ns: true });
        assert.deepEqual([again.status, again.stderr], [2, `capulator: network: -p ${port}:80: port ${port}/tcp is already allocated (run web${process.pid} publishes it)\n`]);
        assert.equal(leases().length, leased);
        assert.equal(inNs(['curl', '-s', '-m', '5', `http://127.0.0.1:${port}/`]).stdout, 'hello from capulator\n', 'the first run keeps its port');
      } finally {
        writeFileSync(join(share, 'stop'), '');
        await webExit;
      }
      assert.equal(web.exitCode, 0, webErr);
      assert.equal(netnsOf(`web${process.pid}`), false);
      assert.equal(leases().length, before, 'every address is released');
      const nat = inNs(['iptables-save', '-t', 'nat']);
      assert.doesNotMatch(nat.stdout, new RegExp(`--dport ${port}\\b`), 'the port mapping is removed');
      const requested = (await stream(`web${process.pid}`)).find((e) => e.type === 'RunRequested')!.payload as unknown as { workload: { network: string; publish: unknown[] } };
      assert.equal(requested.workload.network, 'bridge');
      assert.deepEqual(requested.workload.publish, [{ hostIP: '127.0.0.1', hostPort: port, containerPort: 80, protocol: 'tcp' }]);
    });

    it('-p refuses a host port twice in one run, and one a host program holds (docker: "port is already allocated")', async () => {
      const port = 20000 + ((process.pid + 7) % 20000);
      const twice = cap(['run', '--no-store', '-p', `${port}:80`, '-p', `${port}:81`, rootfs, '--', 'true'], { ns: true });
      assert.deepEqual([twice.status, twice.stderr], [2, `capulator: network: -p ${port}:81: port ${port}/tcp is already allocated (-p ${port}:80 of this run)\n`]);
      // a listener of the host (here: of the test's namespace) on that port
      const holder = spawn('nsenter', [`--net=/run/netns/${NS}`, 'python3', '-c',
        `import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",${port}))\ns.listen()\nprint("up",flush=True)\ntime.sleep(60)`], { stdio: ['ignore', 'pipe', 'ignore'] });
      try {
        await new Promise((r) => holder.stdout!.once('data', r));
        const held = cap(['run', '--no-store', '-p', `127.0.0.1:${port}:80`, rootfs, '--', 'true'], { ns: true });
        assert.deepEqual([held.status, held.stderr], [2, `capulator: network: -p 127.0.0.1:${port}:80: port ${port}/tcp is already allocated (a program of this host holds it: EADDRINUSE)\n`]);
        const udp = cap(['run', '--no-store', '-p', `127.0.0.1:${port}:80/udp`, rootfs, '--', 'echo', 'udp is another port'], { ns: true });
        assert.deepEqual([udp.status, udp.stdout], [0, 'udp is another port\n'], udp.stderr);
      } finally {
        holder.kill('SIGKILL');
      }
    });

    it("the network set-up's own privilege checks are not recorded as the container's", async () => {
      const id = `quiet${process.pid}`;
      const ev = join(work, 'quiet.jsonl');
      const r = cap(['run', '--learn', '--id', id, '--events-json', ev, '--network', 'bridge', '-p', `${30000 + (process.pid % 20000)}:80`, rootfs, '--', 'chown', '1', '/tmp'], { ns: true });
      assert.equal(r.status, 0, r.stderr);
      const decisions = readFileSync(ev, 'utf8').trim().split('\n').filter((l) => l).map((l) => JSON.parse(l) as { exe?: string; capability?: string; pid?: number });
      // learn mode records everything the container does; the CNI plugins (bridge, portmap: CAP_NET_ADMIN) ran outside it
      assert.ok(decisions.some((d) => d.capability === 'CAP_CHOWN'), "the container's own privilege checks are recorded");
      assert.deepEqual(decisions.filter((d) => d.capability === 'CAP_NET_ADMIN' || /cni|iptables|\bip$/.test(d.exe ?? '')), []);
      const started = (await stream(id)).find((e) => e.type === 'RunStarted');
      assert.ok(started, 'the run started');
    });

    it('releases the address when the run fails after the network was set up', () => {
      const before = leases().length;
      const r = cap(['run', '--no-store', '--id', `nf${process.pid}`, '--network', 'bridge', rootfs, '--', '/no/such/program'], { ns: true });
      assert.equal(r.status, 2);
      assert.match(r.stderr, /no\/such\/program/);
      assert.equal(leases().length, before);
      assert.equal(netnsOf(`nf${process.pid}`), false);
    });

    it("after the runtime crashed, the next command's recovery releases the address, the port mapping and the netns (releaseNetwork)", async () => {
      const id = `crash${process.pid}`;
      const port = 20000 + ((process.pid + 1) % 20000);
      const before = leases().length;
      const child = spawn('nsenter', [`--net=/run/netns/${NS}`, bin, 'run', '--id', id, '-p', `${port}:80`, rootfs, '--', 'sleep', '60'],
        { env: env(), stdio: 'ignore' });
      const state = `/run/capulator/runc/capulator-${id}/state.json`;
      await until('the container', () => existsSync(state) || child.exitCode !== null);
      assert.ok(existsSync(state));
      assert.equal(leases().length, before + 1);
      // the runtime dies without cleaning up (nsenter, sh and the run client exec: child.pid is node)
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
      const runDir = join(home, 'runs', id);
      assert.ok(existsSync(join(runDir, 'network.json')));
      assert.ok(netnsOf(id));
      assert.match(inNs(['iptables-save', '-t', 'nat']).stdout, new RegExp(`--dport ${port}\\b`));
      // the agent stops the container; the next command (in the runtime's network namespace) recovers the run
      await until('the container stopped', () => !existsSync(state));
      const next = spawnSync('nsenter', [`--net=/run/netns/${NS}`, bin, 'audit', 'verify'], { encoding: 'utf8', env: env(), timeout: 60_000 });
      assert.equal(next.status, 0, next.stderr);
      assert.match(next.stderr, new RegExp(`recovered run ${id}`));
      assert.equal(leases().length, before);
      assert.equal(netnsOf(id), false);
      assert.doesNotMatch(inNs(['iptables-save', '-t', 'nat']).stdout, new RegExp(`--dport ${port}\\b`));
      assert.equal(existsSync(runDir), false);
      // releaseNetwork has nothing to do for a run without network state
      const mod = join(repo, 'dist/apps/runtime/src/run/network.js');
      const again = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(mod)}).releaseNetwork(${JSON.stringify(runDir)})))`], { encoding: 'utf8' });
      assert.deepEqual(JSON.parse(again.stdout), { released: false, errors: [] });
    });

    it("--network host: the runtime's own interfaces (here the test namespace's, with the bridge made above)", () => {
      const r = cap(['run', '--no-store', '--network', 'host', rootfs, '--', 'sh', '-c', 'ip -o link | cut -d" " -f2 | sort'], { ns: true });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${CNI_NETWORK.bridge}:$`, 'm'));
      assert.match(r.stdout, /^lo:$/m);
    });

    it('-p with --network none is bad input', () => {
      const r = cap(['run', '--no-store', '--network', 'none', '-p', '8080:80', rootfs, '--', 'true']);
      assert.equal(r.status, 2);
      assert.equal(r.stderr, 'capulator: -p needs --network bridge (not none)\n');
      // with --server the flags are checked here before anything is sent
      const remote = cap(['run', '--server', 'http://127.0.0.1:9', '--token', 't', '--memory', '5x', 'img']);
      assert.equal(remote.status, 2);
      assert.equal(remote.stderr, 'capulator: --memory 5x: want a size such as 256m or 1g\n');
      const detachedInput = cap(['run', '--server', 'http://127.0.0.1:9', '--token', 't', '-i', '-d', 'img']);
      assert.equal(detachedInput.status, 2);
      assert.equal(detachedInput.stderr, 'capulator: -i with -d and --server: a detached run has nobody to send its stdin\n');
      // flags only a run of this process can honour are refused, not dropped
      for (const flags of [['--id', 'web'], ['--keep'], ['--events-json', join(work, 'e.jsonl')], ['--no-store'], ['--on-audit-failure', 'stop']]) {
        const r = cap(['run', '--server', 'http://127.0.0.1:9', '--token', 't', ...flags, 'img']);
        assert.equal(r.status, 2, flags.join(' '));
        assert.match(r.stderr, new RegExp(`^capulator: ${flags[0]} is not supported with --server: [^\n]+\n$`));
      }
      // node 20 itself reads an `--env-file` it sees anywhere on its command line (exit 9 when the
      // file is missing): the CLI is started with `node -- bin/capulator …`, so the flag is ours
      const noEnv = cap(['run', '--no-store', '--env-file', join(work, 'missing.env'), rootfs, '--', 'true']);
      assert.equal(noEnv.status, 2, noEnv.stderr);
      assert.equal(noEnv.stderr, `capulator: --env-file ${join(work, 'missing.env')}: no such file or directory\n`);
      const bad = cap(['run', '--no-store', '-p', '99999:80', rootfs, '--', 'true']);
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /^capulator: -p 99999:80: port 99999 is not in 1-65535\n$/);
    });
  });

  describe('resource limits', () => {
    it('--memory: a program that allocates past it is OOM-killed and the run records oom', async () => {
      const id = `oom${process.pid}`;
      const r = cap(['run', '--id', id, '--memory', '16m', rootfs, '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
      assert.equal(r.status, 137, r.stderr);
      assert.match(r.stderr, /oom: the kernel's OOM killer ended a process \(memory limit 16m\)/);
      const exited = await exitedOf(id);
      assert.equal(exited?.oomKilled, true);
      assert.equal(exited?.signal, 'SIGKILL');
      assert.match(cap(['ps', '-a']).stdout, new RegExp(`^${id} .* 137 +SIGKILL \\(oom\\) `, 'm'));
      assert.equal(JSON.parse(cap(['inspect', '--json', id]).stdout).oomKilled, true);
      // the same allocation under a larger limit is not an OOM
      const ok = cap(['run', '--id', `nooom${process.pid}`, '--memory', '256m', rootfs, '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal((await exitedOf(`nooom${process.pid}`))?.oomKilled, undefined);
    });

    it('without --memory: an OOM kill by a limit that is not the run\'s own is recorded too (the kernel record sees the OOM killer choose the victim)', async () => {
      const id = `xoom${process.pid}`;
      // the program waits for a file, then allocates 64 MiB; meanwhile a limit is put on its memory
      // group from outside, as an ancestor group's limit or the host running out would constrain it
      const child = spawn(bin, ['run', '--id', id, rootfs, '--', 'sh', '-c', 'while [ ! -e /oom-go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=64M count=1'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const state = `/run/capulator/runc/capulator-${id}/state.json`;
      // once started: runc sets the group's limits (none here) up to the container's start
      for (let t = Date.now(); !(await stream(id).catch(() => [])).some((e) => e.type === 'RunStarted'); ) {
        if (Date.now() - t > 30_000) throw new Error(`run ${id} did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const memory = (JSON.parse(readFileSync(state, 'utf8')) as { cgroup_paths: Record<string, string> }).cgroup_paths.memory;
      assert.ok(memory && existsSync(join(memory, 'memory.limit_in_bytes')), `a v1 memory group: ${memory}`);
      writeFileSync(join(memory, 'memory.limit_in_bytes'), String(16 * 1024 * 1024));
      if (existsSync(join(memory, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(memory, 'memory.memsw.limit_in_bytes'), String(16 * 1024 * 1024));
      writeFileSync(join(home, 'runs', id, 'rootfs', 'oom-go'), '');
      assert.equal(await exited, 137, stderr);
      assert.match(stderr, new RegExp(`capulator: run ${id}: oom: the kernel's OOM killer ended a process\n`));
      const end = await exitedOf(id);
      assert.equal(end?.oomKilled, true);
      assert.equal(end?.signal, 'SIGKILL');
      // a program killed by SIGKILL from elsewhere is not an OOM
      const other = `xkill${process.pid}`;
      const k = cap(['run', '--id', other, rootfs, '--', 'sh', '-c', 'sh -c "kill -9 \\$\\$"; exit $?']);
      assert.equal(k.status, 137, k.stderr);
      assert.equal((await exitedOf(other))?.oomKilled, undefined);
    });

    it('--pids-limit stops a fork bomb while the host stays responsive', async () => {
      const id = `bomb${process.pid}`;
      const LIMIT = 32;
      // the shell starts its timer first (sleep), then the bomb in a subshell of its own: the shell
      // itself forks only those two, before the bomb exists (it used to fork the bomb's first
      // pipeline itself, and a fast bomb could take the last pids between those two forks: busybox
      // sh then exits 2 on "can't fork", seen once in CI); when the shell (pid 1) exits the kernel kills the rest
      const child = spawn(bin, ['run', '--no-store', '--id', id, '--pids-limit', String(LIMIT), '--cpus', '0.5', rootfs, '--',
        'sh', '-c', 'sleep 4 & s=$!; (b() { b | b & }; b) & wait $s; echo survived'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      const state = `/run/capulator/runc/capulator-${id}/state.json`;
      let pidsDir = '';
      await until('the container', () => {
        try {
          pidsDir = (JSON.parse(readFileSync(state, 'utf8')) as { cgroup_paths: Record<string, string> }).cgroup_paths.pids;
        } catch {
          /* not yet (or being rewritten) */
        }
        return pidsDir !== '' || child.exitCode !== null;
      });
      assert.ok(pidsDir, `the container ran: exit ${child.exitCode}: ${out} ${err.slice(-400)}`);
      assert.equal(readFileSync(join(pidsDir, 'pids.max'), 'utf8').trim(), String(LIMIT));
      let maxSeen = 0;
      let slowest = 0;
      let refused = 0;
      while (child.exitCode === null) {
        try {
          maxSeen = Math.max(maxSeen, Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8')));
          refused = Number(/max (\d+)/.exec(readFileSync(join(pidsDir, 'pids.events'), 'utf8'))?.[1] ?? 0);
        } catch {
          break; // the container is gone
        }
        const t0 = Date.now();
        assert.equal(spawnSync('true').status, 0);
        slowest = Math.max(slowest, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 200));
      }
      const code = await done;
      assert.equal(out, 'survived\n', `exit ${code}; stderr: ${err.slice(-500)}`);
      assert.equal(code, 0, err.slice(-500));
      assert.ok(maxSeen <= LIMIT, `pids.current ${maxSeen} <= ${LIMIT}`);
      assert.ok(refused > 0, 'forks were refused at the limit');
      assert.ok(slowest < 3000, `the host spawned a process in ${slowest} ms during the bomb`);
    });

    it('--cpus, --pids-limit and --ulimit reach the container; bad values are bad input', () => {
      const r = cap(['run', '--no-store', '--ulimit', 'nofile=256:512', '--ulimit', 'core=0', rootfs, '--', 'sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -c']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '256\n512\n0\n');
      const d = cap(['run', '--no-store', rootfs, '--', 'sh', '-c', 'ulimit -n; ulimit -c']);
      assert.equal(d.stdout, `1024\n${hostCoreHard()}\n`);
      for (const [flag, msg] of [
        [['--memory', '1x'], /--memory 1x: want a size such as 256m or 1g/],
        [['--memory', '1k'], /--memory 1k: the minimum is 6m/],
        [['--memory-swap', '1g'], /--memory-swap 1g: needs --memory/],
        [['--cpus', '0'], /--cpus 0: want a number from 0.01 to/],
        [['--pids-limit', 'lots'], /--pids-limit lots: want a number/],
        [['--ulimit', 'nofile'], /--ulimit nofile: want NAME=SOFT\[:HARD\]/],
        [['--ulimit', 'bogus=1'], /--ulimit bogus=1: unknown limit bogus/],
        [['--ulimit', 'nofile=10:5'], /soft limit is above the hard one/],
        [['--user', 'a b'], /--user a b: want UID\[:GID\] or NAME\[:GROUP\]/],
        [['--workdir', 'rel'], /--workdir rel: must be an absolute path/],
        [['--tmpfs', '/t:bogus'], /--tmpfs \/t:bogus: unknown option bogus/],
        [['--network', 'overlay'], /--network overlay: want one of none, bridge, host/],
        [['--rm', '--keep'], /--rm and --keep conflict/],
      ] as [string[], RegExp][]) {
        const b = cap(['run', '--no-store', ...flag, rootfs, '--', 'true']);
        assert.equal(b.status, 2, `${flag.join(' ')}: ${b.stderr}`);
        assert.match(b.stderr, msg);
        assert.equal(b.stderr.split('\n').length, 2, 'one line');
      }
      // raising a hard limit above the host's needs CAP_SYS_RESOURCE, which this host's bounding set may lack
      const hard = Number(readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!.slice(26).trim().split(/\s+/)[1]);
      const up = cap(['run', '--no-store', '--ulimit', `nofile=${hard + 1}`, rootfs, '--', 'true']);
      assert.equal(up.status, 2);
      assert.match(up.stderr, /hard limit is above this host's .*CAP_SYS_RESOURCE/);
    });
  });

  describe('user, workdir, read-only, tmpfs, hostname, env-file', () => {
    it('applies them as docker does', () => {
      const envFile = join(work, 'app.env');
      writeFileSync(envFile, '# comment\nMODE=file\n\nOTHER=x y\n');
      const r = cap(['run', '--no-store', '--user', 'user', '--workdir', '/home/user', '--hostname', 'web-1', '--env-file', envFile, '-e', 'MODE=flag',
        rootfs, '--', 'sh', '-c', 'id -u; id -g; pwd; hostname; cat /etc/hostname; echo "$HOSTNAME"; echo "$MODE/$OTHER"; echo "TERM=$TERM"']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '1000\n1000\n/home/user\nweb-1\nweb-1\nweb-1\nflag/x y\nTERM=\n');
      // -t: TERM=xterm, as docker's (-e TERM=… wins)
      const t = cap(['run', '--no-store', '-t', rootfs, '--', 'sh', '-c', 'echo "TERM=$TERM"']);
      assert.match(t.stdout, /^TERM=xterm\r?\n$/, t.stderr);
      const own = cap(['run', '--no-store', '-t', '-e', 'TERM=vt100', rootfs, '--', 'sh', '-c', 'echo "TERM=$TERM"']);
      assert.match(own.stdout, /^TERM=vt100\r?\n$/, own.stderr);
      // a file the user mounts at /etc/hostname is theirs, as with docker
      const ownFile = join(work, 'own-hostname');
      writeFileSync(ownFile, 'mine\n');
      const mounted = cap(['run', '--no-store', '--hostname', 'web-1', '-v', `${ownFile}:/etc/hostname:ro`, rootfs, '--', 'cat', '/etc/hostname']);
      assert.deepEqual([mounted.status, mounted.stdout], [0, 'mine\n'], mounted.stderr);
      const n = cap(['run', '--no-store', '--user', '65534:1', rootfs, '--', 'sh', '-c', 'id -u; id -g']);
      assert.equal(n.stdout, '65534\n1\n');
      const missing = cap(['run', '--no-store', '--user', 'nosuch', rootfs, '--', 'true']);
      assert.equal(missing.status, 2);
      assert.equal(missing.stderr, "capulator: user nosuch is not in the image's /etc/passwd\n");
      const ro = cap(['run', '--no-store', '--read-only', '--tmpfs', '/scratch:size=1m', rootfs, '--', 'sh', '-c',
        'touch /x 2>/dev/null && echo root-writable; touch /scratch/y && echo tmpfs-writable; grep " /scratch " /proc/mounts | cut -d" " -f3,4']);
      assert.equal(ro.status, 0, ro.stderr);
      assert.match(ro.stdout, /^tmpfs-writable\ntmpfs rw,nosuid,nodev,noexec,relatime,size=1024k\n$/);
    });
  });

  describe('through capulator serve (the native client runs runc)', () => {
    it('sets up the bridge, records oom and keeps the core the same way', async () => {
      const dhome = join(home, 'daemon');
      mkdirSync(dhome);
      const denv = { ...process.env, CAPULATOR_HOME: dhome };
      const serve = spawn('nsenter', [`--net=/run/netns/${NS}`, bin, 'serve', '--http', 'off', '--grpc', 'off', '--log-level', 'silent'], { env: denv, stdio: 'ignore' });
      const served = new Promise((r) => serve.on('close', r));
      try {
        await until('the run socket', () => existsSync(join(dhome, 'run.sock')) || serve.exitCode !== null);
        assert.ok(existsSync(join(dhome, 'run.sock')));
        // the client runs in the test's own namespace; the daemon set the netns up in its namespace
        const run = (args: string[]) => spawnSync(bin, ['run', ...args], { encoding: 'utf8', env: denv, timeout: 60_000 });
        const br = run(['--no-store', '--network', 'bridge', rootfs, '--', 'sh', '-c', 'ip -o -4 addr | cut -d" " -f2 | sort']);
        assert.equal(br.status, 0, br.stderr);
        assert.equal(br.stdout, 'eth0\nlo\n');
        const oom = run(['--memory', '16m', rootfs, '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
        assert.equal(oom.status, 137);
        assert.match(oom.stderr, /oom: the kernel's OOM killer ended a process/);
      } finally {
        serve.kill('SIGTERM');
        await served;
      }
    });
  });

  describe('interactive runs', () => {
    /** a tmux server of its own, one window of a fixed size running CMD; polled by its screen */
    async function inTmux(cmd: string, steps: (send: (keys: string[]) => void, screen: () => string) => Promise<void>): Promise<void> {
      const sock = `capwl-${process.pid}`;
      const tmux = (args: string[]) => spawnSync('tmux', ['-L', sock, ...args], { encoding: 'utf8', timeout: 10_000 });
      const t = tmux(['new-session', '-d', '-s', 't', '-x', '100', '-y', '30', `${cmd}; echo "exit=$?"; sleep 30`]);
      assert.equal(t.status, 0, t.stderr);
      try {
        await steps((keys) => tmux(['send-keys', '-t', 't', ...keys]), () => tmux(['capture-pane', '-p', '-t', 't']).stdout);
      } finally {
        tmux(['kill-server']);
      }
    }

    it('-it runs a shell in a real pty: window size, resize and ^C behave as with docker', async () => {
      for (const daemon of [false, true]) {
        const dhome = join(home, `tty-${daemon}`);
        mkdirSync(dhome);
        const serve = daemon ? spawn(bin, ['serve', '--http', 'off', '--grpc', 'off', '--log-level', 'silent'], { env: { ...process.env, CAPULATOR_HOME: dhome }, stdio: 'ignore' }) : undefined;
        try {
          if (serve) await until('the run socket', () => existsSync(join(dhome, 'run.sock')));
          const ttyId = `tty${daemon ? 'd' : 'c'}${process.pid}`;
          await inTmux(`CAPULATOR_HOME=${dhome} ${bin} run -it --no-store --id ${ttyId} ${rootfs} -- sh`, async (send, screen) => {
            await until('the prompt', () => /^\/ #/m.test(screen()));
            send(['stty size; tty', 'Enter']);
            // both lines: the screen is polled, and tty's line may come a poll after stty's
            await until('the size, and a terminal of its own', () => /^30 100$/m.test(screen()) && /^\/dev\/pts\/0$/m.test(screen()));
            send(['sleep 60', 'Enter']);
            await new Promise((r) => setTimeout(r, 300));
            send(['C-c']);
            send(['echo after-$((20+1)); exit 5', 'Enter']);
            await until('the exit', () => /^exit=5$/m.test(screen()), 20_000);
            assert.match(screen(), /^after-21$/m, '^C stopped sleep, not the shell');
          });
        } finally {
          // a failed step leaves the shell waiting: its container must not outlive the test
          spawnSync('runc', ['--root', '/run/capulator/runc', 'kill', '--all', `capulator-tty${daemon ? 'd' : 'c'}${process.pid}`, 'KILL'], { stdio: 'ignore' });
          if (serve) {
            serve.kill('SIGTERM');
            await new Promise((r) => serve.on('close', r));
          }
        }
      }
    });

    it('stdin reaches the container only with -i', () => {
      const no = spawnSync(bin, ['run', '--no-store', rootfs, '--', 'cat'], { input: 'typed\n', encoding: 'utf8', env: env(), timeout: 60_000 });
      assert.equal(no.status, 0, no.stderr);
      assert.equal(no.stdout, '');
      const yes = spawnSync(bin, ['run', '-i', '--no-store', rootfs, '--', 'cat'], { input: 'typed\n', encoding: 'utf8', env: env(), timeout: 60_000 });
      assert.equal(yes.stdout, 'typed\n');
    });
  });

  describe('detached runs', () => {
    it('-d with bad input says why and exits as the run would, printing no id (a missing --env-file: exit 2)', () => {
      const d = cap(['run', '-d', '--env-file', join(work, 'missing.env'), rootfs, '--', 'true']);
      assert.equal(d.status, 2, d.stderr);
      assert.equal(d.stdout, '');
      assert.equal(d.stderr, `capulator: --env-file ${join(work, 'missing.env')}: no such file or directory\n`);
      // signals are names or numbers 1-64 (runc's own failure was the only word on 0 or 99)
      for (const sig of ['0', '99', 'SIGFOO']) {
        const k = cap(['kill', '-s', sig, 'nosuchrun']);
        assert.deepEqual([k.status, k.stderr], [2, `capulator: --signal ${sig}: unknown signal\n`]);
      }
    });

    it('logs reads a log cut short by a crash: a broken line is skipped, the rest shown whole, and -f ends with the run', () => {
      const id = `cut${process.pid}`;
      const dir = join(home, 'detached', id);
      mkdirSync(dir, { recursive: true });
      const line = (log: string, stream = 'stdout') => JSON.stringify({ log, stream, time: '2026-12-07T00:00:00.000Z' }) + '\n';
      writeFileSync(join(dir, 'log.jsonl'), line('première ligne\n') + '{"log":"cut sh' + '\n' + line('ünïcödé\n', 'stderr') + line('last\n') + '{"log":"half wri');
      writeFileSync(join(dir, 'exit'), JSON.stringify({ code: 0, signal: null }));
      for (const args of [['logs', id], ['logs', '-f', id]]) {
        const r = cap(args);
        assert.deepEqual([r.status, r.stdout, r.stderr], [0, 'première ligne\nlast\n', 'ünïcödé\n'], args.join(' '));
      }
      assert.equal(cap(['logs', '--tail', '1', id]).stdout, 'last\n');
      cap(['rm', id]);
    });

    it("-d in a cluster (-itd, as docker users type it) detaches once, and a program's own -d after the image is the program's", () => {
      const t = `itd${process.pid}`;
      const l = `lsd${process.pid}`;
      assert.equal(cap(['run', '-itd', '--id', t, rootfs, 'sh', '-c', 'tty']).status, 0);
      assert.equal(cap(['run', '-d', '--id', l, rootfs, 'ls', '-d', '/etc']).status, 0);
      assert.equal(cap(['wait', t, l]).stdout, '0\n0\n');
      assert.match(cap(['logs', t]).stdout, /^\/dev\/pts\/\d+\r?\n$/);
      assert.equal(cap(['logs', l]).stdout, '/etc\n');
      cap(['rm', t, l]);
    });

    it("stop, wait, kill and rm take several runs, as docker's: each is done, one that fails is said, and the command exits 1", () => {
      const [a, b] = ['a', 'b'].map((x) => `multi${x}${process.pid}`);
      for (const id of [a, b]) assert.equal(cap(['run', '-d', '--id', id, rootfs, '--', 'sleep', '60']).status, 0);
      const stop = cap(['stop', '-t', '1', a, 'nosuch', b]);
      assert.equal(stop.status, 1);
      assert.deepEqual(stop.stdout.trim().split('\n').sort(), [a, b].sort());
      assert.equal(stop.stderr, 'capulator: run nosuch is not running\n');
      assert.deepEqual([cap(['wait', a, b]).stdout, cap(['kill', a, b]).stderr], ['137\n137\n', `capulator: run ${a} is not running\ncapulator: run ${b} is not running\n`]);
      assert.equal(cap(['rm', a, b]).stdout, `${a}\n${b}\n`);
    });

    it('-d prints the id and returns; logs (-f, --since, -t), stop, wait, kill and rm manage it', async () => {
      const id = `bg${process.pid}`;
      const d = cap(['run', '-d', '--id', id, rootfs, '--', 'sh', '-c', 'i=0; while [ $i -lt 600 ]; do echo "tick $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done']);
      assert.equal(d.status, 0, d.stderr);
      assert.equal(d.stdout, `${id}\n`);
      await until('output', () => (cap(['logs', id]).stdout.match(/tick/g) ?? []).length >= 3);
      const logs = cap(['logs', id]);
      assert.match(logs.stdout, /^tick 0\ntick 1\ntick 2\n/);
      assert.match(logs.stderr, /^err 0\nerr 1\n/);
      assert.doesNotMatch(logs.stdout, /err/);
      const ts = cap(['logs', '-t', id]);
      assert.match(ts.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z tick 0\n/);
      const later = cap(['logs', '--since', new Date(Date.now() + 3_600_000).toISOString(), id]);
      assert.equal(later.stdout, '');
      // --tail N: the last N lines of both streams together, as docker logs -n
      const tail = cap(['logs', '--tail', '2', id]);
      assert.equal(tail.status, 0, tail.stderr);
      const [lastOut, lastErr] = [tail.stdout.split('\n').filter(Boolean), tail.stderr.split('\n').filter(Boolean)];
      assert.equal(lastOut.length + lastErr.length, 2, JSON.stringify(tail));
      assert.ok(lastOut.every((l) => /^tick \d+$/.test(l)) && lastErr.every((l) => /^err \d+$/.test(l)), JSON.stringify(tail));
      assert.ok(Number(/\d+/.exec(lastOut.at(-1) ?? lastErr.at(-1)!)![0]) >= 3, JSON.stringify(tail));
      assert.deepEqual([cap(['logs', '-n', '0', id]).stdout, cap(['logs', '-n', '0', id]).stderr], ['', '']);
      assert.deepEqual([cap(['logs', '-n', '-1', id]).status, cap(['logs', '-n', 'x', id]).stderr], [2, 'capulator: --tail x: want a number of lines, or all\n']);
      // -f --tail 1: one line of what was there, then what follows
      const tailFollow = spawn(bin, ['logs', '-f', '--tail', '1', id], { env: env(), stdio: ['ignore', 'pipe', 'ignore'] });
      let tailFollowed = '';
      tailFollow.stdout.setEncoding('utf8').on('data', (s: string) => (tailFollowed += s));
      const tailFollowEnd = new Promise((r) => tailFollow.on('close', r));
      // follow: ends when the run ends (stop below)
      const follow = spawn(bin, ['logs', '-f', id], { env: env(), stdio: ['ignore', 'pipe', 'ignore'] });
      let followed = '';
      follow.stdout.setEncoding('utf8').on('data', (s: string) => (followed += s));
      const followEnd = new Promise((r) => follow.on('close', r));
      assert.equal(cap(['rm', id]).status, 1, 'a running run is not removed');
      // sh as pid 1 ignores SIGTERM: stop kills it after the grace time, as docker stop does
      const stop = cap(['stop', '-t', '1', id]);
      assert.equal(stop.status, 0, stop.stderr);
      assert.equal(stop.stdout, `${id}\n`);
      const wait = cap(['wait', id]);
      assert.equal(wait.stdout, '137\n');
      await followEnd;
      assert.match(followed, /^tick 0\n/);
      await tailFollowEnd;
      const ticks = (tailFollowed.match(/^tick (\d+)$/gm) ?? []).map((l) => Number(l.slice(5)));
      assert.ok(ticks.length >= 2 && ticks[0] > 0 && ticks.every((t, i) => i === 0 || t === ticks[i - 1] + 1), tailFollowed);
      assert.equal((await exitedOf(id))?.signal, 'SIGKILL');
      assert.equal(cap(['stop', id]).status, 1);
      assert.equal(cap(['rm', id]).stdout, `${id}\n`);
      assert.equal(existsSync(join(home, 'detached', id)), false);
      assert.equal(cap(['logs', id]).status, 2);
      // kill -s: a signal the program handles
      const k = `bgk${process.pid}`;
      assert.equal(cap(['run', '-d', '--id', k, rootfs, '--', 'sh', '-c', 'trap "echo got-usr1; exit 3" USR1; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done']).status, 0);
      await new Promise((r) => setTimeout(r, 500)); // the trap is set
      assert.equal(cap(['kill', '-s', 'USR1', k]).status, 0);
      assert.equal(cap(['wait', k]).stdout, '3\n');
      assert.equal(cap(['logs', k]).stdout, 'got-usr1\n');
      assert.equal(cap(['kill', '-s', 'NOPE', k]).status, 2);
      cap(['rm', k]);
      // rm -f: a running run is killed, its end recorded, and removed (as docker rm -f); --name is --id
      const f = `bgf${process.pid}`;
      assert.equal(cap(['run', '-d', '--name', f, rootfs, '--', 'sleep', '60']).status, 0);
      const rmf = cap(['rm', '-f', f]);
      assert.deepEqual([rmf.status, rmf.stdout], [0, `${f}\n`], rmf.stderr);
      assert.equal(existsSync(join(home, 'detached', f)), false);
      assert.equal((await exitedOf(f))?.signal, 'SIGKILL');
      const both = cap(['run', '--name', 'a', '--id', 'b', rootfs, '--', 'true']);
      assert.deepEqual([both.status, both.stderr], [2, 'capulator: --name a and --id b: one run id, please (--name is --id)\n']);
      // a run that fails at once: -d reports it as the foreground run would
      const bad = cap(['run', '-d', rootfs, '--', '/no/such/program']);
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /no\/such\/program/);
    });
  });

  describe('core dumps', () => {
    const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
    it('a segfaulting program leaves a core that gdb opens at the crashing function; capulator cp gets it',
      { skip: pattern.startsWith('|') ? `this host pipes cores to ${pattern} (kernel.core_pattern)` : false }, async () => {
      const img = join(work, 'segv-rootfs');
      mkdirSync(img);
      const src = join(work, 'segv.c');
      writeFileSync(src, [
        '#include <stdio.h>',
        '__attribute__((noinline)) void crash_in_capulator_test(volatile int *p) { *p = 42; }',
        'int main(void) { puts("about to crash"); fflush(stdout); crash_in_capulator_test((int *)0); return 0; }',
        '',
      ].join('\n'));
      const cc = spawnSync('gcc', ['-static', '-O0', '-g', '-o', join(img, 'segv'), src], { encoding: 'utf8' });
      assert.equal(cc.status, 0, cc.stderr);
      const id = `segv${process.pid}`;
      const r = cap(['run', '--id', id, img, '--', '/segv']);
      assert.equal(r.status, 139);
      assert.equal(r.stdout, 'about to crash\n');
      assert.match(r.stderr, new RegExp(`run ${id}: SIGSEGV: core dumped, kept as core \\(capulator cp ${id}:core \\.\\)`));
      const exited = await exitedOf(id);
      assert.equal(exited?.signal, 'SIGSEGV');
      assert.deepEqual((exited?.artifacts as { name: string; source: string }[]).map((a) => [a.name, a.source]), [['core', '/core']]);
      assert.equal(existsSync(join(home, 'runs', id)), false, 'the run directory is gone, the artifact stays');
      assert.deepEqual(JSON.parse(cap(['inspect', '--json', id]).stdout).artifacts, ['core']);
      const out = join(work, 'out');
      mkdirSync(out);
      const cp = spawnSync(bin, ['cp', `${id}:core`, out], { encoding: 'utf8', env: env() });
      assert.equal(cp.status, 0, cp.stderr);
      const gdb = spawnSync('gdb', ['-batch', '-ex', 'bt', join(img, 'segv'), join(out, 'core')], { encoding: 'utf8', timeout: 60_000 });
      assert.match(gdb.stdout, /Program terminated with signal SIGSEGV/);
      assert.match(gdb.stdout, /#0 .*crash_in_capulator_test \(p=0x0\)/);
      assert.match(gdb.stdout, /#1 .*main \(\)/);
      const none = spawnSync(bin, ['cp', `${id}:nothing`, out], { encoding: 'utf8', env: env() });
      assert.equal(none.status, 2);
      assert.equal(none.stderr, `capulator: run ${id} has no artifact nothing (it has: core)\n`);
      // a path in its filesystem: gone with the run (a running run's: exec.int-spec)
      const path = spawnSync(bin, ['cp', `${id}:/etc/hostname`, out], { encoding: 'utf8', env: env() });
      assert.deepEqual([path.status, path.stderr], [1, `capulator: ${id}:/etc/hostname: run ${id} is not running (its files went with it; what it left: capulator cp ${id}:)\n`]);
      // --ulimit core=0: no core, nothing kept
      const off = cap(['run', '--id', `segv0${process.pid}`, '--ulimit', 'core=0', img, '--', '/segv']);
      assert.equal(off.status, 139);
      assert.doesNotMatch(off.stderr, /core dumped/);
      assert.equal((await exitedOf(`segv0${process.pid}`))?.artifacts, undefined);
    });
  });
});

function hostCoreHard(): string {
  const row = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max core file size'))!;
  return row.slice(26).trim().split(/\s+/)[1];
}
