import type { Command } from 'commander';
import { CliError } from '../cli-error';
import type { KafkaConnection } from '@capulator/events';

export type ServeRole = 'gateway' | 'runtime' | 'all';

export interface ServeOnBusOptions {
  /** kafka://HOST:PORT[,HOST:PORT…] */
  bus: string;
  role: string;
  home: string;
  http: { host: string; port: number };
  grpc: { host: string; port: number } | false;
  concurrency: number;
  imageUploadLimit?: number;
  /** --allow-mount directories (bind-mount sources; run-authorization.ts) */
  allowMounts?: string[];
  /** host:port at which workers fetch this gateway's archive images (GatewayOptions.advertise) */
  advertise?: string;
  logLevel: string;
  /** partitions of capulator.commands and capulator.events when this process creates them */
  partitions?: number;
}

/** Adds `--bus` and `--role` to `capulator serve`. */
export function addBusOptions(cmd: Command): Command {
  return cmd
    .option('--bus <url>', 'scale out on Apache Kafka: kafka://HOST:PORT[,HOST:PORT…] (event store + command bus); kafkas://… for TLS, ?sasl=scram-sha-512&user=NAME with $CAPULATOR_KAFKA_PASSWORD (docs/scale-out.md)')
    .option('--role <role>', 'with --bus: gateway (HTTP + gRPC), runtime (a worker, no HTTP) or all', 'all')
    .option('--partitions <n>', 'with --bus: partitions of the event log and the command topic when this process creates them (default 4 and 8)');
}

/**
 * `capulator serve --bus kafka://… --role gateway|runtime|all`: the gateway on the Kafka event
 * store with the Kafka command bus as its runtime, and/or a runtime worker in the
 * `capulator-runtime` consumer group. Returns when SIGINT/SIGTERM has shut everything down.
 */
export async function serveOnBus(o: ServeOnBusOptions): Promise<void> {
  const { connectKafkaEventStore, kafkaClientConfig, parseKafkaBus } = await import('@capulator/events');
  if (!/^kafkas?:\/\//.test(o.bus)) throw new CliError('--bus: expected kafka://HOST:PORT (kafkas:// for TLS)');
  let conn: KafkaConnection;
  try {
    conn = kafkaClientConfig(parseKafkaBus(o.bus));
  } catch (err) {
    throw new CliError(`--bus: ${(err as Error).message}`);
  }
  if (o.partitions !== undefined && !(Number.isInteger(o.partitions) && o.partitions >= 1 && o.partitions <= 1024)) throw new CliError('--partitions must be an integer from 1 to 1024');
  if (!['gateway', 'runtime', 'all'].includes(o.role)) throw new CliError('--role must be gateway, runtime or all');
  const role = o.role as ServeRole;
  const { logLevelEnabled } = await import('../../../gateway/src/logging/json-logger');
  // the worker's and the store's records, at --log-level as the gateway's (every step of every run
  // is a `log` record; at `error` they were all printed)
  const log = (rec: Record<string, unknown>) => {
    if (logLevelEnabled(o.logLevel as 'log', String(rec.level ?? 'log'))) process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: 'log', context: 'runtime-worker', ...rec }) + '\n');
  };

  let store;
  try {
    // a worker alone folds only the partitions of the runs it handles
    store = await connectKafkaEventStore({ ...conn, lazy: role === 'runtime', ...(o.partitions ? { partitions: o.partitions } : {}), log: (r) => log({ context: 'kafka-event-store', ...r }) });
  } catch (err) {
    throw new CliError(`cannot reach the Kafka bus at ${o.bus}: ${(err as Error).message}`);
  }
  // later `audit`/`ps` in this home read this log, not an empty events.db
  const { recordHomeBus } = await import('./event-log');
  recordHomeBus(o.home, o.bus);
  const closers: Array<() => Promise<void>> = [];
  try {
    if (role === 'runtime' || role === 'all') {
      // the runtime app (apps/runtime/src/main.ts): the worker in its Nest context
      const { startRuntime } = await import('../../../runtime/src/main');
      const worker = await startRuntime({ bus: conn, store, home: o.home, concurrency: o.concurrency, partitions: o.partitions, log });
      closers.push(() => worker.close());
      process.stdout.write(`capulator runtime worker ${worker.id} on ${o.bus} (home ${o.home})\n`);
    }
    if (role === 'gateway' || role === 'all') {
      const { KafkaRunExecutor } = await import('../../../gateway/src/bus/kafka-run.executor');
      const { startGateway } = await import('../../../gateway/src/gateway.app');
      const executor = await KafkaRunExecutor.connect({ ...conn, partitions: o.partitions, log: (r) => log({ context: 'run-io', ...r }) });
      let gw;
      try {
        gw = await startGateway({
          home: o.home,
          http: o.http,
          grpc: o.grpc,
          concurrency: o.concurrency,
          ...(o.imageUploadLimit ? { imageUploadLimit: o.imageUploadLimit } : {}),
          ...(o.allowMounts ? { allowMounts: o.allowMounts } : {}),
          ...(o.advertise ? { advertise: o.advertise } : {}),
          logLevel: o.logLevel as 'log',
          store,
          executor,
        });
      } catch (err) {
        await executor.close();
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') throw new CliError(`cannot listen: ${e.message}`);
        throw err;
      }
      closers.unshift(() => gw.close());
      process.stdout.write(`capulator serving http ${gw.httpUrl} grpc ${gw.grpcAddress ?? 'off'} (home ${o.home}, bus ${o.bus}, role ${role})\n`);
    }
  } catch (err) {
    for (const c of closers) await c().catch(() => undefined);
    await store.close();
    throw err;
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void (async () => {
        // each step is bounded: a client stuck on a broker that came back changed (a long pause,
        // a restart) must not keep the process from ending
        for (const c of [...closers, () => store.close()]) {
          await withDeadline(c(), SHUTDOWN_STEP_MS).catch((err) => log({ level: 'error', msg: 'shutdown step failed', err: String(err) }));
        }
      })().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** How long one shutdown step may take: longer than the worker's drain of its running runs (30 s) and its bounded broker steps. */
const SHUTDOWN_STEP_MS = 60_000;

function withDeadline(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms / 1000} s; going on`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
