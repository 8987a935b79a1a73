import type { Express, RequestHandler } from 'express';
import { within } from '../shared/concurrency';
import { errorMessage } from '../shared/errors';
import {
  baseApp,
  errorHandler,
  healthRoutes,
  ignoredBody,
  inFlightUntilRouteEnds,
  methodNotAllowed,
  notFound,
  publicChecks,
  type ReadinessCheck,
  refuseWhileDraining,
  runChecks,
} from '../shared/http';
import type { Logger } from '../shared/logger';
import { rfc3339Spelling } from '../shared/messages';
import { TOPOLOGY } from '../shared/topology';
import { type AdminDeps, adminRouter } from './admin';
import { DRAIN_WAIT_MS, loggedSummary, RELEASE_WAIT_MS, runTick, type TickDeps } from './tick';

export interface DispatcherDeps extends Omit<TickDeps, 'log'> {
  log: Logger;
  projectId: string;
  readiness?: Record<string, ReadinessCheck>;
  /** Guards /tick (shared/auth.ts); index.ts always sets it unless AUTH_MODE=none. */
  tickAuth?: RequestHandler;
  /** The admin API and status page; mounted only with its own guard. */
  admin?: AdminDeps;
  /** Counts requests in flight (ticks and admin calls), so that a shutdown waits for them. */
  track?: RequestHandler;
  /** Extra routes mounted on the same app. */
  mount?: (app: Express) => void;
}

/**
 * How far ahead of this dispatcher's clock a schedule time may be: clock skew between Cloud
 * Scheduler and the instance, no more. Cloud Scheduler sends the time a job was due, which is
 * never later than when it calls; a later one would dispatch occurrences early.
 */
export const MAX_SCHEDULE_TIME_AHEAD_MS = 10_000;

/**
 * How long past its deadline (TickDeps.deadlineMs) a tick is answered 503 `tick_timeout` if it
 * has not ended: the deadline stops its runs, which then wait DRAIN_WAIT_MS in all (and at least
 * RELEASE_WAIT_MS for their release), and a second for what is left; only a call outside those
 * waits (a claim, a run's end) that answers nothing holds the tick longer.
 */
export const TICK_ANSWER_GRACE_MS = DRAIN_WAIT_MS + RELEASE_WAIT_MS + 1_000;

/** Firestore's earliest timestamp: a schedule time before it cannot be queried for. */
const EARLIEST_TIME_MS = Date.parse('0001-01-01T00:00:00Z');

/**
 * Parses Cloud Scheduler's `X-CloudScheduler-ScheduleTime` (RFC 3339); now when absent or empty. A
 * time that is not RFC 3339, or is ahead of the clock by more than the skew allowed, or a header
 * sent more than once, is an error that names the header.
 */
export function tickTimeOf(sent: string | readonly string[] | undefined, now: Date): Date | { error: string } {
  // Node joins a header sent more than once with ", ": said as such, not as one odd time.
  if (Array.isArray(sent) && sent.length > 1) {
    const times = sent.slice(0, 3).map((h) => JSON.stringify(h.slice(0, 100)));
    return {
      error: `X-CloudScheduler-ScheduleTime was sent ${sent.length} times (${times.join(', ')}${sent.length > 3 ? ', …' : ''}); Cloud Scheduler sends it once`,
    };
  }
  const header: string | undefined = typeof sent === 'string' ? sent : sent?.[0];
  if (header === undefined || header === '') return now;
  const name = `X-CloudScheduler-ScheduleTime ${JSON.stringify(header.slice(0, 100))}`;
  const upper = rfc3339Spelling(header);
  const t = upper === null ? null : new Date(upper);
  if (!t || Number.isNaN(t.getTime())) return { error: `${name} is not an RFC 3339 time` };
  if (t.getTime() < EARLIEST_TIME_MS) {
    return { error: `${name} is before 0001-01-01T00:00:00Z, the earliest time Firestore keeps` };
  }
  const aheadMs = t.getTime() - now.getTime();
  if (aheadMs > MAX_SCHEDULE_TIME_AHEAD_MS) {
    return {
      error: `${name} is ${Math.round(aheadMs / 1000)} s ahead of this dispatcher's clock (${now.toISOString()}); a schedule time is never in the future`,
    };
  }
  return t;
}

