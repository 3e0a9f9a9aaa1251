import { constants as osConstants } from 'node:os';
import { CliError } from '../cli-error';
import { LogPrinter, lastLines, type LogChunk } from '../log-lines';
import { readPolicyFile } from '../policy-file';
import { RUN_INPUT_MAX_WRITE_BYTES } from '../../../runtime/src/run/run-input';

/** A capulator server and the token to use with it. */
export interface RemoteTarget {
  server: string;
  token: string;
  signal?: AbortSignal;
}

/** `capulator run --server URL --token T …`: submit to a server and follow the run over SSE. */
export interface RemoteRunOptions extends RemoteTarget {
  image: string;
  /** after the image's Entrypoint (or `entrypoint`), in place of its Cmd when non-empty (docker run IMAGE ARG…) */
  command: string[];
  /** replaces the image's Entrypoint, whose Cmd is then not used (docker run --entrypoint) */
  entrypoint?: string[];
  /** K=V */
  env?: string[];
  /** a published policy, "name" or "name@version" */
  policy?: string;
  /** a local policy file, sent inline */
  policyFile?: string;
  learn?: boolean;
  /** the workload flags in their own words (POST /v1/runs `workload`) */
  workload?: Record<string, unknown>;
  /** print every event as one JSON line on stdout */
  json?: boolean;
  /** print decisions as they happen (stderr) */
  verbose?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** -d: return once the run has started, printing its id (the run goes on on the server) */
  detach?: boolean;
  /** -i: sent to the run's stdin (POST v1/runs/ID/stdin), closed at its end */
  stdin?: NodeJS.ReadableStream;
  /** -t: this terminal's size is the run's (POST v1/runs/ID/resize, now and on each change) */
  terminal?: { rows: number; columns: number; on(e: 'resize', fn: () => void): unknown; off(e: 'resize', fn: () => void): unknown };
  /** -it: this terminal's input is set raw while the run goes on (keys, ^C included, go to the program) */
  raw?: { setRawMode(on: boolean): unknown };
}

export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** Parses a text/event-stream body into messages (the subset the gateway emits). */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + (buf[i] === '\r' ? 4 : 2));
      const msg: SseMessage = { data: '' };
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line === '' || line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'data') data.push(value);
        else if (field === 'id') msg.id = value;
        else if (field === 'event') msg.event = value;
      }
      if (data.length === 0 && msg.id === undefined) continue;
      msg.data = data.join('\n');
      yield msg;
    }
  }
}

async function api(opts: RemoteTarget, method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Response> {
  const url = new URL(path, opts.server.endsWith('/') ? opts.server : opts.server + '/');
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${opts.token}`, ...(body !== undefined ? { 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' } : {}), ...extra },
      body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
      signal: opts.signal,
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new CliError(`cannot reach ${opts.server}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, 1);
  }
  if (!res.ok && res.status !== 202) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const e = (await res.json()) as { error?: { message?: string; details?: unknown } };
      if (e.error?.message) message = e.error.message;
      const details = e.error?.details;
      if (Array.isArray(details)) {
        const lines = details.map((d: { field?: string; location?: string; messages?: string[]; message?: string }) =>
          d.location ? `${d.location}: ${d.message}` : `${d.field}: ${(d.messages ?? []).join(', ')}`,
        );
        message += lines.length ? ` (${lines.join('; ')})` : '';
      }
    } catch {
      // not JSON: keep the status line
    }
    // 409: the run's state (not running, already ended), as the local commands' exit 1
    throw new CliError(`server refused ${method} ${url.pathname}: ${message}`, res.status >= 400 && res.status < 500 && res.status !== 409 ? 2 : 1);
  }
  return res;
}

function describeDecision(type: string, p: Record<string, any>): string {
  const privs = Array.isArray(p.privileges) && p.privileges.length ? p.privileges.join(',') : '-';
  const rule = p.ruleId ? ` rule ${p.ruleId}` : ' (default)';
  return `capulator: ${p.decision} ${type === 'PrivilegeChecked' ? privs : type} ${p.syscall} by ${p.subject?.exe ?? '?'} pid ${p.subject?.pid ?? '?'}${rule}\n`;
}

