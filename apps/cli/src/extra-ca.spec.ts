import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@capulator/host';

/**
 * NODE_EXTRA_CA_CERTS deferred by capulator-run (CAPULATOR_DEFERRED_EXTRA_CA_CERTS) is trusted as
 * Node trusts the variable: a server whose certificate a CA of the file signed is reached, through
 * bin/capulator and through the module; one given a `ca` of its own trusts only that.
 */
describe('a deferred NODE_EXTRA_CA_CERTS', () => {
  const repo = repoRoot(__dirname);
  let dir: string;
  let server: Server;
  let port: number;
  let requests = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'capulator-extra-ca-'));
    const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    for (const ca of ['ca', 'other-ca']) ossl(['req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=capulator ${ca}`]);
    ossl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext']);
    server = createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) }, (req, res) => {
      requests++;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"no token"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // (the server is this process's: the children run while its event loop turns)
  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const c = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d) => (stdout += d));
      c.stderr.on('data', (d) => (stderr += d));
      c.on('error', reject);
      c.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  const env = (extra: NodeJS.ProcessEnv) => {
    const e: NodeJS.ProcessEnv = { ...process.env, CAPULATOR_HOME: join(dir, 'home'), ...extra };
    for (const k of ['NODE_EXTRA_CA_CERTS', 'CAPULATOR_DEFERRED_EXTRA_CA_CERTS', 'NODE_OPTIONS']) if (!(k in extra)) delete e[k];
    return e;
  };

  it('is trusted by the CLI once bin/capulator takes it (a server the file\'s CA vouches for is reached)', async () => {
    // (Node running bin/capulator itself: capulator-run hands the variable only to a run it does not hand to a server)
    const cli = (extra: NodeJS.ProcessEnv) => run(process.execPath, [join(repo, 'bin', 'capulator'), 'run', '--server', `https://127.0.0.1:${port}`, '--token', 'x', '/rootfs', '--', '/bin/true'], env(extra));
    const before = requests;
    const untrusted = await cli({});
    assert.notEqual(untrusted.status, 0);
    assert.match(untrusted.stderr, /certificate/i, untrusted.stderr);
    assert.equal(requests, before);
    const deferred = await cli({ CAPULATOR_DEFERRED_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
    assert.equal(requests, before + 1, deferred.stderr);
    assert.doesNotMatch(deferred.stderr, /certificate/i);
    assert.match(deferred.stderr, /no token|401|token/i, deferred.stderr);
  });

  it('is trusted from the first TLS module on, not before (tls stays unloaded), and is back in the environment', async () => {
    const script = `
      const m = require(${JSON.stringify(join(repo, 'dist/apps/cli/src/extra-ca.js'))});
      m.takeDeferredExtraCaCerts();
      const loaded = () => process.moduleLoadList.includes('NativeModule tls');
      const out = { env: process.env.NODE_EXTRA_CA_CERTS, gone: !('CAPULATOR_DEFERRED_EXTRA_CA_CERTS' in process.env), tlsBefore: loaded() };
      const get = (opts) => new Promise((resolve) => require('https').get({ host: '127.0.0.1', port: ${port}, path: '/', ...opts }, (r) => { r.resume(); resolve(r.statusCode); }).on('error', (e) => resolve(e.code)));
      (async () => {
        out.plain = await get({});
        out.ownCa = await get({ ca: require('fs').readFileSync(${JSON.stringify(join(dir, 'other-ca.pem'))}), agent: false });
        out.bothCas = await get({ ca: [require('tls').rootCertificates[0], require('fs').readFileSync(${JSON.stringify(join(dir, 'ca.pem'))})], agent: false });
        process.stdout.write(JSON.stringify(out));
      })();`;
    const r = await run(process.execPath, ['-e', script], env({ CAPULATOR_DEFERRED_EXTRA_CA_CERTS: join(dir, 'ca.pem') }));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { env: join(dir, 'ca.pem'), gone: true, tlsBefore: false, plain: 401, ownCa: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', bothCas: 401 });
  });

  it('that cannot be read is warned about as Node does, and only the bundled roots are trusted', async () => {
    const script = `require(${JSON.stringify(join(repo, 'dist/apps/cli/src/extra-ca.js'))}).takeDeferredExtraCaCerts();
      require('https').get('https://127.0.0.1:${port}/', (r) => { r.resume(); console.log(r.statusCode); }).on('error', (e) => console.log(e.code));`;
    const r = await run(process.execPath, ['-e', script], env({ CAPULATOR_DEFERRED_EXTRA_CA_CERTS: join(dir, 'missing.pem') }));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.match(r.stderr, /Warning: Ignoring extra certs from `.*missing\.pem`, load failed/);
  });
});
