import { createServer, type Server } from 'node:http';
import type { Express, RequestHandler, Response } from 'express';
import { ENV } from './config';
import { abandonedAtTerminate } from './firestore';
import { continueWhenRead, lateWork, routePath, withTimeout } from './http';
import { flushStdoutLogs, type Logger } from './logger';

/**
 * Cloud Run sends SIGTERM and kills the instance 10 s later; in-flight work gets 7 s of that.
 * With the clients' 1.5 s to close and the logs' half second, a stop takes 9 s at the most: a
 * second to spare for an instance whose CPU is slow or throttled, whose last lines would
 * otherwise be cut by the kill.
 */
export const SHUTDOWN_GRACE_MS = 7000;
/**
 * The longest a redrive's page may take to publish: a page that fails is put back to dead and
 * the redrive answers, all within SHUTDOWN_GRACE_MS, so a redrive that a shutdown stops still
 * answers its caller.
 */
export const REDRIVE_PAGE_TIMEOUT_MS = SHUTDOWN_GRACE_MS - 3000;
/** Then closing the clients gets at most this long: a client waiting on a stream cut short must not keep the process past Cloud Run's kill. */
export const CLOSE_GRACE_MS = 1500;

/** How long a connection may stay idle between requests (longer than Google's front ends keep theirs). */
export const KEEP_ALIVE_MS = 620_000;
/** How long a client has to send a whole request, headers and body: Pub/Sub and Cloud Run's front end send theirs at once. */
export const REQUEST_RECEIVED_WITHIN_MS = 60_000;
/** How often Node looks for requests past their time. */
export const CONNECTIONS_CHECKED_EVERY_MS = 5_000;

/** The start of the line a service writes when it cannot listen (dev/processes.ts looks for it). */
export function cannotListen(host: string | undefined, port: number): string {
  return `cannot listen on ${host ?? 'every interface'} port ${port} (${ENV.HOST}, ${ENV.PORT})`;
}

export interface Lifecycle {
  isDraining: () => boolean;
  /** Middleware that counts requests in flight. */
  track: RequestHandler;
  inFlight: () => number;
  /** Stops taking work, waits for in-flight requests (up to the grace), closes. */
  shutdown: (server: Server, close: () => Promise<void>, graceMs?: number) => Promise<void>;
}

/** The most requests a shutdown's log line names one by one when it abandons them. */
const ABANDONED_NAMED_MAX = 50;

/**
 * The ids a handler names its request by (a delivery's, a message's), kept in `res.locals`
 * for the shutdown's log line to say which requests it abandoned.
 */
export function nameRequest(res: Response, ids: Record<string, string>): void {
  res.locals.requestIds = ids;
}

export function createLifecycle(log: Logger): Lifecycle {
  let draining = false;
  const open = new Set<Response>();
  return {
    isDraining: () => draining,
    inFlight: () => open.size,
    track: (_req, res, next) => {
      open.add(res);
      res.on('close', () => {
        // Answered before its route ended (an admin deadline's 504): in flight until it ends.
        const late = lateWork(res);
        if (late) void late.then(() => open.delete(res));
        else open.delete(res);
      });
      next();
    },
    async shutdown(server, close, graceMs = SHUTDOWN_GRACE_MS) {
      if (draining) return;
      draining = true;
      log.info({ inFlight: open.size }, 'shutting down: no new work');
      server.close();
      const deadline = Date.now() + graceMs;
      while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (open.size > 0) {
        // Which ones, so that their retries can be followed in the log.
        const requests = [...open]
          .slice(0, ABANDONED_NAMED_MAX)
          .map((res) => ({ method: res.req.method, path: routePath(res.req), ...res.locals.requestIds }));
        log.warn({ inFlight: open.size, requests }, 'abandoning in-flight requests at the shutdown deadline');
      }
      server.closeAllConnections();
      await withTimeout(close(), CLOSE_GRACE_MS, 'closing the clients').catch((err: unknown) =>
        log.warn({ err: (err as Error).message }, 'clients not closed cleanly; exiting anyway'),
      );
      log.info('shut down');
    },
  };
}

/**
 * What a service does with a promise rejected that nothing handles. A call abandoned at the
 * shutdown deadline (a status page's counts, say) that the Firestore client ends as it is
 * closed is part of the stop, not a failure: a line at info, and the stop goes on. Anything
 * else ends the process, exit 1, as Node's default would, but with a log line that names it.
 */
export function unhandledRejection(log: Logger, stopping: () => boolean, exit: (code: number) => void) {
  return (err: unknown): void => {
    if (stopping() && abandonedAtTerminate(err)) {
      log.info({ err: (err as Error).message }, 'a call abandoned at the shutdown ended as its client closed');
      return;
    }
    log.fatal({ err }, 'unhandled rejection: exiting');
    void flushStdoutLogs().then(() => exit(1));
  };
}

/**
 * Listens, and on SIGTERM or SIGINT drains and exits. A port that cannot be had ends the
 * process, with a line on stderr that names the service and the variables that chose the port.
 */
export function serve(
  app: Express,
  listenOn: { service: string; port: number; host?: string | undefined },
  log: Logger,
  lifecycle: Lifecycle,
  close: () => Promise<void>,
): Server {
  const server = continueWhenRead(createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKED_EVERY_MS }, app));
  server.once('error', (err: NodeJS.ErrnoException) => {
    log.fatal({ port: listenOn.port, host: listenOn.host, code: err.code }, `cannot listen: ${err.message}`);
    process.stderr.write(`${listenOn.service}: ${cannotListen(listenOn.host, listenOn.port)}: ${err.message}\n`);
    void flushStdoutLogs().then(() => process.exit(1));
  });
  server.listen(listenOn.port, listenOn.host, () => {
    const addr = server.address();
    log.info({ port: typeof addr === 'object' && addr ? addr.port : listenOn.port, host: listenOn.host }, 'listening');
  });
  // Longer than the push ack deadline, so Pub/Sub's own timeout decides.
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // A request's headers and body, not its answer: a client that sends them a byte at a time is
  // answered 408 and cut off (Node checks every CONNECTIONS_CHECKED_EVERY_MS). An idle
  // keep-alive connection is not a request: it stays.
  server.requestTimeout = REQUEST_RECEIVED_WITHIN_MS;
  server.headersTimeout = REQUEST_RECEIVED_WITHIN_MS;
  // A second signal while draining changes nothing: the first shutdown finishes and exits.
  let stopping = false;
  const stop = (signal: string) => {
    log.info({ signal, alreadyStopping: stopping }, 'signal received');
    if (stopping) return;
    stopping = true;
    void lifecycle
      .shutdown(server, close)
      .then(() => flushStdoutLogs())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on(
    'unhandledRejection',
    unhandledRejection(
      log,
      () => stopping,
      (code) => process.exit(code),
    ),
  );
  return server;
}