/**
 * Submits the run, follows its events (resuming with Last-Event-ID when the stream drops) and
 * returns the exit status to use: the program's exit code, 128+N when killed by signal N, 125
 * when the run failed before or while starting.
 */
export async function runRemote(opts: RemoteRunOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const env: Record<string, string> = {};
  for (const kv of opts.env ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new CliError(`--env ${kv}: expected NAME=VALUE`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  let policyYaml: string | undefined;
  if (opts.policyFile !== undefined) {
    try {
      policyYaml = readPolicyFile(opts.policyFile);
    } catch (e) {
      throw new CliError(`cannot read ${opts.policyFile}: ${(e as Error).message}`);
    }
  }
  const submitted = (await (
    await api(opts, 'POST', 'v1/runs', {
      image: opts.image,
      ...(opts.entrypoint?.length ? { command: opts.entrypoint } : {}),
      ...(opts.command.length ? { args: opts.command } : {}),
      ...(Object.keys(env).length ? { env } : {}),
      ...(opts.policy !== undefined ? { policy: opts.policy } : {}),
      ...(policyYaml !== undefined ? { policyYaml } : {}),
      ...(opts.learn ? { learn: true } : {}),
      ...(opts.workload && Object.keys(opts.workload).length ? { workload: opts.workload } : {}),
    })
  ).json()) as { id: string };
  const runId = submitted.id;
  // -d: only the id, once the run started (its failure to start is this command's, as locally)
  if (opts.detach) return followEvents(opts, runId, out, err, async () => undefined, 'detach');
  if (!opts.json) err.write(`capulator: run ${runId} submitted to ${opts.server}\n`);
  const stopOnAbort = () => void api({ ...opts, signal: undefined }, 'DELETE', `v1/runs/${runId}`).catch(() => undefined);
  opts.signal?.addEventListener('abort', stopOnAbort, { once: true });

  // the program's output, as it comes (not with --json, whose stdout is the events)
  const logs = opts.json ? undefined : followLogs(opts, runId, out, err);
  const input = opts.stdin ? sendStdin(opts, runId, opts.stdin, err) : undefined;
  const tty = opts.terminal ? followSize(opts, runId, opts.terminal, err) : undefined;
  opts.raw?.setRawMode(true);
  const outputDone = async () => {
    if (!logs) return;
    // the server completes the output when the container's pipes have closed, just after its end
    const t = setTimeout(() => logs.stop(), LOGS_GRACE_MS);
    await logs.done;
    clearTimeout(t);
  };
  try {
    return await followEvents(opts, runId, out, err, outputDone);
  } finally {
    opts.raw?.setRawMode(false);
    tty?.stop();
    logs?.stop();
    input?.stop();
  }
}

/** -t through the server: the run's window follows this terminal's (sizes sent one after the other, the latest last). */
function followSize(opts: RemoteTarget, runId: string, term: NonNullable<RemoteRunOptions['terminal']>, err: NodeJS.WritableStream): { stop: () => void } {
  let sending = false;
  let again = false;
  let stopped = false;
  const send = () => {
    if (stopped) return;
    if (sending) {
      again = true;
      return;
    }
    sending = true;
    const size = { rows: term.rows, cols: term.columns };
    api(opts, 'POST', `v1/runs/${runId}/resize`, size)
      .catch((e) => {
        // 409: the run has ended; anything else is worth a line
        if (!stopped && !(e instanceof CliError && e.exitCode === 1)) err.write(`capulator: warning: window size not sent: ${(e as Error).message}\n`);
      })
      .finally(() => {
        sending = false;
        if (again) {
          again = false;
          send();
        }
      });
  };
  term.on('resize', send);
  send();
  return {
    stop: () => {
      stopped = true;
      term.off('resize', send);
    },
  };
}

/** The most one stdin request carries (the server's limit). */
const STDIN_CHUNK_MAX = RUN_INPUT_MAX_WRITE_BYTES;

/**
 * -i through the server: what `input` gives is sent to the run's stdin, one request after the
 * other (in order; what arrives meanwhile goes in the next one), then eof=1 at its end. Reading
 * pauses while a request's worth waits. A refusal (the run has ended) ends the sending quietly:
 * the run's own end is what the command reports.
 */
function sendStdin(opts: RemoteTarget, runId: string, input: NodeJS.ReadableStream, err: NodeJS.WritableStream): { stop: () => void } {
  const ac = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
  const pending: Buffer[] = [];
  let bytes = 0;
  let ended = false;
  let wake: (() => void) | undefined;
  const onData = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b) : b;
    pending.push(buf);
    bytes += buf.length;
    if (bytes >= STDIN_CHUNK_MAX) input.pause();
    wake?.();
  };
  const onEnd = () => {
    ended = true;
    wake?.();
  };
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('error', onEnd);
  void (async () => {
    while (!signal.aborted) {
      if (pending.length === 0 && !ended) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      if (signal.aborted) return;
      const all = Buffer.concat(pending.splice(0), bytes);
      const body = all.subarray(0, STDIN_CHUNK_MAX);
      if (all.length > body.length) pending.push(all.subarray(body.length));
      bytes = all.length - body.length;
      if (bytes < STDIN_CHUNK_MAX) input.resume();
      const eof = ended && bytes === 0;
      await api({ ...opts, signal }, 'POST', `v1/runs/${runId}/stdin${eof ? '?eof=1' : ''}`, body);
      if (eof) return;
    }
  })().catch((e) => {
    if (signal.aborted) return;
    // 409: the run has ended (or its stdin is closed); anything else is worth a line
    if (!(e instanceof CliError && e.exitCode === 1)) err.write(`capulator: warning: stdin not sent: ${(e as Error).message}\n`);
  });
  return {
    stop: () => {
      ac.abort();
      wake?.();
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onEnd);
      input.pause();
      // process.stdin would keep this process alive after the run
      (input as { destroy?: () => void }).destroy?.();
    },
  };
}

