import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
}

/**
 * A real Apache Kafka broker (KRaft, single node) on free loopback ports in a fresh directory,
 * started with infra/kafka/kafka.sh (jars from Maven Central), stopped and removed by stop().
 */
export async function startTestBroker(): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'capulator-kafka-'));
  const port = await freePort();
  let cport = await freePort();
  while (cport === port) cport = await freePort();
  const env = { ...process.env, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(cport) };
  await kafkaSh(['start', dir], env);
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
    url: `kafka://127.0.0.1:${port}`,
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
