import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import express, {
  type ErrorRequestHandler,
  type Express,
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
} from 'express';
import { raceTimeout } from './concurrency';
import { keyPathText, keysGivenTwiceIfShallow } from './json-keys';
import type { Logger } from './logger';
import { traceFields } from './logger';

declare module 'express-serve-static-core' {
  interface Request {
    /** The request's logger, with its trace id: made when first used. */
    log: Logger;
    /** The fields `log` binds (the trace id), for a route that makes one child logger of its own. */
    logFields: Record<string, string>;
  }
}

/** Where a request keeps its logger once made (`req.log`). */
const REQUEST_LOG = Symbol('requestLog');

/**
 * The base every service app starts from: no x-powered-by, a per-request logger with the trace
 * id. The logger is made on first use: a push makes one child logger of its own, with the
 * trace and the delivery's ids together, and a child made for nothing costs it measurably.
 */
export function baseApp(log: Logger, projectId: string): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', true);
  // Defined once, on the app's request prototype: made from the request's fields on first use.
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request & { [REQUEST_LOG]?: Logger }) {
      this[REQUEST_LOG] ??= log.child(this.logFields);
      return this[REQUEST_LOG];
    },
    set(this: Request & { [REQUEST_LOG]?: Logger }, given: Logger) {
      this[REQUEST_LOG] = given;
    },
  });
  app.use((req: Request, _res: Response, next: NextFunction) => {
    // Sent after a request refused for its body, on a connection the server has said it closes:
    // not run, nor answered; the refused request's linger closes the connection.
    if (onRefusedConnection(req)) return;
    req.logFields = traceFields(req.header('x-cloud-trace-context'), projectId);
    next();
  });
  return app;
}

/**
 * JSON bodies only, and small: a push envelope is well under this. A body in UTF-8 (or of no
 * charset) must be UTF-8: the parser would read a byte that is not (Latin-1's `é`) as U+FFFD and
 * the text would be saved with it, where the command line refuses such a file. Of the charsets
 * the parser reads, UTF-8 alone is taken (`utf-16` and `utf-32` are refused as `latin1` is).
 */
export function jsonBody(limit = '256kb', opts: { uniqueKeys?: boolean } = {}): RequestHandler {
  const parse = express.json({
    limit,
    type: JSON_TYPES,
    verify: (_req, _res, body, charset) => {
      if (!/^utf-?8$/i.test(charset)) {
        throw Object.assign(new Error('unsupported charset'), { status: 415, type: 'charset.unsupported', charset });
      }
      if (!isUtf8(body)) {
        throw Object.assign(new Error('the body is not UTF-8'), { status: 400, type: 'charset.invalid' });
      }
      // A key given twice (`{"accountId": "a", "accountId": "b"}`) would be read as its last,
      // without a word: where a person wrote the body (the admin API), either may be meant.
      const [twice] = opts.uniqueKeys ? keysGivenTwiceIfShallow(body.toString('utf8'), 1) : [];
      if (twice) {
        const field = keyPathText(twice.path, twice.key);
        throw Object.assign(new Error(`${field} is given twice`), { status: 400, type: 'key.twice', field });
      }
    },
  });
  return refusedWhenDeclaredTooLarge(limit, (req, res, next) => {
    utf8Labelled(req);
    parse(req, res, next);
  });
}

/**
 * `charset=utf8`, a common label of UTF-8, read as `charset=utf-8`: the parser takes no other
 * spelling of it, and would refuse the body as of a charset it does not read.
 */