/** How long the output may still come after the run's end event. */
const LOGS_GRACE_MS = 10_000;

export interface LogsOptions {
  /** keep following until the run's output is complete */
  follow: boolean;
  /** only output at or after this time (ms since the epoch) */
  since?: number;
  /** prefix each line with its time */
  timestamps?: boolean;
  /** only the last this many lines of the output kept so far (then, with follow, what comes) */
  tail?: number;
  /** a refusal by the server ends the output with a warning rather than an error (run --server) */
  warnOnRefusal?: boolean;
}

/** Reads GET v1/runs/ID/logs (resuming after the last chunk when the stream drops) and writes the output. */
function followLogs(opts: RemoteTarget, runId: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream, lo: LogsOptions = { follow: true, warnOnRefusal: true }): { done: Promise<void>; stop: () => void } {
  const ac = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
  const printer = new LogPrinter(out, err, lo.timestamps);
  const done = (async () => {
    let last: string | undefined;
    // --tail: what was kept so far first (the stream without follow ends after it), its last lines printed
    let kept: LogChunk[] | undefined = lo.tail !== undefined ? [] : undefined;
    tries: for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
      try {
        const follow = lo.follow && !kept;
        const res = await api({ ...opts, signal }, 'GET', `v1/runs/${runId}/logs${follow ? '?follow=1' : ''}`, undefined, { accept: 'text/event-stream', ...(last ? { 'last-event-id': last } : {}) });
        for await (const m of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
          if (m.event === 'end') {
            if (!kept) return;
            for (const c of lastLines(kept, lo.tail!)) printer.write(c);
            kept = undefined;
            if (!lo.follow) return;
            attempt = -1; // following from the last chunk kept, with tries of its own
            continue tries;
          }
          if (m.id) last = m.id;
          const c = JSON.parse(m.data) as LogChunk;
          if (lo.since !== undefined && Date.parse(c.time) < lo.since) continue;
          const chunk: LogChunk = { stream: c.stream === 'stderr' ? 'stderr' : 'stdout', time: c.time, text: c.text };
          if (kept) kept.push(chunk);
          else printer.write(chunk);
        }
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof CliError && e.exitCode === 2) {
          if (!lo.warnOnRefusal) throw e;
          err.write(`capulator: warning: run ${runId}: the program's output is not shown: ${e.message}\n`);
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
    }
  })();
  return { done, stop: () => ac.abort() };
}

