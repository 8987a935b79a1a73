import type { Firestore } from '@google-cloud/firestore';
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import { callerOf } from '../shared/auth';
import { KeyedSerial, mapLimit, within } from '../shared/concurrency';
import { DEFAULT_ADMIN_DEADLINE_SECONDS } from '../shared/config';
import { buildQuery, type FirestoreStore, toDate } from '../shared/firestore-store';
import { CODES } from '../shared/grpc';
import {
  answerEarly,
  answeredAlready,
  answeredEarlySignal,
  hasBody,
  holdIfCallerLeaves,
  jsonBody,
  jsonKind,
  methodNotAllowed,
  notFound,
  publicChecks,
  type ReadinessCheck,
  requireJson,
  routePath,
  runChecks,
} from '../shared/http';
import type { Logger } from '../shared/logger';
import { canonicalRunId, runIdProblem } from '../shared/messages';
import {
  characterCount,
  checkedPauseReason,
  type DeliveryStatus,
  documentIdProblem,
  loneSurrogatePath,
  lookalikeIdNote,
  MAX_DOCUMENT_ID_BYTES,
  MAX_PAUSE_REASON_CHARS,
  notificationIdProblem,
  quoted,
  type RunDoc,
  reasonHint,
  titleSchema,
  userIdProblem,
} from '../shared/model';
import {
  deleteNotification,
  type EnabledChange,
  enabledOutput,
  InvalidNotificationError,
  missingAccounts,
  type NewNotification,
  nextRunOf,
  notificationProblems,
  type PausedSelector,
  type ResumePausedResult,
  resumePaused,
  SaveInterrupted,
  saveNotifications,
  setNotificationEnabled,
} from '../shared/notifications';
import { QUERIES } from '../shared/queries';
import {
  firestoreRedriveLedger,
  pausedLeftPhrase,
  type RedrivePublisher,
  type RedriveResult,
  redrivable,
  redriveRun,
  runSummary,
} from '../shared/redrive';
import { checkedSchedule, scheduleProblemField, timeZoneCaution } from '../shared/schedule';
import { counted } from '../shared/words';
import { z } from '../shared/zod';
import {
  renderStatusError,
  renderStatusPage,
  STATUS_PAGE_COUNT_CONCURRENCY,
  STATUS_PAGE_MAX_RUNS,
  STATUS_PAGE_RUNS,
} from './status-page';

/**
 * The operators' API on the dispatcher: runs, redrive, notifications, and the status page.
 * Every route sits behind `auth`; the dispatcher is built with a guard that refuses all
 * when tokens are not checked, so this API is never open.
 */

export interface AdminPorts {
  getRun(runId: string): Promise<RunDoc | null>;
  countByStatus(runId: string): Promise<Record<DeliveryStatus, number>>;
  recentRuns(limit: number): Promise<{ id: string; run: RunDoc }[]>;
  getNotification(id: string): Promise<Record<string, unknown> | null>;
  /** When a notification (as getNotification gives it) is next sent; null when paused (nextRunOf). */
  nextRunAt(notification: Record<string, unknown>): Promise<Date | null>;
  /** Null when the notification does not exist (shared/notifications.ts). */
  setNotificationEnabled(
    id: string,
    enabled: boolean,
    reason?: string,
    defaultReason?: string,
    /** Once aborted (its request answered 504), the write is not begun: SaveInterrupted. */
    late?: AbortSignal,
  ): Promise<EnabledChange | null>;
  /** False when the notification does not exist; once `late` is aborted, not begun (SaveInterrupted). */
  deleteNotification(id: string, late?: AbortSignal): Promise<boolean>;
  /** Creates or replaces; true when it was created. */
  /**
   * Saves `n`; once `late` is aborted (its request answered 504), no attempt of the write begins.
   * `first` runs in the notification's turn, before the write (its account read): the turn is
   * taken when the request comes, so writes to one notification are made in the order they came.
   */
  saveNotification(n: NewNotification, late?: AbortSignal, first?: () => Promise<void>): Promise<boolean>;
  /** Whether no account document has this id (a notification naming it is saved all the same). */
  accountMissing(accountId: string): Promise<boolean>;
  /** Resumes in bulk the notifications paused for a reason, or every paused one (shared/notifications.ts). */
  resumePaused(selector: PausedSelector, opts: { dryRun: boolean }): Promise<ResumePausedResult>;
  /** Whether a redrive of the run has anything to do (shared/redrive.ts `redrivable`). */
  redrivable(runId: string, opts?: { failed?: boolean }): Promise<boolean>;
  /** Redrives the run's dead deliveries, and its failed ones with `failed`. */
  redrive(runId: string, opts?: { failed?: boolean }): Promise<RedriveResult>;
  /**
   * Whether the dispatch topic a redrive publishes to exists and has a subscription (the
   * readiness check's, shared/pubsub.ts topicReady): what is published to a topic no
   * subscription reads reaches no notifier, and the deliveries reopened for it would be left
   * retrying with no message behind them.
   */
  redriveTopicReady: ReadinessCheck;
}

