import { isUtf8 } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Express, RequestHandler } from 'express';
import { unlessDrained, within } from '../shared/concurrency';
import { pushStatus } from '../shared/errors';
import {
  baseApp,
  bodyProblem,
  errorHandler,
  healthRoutes,
  ignoredBody,
  inFlightUntilRouteEnds,
  isJsonType,
  jsonBody,
  methodNotAllowed,
  notFound,
  type ReadinessCheck,
  refuseWhileDraining,
} from '../shared/http';
import { excerpt, quoted } from '../shared/model';
import { nameRequest } from '../shared/service';
import { TOPOLOGY } from '../shared/topology';
import {
  DEAD_LETTER_NOT_RECORDED,
  DeadLetterNotRecorded,
  type DeliverDeps,
  handleDeadLetter,
  handlePush,
} from './deliver';

export interface NotifierDeps extends DeliverDeps {
  projectId: string;
  readiness?: Record<string, ReadinessCheck>;
  /** Guards /push and /dead-letter (shared/auth.ts); index.ts always sets it unless AUTH_MODE=none. */
  pushAuth?: RequestHandler;
  isDraining?: () => boolean;
  /** Counts requests in flight, for a graceful shutdown. */
  track?: RequestHandler;
  /**
   * Holds each nack this long before answering. Zero in production, where the subscription's
   * retry policy paces redelivery; the local topology redelivers at once (see LocalTopology).
   */
  nackDelayMs?: number;
}

/** The longest a nack is held locally; well inside the ack deadline. */
const MAX_NACK_HOLD_MS = 10_000;
/** The longest a nack is held in production, with the push's own time inside its deadline. */
export const MAX_PRODUCTION_HOLD_MS = 20_000;

/**
 * How long to hold a nack before answering. Locally (NACK_DELAY_MS set, no retry policy) the
 * delay doubled for each attempt the delivery has had before this one, as the retry policy's
 * backoff grows in production, so that a Slack down for half a minute does not use up a
 * delivery's attempts; longer when a retry cannot succeed sooner. In production the retry policy already
 * waits its minimum backoff after the nack; the hold covers only what Slack asks beyond it
 * (Retry-After) or the time a timed-out post may still take to land, so that the next attempt
 * neither spends one of its delivery attempts on a certain refusal nor looks for the post too
 * early. A live claim elsewhere is not waited for here: the claim's owner answers first.
 */
export function nackHoldMs(
  result: { reason: string; notBeforeMs?: number; retryAfterSeconds?: number; attempts?: number },
  nackDelayMs: number,
  roomMs: number,
): number {
  const slackWait = result.reason === 'claimed_elsewhere' ? 0 : (result.notBeforeMs ?? 0);
  const want = Math.max(slackWait, (result.retryAfterSeconds ?? 0) * 1000);
  if (nackDelayMs > 0) {
    // 2^(attempts - 1), bounded before it is computed: the cap is reached long before.
    const backoff = nackDelayMs * 2 ** Math.min(20, Math.max(0, (result.attempts ?? 1) - 1));
    return Math.min(MAX_NACK_HOLD_MS, Math.max(backoff, result.notBeforeMs ?? 0, want));
  }
  const beyondBackoff = want - TOPOLOGY.retryPolicy.minimumBackoffSeconds * 1000;
  return Math.max(0, Math.min(beyondBackoff, MAX_PRODUCTION_HOLD_MS, roomMs));
}

/** Waits `ms`, or less once the service starts draining. */
async function holdUnlessDraining(ms: number, isDraining: () => boolean): Promise<void> {
  const cancel = new AbortController();
  const held = sleep(ms, undefined, { signal: cancel.signal }).catch(() => undefined);
  await unlessDrained(held, isDraining, 0);
  cancel.abort();
}

