import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@capulator/host';
import { dropSpares, keepSpares, replenishSpares, SPARES, startEarly } from './spares';
import { cgroupV2Root, kernelRecordBinary, KernelRecordProcess, type KernelCheckLine } from './kernel-record';

/**
 * A spare kernel record (what `capulator serve` keeps): its BPF program loaded ahead with no
 * group, attached only once a run gives it one; then it records that group's checks like a
 * record started for the run, and once the run is over it is given back and serves the next run,
 * its program still loaded (agent/PROTOCOL.md "Kernel record": `end`).
 */
const binary = kernelRecordBinary(repoRoot(__dirname));
const sparePids = (): number[] =>
  spawnSync('pgrep', ['-P', String(process.pid), '-f', 'capulator-kernel-record serve --cgroup -'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);
const until = async <T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> => {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/**
 * A container's first program (pid 1 of a pid namespace, in the group `dir`) execs and makes one
 * check (sethostname: CAP_SYS_ADMIN, in a UTS namespace of its own): the record must see it granted.
 */
async function recordsHostname(dir: string, checks: KernelCheckLine[]): Promise<void> {
  const r = spawnSync('unshare', ['--fork', '--pid', '--uts', 'sh', '-c', `echo 0 > ${dir}/cgroup.procs && exec hostname record-test`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const c = await until('the sethostname check', () => checks.find((x) => x.cap === 21 && x.exe.endsWith('hostname')));
  assert.equal(c.result, 'granted');
}

describe('a spare kernel record', () => {
  const dir = join(cgroupV2Root() ?? '/sys/fs/cgroup/unified', 'capulator', `spare-test-${process.pid}`);
  const dir2 = `${dir}-next`;
  after(() => {
    dropSpares();
    for (const d of [dir, dir2]) {
      try {
        rmdirSync(d);
      } catch {
        /* gone */
      }
    }
  });

  it('is given its run\'s group, records that group\'s checks, and serves the next run once this one is over', async () => {
    assert.ok(binary, 'capulator-kernel-record is built');
    keepSpares('kernel-record', binary);
    const first = await until('the spares', () => (sparePids().length === SPARES ? sparePids() : undefined));
    mkdirSync(dir, { recursive: true });
    mkdirSync(dir2, { recursive: true });
    const checks: KernelCheckLine[] = [];
    const t0 = Date.now();
    const k = await KernelRecordProcess.start(binary!, dir, (c) => checks.push(c));
    console.log(`ready ${Date.now() - t0} ms after the run gave its group`);
    assert.ok(first.includes(k.child.pid!), 'a spare took the run');
    assert.equal(k.ready!.cgroupId, statSync(dir).ino);
    await recordsHostname(dir, checks);
    await k.stop();
    assert.equal(k.summary?.lost, 0);
    assert.equal(k.summary?.started, true);
    // given back, not replaced: the same processes, none loaded after the run
    replenishSpares();
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(sparePids().sort(), [...first].sort());
    assert.equal(readFileSync(join(dir, 'cgroup.procs'), 'utf8'), '');
    // the next run: the same process, its own group only, its own counts
    const checks2: KernelCheckLine[] = [];
    const t1 = Date.now();
    const k2 = await KernelRecordProcess.start(binary!, dir2, (c) => checks2.push(c));
    console.log(`the next run's record ready ${Date.now() - t1} ms after it gave its group`);
    assert.equal(k2.child.pid, k.child.pid, 'the process that served the first run serves the second');
    assert.equal(k2.ready!.cgroupId, statSync(dir2).ino);
    const other = spawnSync('unshare', ['--fork', '--pid', '--uts', 'sh', '-c', `echo 0 > ${dir}/cgroup.procs && exec hostname other-run`], { encoding: 'utf8' });
    assert.equal(other.status, 0, other.stderr);
    await recordsHostname(dir2, checks2);
    await k2.stop();
    assert.equal(k2.summary?.lost, 0);
    assert.equal(k2.summary?.started, true);
    assert.equal(checks2.filter((c) => c.cap === 21).length, 1, 'the first group\'s check is not the second run\'s');
    assert.equal(checks2[0].kseq, 1, 'its lines are numbered from 1 again');
    assert.ok(checks2.every((c) => c.exe.endsWith('hostname') || c.exe.endsWith('sh')), 'the exes the second run saw, described again');
    assert.equal(checks.filter((c) => c.cap === 21).length, 1);
  });
});

describe('a kernel record started early (bin/capulator, for a cold `capulator run`)', () => {
  const dir = join(cgroupV2Root() ?? '/sys/fs/cgroup/unified', 'capulator', `early-test-${process.pid}`);
  after(() => {
    try {
      rmdirSync(dir);
    } catch {
      /* gone */
    }
  });

  it('is the one the run takes, and records its checks', async () => {
    assert.ok(binary, 'capulator-kernel-record is built');
    startEarly(repoRoot(__dirname));
    const [early] = await until('the early record', () => (sparePids().length === 1 ? sparePids() : undefined));
    mkdirSync(dir, { recursive: true });
    const checks: KernelCheckLine[] = [];
    const k = await KernelRecordProcess.start(binary!, dir, (c) => checks.push(c));
    assert.equal(k.child.pid, early, 'the run took the record started early');
    assert.equal(k.ready!.cgroupId, statSync(dir).ino);
    await recordsHostname(dir, checks);
    await k.stop();
    assert.equal(k.summary?.lost, 0);
  });

  it('keeps no process alive when no run takes it, and ends with it', () => {
    const script = `require(${JSON.stringify(join(__dirname, 'spares.js'))}).startEarly(${JSON.stringify(repoRoot(__dirname))});
      setTimeout(() => process.stdout.write(require('node:child_process').execSync('ps --ppid ' + process.pid + ' -o pid=,args=', { encoding: 'utf8' })
        .split('\\n').filter((l) => l.includes('capulator-kernel-record serve')).map((l) => l.trim().split(' ')[0]).join(',')), 200);`;
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    const pid = Number(r.stdout.trim());
    assert.ok(pid > 0, 'the record was started');
    assert.ok(Date.now() - t0 < 5000, 'the process ended by itself');
    // PR_SET_PDEATHSIG: gone with the process that started it
    const gone = spawnSync('sh', ['-c', `for i in $(seq 100); do kill -0 ${pid} 2>/dev/null || exit 0; sleep 0.05; done; exit 1`]);
    assert.equal(gone.status, 0, `kernel record ${pid} outlived its parent`);
  });
});