export interface AdminDeps extends AdminPorts {
  /** The OIDC guard admitting ADMIN_EMAILS; required, so the routes cannot be mounted open. */
  auth: RequestHandler;
  clock?: () => Date;
  /** How long a request waits before it is answered 504 (ADMIN_DEADLINES by default). */
  deadlines?: { oneMs: number; bulkMs: number };
}

/**
 * How long an admin request may take before it is answered `504 firestore_timeout`: the
 * Firestore client waits on a Firestore that takes the connection but answers nothing for
 * minutes. A read or write of one notification or run gets 20 s; a redrive or a bulk resume,
 * which go through pages, 240 s. On Cloud Run the bulk deadline is ADMIN_DEADLINE_SECONDS,
 * which infra/ sets under the dispatcher's request timeout (the tick's deadline), so that the
 * answer is this API's, not Cloud Run's; the one-item deadline is never longer than it.
 */
const ONE_ITEM_DEADLINE_MS = 20_000;

/** The deadlines for a bulk deadline of `seconds` (ADMIN_DEADLINE_SECONDS). */
export function adminDeadlines(seconds: number): { oneMs: number; bulkMs: number } {
  const bulkMs = seconds * 1000;
  return { oneMs: Math.min(ONE_ITEM_DEADLINE_MS, bulkMs), bulkMs };
}

export const ADMIN_DEADLINES = adminDeadlines(DEFAULT_ADMIN_DEADLINE_SECONDS);

/** Marks a request answered 408 while its body was read: its route must not run (answerWithin). */
const CUT = Symbol('bodyCut');

/** A duration as a deadline's message says it: `20 s`, `300 ms`. */
function spoken(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}

/**
 * Answers 504 if the route has not answered within `ms`, replacing a deadline set before it;
 * `waitingOn` names what the route waits on. The work goes on: what it would have answered is
 * logged, not sent (the answer is gone), and a shutdown waits for it (answerEarly). A body still
 * arriving at the deadline is answered 408 and its connection closed, so that its route never
 * runs. A client gone before the route ends is not answered, and the shutdown waits as well.
 */
function answerWithin(ms: number, waitingOn = 'Firestore'): RequestHandler {
  return (req, res, next) => {
    const locals = res.locals as { deadline?: NodeJS.Timeout };
    clearTimeout(locals.deadline);
    // Which request a line is about, so that a late answer can be matched with its 504.
    const which = { method: req.method, path: routePath(req) };
    // The caller left while the guard ran: nothing is done for nobody (nothing has been yet).
    if (req.socket.destroyed) {
      req.log.info(which, 'admin request not run: its caller left before it was admitted');
      return;
    }
    const started = Date.now();
    // The status page's 504 is a page a browser shows: a deadline set under `/status` (which
    // routing matches in any case), read now as routing moves the base on.
    const underStatus = req.baseUrl.toLowerCase() === '/status';
    const endedAfter = (what: string) => (status: number) =>
      req.log.warn(
        { ...which, status, ms: Date.now() - started },
        `admin request ended after ${what}: it would have answered ${status}`,
      );
    locals.deadline = setTimeout(() => {
      if (res.headersSent || req.socket.destroyed) return;
      const within = spoken(ms);
      // Its body parser still reads the body (a route that reads none has begun without it):
      // the route has not begun, and is marked never to (wellFormedBody), whatever arrives after.
      if (!req.complete && req.readableFlowing === true) {
        req.log.warn(
          { ...which, deadlineMs: ms },
          `admin request answered 408: its body did not all arrive within ${within}`,
        );
        (res.locals as Record<symbol, unknown>)[CUT] = true;
        res.setHeader('Connection', 'close');
        // Closed once the 408 is written: the parser ends with `request aborted`.
        res.once('finish', () => req.socket.destroy());
        const settle = answerEarly(
          res,
          () =>
            res.status(408).json({
              error: 'request_timeout',
              message: `the request's body did not all arrive within ${within}; nothing was applied: send it again`,
            }),
          endedAfter('its 408'),
        );
        // Once the 408 is written the connection is closed (above). The rest of the body cannot
        // come then: its parser may never end, and the route never runs, so nothing would end
        // the hold answerEarly puts on a shutdown. It ends here, with no answer to log.
        res.once('close', () => {
          if (!req.complete) settle();
        });
        return;
      }
      req.log.warn({ ...which, deadlineMs: ms }, `admin request answered 504: not done within ${within}`);
      // A read changes nothing: only a write leaves its caller to find out whether it landed.
      const message =
        req.method === 'GET' || req.method === 'HEAD'
          ? `${waitingOn} did not answer within ${within}: ask again shortly`
          : `${waitingOn} did not answer within ${within}; the request may or may not have been applied: read it back, or send it again`;
      answerEarly(
        res,
        () => {
          res.setHeader('Retry-After', '5');
          if (underStatus && req.accepts(['json', 'html']) === 'html')
            res.status(504).type('html').send(renderStatusError(message, 'timed out'));
          else res.status(504).json({ error: 'firestore_timeout', message });
        },
        endedAfter('its 504'),
      );
    }, ms);
    locals.deadline.unref();
    res.once('close', () => clearTimeout(locals.deadline));
    holdIfCallerLeaves(res, endedAfter('its client left'));
    next();
  };
}

