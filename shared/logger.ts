import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** pino levels mapped to Cloud Logging severities. */
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export interface LoggerOptions {
  level?: string;
  service: string;
  /** Where the JSON lines go; stdout by default. Tests pass a stream to read them back. */
  destination?: pino.DestinationStream;
}

/**
 * One JSON line per entry in the shape Cloud Logging parses from a container's stdout:
 * `severity`, `message`, and the ids passed as bindings.
 *
 * Each line is written to stdout before the call returns (pino's destination with `sync`), so
 * a crash or an exit loses no line. pino's default, writing behind, flushes what is left when
 * the process exits, and when stdout is a pipe that has lost its reader (`| head`), that flush
 * retries for ever: a service told to stop after logging would never exit.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level ?? 'info',
    messageKey: 'message',
    base: { service: opts.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }),
    },
    redact: {
      paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
  };
  return pino(options, opts.destination ?? pino.destination({ dest: 1, sync: true }));
}

/**
 * The trace field that lets Cloud Logging group a request's lines, from the
 * `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` header Cloud Run forwards.
 */
export function traceFields(header: string | undefined, projectId: string): Record<string, string> {
  if (!header) return {};
  const traceId = header.split('/')[0];
  if (!traceId || !/^[0-9a-f]{32}$/i.test(traceId)) return {};
  return { 'logging.googleapis.com/trace': `projects/${projectId}/traces/${traceId}` };
}
