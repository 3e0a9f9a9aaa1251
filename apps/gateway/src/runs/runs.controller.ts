import { Body, Controller, Delete, Get, Headers, HttpCode, MessageEvent, Param, ParseUUIDPipe, Post, Query, Req, Sse } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiBody, ApiConsumes, ApiHeader, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { map, Observable } from 'rxjs';
import { CurrentPrincipal, RequireScope } from '../auth/auth.decorators';
import type { Principal } from '../auth/token-store';
import { UnsupportedMediaType, ValidationFailed } from '../errors/domain.error';
import { readBody } from '../http-body';
import { ListRunsQuery, ResizeTtyDto, RunAcceptedDto, RunDto, RunListDto, RunLogsQuery, RunStdinQuery, WatchRunQuery } from './dto/run.dto';
import { runOutput } from '../../../runtime/src/run/run-output';
import { isTerminal } from './run-view';
import { RUN_INPUT_MAX_WRITE_BYTES } from '../../../runtime/src/run/run-input';
import { SubmitRunDto } from './dto/submit-run.dto';
import { RunsService } from './runs.service';

export const RunIdPipe = new ParseUUIDPipe({ exceptionFactory: () => new ValidationFailed([{ field: 'id', messages: ['id must be a UUID'] }]) });

export function parseLastEventId(header: string | undefined, after: number | undefined): number {
  if (header === undefined || header === '') return after ?? 0;
  if (!/^[0-9]{1,15}$/.test(header)) throw new ValidationFailed([{ field: 'Last-Event-ID', messages: ['Last-Event-ID must be an event position'] }]);
  return Math.max(Number(header), after ?? 0);
}

@ApiTags('runs')
@ApiBearerAuth()
@Controller('v1/runs')
export class RunsController {
  constructor(private readonly runs: RunsService) {}

  @Post()
  @HttpCode(202)
  @RequireScope('runs:write')
  @ApiOperation({ summary: 'Submit a run; it is queued and runs in the background' })
  @ApiAcceptedResponse({ type: RunAcceptedDto })
  submit(@Body() body: SubmitRunDto, @CurrentPrincipal() who?: Principal): Promise<RunAcceptedDto> {
    return this.runs.submit(body, who);
  }

  @Get()
  @RequireScope('runs:read')
  @ApiOkResponse({ type: RunListDto })
  list(@Query() q: ListRunsQuery): RunListDto {
    return { runs: this.runs.list(q) as RunDto[] };
  }

  @Sse('live')
  @RequireScope('runs:read')
  @ApiOperation({
    summary: 'Every run as it changes, as Server-Sent Events',
    description:
      'Each message is `event: run`, `id` = the position of the last event folded into the run, `data` = the run (the same shape as GET /v1/runs/{id}). Changes are sent at most every 250 ms per run (a run recording many decisions is one message per interval). Only changes after the request: read GET /v1/runs for the state before it (keep, per run, the view with the higher position).',
  })
  @ApiProduces('text/event-stream')
  live(): Observable<MessageEvent> {
    return this.runs.watchAll().pipe(map((r) => ({ id: String(r.position), type: 'run', data: r })));
  }

  @Get(':id')
  @RequireScope('runs:read')
  @ApiOkResponse({ type: RunDto })
  get(@Param('id', RunIdPipe) id: string): RunDto {
    return this.runs.get(id) as RunDto;
  }

  @Delete(':id')
  @RequireScope('runs:write')
  @ApiOperation({ summary: 'Stop a queued or running run' })
  @ApiAcceptedResponse({ type: RunDto })
  @HttpCode(202)
  stop(@Param('id', RunIdPipe) id: string, @CurrentPrincipal() who?: Principal): Promise<RunDto> {
    return this.runs.stop(id, who) as Promise<RunDto>;
  }

