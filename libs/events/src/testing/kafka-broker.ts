import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@capulator/host';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function kafkaSh(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const script = join(repoRoot(__dirname), 'infra', 'kafka', 'kafka.sh');
  return new Promise((resolve, reject) => {
    execFile('bash', [script, ...args], { env, timeout: 180_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`kafka.sh ${args[0]} failed: ${stderr || err.message}`)) : resolve(),
    );
  });
}

export interface TestBroker {
  brokers: string[];
  url: string;
  stop(): Promise<void>;
  /** sends a signal to the broker's JVM (SIGKILL, SIGSTOP, SIGCONT) */
  signal(sig: NodeJS.Signals): void;
  /** starts the broker again on the same ports and data (after a SIGKILL) */
  restart(): Promise<void>;
  /** a secured broker's TLS and SASL facts (startTestBroker({ secured: true })) */
  secured?: SecuredFacts;
}

/**
 * A broker as a production cluster is set up: TLS (a CA of its own, made for this broker),
 * SCRAM-SHA-512 users, and ACLs enforced with nothing allowed without one.
 *   admin      the broker's own user (super user)
 *   capulator  what gateways and workers use: everything on topics named capulator.*, any
 *              consumer group (each process folds and follows in groups of its own)
 *   reader     an auditor: read and describe capulator.* topics, any consumer group; no write
 */
export interface SecuredFacts {
  /** the PEM file of the CA that signed the broker's certificate */
  caFile: string;
  /** SCRAM-SHA-512 passwords by user */
  passwords: { admin: string; capulator: string; reader: string };
  /** kafkas://127.0.0.1:PORT?ca=CAFILE&sasl=scram-sha-512&user=USER (the password goes in CAPULATOR_KAFKA_PASSWORD) */
  urlFor(user: 'admin' | 'capulator' | 'reader'): string;
}

/** A CA and a certificate for 127.0.0.1 signed by it, in dir: ca.pem and keystore.pem (PKCS#8 key + certificate, as Kafka's PEM keystore takes it). */
function makeCertificates(dir: string): { ca: string; keystore: string } {
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=capulator test CA']);
  ossl(['req', ...ec, '-keyout', 'broker.key', '-out', 'broker.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ossl(['x509', '-req', '-in', 'broker.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'broker.crt', '-days', '2', '-extfile', 'san.ext']);
  ossl(['pkcs8', '-topk8', '-nocrypt', '-in', 'broker.key', '-out', 'broker.p8']);
  writeFileSync(join(dir, 'keystore.pem'), readFileSync(join(dir, 'broker.p8'), 'utf8') + readFileSync(join(dir, 'broker.crt'), 'utf8'));
  rmSync(join(dir, 'ca.key'));
  return { ca: join(dir, 'ca.pem'), keystore: join(dir, 'keystore.pem') };
}

/** The ACLs of SecuredFacts' users, created by the super user. */
async function grantAcls(brokers: string[], caFile: string, adminPassword: string): Promise<void> {
  const { Kafka, logLevel, AclResourceTypes: R, AclOperationTypes: O, AclPermissionTypes, ResourcePatternTypes: P } = await import('kafkajs');
  const admin = new Kafka({
    clientId: 'test-broker-acls',
    brokers,
    ssl: { ca: [readFileSync(caFile, 'utf8')] },
    sasl: { mechanism: 'scram-sha-512', username: 'admin', password: adminPassword },
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const allow = (user: string, resourceType: number, resourceName: string, resourcePatternType: number, operation: number) => ({
      principal: `User:${user}`, host: '*', resourceType, resourceName, resourcePatternType, operation, permissionType: AclPermissionTypes.ALLOW,
    });
    await admin.createAcls({
      acl: [
        allow('capulator', R.TOPIC, 'capulator.', P.PREFIXED, O.ALL),
        allow('capulator', R.GROUP, '*', P.LITERAL, O.ALL),
        allow('reader', R.TOPIC, 'capulator.', P.PREFIXED, O.READ),
        allow('reader', R.TOPIC, 'capulator.', P.PREFIXED, O.DESCRIBE),
        allow('reader', R.GROUP, '*', P.LITERAL, O.ALL),
      ],
    });
  } finally {
    await admin.disconnect();
  }
}

/**
 * A real Apache Kafka broker (KRaft, single node) on free loopback ports in a fresh directory,
 * started with infra/kafka/kafka.sh (jars from Maven Central), stopped and removed by stop().
 * `secured`: TLS, SCRAM users and ACLs (SecuredFacts); otherwise PLAINTEXT, no auth.
 */
export async function startTestBroker(opts: { secured?: boolean } = {}): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'capulator-kafka-'));
  const port = await freePort();
  let cport = await freePort();
  while (cport === port) cport = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(cport) };
  let secured: SecuredFacts | undefined;
  if (opts.secured) {
    const certs = makeCertificates(dir);
    const pw = () => randomBytes(12).toString('hex');
    const passwords = { admin: pw(), capulator: pw(), reader: pw() };
    Object.assign(env, {
      KAFKA_SECURITY: 'sasl_ssl',
      KAFKA_SCRAM_USERS: Object.entries(passwords).map(([u, p]) => `${u}:${p}`).join(' '),
      KAFKA_TLS_KEYSTORE: certs.keystore,
      KAFKA_TLS_CA: certs.ca,
    });
    secured = {
      caFile: certs.ca,
      passwords,
      urlFor: (user) => `kafkas://127.0.0.1:${port}?ca=${encodeURIComponent(certs.ca)}&sasl=scram-sha-512&user=${user}`,
    };
  }
  await kafkaSh(['start', dir], env);
  if (secured) {
    try {
      await grantAcls([`127.0.0.1:${port}`], secured.caFile, secured.passwords.admin);
    } catch (err) {
      await kafkaSh(['stop', dir], env).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
  // a test or benchmark that dies without stop() must not leave a 1 GB JVM behind: a watcher
  // stops the broker (and removes its directory) once this process is gone
  const q = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
  const watcher = spawn(
    'sh',
    ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; p=$(cat ${q(join(dir, 'broker.pid'))} 2>/dev/null) && { kill $p 2>/dev/null; sleep 10; kill -9 $p 2>/dev/null; }; rm -rf ${q(dir)}`],
    { detached: true, stdio: 'ignore' },
  );
  watcher.unref();
  return {
    brokers: [`127.0.0.1:${port}`],
    url: secured ? secured.urlFor('capulator') : `kafka://127.0.0.1:${port}`,
    ...(secured ? { secured } : {}),
    signal: (sig) => {
      process.kill(Number(readFileSync(join(dir, 'broker.pid'), 'utf8').trim()), sig);
    },
    restart: () => kafkaSh(['start', dir], env),
    stop: async () => {
      watcher.kill();
      await kafkaSh(['stop', dir], env);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
