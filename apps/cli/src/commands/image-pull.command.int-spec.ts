import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureImages, FixtureImages } from '../../../../test/fixtures/images';
import { freePort, skopeoPush, startRegistry, TestRegistry } from '../../../../test/fixtures/registry';

/**
 * Runs `capulator image pull …` through registerImagePullCommand in a child process, with
 * the CLI's error mapping (CliError → one line, its exit code), as main.ts would.
 */
function pull(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const harness = `
    const { Command } = require('commander');
    const { registerImagePullCommand } = require(${JSON.stringify(join(__dirname, 'image-pull.command.js'))});
    const { CliError } = require(${JSON.stringify(join(__dirname, '../cli-error.js'))});
    const program = new Command().exitOverride();
    registerImagePullCommand(program.command('image'));
    program.parseAsync(['image', 'pull', ...process.argv.slice(1)], { from: 'user' }).catch((e) => {
      if (e instanceof CliError) { process.stderr.write('capulator: ' + e.message + '\\n'); process.exit(e.exitCode); }
      process.stderr.write(String(e && e.stack) + '\\n'); process.exit(70);
    });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', harness, '--', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('capulator image pull', () => {
  let fx: FixtureImages;
  let reg: TestRegistry;
  let home: string;
  let env: Record<string, string>;
  before(async () => {
    fx = fixtureImages();
    reg = await startRegistry();
    await skopeoPush(fx.busyboxPing.ociDir, 'latest', `${reg.host}/cli/busybox-ping:1`);
    await skopeoPush(fx.arm64.ociDir, 'latest', `${reg.host}/cli/arm64:1`);
    home = mkdtempSync(join(tmpdir(), 'capulator-home-'));
    env = { CAPULATOR_HOME: home, DOCKER_CONFIG: join(home, 'no-docker-config') };
  });
  after(async () => {
    await reg.close();
    rmSync(home, { recursive: true, force: true });
  });

  describe('when stderr is not a terminal', () => {
    it('pulls, prints plain progress lines and one result line', async () => {
      const r = await pull([`${reg.host}/cli/busybox-ping:1`], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^pulled ${reg.host}/cli/busybox-ping:1 ${fx.busyboxPing.digest} \\(linux/amd64, 1 layer, `));
      assert.match(r.stderr, /manifest sha256:[a-f0-9]{64}, 1 layer/);
      assert.match(r.stderr, new RegExp(`${fx.busyboxPing.gzipDigests[0].slice(7, 19)}: downloading`));
      assert.doesNotMatch(r.stderr, /\u001b\[/, 'no terminal escapes in plain mode');
    });
    it('says the layer is already in the store on the second pull', async () => {
      const r = await pull([`${reg.host}/cli/busybox-ping:1`], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /already in the store/);
    });
  });

  describe('when the pulled image is run under capulator', () => {
    it('runs ping from it with the ping policy (raw socket allowed)', async () => {
      const repo = join(__dirname, '../../../../..');
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(join(repo, 'bin/capulator'), ['run', '--no-store', '--policy', join(repo, 'examples/policies/ping.yaml'), `${reg.host}/cli/busybox-ping:1`, '--', '/bin/ping', '-c1', '127.0.0.1'],
          { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /1 packets transmitted, 1 received/);
    });
  });

  describe('when --quiet', () => {
    it('prints only the image id', async () => {
      const r = await pull(['--quiet', `${reg.host}/cli/busybox-ping:1`], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${fx.busyboxPing.digest}\n`);
      assert.equal(r.stderr, '');
    });
  });

  describe('when the pull cannot succeed', () => {
    it('exits 2 with one line naming the platform the image has', async () => {
      const r = await pull([`${reg.host}/cli/arm64:1`, '--platform', 'linux/amd64'], env);
      assert.equal(r.code, 2);
      const errors = r.stderr.trim().split('\n').filter((l) => l.startsWith('capulator:'));
      assert.equal(errors.length, 1, r.stderr);
      assert.match(errors[0], /^capulator: .*linux\/arm64 only, not linux\/amd64$/);
    });
    it('exits 2 for a bad reference', async () => {
      const r = await pull(['Bad//Ref'], env);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^capulator: bad repository name/);
    });
    it('exits 1 when nothing listens at the registry address', async () => {
      const port = await freePort();
      const r = await pull([`127.0.0.1:${port}/cli/x:1`], env);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^capulator: cannot talk to 127\.0\.0\.1:\d+/);
    });
  });
});