function utf8Labelled(req: Request): void {
  const type = req.headers['content-type'];
  // Only for a JSON body, which this parser reads: any other keeps its header as sent, to be named.
  if (type === undefined || !isJsonType(type)) return;
  req.headers['content-type'] = type.replace(/(;\s*charset\s*=\s*)("?)utf8\2(?=\s*(;|$))/i, '$1$2utf-8$2');
}

/** A body limit as `express.json` takes it (`256kb`), in bytes. */
function limitBytes(limit: string): number {
  const kb = /^(\d+)kb$/.exec(limit)?.[1];
  if (kb === undefined) throw new Error(`a body limit is written as <n>kb, not ${JSON.stringify(limit)}`);
  return Number(kb) * 1024;
}

/** Marks a request whose client waits for `100 Continue` before it sends its body. */
const AWAITS_CONTINUE = Symbol('awaitsContinue');
type ContinuedRequest = IncomingMessage & { [AWAITS_CONTINUE]?: true };

/**
 * Has `server` answer `Expect: 100-continue` once a route begins to read the body, where Node
 * would answer it before the request is even routed. A request refused before (its declared
 * length past its route's limit, a caller not let in, a type not taken) is then answered
 * without its client sending the body at all.
 */
export function continueWhenRead(server: Server): Server {
  server.on('checkContinue', (req: ContinuedRequest, res) => {
    req[AWAITS_CONTINUE] = true;
    // Answered without its 100, the connection is closed (its body may yet come: nothing else
    // can be read on it), the way a refused body's is: after reading and dropping what the
    // client still sends, so that one that sends the body anyway gets the answer, not a reset.
    res.once('prefinish', () => {
      if (req[AWAITS_CONTINUE] && !req.complete) lingerBeforeClose(req);
    });
    server.emit('request', req, res);
  });
  return server;
}

/** Sends `100 Continue` to a client waiting for it (continueWhenRead), once. */
function continueIfAwaited(req: Request, res: Response): void {
  const waiting = req as Request & ContinuedRequest;
  if (!waiting[AWAITS_CONTINUE]) return;
  delete waiting[AWAITS_CONTINUE];
  res.writeContinue();
}

/**
 * `parse`, unless the request's Content-Length already says its body is past `limit`: then the
 * parser's own 413 (`entity.too.large`) at once, and the connection closed after the answer,
 * rather than the whole body read first (the parser reads it to the end before it answers, to
 * keep the connection, however large the length declared). A compressed body's length is not
 * its size once inflated: that one is left to the parser.
 */
function refusedWhenDeclaredTooLarge(limit: string, parse: RequestHandler): RequestHandler {
  const max = limitBytes(limit);
  return (req, res, next) => {
    const declared = Number(req.header('content-length'));
    const encoding = (req.header('content-encoding') ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity' || !Number.isSafeInteger(declared) || declared <= max || req.body !== undefined) {
      continueIfAwaited(req, res);
      parse(req, res, next);
      return;
    }
    res.setHeader('Connection', 'close');
    lingerBeforeClose(req);
    next(
      Object.assign(new Error('request entity too large'), {
        status: 413,
        type: 'entity.too.large',
        length: declared,
        limit: max,
        expected: declared,
      }),
    );
  };
}

/** How long a connection refused for its body is still read after its answer, at most. */
export const LINGER_MS = 2_000;
/** How much of a refused body is read and dropped after its answer, at most. */
export const LINGER_BYTES = 1024 * 1024;

/** Marks a connection whose request was refused for its body's declared length. */
const REFUSED = Symbol('refusedConnection');
type MarkedSocket = Socket & { [REFUSED]?: true };

/**
 * Closes the connection of `req`, once its answer is sent, the way a server that refused a
 * body must: its side first, then, after reading and dropping what the client still sends (at
 * most LINGER_BYTES, for at most LINGER_MS), the whole. Closed at once, with a body still
 * arriving, the connection would be reset, and a client still sending may lose the answer
 * with it (Node's server closes a `Connection: close` socket by its `destroySoon`). What comes
 * after the answer is counted and dropped as it arrives, not parsed; a request that came
 * before it, on the same connection, is neither run nor answered (baseApp): none may be once
 * the server has said `close`.
 */
function lingerBeforeClose(req: IncomingMessage): void {
  const socket = req.socket as MarkedSocket;
  // Once a connection: a request refused for its length, and answered without its 100, is one.
  if (socket[REFUSED]) return;
  socket[REFUSED] = true;
  socket.destroySoon = function lingeringDestroySoon(this: Socket) {
    if (this.writable) this.end();
    if (this.readableEnded || this.destroyed) {
      this.destroy();
      return;
    }
    // The HTTP parser's listener goes; with ours, the parser stops reading the socket itself.
    this.removeAllListeners('data');
    let read = 0;
    this.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > LINGER_BYTES) this.destroy();
    });
    // A socket the server paused while the body came faster than it was read (the request's
    // buffer full) reads again as Node's server resumes one: by its handle, which it had read
    // from directly, not by the stream.
    const handle = (this as Socket & { _handle?: { reading?: boolean; readStart?: () => number } })._handle;
    if (handle && handle.reading === false && typeof handle.readStart === 'function') {
      handle.reading = true;
      handle.readStart();
    }
    this.resume();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    // Closed once the client closes its side too (the server allows half-open connections).
    this.once('close', () => clearTimeout(timer));
  };
}

