import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { DomainError } from './domain.error';
import { ERROR_STATUS, ErrorBody } from './error-status';

const HTTP_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
};

/** Maps every error that reaches Nest to `{error: {code, message, details?}}` and a status. */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly log = new Logger('http');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const { status, body } = toHttpError(exception);
    if (status >= 500) this.log.error({ msg: 'request failed', err: (exception as Error)?.stack ?? String(exception) });
    if (res.headersSent) {
      res.end();
      return;
    }
    // a refusal for load or an outage says when to come back (the embedded queue and the bus path alike)
    if (status === 503) res.setHeader('Retry-After', String((exception as { retryAfterSeconds?: number })?.retryAfterSeconds ?? 1));
    res.status(status).json(body);
  }
}

export function toHttpError(exception: unknown): { status: number; body: ErrorBody } {
  if (exception instanceof DomainError) {
    const status = ERROR_STATUS[exception.code].http;
    const body: ErrorBody = { error: { code: exception.code, message: exception.message } };
    if (exception.details !== undefined) body.error.details = exception.details;
    return { status, body };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const r = exception.getResponse();
    const message = typeof r === 'string' ? r : String((r as { message?: unknown }).message ?? exception.message);
    return { status, body: { error: { code: HTTP_CODES[status] ?? (status >= 500 ? 'internal' : 'bad_request'), message } } };
  }
  return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
}
