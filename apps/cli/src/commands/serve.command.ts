import { Command } from 'commander';
import { homePaths } from '@capulator/host';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from '../cli-error';
import type { RunSocket } from './run-socket';
import { addBusOptions, serveOnBus } from './serve-bus';

/**
 * `capulator serve` — the gateway (HTTP + gRPC) and the runtime in one process, on the
 * embedded SQLite store. Nest is loaded only here (lazily), never on other commands' paths.
 */
export function registerServeCommands(program: Command): void {
  const serve = program
    .command('serve')
    .description('serve the HTTP API (OpenAPI at /docs) and the gRPC API, with the runtime in the same process, and the run socket of `capulator run`')
    .option('--http <host:port>', 'HTTP listen address ("off", with --grpc off: only the run socket)', '127.0.0.1:8420')
    .option('--grpc <host:port>', 'gRPC listen address ("off" to disable)', '127.0.0.1:8421')
    .option('--concurrency <n>', 'runs executing at once', '4')
    .option('--max-upload <bytes>', 'largest image upload accepted (bytes)', String(8 * 1024 * 1024 * 1024))
    .option('--log-level <level>', 'log, warn, error, debug or silent', 'log')
    .option('--allow-mount <dir>', 'a directory bind-mount sources may come from (repeatable; none by default; never $CAPULATOR_HOME or above it)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--advertise <host:port>', 'with --bus: where workers reach this gateway to fetch the images it got from archives (default: the --http address, the host name for 0.0.0.0)')
    .option('--no-run-socket', 'do not serve $CAPULATOR_HOME/run.sock (where `capulator run` hands its runs to this process)');
  addBusOptions(serve).action(
    async (opts: { http: string; grpc: string; concurrency: string; maxUpload: string; logLevel: string; bus?: string; role: string; partitions?: string; runSocket: boolean; allowMount: string[]; advertise?: string }) => {
      const { parseHostPort } = await import('../../../gateway/src/gateway.options');
      const addr = (text: string, flag: string) => {
        try {
          return parseHostPort(text);
        } catch (err) {
          throw new CliError(`${flag}: ${(err as Error).message}`);
        }
      };
      if (opts.http === 'off' && opts.grpc !== 'off') throw new CliError('--http off needs --grpc off (the gRPC API is served beside the HTTP one)');
      const http = opts.http === 'off' ? false : addr(opts.http, '--http');
      const grpc = opts.grpc === 'off' ? false : addr(opts.grpc, '--grpc');
      const concurrency = Number(opts.concurrency);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new CliError('--concurrency must be a positive integer');
      const imageUploadLimit = Number(opts.maxUpload);
      if (!Number.isSafeInteger(imageUploadLimit) || imageUploadLimit < 1) throw new CliError('--max-upload must be a number of bytes');
      if (!['log', 'warn', 'error', 'debug', 'verbose', 'silent'].includes(opts.logLevel)) throw new CliError('--log-level must be log, warn, error, debug or silent');
      const { home } = homePaths();
      const { mountAllowList } = await import('../../../gateway/src/runs/run-authorization');
      let allowMounts: string[];
      try {
        mkdirSync(home, { recursive: true, mode: 0o700 });
        allowMounts = [...mountAllowList(opts.allowMount, home).dirs];
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      if (opts.bus === undefined || opts.role !== 'gateway') {
        // this process runs containers: each run's kernel record (its BPF program loaded) and agent
        // are started while no run waits (apps/runtime/src/run/spares.ts)
        const { keepSpares, kernelRecordBinary, agentBinaryPath } = await import('../../../runtime/src/run/spares');
        const { repoRoot } = await import('@capulator/host');
        keepSpares('kernel-record', kernelRecordBinary(repoRoot()));
        keepSpares('agent', agentBinaryPath(repoRoot()));
      }
      if (opts.bus !== undefined) {
        // Kafka: event store + command bus; --role gateway|runtime|all (serve-bus.ts)
        if (!http) throw new CliError('--http off is not supported with --bus');
        if (opts.advertise !== undefined) addr(opts.advertise, '--advertise');
        await serveOnBus({ bus: opts.bus, role: opts.role, home, http, grpc, concurrency, imageUploadLimit, logLevel: opts.logLevel, allowMounts, ...(opts.advertise !== undefined ? { advertise: opts.advertise } : {}), ...(opts.partitions !== undefined ? { partitions: Number(opts.partitions) } : {}) });
        return;
      }
      if (opts.role !== 'all') throw new CliError('--role needs --bus (without a bus, gateway and runtime share this process)');
      if (!http && !opts.runSocket) throw new CliError('nothing to serve: --http off and --no-run-socket');
      // one embedded store for the gateway and the runs handed over on the run socket
      const { SqliteEventStore } = await import('@capulator/events');
      const store = SqliteEventStore.open(join(home, 'events.db'), { checkpoint: 'background' });
      let gw: { httpUrl: string; grpcAddress?: string; close(): Promise<void> } | undefined;
      let sock: RunSocket | undefined;
      try {
        if (opts.runSocket) {
          const { listenRunSocket, RunSocketBusy } = await import('./run-socket');
          try {
            sock = await listenRunSocket({ home, store });
          } catch (err) {
            // a second server on the same home still serves its APIs; runs go to the first one
            if (!(err instanceof RunSocketBusy) || !http) throw err;
            process.stderr.write(`capulator: warning: ${err.message}; this one serves no run socket\n`);
          }
        }
        if (http) {
          const { startGateway } = await import('../../../gateway/src/gateway.app');
          const { ListenError } = await import('../../../gateway/src/listen-error');
          try {
            gw = await startGateway({ home, http, grpc, concurrency, imageUploadLimit, logLevel: opts.logLevel as 'log', store, allowMounts });
          } catch (err) {
            // in use, not this host's, no such host, not permitted: the gateway has stopped what it started
            if (err instanceof ListenError) throw new CliError(err.message);
            throw err;
          }
        }
      } catch (err) {
        await sock?.close(0);
        await store.close();
        throw err;
      }
      process.stdout.write(`capulator serving http ${gw?.httpUrl ?? 'off'} grpc ${gw?.grpcAddress ?? 'off'} run socket ${sock?.path ?? 'off'} (home ${home})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          // no new runs; those in progress finish (their clients wait for them), then the rest
          void (async () => {
            await sock?.close();
            await gw?.close();
            await store.close();
          })().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    },
  );
}