/** Whether `req` came on a connection already refused for a body (lingerBeforeClose). */
function onRefusedConnection(req: Request): boolean {
  return (req.socket as MarkedSocket)[REFUSED] === true;
}

/** The Content-Types read as JSON. */
export const JSON_TYPES = ['application/json', 'application/*+json'];

/** A Content-Type's media type, as sent: `application/json` of `application/json; charset=utf-8`. */
export function mediaType(contentType: string): string {
  return contentType.split(';')[0]?.trim() ?? '';
}

/** Whether a Content-Type is one JSON_TYPES reads (`application/json`, `application/*+json`, any parameters). */
export function isJsonType(contentType: string): boolean {
  const media = mediaType(contentType).toLowerCase();
  return JSON_TYPES.some((t) => (t.includes('*') ? /^application\/[^/]+\+json$/.test(media) : media === t));
}

/** JSON patches (RFC 7396, RFC 6902): JSON by their type, but no route here takes a patch. */
const PATCH_TYPES = ['application/merge-patch+json', 'application/json-patch+json'];

/**
 * Reads and drops a body the route does not use, whatever its type (a Cloud Scheduler job's
 * body is whatever its owner typed), up to `limit`: past it, 413.
 */
export function ignoredBody(limit: string): RequestHandler {
  return refusedWhenDeclaredTooLarge(limit, express.raw({ limit, type: () => true }));
}

/** Whether a request carries a body: chunked, or a Content-Length above 0. */
export function hasBody(req: Request): boolean {
  return req.header('transfer-encoding') !== undefined || Number(req.header('content-length') ?? 0) > 0;
}

/**
 * Refuses a body that is not JSON with 415, where the route expects JSON. Without this,
 * `express.json` silently leaves a form or text body unparsed and the route sees none.
 */
export function requireJson(opts: { optional?: boolean } = {}): RequestHandler {
  return (req, res, next) => {
    const body = hasBody(req);
    // A patch is JSON that means "change these fields", and no route here reads it so: a `PUT`
    // taking one as a whole notification would drop every field the patch leaves out.
    if (body && req.is(PATCH_TYPES)) {
      res.status(415).json({
        error: 'unsupported_media_type',
        message: `a patch (${mediaType(req.get('content-type') ?? '')}) is not taken: send the whole body as application/json`,
      });
      return;
    }
    // Without a body `req.is` answers null whatever the type: the header itself is read then.
    const json = body ? req.is(JSON_TYPES) : isJsonType(req.get('content-type') ?? '');
    if ((body || !opts.optional) && !json) {
      // What came, named: curl's -d sends a form's type unless told otherwise.
      const given = req.get('content-type');
      const came = given === undefined ? 'no Content-Type' : `Content-Type ${JSON.stringify(mediaType(given))}`;
      res.status(415).json({
        error: 'unsupported_media_type',
        message: `send the body as application/json (the header Content-Type: application/json; this request had ${came}${body ? '' : ' and no body'})`,
      });
      return;
    }
    next();
  };
}

/**
 * Answers 503 `shutting_down` once the service drains: for a push, a nack that Pub/Sub
 * redelivers to an instance that is not shutting down; for a tick, a retry of Cloud Scheduler's.
 */
export function refuseWhileDraining(isDraining: () => boolean): RequestHandler {
  return (_req, res, next) => {
    if (!isDraining()) return next();
    res.setHeader('Cache-Control', 'no-store');
    res.status(503).json({ error: 'shutting_down' });
  };
}

/** The path the client asked for, whatever router it reached (`req.path` drops a mount's prefix). */
export function routePath(req: Request): string {
  return (req.originalUrl || req.url).split('?')[0] ?? '/';
}

