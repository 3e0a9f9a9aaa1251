import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { Anchorer, anchorPaths, kafkaAnchorLog, SqliteEventStore, type EventStore } from '@capulator/events';
import { homePaths } from '@capulator/host';

/** A partitioned log (the Kafka store) whose folded heads can be anchored; told by shape, since the Kafka store's module (and kafkajs) is loaded only on the bus. */
function foldsHeads(s: EventStore): s is EventStore & { topic: string; foldedHeads(): Array<{ position: number; hash: string }> } {
  return typeof (s as { foldedHeads?: unknown }).foldedHeads === 'function' && typeof (s as { topic?: unknown }).topic === 'string';
}
import { RuntimeImageCatalog } from './adapters/images.adapter';
import { EventsReplayer } from './adapters/replay.adapter';
import { mountAllowList } from './runs/run-authorization';
import { runtimeRunFn } from '../../runtime/src/run/run-fn';
import { runOutput } from '../../runtime/src/run/run-output';
import { LibPolicyEngine } from './policies/policy-engine.adapter';
import { TokenStore } from './auth/token-store';
import { DomainError, PayloadTooLarge, UnsupportedMediaType, ValidationFailed } from './errors/domain.error';
import { toHttpError } from './errors/http-exception.filter';
import { GatewayModule, type GatewayAdapters } from './gateway.module';
import { gatewayOptions, type GatewayOptions, type HostPort } from './gateway.options';
import { GrpcGateway } from './grpc/grpc.server';
import { JsonLogger } from './logging/json-logger';
import { PoliciesService } from './policies/policies.service';
import { InProcessExecutor } from './runs/in-process.executor';
import { RunsService } from './runs/runs.service';
import { EventHub } from './store/event-hub';
import { validationPipe } from './validation';
import { consoleMiddleware } from './console/console.static';
import { ListenError } from './listen-error';

export const YAML_TYPES = ['application/yaml', 'text/yaml', 'application/x-yaml', 'text/x-yaml'];

export interface RunningGateway {
  app: NestExpressApplication;
  /** http://host:port */
  httpUrl: string;
  /** host:port, or undefined when gRPC is off */
  grpcAddress?: string;
  store: EventStore;
  hub: EventHub;
  openapi: OpenAPIObject;
  close(): Promise<void>;
}

/** Runs a body parser, answering its failures (too large, malformed) as JSON errors. */
function guarded(parser: RequestHandler, limit: number): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    parser(req, res, (err?: unknown) => {
      if (!err) return next();
      const e = err as { type?: string; status?: number; message?: string };
      const domain =
        e.type === 'entity.too.large'
          ? new PayloadTooLarge(limit)
          : e.type === 'entity.parse.failed'
            ? new ValidationFailed([{ field: 'body', messages: ['body is not valid JSON'] }])
            : e.type === 'encoding.unsupported' || e.type === 'charset.unsupported'
              ? new DomainError('unsupported_media_type', e.message ?? 'unsupported encoding')
              : new DomainError('validation_failed', e.message ?? 'bad request body');
      const { status, body } = toHttpError(domain);
      res.status(status).json(body);
    });
  };
}

/** Routes whose body is JSON: any other content type is 415 (not a confusing field error). */
const JSON_ROUTES = new Set(['/v1/runs', '/v1/replays', '/v1/images/pull']);
function jsonOnly(req: Request, res: Response, next: NextFunction): void {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  if (req.method === 'POST' && JSON_ROUTES.has(req.path) && hasBody && !req.is(['application/json', 'application/*+json'])) {
    const { status, body } = toHttpError(new UnsupportedMediaType('application/json'));
    res.status(status).json(body);
    return;
  }
  next();
}

export function openApiDocument(app: NestExpressApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('capulator')
    .setDescription('Runs Linux binaries from OCI/Docker images with every use of privilege decided by a priv(9)-style policy and recorded as events. Every route but /healthz and /readyz needs `Authorization: Bearer <token>` (tokens: `capulator token create`).')
    .setVersion('1')
    .addBearerAuth()
    .build();
  return SwaggerModule.createDocument(app, config);
}

