import * as grpc from '@grpc/grpc-js';
import type { LoggerService } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import type { StoredEvent } from '@capulator/events';
import { authenticate } from '../auth/auth.guard';
import type { Scope } from '../auth/scopes';
import type { Principal, TokenStore } from '../auth/token-store';
import { DomainError, ValidationFailed } from '../errors/domain.error';
import type { HostPort } from '../gateway.options';
import type { PolicyEngine } from '../policies/policy-engine';
import type { PoliciesService } from '../policies/policies.service';
import { replay } from '../replays/replays.controller';
import { ReplayDto } from '../replays/dto/replay.dto';
import type { Replayer } from '../replays/replayer';
import { ListRunsQuery, ResizeTtyDto } from '../runs/dto/run.dto';
import { SubmitRunDto } from '../runs/dto/submit-run.dto';
import { isTerminal, type RunView } from '../runs/run-view';
import type { RunsService } from '../runs/runs.service';
import { validateDto } from '../validation';
import { toGrpcError } from './grpc-errors';
import { loadCapulatorService, protoPath } from './proto';
import * as protobuf from 'protobufjs';
import { checkWire, WireError } from './wire-check';
import { runOutput } from '../../../runtime/src/run/run-output';
import { RUN_INPUT_MAX_WRITE_BYTES } from '../../../runtime/src/run/run-input';

/** Set on a request whose bytes did not pass checkWire (answered INVALID_ARGUMENT after auth). */
const MALFORMED = Symbol('malformed');