/**
 * A body sent as something other than JSON, or as JSON in a charset other than UTF-8: Pub/Sub
 * sends its envelope as JSON in UTF-8, so one sent otherwise was relabelled on its way (a
 * proxy), or sent by hand. One that is JSON all the same (an envelope, or a dispatch message as
 * the body itself, which a subscription set to "no wrapper" sends under whatever Content-Type)
 * goes on as JSON, with a warning naming its Content-Type, for the handler to deliver it, or
 * refuse it without losing it: acked unread, its post would be lost. Its bytes are read as
 * UTF-8 first (a label changed on the way leaves them as Pub/Sub sent them), then in the
 * charset its label names. One that is not JSON either way is acked, naming its Content-Type,
 * as redelivering it cannot help. A JSON body that is empty or not an envelope goes on too, for
 * the handler to say what is wrong with it.
 */
function ackUnlessJson(): RequestHandler {
  const raw = ignoredBody('256kb');
  return (req, res, next) => {
    const type = req.header('content-type');
    // The header itself: `req.is` answers null for a request without a body, whatever its type.
    const charset = otherCharset(type);
    const json = type !== undefined && isJsonType(type);
    if (req.body !== undefined || (json && charset === undefined)) return next();
    raw(req, res, (err?: unknown) => {
      if (err) return next(err);
      const read = jsonOfBytes(req.body, charset);
      req.body = read;
      const fields = { contentType: type === undefined ? null : excerpt(type) };
      // JSON by its type: what set it apart is its charset.
      if (json) {
        const named = quoted(String(charset));
        if (read !== undefined) {
          req.log.warn(fields, `body read as JSON although its Content-Type names the charset ${named}, not UTF-8`);
          return next();
        }
        req.log.warn(
          fields,
          `unreadable body acked: it is JSON neither in UTF-8 nor in its Content-Type's charset, ${named}`,
        );
      } else {
        const labelled = type === undefined ? 'missing' : quoted(type);
        if (read !== undefined) {
          req.log.warn(fields, `body read as JSON although its Content-Type is ${labelled}, not application/json`);
          return next();
        }
        req.log.warn(fields, `unreadable body acked: its Content-Type is ${labelled}, not application/json`);
      }
      res.status(204).end();
    });
  };
}

/** The charset a Content-Type names when it is not UTF-8 (`latin1` of `application/json; charset=latin1`). */
function otherCharset(type: string | undefined): string | undefined {
  if (type === undefined) return undefined;
  const match = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(type);
  const charset = match?.[1] ?? match?.[2];
  return charset === undefined || /^utf-?8$/i.test(charset) ? undefined : charset;
}

/** Skips the JSON parser for a JSON body labelled with a charset other than UTF-8, which it would refuse. */
function unlessOtherCharset(parse: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const type = req.header('content-type');
    return type !== undefined && isJsonType(type) && otherCharset(type) ? next() : parse(req, res, next);
  };
}

/**
 * The JSON object or array that is the whole of `body` (a BOM allowed): its bytes read as UTF-8,
 * else in `charset` when one is given and they are text in it; undefined when neither is.
 */
function jsonOfBytes(body: unknown, charset?: string): unknown {
  if (!Buffer.isBuffer(body)) return undefined;
  const json = isUtf8(body) ? jsonOfText(body.toString('utf8')) : undefined;
  return json !== undefined || charset === undefined ? json : jsonOfText(decoded(body, charset));
}