/**
 * A known path asked with a method it does not take: 405 with the `Allow` header, rather than
 * the 404 of a path that does not exist. Registered after the path's own routes.
 */
export function methodNotAllowed(allow: readonly string[], fields: Record<string, unknown> = {}): RequestHandler {
  const methods = allow.includes('GET') && !allow.includes('HEAD') ? [...allow, 'HEAD'] : [...allow];
  return (req, res) => {
    res
      .set('Allow', methods.join(', '))
      .status(405)
      .json({ ...fields, error: 'method_not_allowed', method: req.method, allow: methods });
  };
}

/**
 * Any route no handler took: a JSON 404 like every other answer of the services. `fields` go
 * first in the answer (the Slack stand-in's `ok: false`, as its every answer has).
 */
export function notFound(fields: Record<string, unknown> = {}): RequestHandler {
  return (req, res) => {
    // Kept by no cache, as the admin routes' answers are: a path one of them takes once it is
    // spelt otherwise (`//status`) is answered here.
    res.setHeader('Cache-Control', 'no-store');
    res.status(404).json({ ...fields, error: 'not_found', path: routePath(req).slice(0, 200) });
  };
}

/** What body-parser's errors mean, said to the caller (their own messages quote the body). */
const BODY_ERRORS: Record<string, string> = {
  'entity.too.large': 'the body is larger than this endpoint takes',
  'encoding.unsupported': 'the body has a content encoding this endpoint does not take',
  'charset.unsupported': 'the body has a charset this endpoint does not take (send UTF-8)',
  'charset.invalid': 'the body is not UTF-8 text (a byte in it is not UTF-8: send the text in UTF-8)',
  'key.twice': 'is given twice in the body, and JSON keeps the last: give it once',
  'request.aborted': 'the request was cut off before its body was read',
  'request.size.invalid': 'the body is not as long as its Content-Length says',
};

/** What was wrong with a request no BODY_ERRORS entry names, in words that never quote it. */
function requestProblem(err: unknown): string {
  const message = String((err as { message?: unknown } | null)?.message ?? '');
  // The router's own words for a path segment that is not percent-encoded UTF-8 (`%FF`).
  if (err instanceof URIError || message.startsWith('Failed to decode param')) {
    return 'a part of the path is not valid percent-encoded UTF-8';
  }
  // zlib's, for a body whose Content-Encoding it is not in: gzip's and deflate's codes begin
  // `Z_`, Brotli's `ERR__ERROR_` (`ERR__ERROR_FORMAT_PADDING_2`, "Decompression failed").
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (
    code.startsWith('Z_') ||
    code.startsWith('ERR__ERROR_') ||
    /incorrect header check|unexpected end of file|decompression failed/i.test(message)
  ) {
    return 'the body is not in the Content-Encoding it names';
  }
  return 'the request could not be read';
}

/** What kind of JSON value a text is (`null`, a string, a number, a boolean), or undefined when it is not JSON. */
export function jsonKind(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`;
  } catch {
    return undefined;
  }
}

/** What was wrong with a request, in words that never quote its body. */
export function bodyProblem(err: unknown): string {
  const { type, limit, length, charset } = (err ?? {}) as {
    type?: unknown;
    limit?: unknown;
    length?: unknown;
    charset?: unknown;
  };
  // A charset the parser does not take (`utf8`, `latin1`): named, as it is not the body's text.
  if (type === 'charset.unsupported' && typeof charset === 'string') {
    return `the body's charset ${JSON.stringify(charset.slice(0, 40))} is not one this endpoint takes (send UTF-8: charset=utf-8)`;
  }
  // JSON that parses, of a kind the parser's strict mode refuses, or no JSON at all: told apart.
  if (type === 'entity.parse.failed') {
    const kind = jsonKind((err as { body?: unknown }).body);
    return kind === undefined
      ? 'the body is not JSON: it does not parse'
      : `the body is ${kind}, not a JSON object or array`;
  }
  const said = (typeof type === 'string' ? BODY_ERRORS[type] : undefined) ?? requestProblem(err);
  // A body too large: by how much, in the parser's own figures (its limit, and the length it saw).
  if (type === 'entity.too.large' && typeof limit === 'number') {
    const size = typeof length === 'number' ? `; this one is ${length.toLocaleString('en-US')}` : '';
    return `${said} (at most ${limit.toLocaleString('en-US')} bytes${size})`;
  }
  return said;
}