/**
 * Makes a write to notification `id` (given its request's answeredEarlySignal), or gives back
 * undefined when the write was not begun: its request answered 504, or its caller gone, while
 * it waited its turn (or, a PUT, on a contended Firestore). Not made, so that it cannot land
 * later over a write its caller made since; logged, as the answer is gone already.
 */
async function unlessNotBegun<T>(
  req: Request,
  res: Response,
  action: string,
  id: string,
  write: (late: AbortSignal) => Promise<T>,
): Promise<T | undefined> {
  try {
    return await write(answeredEarlySignal(res));
  } catch (err) {
    if (!(err instanceof SaveInterrupted)) throw err;
    req.log.warn({ notificationId: id }, `admin ${action} not made: answered 504, or its caller left, before it began`);
    res.status(504).json({});
    return undefined;
  }
}

/** The admin ports over Firestore, with redrive publishing to the dispatch topic. */
export function firestoreAdminPorts(
  db: Firestore,
  store: FirestoreStore,
  publisher: RedrivePublisher,
  log: Logger,
  /** The dispatch topic's readiness check (topicReady), made before a redrive reopens anything. */
  redriveTopicReady: ReadinessCheck,
  /** True once the dispatcher is shutting down: a redrive stops after its current page. */
  isDraining?: () => boolean,
): AdminPorts {
  const ledger = firestoreRedriveLedger(store);
  // The writes to one notification, one after another: side by side, each transaction would
  // lock the same documents, and on contention Firestore makes them wait and retry (50 at
  // once on the emulator took 13 to 16 s, where one after another took 1.3 s).
  const oneNotification = new KeyedSerial();
  // A write whose request was answered 504 (or whose caller left) while it waited its turn is
  // not begun: it cannot land later over a write its caller made since.
  const inTurn = <T>(id: string, late: AbortSignal | undefined, write: () => Promise<T>) =>
    oneNotification.run(id, async () => {
      if (late?.aborted) throw new SaveInterrupted();
      return write();
    });
  // A save's schedule made (or found made) one save at a time per schedule, where the save's first
  // read found it missing or in need of mending (SaveOptions.scheduleTurn).
  const oneSchedule = new KeyedSerial();
  const scheduleTurn = <T>(scheduleId: string, make: () => Promise<T>) => oneSchedule.run(scheduleId, make);
  return {
    getRun: (runId) => store.getRun(runId),
    countByStatus: (runId) => store.countByStatus(runId),
    async recentRuns(limit) {
      const snap = await buildQuery(db, QUERIES.recentRuns, {}).limit(limit).get();
      return snap.docs.map((d) => {
        const data = d.data();
        const run = { ...data } as Record<string, unknown>;
        for (const k of ['startedAt', 'updatedAt', 'finishedAt', 'leaseExpiresAt']) run[k] = toDate(data[k]);
        return { id: d.id, run: run as unknown as RunDoc };
      });
    },
    getNotification: (id) => store.getRaw(id),
    nextRunAt: (notification) => nextRunOf(db, notification),
    setNotificationEnabled: (id, enabled, reason, defaultReason, late) =>
      inTurn(id, late, () => setNotificationEnabled(db, id, enabled, reason, defaultReason)),
    deleteNotification: (id, late) => inTurn(id, late, () => deleteNotification(db, id)),
    saveNotification: (n, late, first) =>
      inTurn(n.id, late, async () => {
        await first?.();
        if (late?.aborted) throw new SaveInterrupted();
        // saveNotifications checks it (notificationDoc) before any Firestore call.
        const { created } = await saveNotifications(db, [n], { scheduleTurn, ...(late ? { lateSignal: late } : {}) });
        return created.has(n.id);
      }),
    accountMissing: async (accountId) => (await missingAccounts(db, [accountId])).length > 0,
    resumePaused: (selector, opts) => resumePaused(db, selector, opts),
    redrivable: (runId, opts) => redrivable(runId, store, ledger, opts),
    redriveTopicReady,
    redrive: (runId, opts) =>
      redriveRun(runId, {
        ledger,
        publisher,
        log,
        failed: opts?.failed === true,
        ...(isDraining ? { isDraining } : {}),
      }),
  };
}