/** The service with each request checked on the wire before protobufjs decodes it. */
function strictService(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const root = protobuf.loadSync(protoPath());
  const svc = root.lookupService('capulator.v1.Capulator');
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    const method = svc.methods[m.originalName ?? name] ?? svc.methods[name];
    method.resolve();
    const type = method.resolvedRequestType!;
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        try {
          checkWire(type, buf);
        } catch (e) {
          if (e instanceof WireError) return { [MALFORMED]: e.message };
          throw e;
        }
        return m.requestDeserialize(buf);
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

function wellFormed(req: unknown): void {
  const bad = (req as { [MALFORMED]?: string } | null)?.[MALFORMED];
  if (bad !== undefined) throw new ValidationFailed([{ field: '(message)', messages: [bad] }], `malformed request: ${bad}`);
}

export interface GrpcDeps {
  tokens: TokenStore;
  runs: RunsService;
  policies: PoliciesService;
  engine: PolicyEngine;
  replayer: Replayer;
  logger: LoggerService;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function runId(id: unknown): string {
  if (typeof id !== 'string' || !UUID_RE.test(id)) throw new ValidationFailed([{ field: 'id', messages: ['id must be a UUID'] }]);
  return id;
}

/** Drops proto3 defaults (empty strings, arrays, maps) so validation sees what the client set. */
function present(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    // proto3 `optional` fields come with a synthetic oneof (`_policy: 'policy'`): not a field
    if (k.startsWith('_')) continue;
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out;
}

export function toProtoRun(r: RunView) {
  return {
    id: r.id,
    status: r.status,
    image: r.image,
    imageDigest: r.imageDigest ?? '',
    command: r.command,
    policy: r.policy ?? undefined,
    learn: r.learn,
    counts: r.counts,
    ...(typeof r.exitCode === 'number' ? { exitCode: r.exitCode } : {}),
    ...(r.signal ? { signal: r.signal } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    requestedAt: r.requestedAt,
    ...(r.requestedBy ? { requestedBy: r.requestedBy } : {}),
    startedAt: r.startedAt ?? '',
    endedAt: r.endedAt ?? '',
    position: r.position,
  };
}

export function toProtoEvent(e: StoredEvent) {
  return {
    position: e.position,
    streamId: e.streamId,
    streamVersion: e.streamVersion,
    type: e.type,
    schemaVersion: e.schemaVersion,
    at: e.at,
    payloadJson: JSON.stringify(e.payload),
    prevHash: e.prevHash,
    hash: e.hash,
  };
}

/** The gRPC face of the gateway: the same services, token auth and validation as HTTP. */
export class GrpcGateway {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': 2 * 1024 * 1024 });
  private port = 0;

  constructor(private readonly deps: GrpcDeps) {
    const d = deps;
    const Service = loadCapulatorService();
    this.server.addService(strictService(Service.service), {
      SubmitRun: this.unary('runs:write', async (req, who) => {
        const fields = present(req);
        // a message inside the message: its proto3 `optional`s come with synthetic oneofs too
        if (fields.workload) fields.workload = present(fields.workload as Record<string, unknown>);
        const dto = await validateDto(SubmitRunDto, fields);
        return d.runs.submit(dto, who);
      }),
      GetRun: this.unary('runs:read', async (req) => toProtoRun(d.runs.get(runId(req.id)))),
      ListRuns: this.unary('runs:read', async (req) => {
        const q = await validateDto(ListRunsQuery, present(req));
        return { runs: d.runs.list(q).map(toProtoRun) };
      }),
      StopRun: this.unary('runs:write', async (req, who) => toProtoRun(await d.runs.stop(runId(req.id), who))),
      WatchRun: this.watch(),
      RunLogs: this.logs(),
      WriteStdin: this.stdin(),
      ResizeTty: this.unary('runs:write', async (req, who) => {
        const dto = await validateDto(ResizeTtyDto, { rows: req.rows, cols: req.cols });
        await d.runs.resizeTty(runId(req.id), { rows: dto.rows, cols: dto.cols }, who);
        return {};
      }),
      PublishPolicy: this.unary('policies:write', async (req, who) => {
        if (typeof req.yaml !== 'string' || req.yaml === '') throw new ValidationFailed([{ field: 'yaml', messages: ['yaml must not be empty'] }]);
        if (Buffer.byteLength(req.yaml) > 1024 * 1024) throw new ValidationFailed([{ field: 'yaml', messages: ['yaml must be at most 1 MiB'] }]);
        return d.policies.publish(req.yaml, who.name);
      }),
      Replay: this.unary('audit:read', async (req, _who, signal) => {
        const dto = await validateDto(ReplayDto, present(req));
        const report = await replay(d.policies, d.engine, d.replayer, dto, signal);
        return { reportJson: JSON.stringify(report), examined: report.examined, changed: report.changed, wouldDeny: report.wouldDeny };
      }),
    });
  }

  get boundPort(): number {
    return this.port;
  }

  async listen(at: HostPort): Promise<number> {
    const host = at.host.includes(':') ? `[${at.host}]` : at.host;
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${at.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    return this.port;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private principal(md: grpc.Metadata, scope: Scope): Principal {
    const v = md.get('authorization')[0];
    return authenticate(this.deps.tokens, typeof v === 'string' ? v : v?.toString('utf8'), scope);
  }

  private fail(err: unknown, method: string): Partial<grpc.ServiceError> {
    if (!(err instanceof DomainError)) this.deps.logger.error({ msg: 'grpc call failed', method, err: (err as Error)?.stack ?? String(err) }, 'grpc');
    return toGrpcError(err);
  }

  private unary(scope: Scope, fn: (req: Record<string, unknown> & { id?: unknown; yaml?: unknown }, who: Principal, cancelled: AbortSignal) => Promise<unknown>): grpc.handleUnaryCall<any, any> {
    return (call, callback) => {
      let who: Principal;
      try {
        who = this.principal(call.metadata, scope);
        wellFormed(call.request);
      } catch (err) {
        callback(this.fail(err, call.getPath()));
        return;
      }
      const cancelled = new AbortController();
      call.once('cancelled', () => cancelled.abort());
      fn(call.request, who, cancelled.signal).then(
        (res) => callback(null, res),
        (err) => callback(this.fail(err, call.getPath())),
      );
    };
  }

  /** WriteStdin: each message's bytes to the run's stdin, in order, as POST /v1/runs/{id}/stdin takes them. */
  private stdin(): grpc.handleClientStreamingCall<any, any> {
    return (call, callback) => {
      const path = call.getPath();
      let who: Principal;
      try {
        who = this.principal(call.metadata, 'runs:write');
      } catch (err) {
        callback(this.fail(err, path));
        return;
      }
      (async () => {
        let id: string | undefined;
        let written = 0;
        // one message at a time: the next is read once the run has taken this one
        for await (const m of call as AsyncIterable<{ id?: unknown; data?: Buffer; eof?: boolean }>) {
          wellFormed(m);
          const mid = runId(m.id);
          if (id !== undefined && mid !== id) throw new ValidationFailed([{ field: 'id', messages: ['every message must name the same run'] }]);
          id = mid;
          const data = m.data ?? Buffer.alloc(0);
          if (data.length > RUN_INPUT_MAX_WRITE_BYTES) throw new ValidationFailed([{ field: 'data', messages: [`data must be at most ${RUN_INPUT_MAX_WRITE_BYTES} bytes`] }]);
          await this.deps.runs.writeStdin(id, data, m.eof === true, who);
          written += data.length;
          if (m.eof) break;
        }
        return written;
      })().then(
        (written) => callback(null, { written }),
        (err) => callback(this.fail(err, path)),
      );
    };
  }

  /** RunLogs: the run's output as GET /v1/runs/{id}/logs streams it. */
  private logs(): grpc.handleServerStreamingCall<any, any> {
    return (call) => {
      let stop: (() => void) | undefined;
      try {
        this.principal(call.metadata, 'runs:read');
        wellFormed(call.request);
        const id = runId(call.request.id);
        const after = Number(call.request.after ?? 0);
        if (!Number.isSafeInteger(after) || after < 0) throw new ValidationFailed([{ field: 'after', messages: [`after must be a chunk number from 0 to ${Number.MAX_SAFE_INTEGER}`] }]);
        const run = this.deps.runs.get(id); // NOT_FOUND for a run this server does not know
        stop = runOutput.read(
          id,
          after,
          call.request.follow === true,
          (c) => call.write({ seq: c.seq, stream: c.stream, text: c.text, time: c.time, end: false, truncated: false }),
          () => {
            call.write({ seq: 0, stream: '', text: '', time: '', end: true, truncated: runOutput.truncated(id) });
            call.end();
          },
          isTerminal(run.status),
        );
        call.on('cancelled', () => stop?.());
      } catch (err) {
        stop?.();
        call.emit('error', this.fail(err, call.getPath()));
      }
    };
  }

  private watch(): grpc.handleServerStreamingCall<any, any> {
    return (call) => {
      let sub: Subscription | undefined;
      try {
        this.principal(call.metadata, 'runs:read');
        wellFormed(call.request);
        const id = runId(call.request.id);
        const after = Number(call.request.after ?? 0);
        // uint64 arrives as a Number: above 2^53 - 1 it is no longer the position the client sent
        if (!Number.isSafeInteger(after) || after < 0) throw new ValidationFailed([{ field: 'after', messages: [`after must be a position from 0 to ${Number.MAX_SAFE_INTEGER}`] }]);
        sub = this.deps.runs.watch(id, after).subscribe({
          next: (e) => call.write(toProtoEvent(e)),
          error: (err) => call.emit('error', this.fail(err, call.getPath())),
          complete: () => call.end(),
        });
        call.on('cancelled', () => sub?.unsubscribe());
      } catch (err) {
        sub?.unsubscribe();
        // grpc-js: an 'error' on a server stream becomes its status (destroy() would send none)
        call.emit('error', this.fail(err, call.getPath()));
      }
    };
  }
}