/** Where a response answered before its route ended keeps the promise of that end. */
const LATE_WORK = Symbol('lateWork');
/** Where a response keeps the controller of its answeredEarlySignal, once asked for. */
const ANSWERED_EARLY = Symbol('answeredEarly');

/**
 * A signal aborted once the request is answered before its route ends (answerEarly: a
 * deadline's 504, a 408, its caller gone), for work its caller can no longer be told of.
 */
export function answeredEarlySignal(res: Response): AbortSignal {
  const locals = res.locals as Record<symbol, AbortController | undefined>;
  const made = locals[ANSWERED_EARLY] ?? new AbortController();
  locals[ANSWERED_EARLY] = made;
  if (lateWork(res)) made.abort();
  return made.signal;
}

/**
 * Answers a request before its route has ended (a deadline's 504): `send` writes the answer,
 * and the route's own, when it comes, is handed to `ended` with its status instead of being
 * sent (the headers it sets go nowhere). Until then the request counts as in flight, so that a
 * shutdown waits for its work (`lateWork`, shared/service.ts). Gives back `settle`, which ends
 * that wait without an answer to log, for a route that is known never to run.
 */
export function answerEarly(res: Response, send: () => void, ended: (status: number) => void): () => void {
  let release: () => void = () => {};
  (res.locals as Record<symbol, unknown>)[LATE_WORK] = new Promise<void>((resolve) => {
    release = resolve;
  });
  (res.locals as Record<symbol, AbortController | undefined>)[ANSWERED_EARLY]?.abort();
  send();
  let status = 200;
  res.status = function (this: Response, code: number): Response {
    status = code;
    return this;
  };
  let done = false;
  const late = function (this: Response): Response {
    if (!done) {
      done = true;
      ended(status);
      release();
    }
    return this;
  };
  res.json = late;
  res.send = late;
  // A route that answers with no body (a push's 204) ends so.
  res.end = late as Response['end'];
  res.setHeader = function (this: Response): Response {
    return this;
  };
  return () => {
    done = true;
    release();
  };
}

/**
 * A request whose caller leaves before its route answers (Pub/Sub's connection dropped at a
 * push's deadline, Cloud Scheduler's at a tick's) goes on: a push may be posting to Slack, a
 * tick publishing. It stays in flight until its route ends (answerEarly), so that a shutdown
 * waits for that work, or names it when it gives up, rather than closing the clients under it;
 * its answer goes to the log. Only before a route that always answers, whatever its caller did.
 */
export function inFlightUntilRouteEnds(): RequestHandler {
  return (req, res, next) => {
    holdIfCallerLeaves(res, (status) =>
      req.log.info({ status }, `ended after its caller left: it would have answered ${status}`),
    );
    next();
  };
}

/**
 * Should the caller of `res` leave before its route answers, the request is held in flight
 * until the route ends (answerEarly, with nothing sent), and its answer handed to `ended`.
 */
export function holdIfCallerLeaves(res: Response, ended: (status: number) => void): void {
  // First of the close listeners, so that the request's count in flight sees the hold.
  res.prependListener('close', () => {
    // Answered already (its bytes maybe still buffered for a caller now gone): nothing to hold.
    if (!res.writableEnded && !lateWork(res)) answerEarly(res, () => {}, ended);
  });
}

/** The end of a route whose request was answered early (`answerEarly`), if it was. */
export function lateWork(res: Response): Promise<void> | undefined {
  return (res.locals as Record<symbol, Promise<void> | undefined>)[LATE_WORK];
}

/**
 * Answered already, other than early: nothing more can be sent (a request answered early takes
 * its route's answer to its log, answerEarly).
 */
export function answeredAlready(res: Response): boolean {
  return res.headersSent && !lateWork(res);
}