/** Fields a GET's notification has (the stored shape) that a PUT's body does not take. */
const STORED_ONLY_FIELDS = ['slack', 'schedule', 'report', 'scheduleId'] as const;

const notificationBody = z.strictObject({
  // Checked in full as an import's (notificationDoc): a document id, up to 1,500 bytes.
  accountId: z.string().min(1).max(MAX_DOCUMENT_ID_BYTES),
  // Their lengths and blanks are checked by notificationDoc, as an import's are (a Slack id up to
  // 255 characters, a cron up to MAX_CRON_CHARS, a time zone up to MAX_TIMEZONE_CHARS).
  channelId: z.string(),
  teamId: z.string().optional(),
  cron: z.string().min(1),
  timezone: z.string().min(1),
  title: titleSchema.optional(),
  enabled: z.boolean().optional(),
});

/**
 * A 404's body, with a `message` when the id given looks like another (lookalikeIdNote: blanks
 * around it, an invisible or control character, not in NFC), which finds nothing even where the
 * id it shows exists.
 */
function notFoundBody<T extends object>(body: T, id: string): T & { message?: string } {
  const note = lookalikeIdNote(id);
  return note === null ? body : { ...body, message: note };
}

/** The 404 of a notification not found. */
function notificationNotFound(id: string) {
  return notFoundBody({ error: 'notification_not_found' as const, id }, id);
}

/** The 404 of a run not found. */
function runNotFound(runId: string) {
  return notFoundBody({ error: 'run_not_found' as const, runId }, runId);
}

const pauseBody = z.strictObject({
  // Checked and kept as `slack-fanout pause --reason` keeps it (checkedPauseReason): without the
  // blanks around it, in NFC, not blank, no control character. A stored reason still selects as it is.
  reason: z
    .string()
    .transform((r, ctx) => {
      const checked = checkedPauseReason(r);
      if ('problem' in checked) {
        ctx.addIssue({ code: 'custom', message: checked.problem });
        return z.NEVER;
      }
      return checked.reason;
    })
    .optional(),
});

/**
 * The bodies that take no field (a resume): `{}` or none. A field is refused, not passed over,
 * so that a field misspelt or meant for another route does nothing unseen.
 */
const noFieldsBody = z.strictObject({});

/** How long a redrive waits for its check of the dispatch topic. */
const REDRIVE_TOPIC_CHECK_MS = 10_000;

/** How long a redrive's answer waits for the count its hint needs. */
const HINT_COUNT_MS = 2_000;

/** The hint of a redrive without "failed" of a run with `n` failed deliveries. */
export function failedNotRedriven(n: number): string {
  return `${counted(n, 'delivery', 'deliveries')} of the run failed (a permanent error, not out of attempts) and ${n === 1 ? 'is' : 'are'} not redriven: a redrive sends dead deliveries alone; once the cause is fixed, the same call with {"failed": true} sends ${n === 1 ? 'it' : 'them'} again (one of a notification paused stays failed until it is resumed; one of a notification deleted since, and a broken message's record, stay failed)`;
}

/**
 * The hint of a redrive that left `n` dead (with `failed`, or failed) deliveries as they are, as
 * their notifications are paused: sent, each would be recorded skipped.
 */
export function pausedLeft(n: number, failed: boolean): string {
  // One run holds one delivery a notification: as many notifications as deliveries.
  return `${pausedLeftPhrase(n, n, failed)}: resume the notifications pausedNotifications names (POST /admin/notifications/:id/resume), then redrive again${failed ? ' with {"failed": true}' : ''}`;
}

/**
 * The hint of a redrive that found `n` deliveries of `runId` reopened by another redrive and not
 * yet published: most often one running beside it, which publishes them within seconds.
 */
export function waitingOnAnother(n: number, runId: string, until: string | null): string {
  const them = n === 1 ? 'it' : 'them';
  return `${counted(n, 'delivery', 'deliveries')} reopened by another redrive ${n === 1 ? 'was' : 'were'} waiting for it to publish ${them} when reached: a redrive still running publishes ${them} itself (GET /admin/runs/${runId} counts what is still retrying); a redrive after ${until} takes over any that a redrive stopped midway left`;
}

/**
 * A redrive's body: `{}` or none for the run's dead deliveries, `{"failed": true}` for its
 * failed ones too. Any other field is refused, so that `{"dryRun": true}` does not redrive for real.
 */
const redriveBody = z.strictObject({ failed: z.boolean().optional() });

