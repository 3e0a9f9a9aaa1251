import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { CommandBus } from '@nestjs/cqrs';
import type { EventStore, KafkaConnection } from '@capulator/events';
import { runtimeRunFn } from './run/run-fn';
import { RuntimeWorker } from './worker';
import { ExecuteRunCommand, RuntimeEvents, RuntimeModule, type RuntimeLog } from './runtime.module';
import type { WorkerRunFn } from './worker/commands';

/**
 * The runtime app: a worker of the `capulator-runtime` consumer group on the Kafka bus, in a Nest
 * application context (@nestjs/cqrs: what the worker appends goes on the EventBus, routed by
 * `type`). `capulator serve --bus kafka://… --role runtime` starts it; so does
 * `node dist/apps/runtime/src/main.js` with CAPULATOR_BUS=kafka://… (and CAPULATOR_HOME).
 */
export interface RuntimeAppOptions {
  /** the brokers and how to authenticate to them */
  bus: KafkaConnection;
  /** the shared event store (KafkaEventStore) */
  store: EventStore;
  home: string;
  concurrency: number;
  partitions?: number;
  log: RuntimeLog;
  /** what executes a run (default: the Runner, runc + the agent) */
  run?: WorkerRunFn;
}

export interface RuntimeApp {
  id: string;
  close(): Promise<void>;
}

export async function startRuntime(o: RuntimeAppOptions): Promise<RuntimeApp> {
  const app = await NestFactory.createApplicationContext(RuntimeModule.forRoot(o.log, o.run ?? runtimeRunFn({ home: o.home })), { logger: false, abortOnError: false });
  await app.init();
  const events = app.get(RuntimeEvents);
  const commands = app.get(CommandBus);
  // a claimed run is executed through the CommandBus (ExecuteRunHandler); what it appends goes on the EventBus
  const run: WorkerRunFn = (order, { signal }) => ({
    async *[Symbol.asyncIterator]() {
      yield* await commands.execute(new ExecuteRunCommand(order, signal));
    },
  });
  let worker: RuntimeWorker;
  try {
    worker = await RuntimeWorker.start({
      ...o.bus,
      store: o.store,
      run,
      concurrency: o.concurrency,
      partitions: o.partitions,
      log: o.log,
      onAppended: (stored) => events.appended(stored),
    });
  } catch (err) {
    await app.close();
    throw err;
  }
  return {
    id: worker.id,
    close: async () => {
      await worker.close();
      await app.close();
    },
  };
}

async function main(): Promise<void> {
  const { capulatorHome } = await import('@capulator/host');
  const { connectKafkaEventStore, kafkaClientConfig, parseKafkaBus } = await import('@capulator/events');
  const bus = process.argv[2] ?? process.env.CAPULATOR_BUS;
  if (!bus || !/^kafkas?:\/\//.test(bus)) {
    process.stderr.write('capulator-runtime: give the bus: main.js kafka://HOST:PORT (or $CAPULATOR_BUS)\n');
    process.exit(2);
  }
  let conn: KafkaConnection;
  try {
    conn = kafkaClientConfig(parseKafkaBus(bus));
  } catch (err) {
    process.stderr.write(`capulator-runtime: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log: RuntimeLog = (rec) => process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: 'log', context: 'runtime-worker', ...rec }) + '\n');
  const store = await connectKafkaEventStore({ ...conn });
  const concurrency = Number(process.env.CAPULATOR_CONCURRENCY ?? 4);
  const rt = await startRuntime({ bus: conn, store, home: capulatorHome(), concurrency, log });
  process.stdout.write(`capulator runtime worker ${rt.id} on ${bus}\n`);
  const stop = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    void rt.close().then(() => store.close());
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`capulator-runtime: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  });
}