/** Answers errors without stack traces; body-parser's own errors keep their 4xx status. */
export function errorHandler(): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 600 ? err.status : 500;
    // A 5xx never describes itself to the caller: its details stay in the log.
    const type = status >= 500 ? 'internal_error' : typeof err?.type === 'string' ? err.type : 'bad_request';
    const fields = { status, type, path: routePath(req), ...(status >= 500 ? { stack: err?.stack } : {}) };
    const message = `request failed: ${err?.message ?? 'unknown error'}`;
    if (status >= 500) req.log?.error(fields, message);
    else req.log?.warn(fields, message);
    if (answeredAlready(res)) return;
    // A 4xx says what was wrong in words of its own: the parser's would echo the body back.
    const said = status < 500 ? { message: bodyProblem(err) } : {};
    // Written like every other error code of the services: `entity.too.large` is `entity_too_large`.
    // A key given twice is named as the field of any other bad value is.
    if (type === 'key.twice' && typeof err?.field === 'string') {
      res.status(status).json({ error: 'invalid_request', field: err.field, ...said });
      return;
    }
    res.status(status).json({ error: type.replaceAll('.', '_'), ...said });
  };
}

/**
 * Waits for `promise` at most `ms`, for work that must not hang (readiness probes, benchmark
 * waits). Past the deadline it rejects with "`what` did not answer within `ms` ms", or with the
 * message `what()` gives at that moment.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  return raceTimeout(promise, ms, (): never => {
    throw new Error(typeof what === 'function' ? what() : `${what} did not answer within ${ms} ms`);
  });
}

export type ReadinessCheck = () => Promise<void>;

/**
 * A readiness check's failure that an answer names by `reason` (a short code: a setup mistake,
 * such as a topic that does not exist), where any other failure is said "unavailable" alone.
 * The message, with its names and addresses, goes to the log.
 */
export class NotReady extends Error {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export interface CheckResults {
  ok: boolean;
  /** Each check's "ok", or its error's message (for the log). */
  results: Record<string, string>;
  /** The reason of each check that failed with NotReady. */
  reasons: Record<string, string>;
}

/** Runs every check with a deadline; a check that hangs counts as failed. */
export async function runChecks(checks: Record<string, ReadinessCheck>, timeoutMs = 2000): Promise<CheckResults> {
  const results: Record<string, string> = {};
  const reasons: Record<string, string> = {};
  let ok = true;
  await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), timeoutMs, name);
        results[name] = 'ok';
      } catch (err) {
        ok = false;
        results[name] = (err as Error).message;
        if (err instanceof NotReady) reasons[name] = err.reason;
      }
    }),
  );
  return { ok, results, reasons };
}

/**
 * The check results as an answer says them: which dependency failed, and why where the reason
 * is a setup mistake (NotReady), not the text of its error (hosts, addresses, project ids),
 * which goes to the log.
 */
export function publicChecks(checks: Pick<CheckResults, 'results' | 'reasons'>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(checks.results).map(([name, r]) => [
      name,
      r === 'ok' ? 'ok' : (checks.reasons[name] ?? 'unavailable'),
    ]),
  );
}

/**
 * Where each health route answers: `/healthz` and `/readyz` as most probes expect them, and
 * `/health` and `/ready` for Cloud Run, whose front end keeps some paths ending in z for itself
 * (https://cloud.google.com/run/docs/known-issues, "Reserved URL paths") and answers them with its
 * own 404 before they reach the container.
 */
export const HEALTH_PATHS = { live: ['/healthz', '/health'], ready: ['/readyz', '/ready'] } as const;

/** The live route says the process serves; the ready route says its dependencies answer. */
export function healthRoutes(app: Express, checks: Record<string, ReadinessCheck>, isDraining: () => boolean): void {
  app.get([...HEALTH_PATHS.live], (_req, res) => {
    res.status(isDraining() ? 503 : 200).json({ ok: !isDraining() });
  });
  app.get([...HEALTH_PATHS.ready], async (req, res) => {
    const ready = await runChecks(checks);
    const ok = ready.ok && !isDraining();
    if (!ok) req.log.warn({ checks: ready.results }, 'not ready');
    res.status(ok ? 200 : 503).json({ ok, checks: publicChecks(ready), draining: isDraining() });
  });
  app.all([...HEALTH_PATHS.live, ...HEALTH_PATHS.ready], methodNotAllowed(['GET']));
}