/** A bulk resume: `{pausedReason}` or `{allPaused: true}`, and `dryRun` to count and list only. */
const resumePausedBody = z
  .strictObject({
    pausedReason: z
      .string()
      .refine((r) => r.trim() !== '', 'must not be empty or blank (only white space)')
      .refine((r) => characterCount(r) <= MAX_PAUSE_REASON_CHARS, `at most ${MAX_PAUSE_REASON_CHARS} characters`)
      .optional(),
    allPaused: z.literal(true).optional(),
    dryRun: z.boolean().optional(),
  })
  .superRefine((b, ctx) => {
    if (b.pausedReason !== undefined && b.allPaused) {
      ctx.addIssue({ code: 'custom', path: ['allPaused'], message: 'give pausedReason or allPaused, not both' });
    } else if (b.pausedReason === undefined && !b.allPaused) {
      ctx.addIssue({ code: 'custom', path: ['pausedReason'], message: 'give pausedReason or allPaused: true' });
    }
  });

function invalid(res: Response, field: string, message: string): void {
  res.status(400).json({ error: 'invalid_request', field, message });
}

/** Zod's first issue, named by its top-level field. */
function firstIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0];
  const keys = issue && 'keys' in issue && Array.isArray(issue.keys) ? issue.keys : [];
  const field = String(issue?.path[0] ?? keys[0] ?? '(body)');
  return { field, message: issue?.message ?? 'invalid' };
}

/** A body read by `schema`, or undefined once its first issue has been answered 400. */
function parsedOrRefused<S extends z.ZodType>(schema: S, value: unknown, res: Response): z.output<S> | undefined {
  const body = schema.safeParse(value);
  if (body.success) return body.data;
  const { field, message } = firstIssue(body.error);
  invalid(res, field, message);
  return undefined;
}

function audit(req: Request, res: Response, action: string, fields: Record<string, unknown>): void {
  req.log.info({ admin: { caller: callerOf(res), action, ...fields } }, `admin ${action}`);
}

/**
 * Text Firestore cannot hold (a lone surrogate, which JSON's `\ud800` can write) is named with
 * a 400 before any write: Firestore's own answer is a bare 500. After the body is parsed.
 */
const wellFormedBody: RequestHandler = (req, res, next) => {
  // Answered 408 at its deadline while its body was read: the rest, arrived since, is not run.
  if ((res.locals as Record<symbol, unknown>)[CUT]) {
    res.status(408).json({ error: 'request_timeout' });
    return;
  }
  // Every body these routes take is an object: an array would be named by its first index.
  if (Array.isArray(req.body)) {
    invalid(res, '(body)', 'the body must be a JSON object, got an array');
    return;
  }
  const at = req.body === undefined ? null : loneSurrogatePath(req.body);
  if (at !== null) {
    invalid(res, at || '(body)', 'is not well-formed Unicode (a lone surrogate)');
    return;
  }
  next();
};