/** `capulator logs --server URL RUN`: the program's output as the server kept it. */
export async function remoteLogs(target: RemoteTarget, runId: string, lo: LogsOptions, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<void> {
  await followLogs(target, runId, out, err, { ...lo, warnOnRefusal: false }).done;
}

/** `capulator wait --server URL RUN`: the run's exit status once it ended (as `capulator run` would exit). */
export function remoteWait(target: RemoteTarget, runId: string, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  return followEvents(target, runId, out, err, async () => undefined, 'wait');
}

/**
 * `capulator stop --server URL RUN`: asks the server to stop the run (DELETE: the server kills the
 * container at once; it has no grace time) and returns once the run's end is recorded.
 */
export async function remoteStop(target: RemoteTarget, runId: string, err: NodeJS.WritableStream = process.stderr): Promise<void> {
  await api(target, 'DELETE', `v1/runs/${runId}`);
  await followEvents(target, runId, err, err, async () => undefined, 'wait');
}

/**
 * Follows a run's events. `follow`: as `run --server` (denials, the end line, --json); `detach`:
 * until it started (prints its id); `wait`: quietly until it ended. Returns the exit status.
 */
async function followEvents(opts: RemoteTarget & { json?: boolean; verbose?: boolean }, runId: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream, outputDone: () => Promise<void>, mode: 'follow' | 'detach' | 'wait' = 'follow'): Promise<number> {
  const quiet = mode !== 'follow';
  let last: string | undefined;
  for (let attempt = 0; attempt < 20; attempt++) {
    let res: Response;
    try {
      res = await api(opts, 'GET', `v1/runs/${runId}/events`, undefined, { accept: 'text/event-stream', ...(last ? { 'last-event-id': last } : {}) });
    } catch (e) {
      if (opts.signal?.aborted) return 130;
      if (e instanceof CliError && e.exitCode === 1 && attempt < 19) {
        await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
        continue;
      }
      throw e;
    }
    try {
      for await (const m of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
        if (m.id) last = m.id;
        const e = JSON.parse(m.data) as { type: string; payload: Record<string, any> };
        if (mode === 'detach' && (e.type === 'RunStarted' || e.type === 'RunExited')) {
          out.write(`${runId}\n`);
          return 0;
        }
        if (quiet && e.type !== 'RunExited' && e.type !== 'RunFailed') continue;
        if (opts.json) out.write(JSON.stringify(e) + '\n');
        else if (opts.verbose && (e.type === 'PrivilegeChecked' || e.type === 'CapabilitiesChangeRequested' || e.type === 'CapabilitiesQueried')) err.write(describeDecision(e.type, e.payload));
        else if (!opts.json && e.payload?.decision === 'deny') err.write(describeDecision(e.type, e.payload));
        if (e.type === 'RunExited' || e.type === 'RunFailed') await outputDone();
        if (e.type === 'RunExited') {
          const p = e.payload as { exitCode: number | null; signal: string | null; counts: { allow: number; deny: number; emulate: number } };
          if (!opts.json && !quiet) err.write(`capulator: run ${runId} exited ${p.signal ? `by ${p.signal}` : `with ${p.exitCode}`} (allow ${p.counts.allow}, deny ${p.counts.deny}, emulate ${p.counts.emulate})\n`);
          if (p.exitCode !== null) return p.exitCode;
          const n = p.signal ? (osConstants.signals as Record<string, number>)[p.signal] : undefined;
          return 128 + (n ?? 9);
        }
        if (e.type === 'RunFailed') {
          // wait: the status says it (125); detach and follow: why, as a local run says it
          if (!opts.json && mode !== 'wait') err.write(`capulator: run ${runId} failed (${e.payload.stage}): ${e.payload.reason}\n`);
          return 125;
        }
      }
    } catch (e) {
      if (opts.signal?.aborted) return 130;
      if (e instanceof SyntaxError) throw new CliError(`bad event from the server: ${e.message}`, 1);
      // the connection dropped: resume after the last event seen
    }
  }
  throw new CliError(`lost the event stream of run ${runId}`, 1);
}