/** Builds the adapters, boots Nest (HTTP) and the gRPC server, and starts following the store. */
export async function startGateway(partial: Partial<GatewayOptions> & { home: string }): Promise<RunningGateway> {
  const options = gatewayOptions(partial);
  mkdirSync(options.home, { recursive: true, mode: 0o700 });
  // resolved once; an --allow-mount that is missing or overlaps the state directory stops the server
  options.allowMounts = [...mountAllowList(options.allowMounts ?? [], options.home).dirs];
  const logger = new JsonLogger(options.logLevel);
  // the runs' output outlives this process (GET /v1/runs/{id}/logs after a restart)
  runOutput.persist(homePaths(options.home).logs, (m) => logger.warn({ msg: m }, 'runtime'));
  const ownStore = !options.store;
  const store = options.store ?? SqliteEventStore.open(join(options.home, 'events.db'), { checkpoint: 'background' });
  const hub = new EventHub(store);
  const executor =
    options.executor ??
    new InProcessExecutor(store, options.runFn ?? runtimeRunFn({ home: options.home }), {
      concurrency: options.concurrency,
      maxQueued: options.maxQueued,
      onAppended: (events) => hub.publish(events),
      onError: (runId, err) => logger.error({ msg: 'run failed in the runtime', runId, err: (err as Error)?.stack ?? String(err) }, 'runtime'),
      runsDir: homePaths(options.home).runs,
    });
  const adapters: GatewayAdapters = {
    options,
    store,
    hub,
    executor,
    engine: options.policyEngine ?? new LibPolicyEngine(),
    images: options.images ?? new RuntimeImageCatalog(options.home),
    replayer: options.replayer ?? new EventsReplayer(store, { ...(options.replayTimeoutMs ? { timeoutMs: options.replayTimeoutMs } : {}) }),
    tokens: new TokenStore(join(options.home, 'tokens.json')),
    // the head anchored outside the log at each run's end: the SQLite store's, or each Kafka partition's
    anchorer:
      store instanceof SqliteEventStore
        ? new Anchorer(anchorPaths(options.home), () => store.head(), (m) => logger.warn({ msg: m }, 'anchors'))
        : foldsHeads(store)
          ? new Anchorer(anchorPaths(options.home), () => store.foldedHeads(), (m) => logger.warn({ msg: m }, 'anchors'), { log: kafkaAnchorLog(store.topic) })
          : null,
  };

  const app = await NestFactory.create<NestExpressApplication>(GatewayModule.forRoot(adapters), { bodyParser: false, logger, abortOnError: false, forceCloseConnections: true });
  app.useGlobalPipes(validationPipe());
  // the audit console (public assets; the data behind them needs the bearer token)
  app.use(consoleMiddleware());
  app.use(jsonOnly);
  app.use(guarded(express.json({ limit: options.jsonLimit, type: ['application/json', 'application/*+json'] }), options.jsonLimit));
  app.use(guarded(express.text({ limit: options.yamlLimit, type: YAML_TYPES }), options.yamlLimit));
  app.disable('x-powered-by');
  app.enableShutdownHooks([]);
  const openapi = openApiDocument(app);
  SwaggerModule.setup('docs', app, openapi, { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
  await app.init();
  await hub.start();

  let grpc: GrpcGateway | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // stop taking requests first, then the runs, then the log
      await grpc?.close();
      await app.close();
      await executor.close();
      await hub.close();
      // the anchor of the last runs' ends is on disk before the process goes
      await adapters.anchorer?.settled();
      if (ownStore) await store.close();
    })());
  // an address it cannot listen on ends what was started and says why, for `capulator serve` to say it in one line
  const listening = async <T>(flag: 'http' | 'grpc', at: HostPort, listen: () => Promise<T>): Promise<T> => {
    try {
      return await listen();
    } catch (err) {
      await close().catch(() => undefined);
      throw new ListenError(flag, at, err);
    }
  };

  const server = (await listening('http', options.http, () => app.listen(options.http.port, options.http.host))) as Server;
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const httpUrl = `http://${host}:${addr.port}`;
  // where a worker fetches an image this gateway got from an archive (registry.controller.ts)
  const wildcard = addr.address === '0.0.0.0' || addr.address === '::';
  adapters.images.serveAt?.(options.advertise ?? `${wildcard ? hostname() : host}:${addr.port}`);

  let grpcAddress: string | undefined;
  if (options.grpc) {
    grpc = new GrpcGateway({
      tokens: adapters.tokens,
      runs: app.get(RunsService),
      policies: app.get(PoliciesService),
      engine: adapters.engine,
      replayer: adapters.replayer,
      logger,
    });
    const at = options.grpc;
    const port = await listening('grpc', at, () => grpc!.listen(at));
    grpcAddress = `${options.grpc.host.includes(':') ? `[${options.grpc.host}]` : options.grpc.host}:${port}`;
  }
  logger.log({ msg: 'gateway listening', http: httpUrl, grpc: grpcAddress ?? null, home: options.home }, 'gateway');
  return { app, httpUrl, grpcAddress, store, hub, openapi, close };
}