export function adminRouter(deps: AdminDeps): Router {
  const clock = deps.clock ?? (() => new Date());
  const deadlines = deps.deadlines ?? ADMIN_DEADLINES;
  const bulk = answerWithin(deadlines.bulkMs);
  const redriveWithin = answerWithin(deadlines.bulkMs, 'Firestore or Pub/Sub');
  const router = express.Router();
  // The guard runs before routing, so an unknown admin path tells an anonymous caller nothing.
  router.use(
    ['/admin', '/status'],
    (_req, res, next) => {
      // Refusals included: nothing the admin routes answer is kept by a cache.
      res.setHeader('Cache-Control', 'no-store');
      next();
    },
    deps.auth,
    answerWithin(deadlines.oneMs),
  );

  // An id that cannot be a Firestore document is refused before any read or write.
  for (const param of ['id', 'runId']) {
    router.param(param, (req, res, next, value: string) => {
      // A method the path does not take is answered 405 (the router.all routes below), whatever the id.
      if ((req.route as { methods?: { _all?: boolean } } | undefined)?.methods?._all) {
        next();
        return;
      }
      // A blank notification id too, as the CLI and a PUT name it; one to be saved, by the
      // tightest limit it is past, as the save names it (an id cut to 1,500 bytes is still too long).
      const problem =
        param !== 'id'
          ? documentIdProblem(value)
          : req.method === 'PUT'
            ? notificationIdProblem(value)
            : userIdProblem(value);
      if (problem) {
        invalid(res, param, `${param} ${quoted(value)}: ${problem}`);
        return;
      }
      // A run id whose occurrence cannot be read names no run: said, rather than "not found".
      const runProblem = param === 'runId' ? runIdProblem(value) : null;
      if (runProblem) invalid(res, param, `${param} ${quoted(value)} ${runProblem}`);
      else next();
    });
  }

  router.get('/status', async (req, res) => {
    // `/status/` would resolve the page's relative links one level down: sent to `/status`, by a
    // relative address, which holds behind a proxy that adds a path in front.
    if (req.path.endsWith('/')) {
      const query = req.originalUrl.indexOf('?');
      res.redirect(301, `../status${query === -1 ? '' : req.originalUrl.slice(query)}`);
      return;
    }
    // The page and its errors: nothing but its own inline style runs, nothing is sniffed; an
    // answer that depends on Accept says so to caches.
    res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.vary('Accept');
    // `?limit=50`: written in decimal digits alone, as every number the project reads. A
    // parameter of another name (`?limit[]=5`, `?limt=5`) is named, not passed over.
    const asked = req.query.limit;
    const other = Object.keys(req.query).find((k) => k !== 'limit');
    const limit =
      asked === undefined ? STATUS_PAGE_RUNS : typeof asked === 'string' && /^\d+$/.test(asked) ? Number(asked) : 0;
    if (other !== undefined || limit < 1 || limit > STATUS_PAGE_MAX_RUNS) {
      const got = typeof asked === 'string' ? quoted(asked) : 'more than one value';
      const message =
        other !== undefined
          ? `the status page takes one parameter, limit (a whole number from 1 to ${STATUS_PAGE_MAX_RUNS}), got ${quoted(other)}`
          : `limit must be a whole number from 1 to ${STATUS_PAGE_MAX_RUNS}, got ${got}`;
      // A browser gets a page it shows; a script (curl sends */*) the admin API's JSON.
      if (req.accepts(['json', 'html']) === 'html') res.status(400).type('html').send(renderStatusError(message));
      else invalid(res, 'limit', message);
      return;
    }
    const runs = await deps.recentRuns(limit);
    const rows = await mapLimit(runs, STATUS_PAGE_COUNT_CONCURRENCY, async (r) => ({
      ...r,
      counts: await deps.countByStatus(r.id),
    }));
    // Rendered before the type is set: a failure is answered as JSON, labelled so.
    const page = renderStatusPage(rows, clock());
    res.type('html').send(page);
  });

  router.get('/admin/runs/:runId', async (req, res) => {
    // The occurrence in any RFC 3339 spelling: runs are stored under the canonical one.
    const runId = canonicalRunId(String(req.params.runId));
    const summary = await runSummary(runId, deps);
    if (!summary) {
      res.status(404).json(runNotFound(runId));
      return;
    }
    res.json(summary);
  });

  router.post(
    '/admin/runs/:runId/redrive',
    redriveWithin,
    requireJson({ optional: true }),
    jsonBody('16kb', { uniqueKeys: true }),
    wellFormedBody,
    async (req, res) => {
      const body = parsedOrRefused(redriveBody, req.body ?? {}, res);
      if (body === undefined) return;
      const opts = { failed: body.failed === true };
      const runId = canonicalRunId(String(req.params.runId));
      if (!(await deps.redrivable(runId, opts))) {
        res.status(404).json(runNotFound(runId));
        return;
      }
      // Before anything is reopened: a topic that is not there, or that no subscription reads,
      // would take the messages and deliver them to no one. Said as a tick says it.
      // 10 s, as the CLI gives its first Pub/Sub call: an admin call often comes to a fresh
      // instance, whose first call still makes its connection, and no one retries it for the caller.
      const topic = await runChecks({ pubsub: deps.redriveTopicReady }, REDRIVE_TOPIC_CHECK_MS);
      if (!topic.ok) {
        req.log.error({ checks: topic.results, runId }, 'redrive refused: the dispatch topic is not ready');
        res.status(503).json({
          error: 'dependency_unavailable',
          checks: publicChecks(topic),
          message: 'the dispatch topic is not ready to publish to; nothing was redriven',
        });
        return;
      }
      audit(req, res, 'redrive', { runId, failed: opts.failed });
      const result = await deps.redrive(runId, opts);
      // Without "failed", a redrive takes dead deliveries alone: one that failed (a permanent
      // error, as a token Slack refused) is not sent again, and an operator who fixed its cause
      // should know how to send it. Best-effort and bounded: a count that cannot be read in time
      // leaves the hint out rather than the redrive's answer; a redrive cut short by a shutdown,
      // which must answer within the grace, or stopped, does not count.
      const failed =
        opts.failed || result.interrupted || result.stopped !== undefined
          ? 0
          : ((
              await within(
                deps.countByStatus(runId).catch(() => null),
                HINT_COUNT_MS,
              )
            )?.failed ?? 0);
      const hints = [
        ...((result.paused ?? 0) > 0 ? [pausedLeft(result.paused ?? 0, opts.failed === true)] : []),
        ...(result.waiting > 0 ? [waitingOnAnother(result.waiting, runId, result.waitingUntil)] : []),
        ...(failed > 0 ? [failedNotRedriven(failed)] : []),
      ];
      res.json(hints.length > 0 ? { ...result, hint: hints.join('. ') } : result);
    },
  );

  router.get('/admin/notifications/:id', async (req, res) => {
    const id = String(req.params.id);
    const notification = await deps.getNotification(id);
    if (!notification) {
      res.status(404).json(notificationNotFound(id));
      return;
    }
    const next = await deps.nextRunAt(notification);
    res.json({ id, notification, nextRunAt: next?.toISOString() ?? null });
  });

  router.post(
    '/admin/paused/resume',
    bulk,
    requireJson(),
    jsonBody('16kb', { uniqueKeys: true }),
    wellFormedBody,
    async (req, res) => {
      // No body at all: said as what to send, not as an object missing.
      if (req.body === undefined) {
        invalid(res, 'pausedReason', 'give pausedReason or allPaused: true');
        return;
      }
      const body = parsedOrRefused(resumePausedBody, req.body, res);
      if (body === undefined) return;
      const { pausedReason, dryRun = false } = body;
      const selector: PausedSelector = pausedReason !== undefined ? { pausedReason } : { allPaused: true };
      audit(req, res, 'resume-paused', { ...selector, dryRun });
      const result = await deps.resumePaused(selector, { dryRun });
      const { ids, unlisted, ...counts } = result;
      // A reason is matched exactly, and one saved now has no blanks around it and is in NFC: the likely one named.
      const hint = pausedReason !== undefined && result.matched === 0 ? reasonHint(pausedReason) : null;
      res.json({
        ...selector,
        ...counts,
        ...(dryRun ? { ids, unlisted } : {}),
        ...(hint
          ? { hint: `${hint.message}: try {"pausedReason": ${quoted(hint.reason, 2 * MAX_PAUSE_REASON_CHARS)}}` }
          : {}),
      });
    },
  );

  for (const action of ['pause', 'resume'] as const) {
    router.post(
      `/admin/notifications/:id/${action}`,
      requireJson({ optional: true }),
      jsonBody('16kb', { uniqueKeys: true }),
      wellFormedBody,
      async (req, res) => {
        const id = String(req.params.id);
        const body = parsedOrRefused(action === 'pause' ? pauseBody : noFieldsBody, req.body ?? {}, res);
        if (body === undefined) return;
        const reason = action === 'pause' && 'reason' in body ? body.reason : undefined;
        const change = await unlessNotBegun(req, res, action, id, (late) =>
          deps.setNotificationEnabled(
            id,
            action === 'resume',
            reason,
            `paused by ${callerOf(res) ?? 'an operator'}`,
            late,
          ),
        );
        if (change === undefined) return;
        if (change === null) {
          res.status(404).json(notificationNotFound(id));
          return;
        }
        audit(req, res, action, { notificationId: id });
        res.json(enabledOutput(id, action === 'resume', change));
      },
    );
  }

  router.delete('/admin/notifications/:id', async (req, res) => {
    const id = String(req.params.id);
    const deleted = await unlessNotBegun(req, res, 'delete-notification', id, (late) =>
      deps.deleteNotification(id, late),
    );
    if (deleted === undefined) return;
    if (!deleted) {
      res.status(404).json(notificationNotFound(id));
      return;
    }
    audit(req, res, 'delete-notification', { notificationId: id });
    res.json({ id, deleted: true });
  });

  router.put(
    '/admin/notifications/:id',
    requireJson(),
    jsonBody('64kb', { uniqueKeys: true }),
    wellFormedBody,
    async (req, res) => {
      const id = String(req.params.id);
      // No body at all: said so, not as the first field it lacks.
      if (!hasBody(req)) {
        invalid(
          res,
          '(body)',
          'is empty: send the notification as a JSON object ({accountId, channelId, cron, timezone, …})',
        );
        return;
      }
      // The stored shape, as a GET answers it, sent back: said as such, not as a field missing.
      const stored = STORED_ONLY_FIELDS.find((f) => Object.hasOwn(req.body as object, f));
      if (stored !== undefined) {
        invalid(
          res,
          stored,
          `is a field of the stored notification, as GET answers it: PUT takes the flat fields {accountId, channelId, cron, timezone, teamId?, title?, enabled?} (slack.channelId as channelId, slack.teamId as teamId, schedule.cron as cron, schedule.timezone as timezone, report.title as title)`,
        );
        return;
      }
      const body = parsedOrRefused(notificationBody, req.body, res);
      if (body === undefined) return;
      // Checked as the save checks it (checkedSchedule), before anything is read: blanks around
      // the zone are dropped, not refused.
      if (body.timezone.trim() === '') {
        invalid(res, 'timezone', 'is blank');
        return;
      }
      const checked = checkedSchedule(body.cron.trim(), body.timezone);
      if ('problem' in checked) {
        invalid(res, scheduleProblemField(checked.problem), checked.problem);
        return;
      }
      // The save's own checks: with the schedule good, a cron problem left is a step past its cycle.
      const problems = notificationProblems({ id, ...body });
      const cronProblem = problems.find((p) => p.field === 'cron');
      if (cronProblem) {
        invalid(res, 'cron', cronProblem.problem);
        return;
      }
      // Read before the save, in its turn (a pause sent after this PUT is made after it), so that
      // a Firestore that fails the read fails the request before anything is written. A missing
      // account does not refuse it (accounts may be imported after their notifications): the
      // answer warns, as the CLI's add does. A notification the save refuses (an account id no
      // document can have, say) is not read for.
      let accountMissing = false;
      const readAccount = async () => {
        accountMissing = problems.length === 0 && (await deps.accountMissing(body.accountId));
      };
      let created: boolean | undefined;
      try {
        created = await unlessNotBegun(req, res, 'replace-notification', id, (late) =>
          deps.saveNotification({ id, ...body }, late, readAccount),
        );
      } catch (err) {
        if (!(err instanceof InvalidNotificationError)) throw err;
        invalid(res, err.field, err.message);
        return;
      }
      if (created === undefined) return;
      audit(req, res, created ? 'create-notification' : 'replace-notification', { notificationId: id });
      const warnings = [
        ...(accountMissing
          ? [
              `account ${quoted(body.accountId)} is not in Firestore: each delivery fails (invalid_notification) until it is imported, and after PAUSE_AFTER_FAILURES occurrences in a row the notification is paused (account_not_found)`,
            ]
          : []),
        ...[timeZoneCaution(body.timezone)].filter((c): c is string => c !== null),
      ];
      res
        .status(created ? 201 : 200)
        .json({ id, created, ...(warnings.length > 0 ? { warning: warnings.join('; ') } : {}) });
    },
  );

  // A path above asked with a method it does not take.
  router.all('/status', methodNotAllowed(['GET']));
  router.all('/admin/runs/:runId', methodNotAllowed(['GET']));
  router.all('/admin/runs/:runId/redrive', methodNotAllowed(['POST']));
  router.all('/admin/notifications/:id', methodNotAllowed(['GET', 'PUT', 'DELETE']));
  router.all('/admin/notifications/:id/pause', methodNotAllowed(['POST']));
  router.all('/admin/notifications/:id/resume', methodNotAllowed(['POST']));
  router.all('/admin/paused/resume', methodNotAllowed(['POST']));
  router.use('/admin', notFound());
  // A body that is not JSON answers like every other bad request of the admin API.
  router.use('/admin', ((err, req, res, next) => {
    if (answeredAlready(res)) {
      next(err);
      return;
    }
    const e = err as { type?: unknown; message?: unknown; body?: unknown };
    if (e?.type === 'entity.parse.failed') {
      // JSON, but not an object or array (`null`, `"text"`, `3`): the parser's strict mode
      // refuses it with JSON.parse's own words, which would call it not JSON.
      const kind = jsonKind(e.body);
      invalid(
        res,
        '(body)',
        kind
          ? `the body must be a JSON object, got ${kind}`
          : `the body is not JSON: ${String(e.message).slice(0, 200)}`,
      );
      return;
    }
    const busy = firestoreBusy(err);
    if (busy !== null) {
      // Said as Google's APIs say these codes, with when to try again.
      req.log.warn(
        { code: (err as { code?: unknown }).code, err: String(e.message) },
        `admin request refused: ${busy.message}`,
      );
      res.setHeader('Retry-After', String(busy.retryAfterSeconds));
      res.status(busy.status).json({ error: busy.error, message: busy.message });
      return;
    }
    next(err);
  }) as ErrorRequestHandler);
  return router;
}

