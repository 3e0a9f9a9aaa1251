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
 * record started for the run, and a new spare is loaded once the run is over (replenish).
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
  after(() => {
    dropSpares();
    try {
      rmdirSync(dir);
    } catch {
      /* gone */
    }
  });

  it('is given its run\'s group, records that group\'s checks, and is replaced when the record ends', async () => {
    assert.ok(binary, 'capulator-kernel-record is built');
    keepSpares('kernel-record', binary);
    const first = await until('the spares', () => (sparePids().length === SPARES ? sparePids() : undefined));
    mkdirSync(dir, { recursive: true });
    const checks: KernelCheckLine[] = [];
    const t0 = Date.now();
    const k = await KernelRecordProcess.start(binary!, dir, (c) => checks.push(c));
    console.log(`ready ${Date.now() - t0} ms after the run gave its group`);
    assert.ok(first.includes(k.child.pid!), 'a spare took the run');
    assert.equal(k.ready!.cgroupId, statSync(dir).ino);
    await recordsHostname(dir, checks);
    await k.stop();
    assert.equal(k.summary?.lost, 0);
    // the runner, once the run is over and answered: the next run's spare is loading
    replenishSpares();
    const now = await until('a new spare', () => (sparePids().length === SPARES ? sparePids() : undefined));
    assert.ok(!now.includes(k.child.pid!));
    assert.ok(now.some((p) => !first.includes(p)), 'one loaded after the run');
    assert.equal(readFileSync(join(dir, 'cgroup.procs'), 'utf8'), '');
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
