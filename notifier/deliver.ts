import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  DATA_PAYLOAD_ERRORS,
  errorMessage,
  FanoutError,
  outcomeOf,
  PermanentError,
  type PushOutcome,
  postMayStillLand,
  postWindowMs,
  RetryableError,
} from '../shared/errors';
import type { Logger } from '../shared/logger';
import { indexedSchedule } from '../shared/members';
import { type DispatchMessage, parsePushBody, pubsubTime } from '../shared/messages';
import {
  accountSchema,
  type DeliveryError,
  deliveryIdOf,
  documentIdProblem,
  excerpt,
  type Notification,
  notificationSchema,
  type PostTarget,
  postTargetOf,
  postTargetsAfter,
  quoted,
  samePlace,
} from '../shared/model';
import type { AccountStore, DeliveryLedger, NotificationStore, RunStore } from '../shared/ports';
import { renderReport } from '../shared/report';
import { checkedSchedule, firesAtOccurrence, isValidTimeZone, scheduleIdOf } from '../shared/schedule';
import type { z } from '../shared/zod';
import type { SlackPort } from './slack';

export interface DeliverDeps {
  ledger: DeliveryLedger;
  notifications: NotificationStore;
  accounts: AccountStore;
  /** Runs, read only by the dead-letter check: a message Pub/Sub gave up on belongs to a run the dispatcher made. */
  runs: Pick<RunStore, 'getRun'>;
  slack: SlackPort;
  log: Logger;
  /**
   * Fields every line about this push carries (its trace id), bound with the delivery's ids in
   * one child logger of `log`, not a child of a child: a push's logger is made once.
   */
  logFields?: Record<string, string>;
  claimTtlMs: number;
  pauseAfterFailures: number;
  clock?: () => Date;
  owner?: string;
  /**
   * The longest one push may take before it answers 503. Kept inside the push ack deadline,
   * so a hung dependency gives a nack Pub/Sub can act on, not a timeout.
   */
  deadlineMs?: number;
  /** The Slack client's timeout: a post is started only while the claim outlasts it. */
  slackTimeoutMs?: number;
}

export type DeliverResult = PushOutcome & {
  deliveryId: string | null;
  status?: string;
  /** For a retry: how long until another attempt can succeed (a live claim, a post that may still land). */
  notBeforeMs?: number;
  /** For a retry after an attempt that claimed the delivery: its attempts so far, the ledger's count. */
  attempts?: number;
};

const defaultOwner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

/** The longest error message and Slack error kept in the ledger: a gateway's page is not stored whole. */
const MAX_ERROR_MESSAGE = 1000;
const MAX_SLACK_ERROR = 100;

/**
 * The pausedReason a permanent Slack failure counts towards, or null when it does not count: a
 * channel or workspace gone, or a refusal the account's data causes (DATA_PAYLOAD_ERRORS), which
 * one notification keeps meeting. The payload errors only this code can cause are recorded
 * failed and not counted: pausing every notification for them would turn one bad deploy into a
 * fleet to resume.
 */
function slackPauseReason(err: FanoutError): string | null {
  const reason = err.slackError ?? err.code;
  if (err.code === 'slack_permanent_channel' || err.code === 'slack_permanent_workspace') return reason;
  if (err.code === 'slack_permanent_payload' && DATA_PAYLOAD_ERRORS.has(reason)) return reason;
  return null;
}