export function createApp(deps: DispatcherDeps): Express {
  const app = baseApp(deps.log, deps.projectId);
  const isDraining = deps.isDraining ?? (() => false);
  const clock = deps.clock ?? (() => new Date());
  healthRoutes(app, deps.readiness ?? {}, isDraining);
  // After the health routes: a shutdown waits for ticks and admin calls, not for probes.
  if (deps.track) app.use(deps.track);
  const draining = refuseWhileDraining(isDraining);
  // Draining, the admin routes take no new work either (a redrive cut off by the shutdown would
  // strand what it had reopened until a later redrive).
  app.use(['/admin', '/status'], draining);

  const guards: RequestHandler[] = [
    // A tick whose caller left is waited for by a shutdown all the same, as it checkpoints.
    ...(deps.track ? [inFlightUntilRouteEnds()] : []),
    ...(deps.tickAuth ? [deps.tickAuth] : []),
  ];
  // The tick reads only its headers: a body, JSON or not, is drained and passed over.
  app.post(TOPOLOGY.tickPath, ...guards, ignoredBody('16kb'), draining, async (req, res) => {
    // The deadline counts from here, as Cloud Scheduler's does from its call: the readiness
    // check below is part of the tick's time.
    const arrived = Date.now();
    const sent = req.headersDistinct['x-cloudscheduler-scheduletime'];
    const tickTime = tickTimeOf(sent, clock());
    if ('error' in tickTime) {
      req.log.warn({ header: sent }, tickTime.error);
      res.status(400).json({ error: 'invalid_schedule_time', message: tickTime.error });
      return;
    }
    // Firestore or Pub/Sub not answering: fail the tick at once, cleanly, instead of hanging
    // on them; Cloud Scheduler retries and the next tick resumes any run from its checkpoint.
    const ready = await runChecks(deps.readiness ?? {});
    if (!ready.ok) {
      req.log.error({ checks: ready.results }, 'tick refused: a dependency is unavailable');
      res.status(503).json({ error: 'dependency_unavailable', checks: publicChecks(ready) });
      return;
    }
    try {
      const ticking = runTick(tickTime, { ...deps, log: req.log, arrivedAtMs: arrived });
      const { deadlineMs } = deps;
      const summary = await within(
        ticking,
        deadlineMs === undefined ? undefined : Math.max(0, deadlineMs - (Date.now() - arrived)) + TICK_ANSWER_GRACE_MS,
      );
      if (summary === null) {
        // Firestore or Pub/Sub holds a call that answers nothing. The tick goes on behind this
        // answer and stops once it can; what it holds (a run's lease) lapses, and the retry or
        // the next tick resumes from the checkpoint.
        const message = `the tick did not end within ${(deadlineMs ?? 0) / 1000} s (TICK_DEADLINE_SECONDS) and ${TICK_ANSWER_GRACE_MS / 1000} s more: Firestore or Pub/Sub is not answering; a later tick resumes its runs from their checkpoints`;
        req.log.error({ tickTime: tickTime.toISOString() }, message);
        res.status(503).json({ error: 'tick_timeout', message });
        ticking.then(
          (late) =>
            req.log.warn(
              { tick: loggedSummary(late) },
              `tick ${late.tickTime} ended after it was answered 503: ${late.published} published`,
            ),
          (err: unknown) => req.log.error({ err: errorMessage(err) }, 'tick failed after it was answered 503'),
        );
        return;
      }
      req.log.info({ tick: loggedSummary(summary) }, `tick ${summary.tickTime}: ${summary.published} published`);
      // A failed occurrence answers 503 so that Cloud Scheduler retries and the run resumes.
      res.status(summary.failed > 0 ? 503 : 200).json(summary);
    } catch (err) {
      req.log.error({ err: (err as Error).message }, 'tick failed before dispatching');
      // The error's text (a Firestore message names the project, a host) stays in the log.
      res.status(503).json({ error: 'tick_failed' });
    }
  });

  if (deps.admin) app.use(adminRouter(deps.admin));
  deps.mount?.(app);
  app.all(TOPOLOGY.tickPath, methodNotAllowed(['POST']));
  app.use(notFound());
  app.use(errorHandler());
  return app;
}
