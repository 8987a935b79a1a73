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
 * `severity`, `message`, and the ids passed as bindings. Lines go to stdout behind the
 * service's work (stdoutDestination), so a log reader that is slow never holds a request up.
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
  return pino(options, opts.destination ?? stdoutDestination());
}

/** Log bytes held for stdout at most while it is not read; past that, lines are dropped and counted. */
export const STDOUT_BUFFER_BYTES = 16 * 2 ** 20;

type Destination = ReturnType<typeof pino.destination>;

interface Stdout {
  dest: Destination;
  dropped: number;
  /** stdout failed for good (EPIPE: its reader is gone; ENOSPC, EIO): lines are dropped from then on. */
  failed: boolean;
}

let stdout: Stdout | undefined;

/** Makes every later write, and pino's synchronous flush at exit, a no-op (as pino does on EPIPE). */
function stopWriting(dest: Destination): void {
  dest.write = () => true;
  dest.flushSync = () => undefined;
}

/**
 * The process's one stdout destination for log lines: pino's, writing behind, with its buffer
 * bounded. A stdout not read for a while (a stalled collector, `| (sleep 60; cat)`) costs at
 * most STDOUT_BUFFER_BYTES, then lines are dropped, and stderr says how many once it is read
 * again; a stdout that cannot be written any more (its reader gone, a full disk) is said once
 * on stderr and logging stops, where an unhandled write error would end the process.
 */
export function stdoutDestination(): Destination {
  if (stdout) return stdout.dest;
  // process.stdout is opened first, as pino's default destination does: for a pipe that makes
  // fd 1 non-blocking, so a write to a pipe nobody reads waits on a timer, not in a thread the
  // process would have to join before it can exit.
  const dest = pino.destination({ dest: process.stdout.fd, sync: false, maxLength: STDOUT_BUFFER_BYTES });
  const state: Stdout = { dest, dropped: 0, failed: false };
  dest.on('drop', () => {
    state.dropped++;
  });
  dest.on('drain', () => reportDropped(state));
  dest.on('error', (err: NodeJS.ErrnoException) => {
    if (state.failed) return;
    state.failed = true;
    stopWriting(dest);
    if (err.code !== 'EPIPE')
      process.stderr.write(`stdout cannot be written (${err.message}); log lines are dropped\n`);
  });
  stdout = state;
  return dest;
}

function reportDropped(state: Stdout): void {
  if (state.dropped === 0) return;
  process.stderr.write(`${state.dropped} log lines were dropped while stdout was not being read\n`);
  state.dropped = 0;
}

/** How long the lines still waiting at a stop get to be written before the process exits. */
export const EXIT_FLUSH_MS = 500;

/**
 * Writes what the stdout destination still holds, waiting at most `ms`, before the process
 * exits (half a second by default: with the 7 s of in-flight work and the 1.5 s the clients get
 * to close, a stop stays a second within the 10 s Cloud Run gives after SIGTERM). pino's own flush at
 * exit writes synchronously and retries a pipe that has lost its reader for ever, so a service
 * told to stop would never exit; after this, that flush has nothing left to do, and what could
 * not be written by then is dropped.
 */
export function flushStdoutLogs(ms = EXIT_FLUSH_MS): Promise<void> {
  const s = stdout;
  if (!s || s.failed) return Promise.resolve();
  const { dest } = s;
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      reportDropped(s);
      resolve();
    };
    const timer = setTimeout(done, ms);
    dest.once('close', done);
    dest.once('error', done);
    dest.end();
    // Lines logged from here on would meet a closed destination, and pino's exit flush would
    // retry what could not be written by then: both are dropped.
    stopWriting(dest);
  });
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