/** `bytes` as text in `charset`, or undefined for a label TextDecoder does not know or bytes not text in it. */
function decoded(bytes: Buffer, charset: string): string | undefined {
  try {
    return new TextDecoder(charset.slice(0, 40), { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** The JSON object or array that is the whole of `text` (a BOM allowed), or undefined. */
function jsonOfText(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    const json: unknown = JSON.parse(text.replace(/^\uFEFF/, ''));
    return json !== null && typeof json === 'object' ? json : undefined;
  } catch {
    return undefined;
  }
}

/** Names the request by its envelope's message and delivery ids, for a shutdown's log line. */
function nameByEnvelope(): RequestHandler {
  return (req, res, next) => {
    const message: unknown = (req.body as { message?: unknown } | undefined)?.message;
    const ids: Record<string, string> = {};
    if (message && typeof message === 'object') {
      const { messageId, attributes } = message as { messageId?: unknown; attributes?: { deliveryId?: unknown } };
      if (typeof messageId === 'string') ids.messageId = excerpt(messageId);
      const deliveryId = attributes && typeof attributes === 'object' ? attributes.deliveryId : undefined;
      if (typeof deliveryId === 'string') ids.deliveryId = excerpt(deliveryId, 1100);
    }
    nameRequest(res, ids);
    next();
  };
}

export function createApp(deps: NotifierDeps): Express {
  const app = baseApp(deps.log, deps.projectId);
  const isDraining = deps.isDraining ?? (() => false);
  healthRoutes(app, deps.readiness ?? {}, isDraining);
  const guards: RequestHandler[] = [
    ...(deps.track ? [deps.track, inFlightUntilRouteEnds()] : []),
    ...(deps.pushAuth ? [deps.pushAuth] : []),
  ];

  const draining = refuseWhileDraining(isDraining);
  const body = [unlessOtherCharset(jsonBody()), ackUnlessJson(), nameByEnvelope()];

  app.post(TOPOLOGY.pushPath, ...guards, ...body, draining, async (req, res) => {
    const started = Date.now();
    // The service's logger and the request's fields: the push binds them with the delivery's
    // ids in one child logger, where `req.log` would be a child made for the push to make another.
    const result = await handlePush(req.body, { ...deps, logFields: req.logFields });
    const status = pushStatus(result);
    if (result.kind === 'retry') {
      const room = (deps.deadlineMs ?? MAX_PRODUCTION_HOLD_MS) - (Date.now() - started);
      const hold = nackHoldMs(result, deps.nackDelayMs ?? 0, room);
      if (hold > 0) await holdUnlessDraining(hold, isDraining);
    }
    if (result.kind === 'retry' && result.retryAfterSeconds !== undefined) {
      res.setHeader('Retry-After', String(result.retryAfterSeconds));
    }
    // A 204 carries no body: serialising one would be work thrown away.
    if (status === 204) res.status(204).end();
    else res.status(status).json(result);
  });

  app.post(TOPOLOGY.deadLetterPath, ...guards, ...body, draining, async (req, res) => {
    try {
      const recording = handleDeadLetter(req.body, { ...deps, log: req.log });
      // Within the push's deadline too, so that a Firestore that does not answer gets a 503 before
      // Pub/Sub's ack deadline, not an answer after it: recording a dead letter again is harmless.
      const result = await within(recording, deps.deadlineMs);
      if (result === null) {
        req.log.warn(
          { deadlineMs: deps.deadlineMs },
          'dead letter not recorded by its deadline; answered 503 for a retry',
        );
        res.status(503).json({ error: 'deadline_exceeded' });
        return;
      }
      res.status(200).json(result);
    } catch (err) {
      if (!(err instanceof DeadLetterNotRecorded)) {
        req.log.error({ err: (err as Error).message }, DEAD_LETTER_NOT_RECORDED);
      }
      res.status(503).json({ error: 'record_failed' });
    }
  });

  // A body that is not JSON, too big, or malformed JSON is acked: redelivering it cannot help.
  app.use(
    [TOPOLOGY.pushPath, TOPOLOGY.deadLetterPath],
    (
      err: unknown,
      req: Parameters<RequestHandler>[0],
      res: Parameters<RequestHandler>[1],
      next: Parameters<RequestHandler>[2],
    ) => {
      const e = err as { status?: number; type?: string; length?: unknown; limit?: unknown };
      if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
        // A body too large says its size and the limit, in bytes, as body-parser gives them.
        const size = e.type === 'entity.too.large' ? { length: e.length, limit: e.limit } : {};
        req.log.warn({ status: e.status, type: e.type, ...size }, `unreadable body acked: ${bodyProblem(err)}`);
        res.status(204).end();
        return;
      }
      next(err);
    },
  );
  app.all([TOPOLOGY.pushPath, TOPOLOGY.deadLetterPath], methodNotAllowed(['POST']));
  app.use(notFound());
  app.use(errorHandler());
  return app;
}