/**
 * A Firestore error that says "not now" rather than "wrong": a transaction that lost to another
 * changing the same documents (ABORTED, after the client's own retries), Firestore out of reach
 * (UNAVAILABLE), out of time (DEADLINE_EXCEEDED) or over its quota (RESOURCE_EXHAUSTED). The
 * caller can try the same request again; a 500 would say the service is broken.
 */
export function firestoreBusy(
  err: unknown,
): { status: number; error: string; message: string; retryAfterSeconds: number } | null {
  // A save says how far it got, with Firestore's error as its cause.
  let code = (err as { code?: unknown } | null)?.code;
  for (let e: unknown = err, depth = 0; code === undefined && e instanceof Error && depth < 5; depth++) {
    e = e.cause;
    code = (e as { code?: unknown } | null)?.code;
  }
  switch (code) {
    case CODES.ABORTED:
      return {
        status: 409,
        error: 'conflict',
        message: 'another request was changing the same data at the same time, and this one gave way: send it again',
        retryAfterSeconds: 1,
      };
    case CODES.UNAVAILABLE:
      return {
        status: 503,
        error: 'firestore_unavailable',
        message: 'Firestore could not be reached: send the request again shortly',
        retryAfterSeconds: 5,
      };
    case CODES.DEADLINE_EXCEEDED:
      return {
        status: 504,
        error: 'firestore_timeout',
        message:
          'Firestore did not answer in time; the request may or may not have been applied: read it back, or send it again',
        retryAfterSeconds: 5,
      };
    case CODES.RESOURCE_EXHAUSTED:
      return {
        status: 429,
        error: 'firestore_quota',
        message: 'Firestore refused the request for its quota or load: send it again later',
        retryAfterSeconds: 30,
      };
    default:
      return null;
  }
}