  @Post(':id/stdin')
  @HttpCode(204)
  @RequireScope('runs:write')
  @ApiOperation({
    summary: "Send bytes to an interactive run's stdin",
    description:
      "For a run submitted with `workload.interactive` (-i): the body (at most 1 MiB; send more as further requests, one after the other) is appended to the program's stdin, in order; with `eof=1` the stdin is then closed. Answers once the bytes are taken: at most 64 KiB wait per run, so a request beyond that waits for the program to read. Input sent while the run is queued waits for it to start. On the Kafka bus the bytes travel on `capulator.input` to the worker that runs it, and the answer comes once that worker's run took them. 409 when the run has ended, is not interactive, or its stdin is closed.",
  })
  @ApiConsumes('application/octet-stream')
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiNoContentResponse()
  async stdin(@Param('id', RunIdPipe) id: string, @Query() q: RunStdinQuery, @Req() req: Request, @CurrentPrincipal() who?: Principal): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    // checked before reading: a body of another type may have been read by a body parser already
    if (type !== '' && type !== 'application/octet-stream') throw new UnsupportedMediaType('application/octet-stream');
    const data = await readBody(req, RUN_INPUT_MAX_WRITE_BYTES);
    await this.runs.writeStdin(id, data, q.eof === '1' || q.eof === 'true', who);
  }

  @Post(':id/resize')
  @HttpCode(204)
  @RequireScope('runs:write')
  @ApiOperation({
    summary: "Set the window size of a run's terminal",
    description:
      "For a run submitted with `workload.tty` (-t): the program's terminal gets this size (it receives SIGWINCH), as `docker run -t` passes a resized window on. On a server that runs it itself, a size set before the run starts is the one it starts with (else 24 x 80); on the Kafka bus the request waits until a worker has started the run, which then starts at 24 x 80 and is resized. 409 when the run has ended or has no terminal.",
  })
  @ApiNoContentResponse()
  async resize(@Param('id', RunIdPipe) id: string, @Body() body: ResizeTtyDto, @CurrentPrincipal() who?: Principal): Promise<void> {
    await this.runs.resizeTty(id, { rows: body.rows, cols: body.cols }, who);
  }

  @Sse(':id/events')
  @RequireScope('runs:read')
  @ApiOperation({
    summary: "The run's events as Server-Sent Events",
    description:
      'History first, then live events; the stream ends after RunExited or RunFailed. Each message has `id` = the event\'s global position, `event` = its type, `data` = the stored event (JSON). Reconnect with Last-Event-ID to resume.',
  })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'resume after this position' })
  @ApiProduces('text/event-stream')
  events(@Param('id', RunIdPipe) id: string, @Query() q: WatchRunQuery, @Headers('last-event-id') lastEventId?: string): Observable<MessageEvent> {
    const after = parseLastEventId(lastEventId, q.after);
    return this.runs.watch(id, after).pipe(map((e) => ({ id: String(e.position), type: e.type, data: e })));
  }

  @Sse(':id/logs')
  @RequireScope('runs:read')
  @ApiOperation({
    summary: "The program's stdout and stderr as Server-Sent Events",
    description:
      'Output of a run, as `docker logs`: everything kept so far, then (follow=1) new output until the run\'s output is complete. Each message has `id` = the chunk\'s number in the run, `event` = `stdout` or `stderr`, `data` = `{"stream","text","time"}`; a last message `event: end`, `data` = `{"truncated"}` (true when the oldest output went past the 4 MiB kept per run). Reconnect with Last-Event-ID to resume.',
  })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'resume after this chunk' })
  @ApiProduces('text/event-stream')
  logs(@Param('id', RunIdPipe) id: string, @Query() q: RunLogsQuery, @Headers('last-event-id') lastEventId?: string): Observable<MessageEvent> {
    const run = this.runs.get(id); // 404 for a run this server does not know
    const after = parseLastEventId(lastEventId, q.after);
    const follow = q.follow === '1' || q.follow === 'true';
    return new Observable<MessageEvent>((sub) =>
      runOutput.read(
        id,
        after,
        follow,
        (c) => sub.next({ id: String(c.seq), type: c.stream, data: { stream: c.stream, text: c.text, time: c.time } }),
        () => {
          sub.next({ type: 'end', data: { truncated: runOutput.truncated(id) } });
          sub.complete();
        },
        isTerminal(run.status),
      ),
    );
  }
}
