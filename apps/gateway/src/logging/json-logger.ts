import type { LoggerService, LogLevel } from '@nestjs/common';

const ORDER: Record<LogLevel, number> = { verbose: 0, debug: 1, log: 2, warn: 3, error: 4, fatal: 5 };
const NAMES: Record<LogLevel, string> = { verbose: 'trace', debug: 'debug', log: 'info', warn: 'warn', error: 'error', fatal: 'fatal' };

/** Whether a record of `level` is written under `--log-level min` (unknown levels count as log). */
export function logLevelEnabled(min: LogLevel | 'silent', level: string): boolean {
  return min !== 'silent' && (ORDER[level as LogLevel] ?? ORDER.log) >= ORDER[min];
}

/** Structured JSON logs, one object per line: {time, level, context, msg, ...fields}. */
export class JsonLogger implements LoggerService {
  constructor(
    private readonly min: LogLevel | 'silent' = 'log',
    private readonly out: NodeJS.WritableStream = process.stderr,
  ) {}

  log(message: unknown, ...rest: unknown[]) { this.write('log', message, rest); }
  error(message: unknown, ...rest: unknown[]) { this.write('error', message, rest); }
  warn(message: unknown, ...rest: unknown[]) { this.write('warn', message, rest); }
  debug(message: unknown, ...rest: unknown[]) { this.write('debug', message, rest); }
  verbose(message: unknown, ...rest: unknown[]) { this.write('verbose', message, rest); }
  fatal(message: unknown, ...rest: unknown[]) { this.write('fatal', message, rest); }

  private write(level: LogLevel, message: unknown, rest: unknown[]): void {
    if (!logLevelEnabled(this.min, level)) return;
    const context = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    const fields = message !== null && typeof message === 'object' && !(message instanceof Error) ? (message as Record<string, unknown>) : { msg: message instanceof Error ? message.message : String(message) };
    const line: Record<string, unknown> = { time: new Date().toISOString(), level: NAMES[level], ...(context ? { context } : {}), ...fields };
    if (level === 'error' && typeof rest[0] === 'string' && rest.length > 1) line.stack = rest[0];
    this.out.write(JSON.stringify(line) + '\n');
  }
}