function capped(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

function toRecord(err: FanoutError, now: Date): DeliveryError {
  return {
    code: err.code,
    slackError: err.slackError === undefined ? null : capped(err.slackError, MAX_SLACK_ERROR),
    message: capped(err.message, MAX_ERROR_MESSAGE),
    retryable: err.retryable,
    at: now,
  };
}

/**
 * One push: parse, claim the delivery, render, post, record. Never throws: every input,
 * good or bad, ends as an ack or a retry with a reason.
 */
export async function handlePush(body: unknown, deps: DeliverDeps): Promise<DeliverResult> {
  if (!deps.deadlineMs) return deliver(body, deps);
  // The delivery the push is for, once it is known: the deadline's answer names it too.
  const known: Attempt = { deliveryId: null, answered: false };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<DeliverResult>((resolve) => {
    timer = setTimeout(() => {
      // Marked before the answer: the attempt, still running, must not post after it.
      known.answered = true;
      pushLog(deps).warn(
        { deadlineMs: deps.deadlineMs, deliveryId: known.deliveryId },
        'push not finished by its deadline; answered retry',
      );
      resolve({ kind: 'retry', reason: 'deadline_exceeded', deliveryId: known.deliveryId });
    }, deps.deadlineMs);
  });
  try {
    return await Promise.race([deliver(body, deps, known), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The push's logger before its delivery is known: `log` with the push's own fields (its trace). */
function pushLog(deps: Pick<DeliverDeps, 'log' | 'logFields'>): Logger {
  return deps.logFields ? deps.log.child(deps.logFields) : deps.log;
}

/** What an attempt shares with its deadline: the delivery it is for, and whether it was answered. */
type Attempt = { deliveryId: string | null; answered: boolean };

async function deliver(
  body: unknown,
  deps: DeliverDeps,
  known: Attempt = { deliveryId: null, answered: false },
): Promise<DeliverResult> {
  const clock = deps.clock ?? (() => new Date());
  const parsed = parsePushBody(body);
  if (!parsed.ok && parsed.unwrapped) {
    // A good message that a misconfigured subscription sends bare. Acked, it would be lost with
    // nothing to send it again. It is answered retry instead, nothing recorded (the nack held
    // only as NACK_DELAY_MS holds every nack locally): it ends on the dead-letter topic after
    // its attempts, recorded dead there, and `redrive` sends it again once the subscription
    // wraps its messages.
    pushLog(deps).error(
      { deliveryId: parsed.deliveryId, runId: parsed.runId, reason: 'unwrapped_message' },
      `push refused, retry later: ${parsed.reason}`,
    );
    return { kind: 'retry', reason: 'unwrapped_message', deliveryId: parsed.deliveryId };
  }
  if (!parsed.ok) {
    const log = pushLog(deps);
    log.warn({ deliveryId: parsed.deliveryId, messageId: parsed.messageId }, `invalid push acked: ${parsed.reason}`);
    if (parsed.deliveryId) {
      // Recorded where the envelope names its delivery, so an operator can see it.
      const now = clock();
      const err = new PermanentError('invalid_message', parsed.reason);
      // Only where that delivery has no record yet: a broken or forged message must not end a
      // delivery that a good message is carrying. It counts in the run its attributes name.
      const init = parsed.runId ? { runId: parsed.runId } : {};
      await deps.ledger.recordInvalid(parsed.deliveryId, toRecord(err, now), now, init).catch((e) => {
        log.warn({ deliveryId: parsed.deliveryId, err: errorMessage(e) }, 'could not record the invalid push');
      });
    }
    return { kind: 'ack', reason: 'invalid_message', deliveryId: parsed.deliveryId };
  }

  const { message, publishTime, deliveryAttempt, messageId } = parsed.push;
  const deliveryId = deliveryIdOf(message.notificationId, message.occurrence);
  known.deliveryId = deliveryId;
  const log = deps.log.child({
    ...deps.logFields,
    deliveryId,
    notificationId: message.notificationId,
    runId: message.runId,
    messageId,
    deliveryAttempt,
  });

  const early = notYetDue(message, clock());
  if (early) {
    // The dispatcher publishes an occurrence once it has fallen due on its own clock: either this
    // service's clock is behind, or the message was made by hand or by a fault. Posting now would
    // post early, and the real message would then find the delivery sent. Nothing is recorded,
    // and the push is answered retry: Pub/Sub tries again with backoff, so a message that was
    // early only by this clock posts once it is due here, and one made up for a later instant
    // ends on the dead-letter topic after its attempts, where it is refused and recorded.
    // The nack is not held for its instant (only as NACK_DELAY_MS holds every nack locally): a
    // made-up message could name any instant.
    log.warn({ reason: 'future_occurrence' }, `push not taken yet, retry later: ${early}`);
    return { kind: 'retry', reason: 'future_occurrence', deliveryId };
  }

  let claimed = false;
  // The ledger's count of attempts that claimed the delivery, this one included.
  let attempts = 0;
  // Set once Slack has taken the post: from then on, a failure to record it must leave the next
  // attempt looking for the post instead of posting again.
  let posted = false;
  // Set when a permanent failure of this notification's own input should count towards pausing it.
  let pauseReason: string | null = null;
  // Set when the delivery failed for good before a redrive reopened it: that failure was counted.
  let failedBefore = false;
  // Where this attempt was to post, once the notification is read: named in its failure's log line.
  let target: PostTarget | null = null;
  // One token per attempt: an attempt that outlives its claim cannot release its successor's.
  const claimToken = `${deps.owner ?? defaultOwner}#${randomUUID().slice(0, 8)}`;
  // The notification and its account as this attempt read them, once it has.
  let inputs: Awaited<ReturnType<typeof loadInputs>> | null = null;
  const startedAt = Date.now();
  try {
    // The notification is read before the claim, so that the claim records where this attempt
    // is to post: should its outcome be unknown, the next attempt looks there, whatever the
    // notification says by then (another channel, paused, deleted).
    inputs = await loadInputs(message.notificationId, deps);
    const { raw, accountRaw } = inputs;
    const n = raw ? notificationSchema.safeParse(raw) : null;
    target = n?.success ? postTargetOf(n.data) : null;
    const claim = await deps.ledger.claim({
      deliveryId,
      notificationId: message.notificationId,
      occurrence: message.occurrence,
      runId: message.runId,
      owner: claimToken,
      ttlMs: deps.claimTtlMs,
      now: clock(),
      publishedAt: publishTime,
      target,
    });
    if (claim.kind === 'final') {
      log.info({ status: claim.status }, 'duplicate push of a finished delivery acked');
      return { kind: 'ack', reason: `already_${claim.status}`, deliveryId, status: claim.status };
    }
    if (claim.kind === 'busy') {
      log.info(
        { claimExpiresAt: claim.claimExpiresAt.toISOString() },
        'delivery claimed by a live attempt; retry later',
      );
      return {
        kind: 'retry',
        reason: 'claimed_elsewhere',
        deliveryId,
        notBeforeMs: Math.max(0, claim.claimExpiresAt.getTime() - clock().getTime()),
      };
    }
    claimed = true;
    attempts = claim.attempts;
    failedBefore = claim.failedBefore;
    let claimExpiresAt = claim.claimExpiresAt;

    if (claim.outcomeUnknown) {
      // An earlier attempt may have posted: look where it was to post before anything else, so
      // that neither a post elsewhere nor a skip or failure is recorded over a post that landed.
      const found = await findEarlierPost(claim.earlierTargets, target, deliveryId, claim.firstAttemptAt, deps, log);
      if (found) {
        const now = clock();
        await deps.ledger.markSent(deliveryId, {
          slackTs: found.ts,
          channelId: found.target.channelId,
          accountId: found.target.accountId,
          latencyMs: null,
          now,
          // When it was posted, from its Slack timestamp, rather than when it was found.
          sentAt: slackTsTime(found.ts) ?? now,
        });
        log.info(
          { slackTs: found.ts, channelId: found.target.channelId },
          'earlier attempt had posted; recorded sent without posting again',
        );
        // A post that went through resets the failure count, found or made.
        if (n?.success && n.data.consecutiveFailures > 0) await resetFailures(message.notificationId, deps, log);
        return { kind: 'ack', reason: 'sent', deliveryId, status: 'sent' };
      }
      // The look took its time (a busy channel, several channels): the claim is renewed if it
      // would no longer outlast a post, so the attempt can still post once it has looked.
      const now = clock();
      if (now.getTime() + postWindowMs(slackTimeoutOf(deps)) >= claimExpiresAt.getTime()) {
        const until = new Date(now.getTime() + deps.claimTtlMs);
        if (!(await deps.ledger.renewClaim(deliveryId, claimToken, until, now))) {
          throw new RetryableError(
            'dependency_unavailable',
            'another attempt took the delivery over while this one looked for an earlier post; retry later',
          );
        }
        claimExpiresAt = until;
      }
    }

    if (!raw || !n)
      throw new PermanentError('notification_not_found', `notification ${message.notificationId} does not exist`);
    if (!n.success) {
      throw new PermanentError(
        'invalid_notification',
        `notification ${message.notificationId} is invalid: ${issuesOf(n.error)}`,
      );
    }
    const notification = n.data;
    if (!isValidTimeZone(notification.schedule.timezone)) {
      throw new PermanentError(
        'invalid_notification',
        `notification ${message.notificationId} has unknown time zone ${JSON.stringify(notification.schedule.timezone)}`,
      );
    }
    if (!notification.enabled) {
      const reason = notification.pausedReason ?? 'disabled';
      // Paused by this occurrence's own permanent failure, counted before its record, which
      // could not be written then: recorded failed, as it would have been, not skipped, so
      // that `redrive --failed` finds it once the cause is fixed.
      if (raw.lastFailedOccurrence === message.occurrence && raw.lastFailure === reason) {
        throw new PermanentError(
          'paused_by_this_failure',
          `this occurrence failed for good (${reason}) and paused the notification, and its failed record could not be written then: not sent; once the cause is fixed and the notification resumed, redrive --failed sends it`,
        );
      }
      const now = clock();
      await deps.ledger.markFinal(
        deliveryId,
        'skipped',
        { code: 'notification_paused', slackError: null, message: `not sent: ${reason}`, retryable: false, at: now },
        now,
        claimToken,
      );
      log.info({ pausedReason: reason }, 'notification is paused; delivery skipped');
      await leaveStaleIndex(message, raw, deps, log);
      return { kind: 'ack', reason: 'notification_paused', deliveryId, status: 'skipped' };
    }

    if (!scheduleFiresAt(notification, message)) {
      // The notification's schedule, as it is now, does not fall due at this instant: no report
      // is wanted now. Either the notification moved since this occurrence was dispatched
      // (notification_rescheduled; where its new schedule falls due at the same instant, the
      // report is still wanted and goes out, whichever schedule's message comes first, the
      // ledger keeping it to one post), or the message is of its own schedule and names an
      // instant that schedule never falls due at (not_an_occurrence: the dispatcher sends only a
      // schedule's own occurrences, so it was made by hand or by a fault). Either skip speaks of
      // this message only: should the notification move to a schedule that falls due at this
      // instant, that schedule's message, the same delivery, still sends (endsDelivery).
      const moved = notification.scheduleId !== message.scheduleId;
      // Its cron or zone changed by hand, its scheduleId left as it was: the schedule it is
      // dispatched by never falls due when it wants its report, and the one that does never
      // dispatches it. Failed, counting towards pausing, rather than skipped at every instant.
      const own = scheduleIdOf(notification.schedule);
      if (!moved && own !== notification.scheduleId) {
        throw new PermanentError(
          'invalid_notification',
          `notification ${message.notificationId} is invalid: its scheduleId ${quoted(notification.scheduleId)} is not its schedule's (${quoted(own)}, ${quoted(notification.schedule.cron)} in ${notification.schedule.timezone}): its cron or time zone was changed without it, as by hand; save it again (the admin API's PUT, or slack-fanout add), which files it under its schedule`,
        );
      }
      const code = moved ? 'notification_rescheduled' : 'not_an_occurrence';
      const why = moved
        ? `not sent: the notification moved from schedule ${message.scheduleId} to ${notification.scheduleId}`
        : `not sent: ${notAnOccurrence(message, notification.schedule)}`;
      const now = clock();
      await deps.ledger.markFinal(
        deliveryId,
        'skipped',
        { code, slackError: null, message: why, retryable: false, at: now },
        now,
        claimToken,
      );
      log[moved ? 'info' : 'warn']({ scheduleId: notification.scheduleId, dispatchedFor: message.scheduleId }, why);
      await leaveStaleIndex(message, raw, deps, log);
      return { kind: 'ack', reason: code, deliveryId, status: 'skipped' };
    }

    // A missing or broken account fails every occurrence alike: it counts towards pausing, as a
    // channel that is gone does (`account_not_found`, `account_invalid`).
    if (!accountRaw) {
      pauseReason = 'account_not_found';
      throw new PermanentError('invalid_notification', `account ${notification.accountId} does not exist`);
    }
    const account = accountSchema.safeParse(accountRaw);
    if (!account.success) {
      pauseReason = 'account_invalid';
      throw new PermanentError(
        'invalid_notification',
        `account ${notification.accountId} is invalid: ${issuesOf(account.error)}`,
      );
    }

    const { channelId, teamId } = notification.slack;

    // A post starts only while this attempt is still wanted (its push not yet answered by the
    // deadline) and holds a claim that outlasts the Slack call and the time a call that timed out
    // may still land: otherwise a later attempt could take the claim over, find nothing yet and
    // post too, should this attempt not write its hold in time (a slow Firestore, a kill).
    const nowMs = clock().getTime();
    // The timer's mark decides: under load it can fire before this attempt's own clock says the
    // time is up (the attempt starts after the timer), and the push has been answered then.
    if (known.answered || (deps.deadlineMs && Date.now() - startedAt >= deps.deadlineMs)) {
      throw new RetryableError('dependency_unavailable', 'the push deadline passed before posting; retry later');
    }
    if (nowMs + postWindowMs(slackTimeoutOf(deps)) >= claimExpiresAt.getTime()) {
      throw new RetryableError('dependency_unavailable', 'too little of the claim left to post safely; retry later');
    }
    const rendered = renderReport(notification, account.data, new Date(message.occurrence));
    const sent = await deps.slack.post({
      channel: channelId,
      text: rendered.text,
      blocks: rendered.blocks,
      deliveryId,
      ...(teamId ? { teamId } : {}),
    });
    posted = true;
    const now = clock();
    // A publish time ahead of this clock (skew between Pub/Sub and the instance) is 0, not less.
    const latencyMs = publishTime ? Math.max(0, now.getTime() - publishTime.getTime()) : null;
    await deps.ledger.markSent(deliveryId, {
      slackTs: sent.ts,
      channelId,
      accountId: notification.accountId,
      latencyMs,
      now,
    });
    if (notification.consecutiveFailures > 0) await resetFailures(message.notificationId, deps, log);
    log.info({ slackTs: sent.ts, channelId, latencyMs, attempt: claim.attempts }, 'delivered');
    return { kind: 'ack', reason: 'sent', deliveryId, status: 'sent' };
  } catch (caught) {
    const err =
      caught instanceof FanoutError
        ? caught
        : new RetryableError('dependency_unavailable', errorMessage(caught), { cause: caught });
    const outcome = outcomeOf(err);
    const now = clock();
    if (!claimed) {
      log.warn({ err: err.message, code: err.code }, 'could not read or claim the delivery; retry later');
      return { ...outcome, deliveryId };
    }
    try {
      if (err.retryable) {
        // A post that timed out may still land for as long again: the claim is held till then, so
        // that no other message of this delivery (a Pub/Sub duplicate, a redrive's) looks in the
        // channel, finds nothing yet, and posts beside it.
        const holdUntil = postMayStillLand(err) ? new Date(now.getTime() + slackTimeoutOf(deps)) : undefined;
        await deps.ledger.markRetry(
          deliveryId,
          toRecord(err, now),
          err.code === 'slack_outcome_unknown' || posted,
          now,
          claimToken,
          holdUntil,
        );
        log.warn(
          {
            code: err.code,
            slackError: err.slackError,
            retryAfterSeconds: err.retryAfterSeconds,
            ...targetFields(target),
          },
          `attempt failed, will retry: ${err.message}`,
        );
      } else {
        pauseReason = slackPauseReason(err) ?? pauseReason;
        // A notification document that cannot be read as one (a field missing or of the wrong
        // type, a cron or time zone that cannot be read) fails every occurrence alike until it
        // is replaced: it counts towards pausing, as a broken account does.
        if (err.code === 'invalid_notification' && pauseReason === null) pauseReason = 'notification_invalid';
        // Counted before the delivery is recorded failed: a count that fails is retried with the
        // delivery, where one after it would be lost (the retry finds the delivery ended). The
        // count is kept per occurrence, so a retry does not count it twice; nor does a redrive of
        // a delivery that failed for good before, whatever occurrence the notification counted last.
        if (pauseReason && failedBefore) {
          log.info({ pausedReason: pauseReason }, 'failed again after a redrive: not counted towards pausing again');
        } else if (pauseReason) {
          const paused = await deps.notifications.recordPermanentFailure(
            message.notificationId,
            pauseReason,
            deps.pauseAfterFailures,
            now,
            message.occurrence,
          );
          if (paused) log.warn({ pausedReason: pauseReason }, 'notification paused after repeated permanent failures');
        }
        await deps.ledger.markFinal(deliveryId, 'failed', toRecord(err, now), now, claimToken);
        log.error(
          { code: err.code, slackError: err.slackError, ...targetFields(target) },
          `delivery failed permanently: ${err.message}`,
        );
        await leaveStaleIndex(message, inputs?.raw ?? null, deps, log);
      }
    } catch (recordErr) {
      // The outcome could not be written: retry, and the claim's expiry lets the next attempt in.
      log.error({ err: errorMessage(recordErr) }, 'could not record the outcome; retry later');
      return { kind: 'retry', reason: 'record_failed', deliveryId };
    }
    return {
      ...outcome,
      deliveryId,
      status: err.retryable ? 'retrying' : 'failed',
      ...(err.retryable && attempts > 0 ? { attempts } : {}),
      // A timed-out post may still land: the next attempt's channel check should come after it could.
      ...(postMayStillLand(err) ? { notBeforeMs: slackTimeoutOf(deps) } : {}),
    };
  }
}

/**
 * A post of this delivery by an earlier attempt whose outcome is unknown: looked for in every
 * place an attempt was to post (the claim's record of them), and where this one would post; the
 * first found. A failure worth retrying (rate limited, Slack unreachable) fails the attempt, so
 * that it never posts without having looked. Where this one would post cannot be searched for
 * good (the app may post there but not read it: not in the channel, a scope missing): it is not
 * posted again, and fails as unverifiable, since each attempt would post once more. Another
 * place that cannot be searched (a channel the notification left, gone since) is logged and
 * passed over.
 */
async function findEarlierPost(
  earlier: PostTarget[],
  current: PostTarget | null,
  deliveryId: string,
  since: Date,
  deps: Pick<DeliverDeps, 'slack'>,
  log: Logger,
): Promise<{ ts: string; target: PostTarget } | null> {
  // A record from before attempts kept their targets has none: this attempt's place is then the
  // only one known.
  const places = postTargetsAfter(earlier, current);
  for (const target of places) {
    const ts = await deps.slack
      .findDelivery(target.channelId, deliveryId, since, target.teamId ?? undefined)
      .catch((err: unknown) => {
        if (err instanceof FanoutError && err.retryable) throw err;
        if (current !== null && samePlace(target, current)) {
          const why = err instanceof FanoutError ? (err.slackError ?? err.message) : errorMessage(err);
          throw new PermanentError(
            'slack_outcome_unverifiable',
            `an earlier attempt's post may have landed in ${target.channelId}, and the channel cannot be read to check (${why}): not posted again, so as not to post twice; look in the channel, and once the app may read its history, redrive --failed sends it if it is not there`,
            err instanceof FanoutError && err.slackError !== undefined ? { slackError: err.slackError } : {},
          );
        }
        log.warn(
          { err: errorMessage(err), channelId: target.channelId },
          'could not check the channel for an earlier post; going on',
        );
        return null;
      });
    if (ts) return { ts, target };
  }
  return null;
}

/** The time a Slack message timestamp (`"1700000000.123456"`, seconds since the epoch) names, or null. */
export function slackTsTime(ts: string): Date | null {
  if (!/^\d{1,12}(\.\d{1,9})?$/.test(ts)) return null;
  const ms = Math.floor(Number(ts) * 1000);
  return Number.isSafeInteger(ms) && ms > 0 ? new Date(ms) : null;
}

/**
 * After a delivery that did not post: where the notification, as this attempt read it, calls
 * for no entry in the dispatch index of the schedule that published the message (deleted,
 * paused, moved, or a document the index cannot hold, such as one without a schedule), any
 * entry there is taken out, so that the next tick does not publish it again. Every change this
 * system makes keeps the index in step in the same commit; this catches what a change outside
 * it left (a document deleted or edited in the console), which no tick would otherwise stop
 * publishing. A paused skip of a message published before its pause pays one transaction that
 * finds nothing to take out. Best effort: the delivery is recorded already, and the next such
 * message tries again.
 */
async function leaveStaleIndex(
  message: DispatchMessage,
  raw: Record<string, unknown> | null,
  deps: Pick<DeliverDeps, 'notifications'>,
  log: Logger,
): Promise<void> {
  if (indexedSchedule(raw) === message.scheduleId) return;
  try {
    if (await deps.notifications.leaveIndex(message.notificationId, message.scheduleId)) {
      log.warn(
        { scheduleId: message.scheduleId },
        `notification taken out of schedule ${message.scheduleId}'s dispatch index: ${raw ? 'it does not belong there as it is now' : 'it does not exist'}`,
      );
    }
  } catch (err) {
    log.warn(
      { err: errorMessage(err), scheduleId: message.scheduleId },
      'could not tidy the dispatch index; the next such message tries again',
    );
  }
}

/** After a post that went through: the delivery is recorded, so a failed reset is logged, not retried. */
async function resetFailures(notificationId: string, deps: Pick<DeliverDeps, 'notifications'>, log: Logger) {
  await deps.notifications.resetFailures(notificationId).catch((err: unknown) => {
    log.warn({ err: errorMessage(err) }, 'could not reset the notification’s failure count');
  });
}

/** The Slack client's timeout: how long a post may take, and so how long one that timed out may still land. */
function slackTimeoutOf(deps: Pick<DeliverDeps, 'slackTimeoutMs'>): number {
  return deps.slackTimeoutMs ?? 10_000;
}

async function loadInputs(
  notificationId: string,
  deps: Pick<DeliverDeps, 'notifications' | 'accounts'>,
): Promise<{ raw: Record<string, unknown> | null; accountRaw: Record<string, unknown> | null }> {
  const raw = await deps.notifications.getRaw(notificationId);
  const accountId = raw?.accountId;
  // An account id that cannot be a document is read as no account: the notification's schema
  // then fails it as invalid, recorded and acked, instead of a read that fails on every retry.
  const accountRaw =
    typeof accountId === 'string' && documentIdProblem(accountId) === null
      ? await deps.accounts.getRaw(accountId)
      : null;
  return { raw, accountRaw };
}

export interface DeadLetterResult {
  deliveryId: string | null;
  status: string;
  /** Why a dead-lettered dispatch message was refused (`refused`): it cannot be one Pub/Sub gave up on. */
  reason?: string;
}

/**
 * How far past a service's clock a message's occurrence may lie and still be taken as due. The
 * dispatcher publishes an occurrence only once it has fallen due on its own clock, so a later
 * one is one no dispatch made; the minute allows for the two services' clocks disagreeing a little.
 */
export const OCCURRENCE_CLOCK_SKEW_MS = 60_000;

/** Why the message's occurrence cannot have been dispatched yet, or null when it can have been. */
function notYetDue(message: DispatchMessage, now: Date): string | null {
  return Date.parse(message.occurrence) > now.getTime() + OCCURRENCE_CLOCK_SKEW_MS
    ? `${message.occurrence} has not fallen due yet (now ${now.toISOString()})`
    : null;
}

/**
 * Why a dead-lettered dispatch message cannot be one Pub/Sub gave up on, or null. Such a message
 * was published by a run, and the dispatcher makes the run (`runs/{scheduleId}:{occurrence}`)
 * before it publishes: a message of a run that does not exist (an occurrence not yet due, a
 * made-up schedule, an instant its schedule does not fall due at) was made by hand or by a
 * fault. A run that exists vouches for the
 * message whatever this service's clock says of its occurrence (a clock behind the
 * dispatcher's by more than the pushes' retry window); one that is gone since (its record
 * expired while a redrive of it was under way) is vouched for by the delivery's own record,
 * which that run still carries.
 */
async function deadLetterRefusal(
  message: DispatchMessage,
  now: Date,
  deps: Pick<DeliverDeps, 'ledger' | 'runs'>,
): Promise<{ code: string; why: string } | null> {
  // The run it is recorded under, which a redrive looks in: the schema holds a message's run id
  // to its schedule's at its occurrence.
  const runId = message.runId;
  const [run, delivery] = await Promise.all([
    deps.runs.getRun(runId),
    deps.ledger.get(deliveryIdOf(message.notificationId, message.occurrence)),
  ]);
  if (run) return null;
  const early = notYetDue(message, now);
  if (early) return { code: 'future_occurrence', why: early };
  // Carried by that run: claimed through it, dead under it, or reopened by a redrive of it (a
  // broken message's record is `failed`; a skipped message was acked, so Pub/Sub cannot have
  // given up on it).
  const carried =
    delivery !== null && delivery.runId === runId && ['sending', 'retrying', 'dead'].includes(delivery.status);
  return carried ? null : { code: 'no_such_run', why: `no run ${runId} was dispatched` };
}

/**
 * A message from the dead-letter subscription: record its delivery `dead`, then ack. A message
 * that cannot be one Pub/Sub gave up on (deadLetterRefusal) is acked without ending its delivery.
 */
export async function handleDeadLetter(
  body: unknown,
  deps: Pick<DeliverDeps, 'ledger' | 'runs' | 'log' | 'clock'>,
): Promise<DeadLetterResult> {
  const clock = deps.clock ?? (() => new Date());
  const parsed = parsePushBody(body);
  const attrs = (body as { message?: { attributes?: Record<string, unknown> } } | null)?.message?.attributes ?? {};
  const countText = attrs.CloudPubSubDeadLetterSourceDeliveryCount;
  const countAttr = Number(countText);
  // Pub/Sub writes a whole count; anything else was made by hand and is read as none.
  const attempts = Number.isSafeInteger(countAttr) && countAttr > 0 ? countAttr : null;
  // Said on the delivery's lines once they have its ids: recorded without attempts, not as 0.
  const countIgnored =
    attempts === null && countText !== undefined ? { deliveryCount: excerpt(String(countText)) } : null;
  const sourcePublishedAt = pubsubTime(attrs.CloudPubSubDeadLetterSourceTopicPublishTime);
  // A dispatch message as the body itself: a dead-letter subscription set to "no wrapper" pushes
  // the message that died so. It is that message all the same, and is recorded dead as its
  // wrapped form would be (its attempts, sent as attributes, are not known).
  let good: DispatchMessage;
  if (parsed.ok) good = parsed.push.message;
  else if (parsed.unwrapped) good = parsed.unwrapped;
  else {
    const deliveryId = parsed.deliveryId;
    if (!deliveryId) {
      deps.log.warn({ reason: parsed.reason }, 'dead-lettered message without a delivery id acked');
      return { deliveryId: null, status: 'unrecorded' };
    }
    // Not a dispatch message: it says nothing of the delivery its attributes name (a broken push
    // is acked at /push, never dead-lettered, so this one was made by hand). Recorded as /push
    // records a broken body, where that delivery has no record yet, and never ending it: marking
    // it dead would stop the good message of that delivery from posting.
    const now = clock();
    const err = new PermanentError('invalid_message', `dead-lettered message: ${parsed.reason}`);
    await deps.ledger.recordInvalid(deliveryId, toRecord(err, now), now, parsed.runId ? { runId: parsed.runId } : {});
    deps.log.warn({ deliveryId, reason: parsed.reason }, 'dead-lettered message that is not a dispatch message acked');
    return { deliveryId, status: 'invalid' };
  }
  const deliveryId = deliveryIdOf(good.notificationId, good.occurrence);
  // The ids that follow one delivery, on each line of it, as at /push.
  const log = deps.log.child({
    deliveryId,
    notificationId: good.notificationId,
    runId: good.runId,
    messageId: parsed.ok ? parsed.push.messageId : parsed.messageId,
  });
  if (countIgnored) {
    log.warn(
      countIgnored,
      'dead letter whose CloudPubSubDeadLetterSourceDeliveryCount is not a count of attempts (Pub/Sub writes a whole number from 1): recorded without its attempts',
    );
  }
  if (!parsed.ok) {
    log.error(
      { reason: 'unwrapped_message' },
      'dead letter pushed without its Pub/Sub envelope: the dead-letter subscription sends its messages unwrapped ("no wrapper"); set it to wrap them',
    );
  }
  try {
    const now = clock();
    const redriveOf = good.redrive !== true ? null : good.redriveId;
    const refusal = await deadLetterRefusal(good, now, deps);
    if (refusal) {
      // Made by hand or by a fault, as a broken one is: recorded the same way, where the delivery
      // has no record yet and never ending it, so that the occurrence's real message still posts.
      const err = new PermanentError('invalid_message', `dead-lettered message refused: ${refusal.why}`);
      await deps.ledger.recordInvalid(deliveryId, toRecord(err, now), now, { runId: good.runId });
      log.warn({ reason: refusal.code }, `dead-lettered message refused, its delivery left as it is: ${refusal.why}`);
      return { deliveryId, status: 'refused', reason: refusal.code };
    }
    const status = await deps.ledger.markDead(deliveryId, {
      attempts,
      notificationId: good.notificationId,
      occurrence: good.occurrence,
      runId: good.runId,
      reason: 'max delivery attempts reached',
      now,
      sourcePublishedAt,
      // The redrive the message names (null: the dispatcher's), which tells an older message from
      // the last redrive's; one published before redrives carried their id names none known.
      ...(redriveOf === undefined ? {} : { redriveOf }),
      // Pushed without its envelope, the message has no publish time: who published it stands in.
      ...(parsed.ok ? {} : { unwrapped: true }),
    });
    if (status === 'retrying' || status === 'sending') {
      // Published before the delivery's last redrive: the redriven message carries it.
      log.warn(
        { status, sourcePublishedAt },
        'dead letter of a message published before the delivery was redriven: the delivery is left to the redriven message',
      );
      return { deliveryId, status: 'superseded' };
    }
    if (status === 'dead') log.error({ attempts, status }, 'delivery dead-lettered');
    else {
      // A final outcome came first (a Pub/Sub duplicate of a message that did post): nothing ends.
      log.info({ attempts, status }, `dead letter of a delivery already ${status}: left as it is`);
    }
    return { deliveryId, status };
  } catch (err) {
    // Said here, on a line with the delivery's ids, for the operator who must find the record;
    // the route answers 503 for a retry.
    log.error({ err: errorMessage(err) }, DEAD_LETTER_NOT_RECORDED);
    throw new DeadLetterNotRecorded(err);
  }
}

/** The line of a dead letter that could not be recorded, and is asked for again. */
export const DEAD_LETTER_NOT_RECORDED = 'could not record a dead-lettered message; retry later';

/** A dead letter that could not be recorded, its cause logged already with the delivery's ids. */
export class DeadLetterNotRecorded extends Error {
  constructor(cause: unknown) {
    super(errorMessage(cause), { cause });
    this.name = 'DeadLetterNotRecorded';
  }
}

/** The channel (and workspace) an attempt was to post to, for its log lines; none before it knew. */
function targetFields(target: PostTarget | null): { channelId?: string; teamId?: string } {
  if (!target) return {};
  return { channelId: target.channelId, ...(target.teamId ? { teamId: target.teamId } : {}) };
}

/** A document's schema problems, each as `path: message` (`(root)` for the document itself). */
function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

/**
 * Whether the notification's schedule, as it is now, falls due at the message's occurrence. A
 * schedule that cannot be read makes the notification invalid, as an unknown time zone does.
 */
function scheduleFiresAt(notification: Notification, message: DispatchMessage): boolean {
  const fires = firesAtOccurrenceOf(notification.schedule, message.occurrence);
  if (typeof fires === 'string') {
    throw new PermanentError('invalid_notification', `notification ${message.notificationId} has ${fires}`);
  }
  return fires;
}

/** Whether a schedule falls due at an occurrence, or what keeps the schedule from being read. */
function firesAtOccurrenceOf(schedule: { cron: string; timezone: string }, occurrence: string): boolean | string {
  const checked = checkedSchedule(schedule.cron, schedule.timezone);
  return 'problem' in checked ? checked.problem : firesAtOccurrence(checked, occurrence);
}

/** The words for a message naming an instant its schedule does not fall due at. */
function notAnOccurrence(message: DispatchMessage, schedule: { cron: string; timezone: string }): string {
  return `${message.occurrence} is not an occurrence of schedule ${message.scheduleId} (${schedule.cron}, ${schedule.timezone})`;
}
