import { randomUUID } from 'node:crypto';
import { FieldValue, type Transaction } from '@google-cloud/firestore';
import type { FirestoreStore } from './firestore-store';
import { toDate } from './firestore-store';
import type { Logger } from './logger';
import { type DispatchMessage, dispatchAttributes } from './messages';
import { type DeliveryDoc, type DeliveryStatus, endsDelivery, liveClaim, storedCount } from './model';
import type { PagePublisher } from './pubsub';
import { COLLECTIONS } from './topology';
import { counted } from './words';

/**
 * Redrive: puts a run's dead deliveries (and, when asked, its failed ones) back on the dispatch
 * topic. Shared by the admin API and any command-line tool, over two small ports.
 */

export type ReopenResult =
  | { kind: 'reopened'; delivery: Pick<DeliveryDoc, 'notificationId' | 'occurrence' | 'runId'> }
  /** Someone else redrove it, or it was settled since the page was read. */
  | { kind: 'not_dead' }
  /** Recorded dead from a message too broken to say which notification it was for. */
  | { kind: 'incomplete' }
  /**
   * A dead or failed delivery of a notification paused since (by its failures, or by hand): its
   * redriven message would be recorded skipped, and the report lost. Left as it is, for a
   * redrive after the notification is resumed.
   */
  | { kind: 'paused'; notificationId: string }
  /** A failed delivery of a notification deleted since: nothing to send. Left failed. */
  | { kind: 'notification_gone' }
  /**
   * A `failed` record a broken message left (no attempt made): no failure of the delivery, and
   * nothing a redrive sends. Left as it is, and not counted.
   */
  | { kind: 'not_a_failure' };

/**
 * How long a delivery a redrive reopened may wait for that redrive to publish it. Past this, a
 * later redrive takes it as stranded (the redrive that reopened it was interrupted, or crashed,
 * between the two steps) and publishes it again. Three times the Pub/Sub client's whole publish
 * budget (10 minutes with its retries), so that clock skew between the machines redriving
 * cannot make a redrive still publishing look stranded; and if it did, the two redrives' marks
 * keep either from undoing the other (see restoreReopened).
 */
export const REDRIVE_STRANDED_AFTER_MS = 30 * 60_000;

/** A redrive page's size by default, and its largest: each of a page's deliveries is reopened in its own transaction, all at once. */
export const REDRIVE_PAGE_SIZE = 200;
export const REDRIVE_PAGE_SIZE_MAX = 1000;

/** A delivery waiting for another redrive's publish, too recently reopened to take over. */
export type StrandedCheck = ReopenResult | { kind: 'not_stranded' } | { kind: 'waiting'; since: Date };

export interface RedriveLedger {
  deliveryIdsOfRun(runId: string, status: DeliveryStatus, cursor: string | null, limit: number): Promise<string[]>;
  /**
   * The run's `retrying` deliveries a redrive reopened and has not recorded as published, read
   * without a transaction (most `retrying` deliveries are Pub/Sub's own redelivery, which a
   * redrive must not lock): their ids, with when they were reopened. `scanned` is the last id
   * read, the cursor of the next page (null when the run has no more).
   */
  redrivePendingOfRun(
    runId: string,
    cursor: string | null,
    limit: number,
  ): Promise<{ pending: { id: string; since: Date | null }[]; scanned: string | null; done: boolean }>;
  /**
   * Moves a dead delivery to `retrying`, attempts kept, marked as waiting for this redrive's
   * publish (`redriveId`): the ledger refuses to claim a final status, so the redriven message
   * could not be delivered while it is still `dead`. One of a notification paused is left dead.
   */
  reopenDead(deliveryId: string, now: Date, redriveId: string): Promise<ReopenResult>;
  /**
   * Moves a failed delivery to `retrying` as reopenDead does, once its notification is still
   * there and not paused. Only a failure of the delivery itself: a record a broken message left
   * (no attempt made) says nothing of it, and is `not_dead`. Whether an earlier attempt's post
   * may have landed is kept as the record has it, so the redriven message looks in the channel
   * first only where it must.
   */
  reopenFailed(deliveryId: string, now: Date, redriveId: string): Promise<ReopenResult>;
  /**
   * Takes over a delivery an earlier redrive reopened but never published: still `retrying`,
   * still marked, reopened before `staleBefore`, unclaimed. The mark becomes this redrive's. One
   * whose notification was paused since is put back to what it was reopened from (`paused`).
   */
  reopenStranded(deliveryId: string, now: Date, staleBefore: Date, redriveId: string): Promise<StrandedCheck>;
  /**
   * Records that this redrive's messages are on the topic: their deliveries are no longer
   * waiting, and each counts one more redrive. A delivery another redrive has taken over since
   * is left to that one.
   */
  markPublished(deliveryIds: string[], now: Date, redriveId: string): Promise<void>;
  /**
   * Undoes this redrive's reopen when its message could not be published, so a later redrive
   * finds it as it was, dead or failed. Only while the mark is still this redrive's and nobody
   * has claimed it.
   */
  restoreReopened(deliveryId: string, now: Date, redriveId: string): Promise<void>;
}

export type RedrivePublisher = PagePublisher;

export interface RedriveDeps {
  ledger: RedriveLedger;
  publisher: RedrivePublisher;
  log: Logger;
  pageSize?: number;
  clock?: () => Date;
  /** Called after each page with the counts so far (a redrive of many pages can take a while). */
  onProgress?: (soFar: RedriveResult) => void;
  /** True once the service is shutting down: the redrive stops after the page it is on. */
  isDraining?: () => boolean;
  /**
   * The run's failed deliveries too (a permanent error: a token Slack refused, a channel the
   * app was not in), for once their cause is fixed. Those of a notification paused since are
   * left failed and counted as `paused`.
   */
  failed?: boolean;
}

/** What a redrive counts, of one run or summed over many. */
export interface RedriveCounts {
  /** Reopened and published. */
  redriven: number;
  /**
   * No longer dead (or failed) when reached, too incomplete to publish, or failed for a
   * notification deleted since.
   */
  skipped: number;
  /** Reopening or publishing failed; these are dead (or stranded) and a later redrive retries them. */
  failed: number;
  /**
   * Reopened by another redrive less than REDRIVE_STRANDED_AFTER_MS ago and not yet published:
   * that redrive may still publish them; a redrive after `waitingUntil` takes them over.
   */
  waiting: number;
  /** When the last of the waiting deliveries can be taken over (ISO time), or null. */
  waitingUntil: string | null;
  /**
   * Dead (and, with `failed`, failed) deliveries left as they are because their notification is
   * paused; resumed, a redrive sends them. `pausedNotifications` names those notifications (at
   * most PAUSED_NAMED of them). Always there with `failed`; without, once there is one.
   */
  paused?: number;
  pausedNotifications?: string[];
  /**
   * With `failed` alone: failed deliveries of a notification deleted since, left failed (also
   * counted in `skipped`): nothing is left to send.
   */
  deleted?: number;
  /** True when the service began shutting down before the redrive had gone through the run. */
  interrupted?: boolean;
  /**
   * Why the redrive stopped before going through the run: Pub/Sub refused a page, and every
   * page after it would have waited out the publisher's timeout too. What it had not reached
   * is still dead; running the redrive again takes it.
   */
  stopped?: string;
}

export interface RedriveResult extends RedriveCounts {
  runId: string;
}

/** Counts of a redrive that has done nothing yet (`failed`: failed deliveries asked for too). */
function noCounts(failed: boolean | undefined): RedriveCounts {
  return {
    redriven: 0,
    skipped: 0,
    failed: 0,
    waiting: 0,
    waitingUntil: null,
    ...(failed ? { paused: 0, pausedNotifications: [], deleted: 0 } : {}),
  };
}

/** Names notification `id` among `named` paused ones: each once, at most PAUSED_NAMED. */
function namePaused(named: string[], id: string): void {
  if (named.length < PAUSED_NAMED && !named.includes(id)) named.push(id);
}

/** The schedule id is the run id without its `:occurrence` suffix. */
function scheduleIdOf(runId: string, occurrence: string): string | null {
  const suffix = `:${occurrence}`;
  return runId.endsWith(suffix) && runId.length > suffix.length ? runId.slice(0, -suffix.length) : null;
}

/** What the operator's views of a run read: its record and its deliveries' counts. */
export interface RunReads<Run = unknown> {
  getRun(runId: string): Promise<Run | null>;
  countByStatus(runId: string): Promise<Record<DeliveryStatus, number>>;
}

/** Said beside a run with no record while deliveries of it are in the ledger. */
export const RUN_RECORD_GONE =
  "the run has no record: it expired (a run's record is kept 90 days after the run finished, a delivery's 90 days after its last outcome), or no tick made this run (its deliveries were recorded from messages naming it, made by hand or by a fault); its deliveries in the ledger are counted";

/**
 * A run as `GET /admin/runs/:runId` and `slack-fanout run` show it: its record and its
 * deliveries' counts; once the record has expired, null in its place and RUN_RECORD_GONE, as
 * long as any delivery of it is left. Null when there is neither.
 */
export async function runSummary<Run>(
  runId: string,
  reads: RunReads<Run>,
): Promise<{ runId: string; run: Run | null; deliveries: Record<DeliveryStatus, number>; note?: string } | null> {
  const [run, deliveries] = await Promise.all([reads.getRun(runId), reads.countByStatus(runId)]);
  if (run) return { runId, run, deliveries };
  if (Object.values(deliveries).every((n) => n === 0)) return null;
  return { runId, run: null, deliveries, note: RUN_RECORD_GONE };
}

/** Whether a redrive left any delivery of the run reopened and not yet published, read a page at a time. */
export async function hasRedrivePending(
  runId: string,
  ledger: Pick<RedriveLedger, 'redrivePendingOfRun'>,
  pageSize = 500,
): Promise<boolean> {
  let cursor: string | null = null;
  for (;;) {
    const page = await ledger.redrivePendingOfRun(runId, cursor, pageSize);
    if (page.pending.length > 0) return true;
    if (page.done || !page.scanned) return false;
    cursor = page.scanned;
  }
}

/**
 * Whether a redrive has anything to do: the run's record exists, or, since it expired (a run's
 * record goes 90 days after it finished, a delivery's 90 days after its last outcome),
 * deliveries of it are still dead, or reopened by a redrive and not yet published. A delivery
 * that is only `retrying` (Pub/Sub's own redelivery, or a message for a run no tick made) is
 * nothing a redrive takes. A redrive reads only the deliveries, never the run.
 */
export async function redrivable(
  runId: string,
  reads: RunReads,
  ledger: Pick<RedriveLedger, 'redrivePendingOfRun'>,
  opts: { failed?: boolean } = {},
): Promise<boolean> {
  if (await reads.getRun(runId)) return true;
  const counts = await reads.countByStatus(runId);
  if (counts.dead > 0 || (opts.failed && counts.failed > 0)) return true;
  return counts.retrying > 0 && (await hasRedrivePending(runId, ledger));
}

export async function redriveRun(runId: string, deps: RedriveDeps): Promise<RedriveResult> {
  const clock = deps.clock ?? (() => new Date());
  const pageSize = deps.pageSize ?? REDRIVE_PAGE_SIZE;
  const redriveId = randomUUID();
  const result: RedriveResult = { runId, ...noCounts(deps.failed) };
  const ctx: RedriveContext = { runId, redriveId, pageSize, result, deps, clock, counted: new Set() };

  // The dead deliveries first, then the failed ones when asked.
  if (!(await redriveStatus(ctx, 'dead', (id) => deps.ledger.reopenDead(id, clock(), redriveId)))) {
    return finish(ctx);
  }
  if (deps.failed && !(await redriveStatus(ctx, 'failed', (id) => deps.ledger.reopenFailed(id, clock(), redriveId)))) {
    return finish(ctx);
  }

  // Then any an interrupted redrive left reopened but unpublished.
  const staleBefore = new Date(clock().getTime() - REDRIVE_STRANDED_AFTER_MS);
  let cursor: string | null = null;
  for (;;) {
    if (stopForShutdown(ctx)) return finish(ctx);
    const page = await deps.ledger.redrivePendingOfRun(runId, cursor, pageSize);
    const pending = page.pending.filter((p) => !ctx.counted.has(p.id));
    const recent = pending.filter((p) => p.since && p.since.getTime() >= staleBefore.getTime());
    for (const p of recent) countWaiting(result, p.since as Date);
    const candidates = pending.filter((p) => !recent.includes(p)).map((p) => p.id);
    if (candidates.length > 0) {
      await redrivePage(ctx, candidates, async (id) => {
        const r = await deps.ledger.reopenStranded(id, clock(), staleBefore, redriveId);
        if (r.kind === 'waiting') countWaiting(result, r.since);
        return r;
      });
    }
    if (page.done || !page.scanned) break;
    cursor = page.scanned;
  }
  return finish(ctx);
}

/**
 * How a redrive says the `n` deliveries it left dead (with `failed`, or failed) as their
 * `notifications` are paused, and why: the CLI and the admin API each add what to do.
 */
export function pausedLeftPhrase(n: number, notifications: number, failed: boolean): string {
  const status = failed ? 'dead or failed' : 'dead';
  return `${counted(n, `${status} delivery`, `${status} deliveries`)} left as ${n === 1 ? 'it is' : 'they are'}, as ${notifications === 1 ? 'its notification is' : 'their notifications are'} paused (sent, ${n === 1 ? 'it' : 'each'} would be recorded skipped, and the report lost)`;
}

/** How many paused notifications a redrive's result names, at most. */
export const PAUSED_NAMED = 20;

/**
 * What a redrive of many runs did (`slack-fanout redrive --all-runs`): each run's RedriveResult
 * summed, and each of them in `runs`, in the order they were redriven.
 */
export interface RedriveRunsResult extends RedriveCounts {
  /** The runs it was to redrive, as listed when it began. */
  listed: number;
  /** Listed runs it did not begin, once interrupted or stopped: their deliveries are as they were. */
  notReached?: number;
  runs: RedriveResult[];
}

/** A redrive of `listed` runs before it has begun any (`failed`: failed deliveries asked for too). */
export function emptyRunsResult(listed: number, failed: boolean): RedriveRunsResult {
  return { listed, ...noCounts(failed), runs: [] };
}

/** Adds one run's redrive to `total`; an interrupted or stopped one leaves the runs after it unreached. */
export function addRunResult(total: RedriveRunsResult, r: RedriveResult): void {
  total.runs.push(r);
  total.redriven += r.redriven;
  total.skipped += r.skipped;
  total.failed += r.failed;
  total.waiting += r.waiting;
  if (r.waitingUntil && (!total.waitingUntil || r.waitingUntil > total.waitingUntil)) {
    total.waitingUntil = r.waitingUntil;
  }
  if (r.paused !== undefined) total.paused = (total.paused ?? 0) + r.paused;
  if (r.deleted !== undefined) total.deleted = (total.deleted ?? 0) + r.deleted;
  for (const id of r.pausedNotifications ?? []) {
    total.pausedNotifications ??= [];
    namePaused(total.pausedNotifications, id);
  }
  if (r.interrupted) total.interrupted = true;
  if (r.stopped !== undefined) total.stopped = r.stopped;
  if (r.interrupted || r.stopped !== undefined) total.notReached = total.listed - total.runs.length;
}

/** A redrive of many runs interrupted between two runs: the runs after are not reached. */
export function markInterrupted(total: RedriveRunsResult): void {
  total.interrupted = true;
  total.notReached = total.listed - total.runs.length;
}

/**
 * Reopens and publishes the run's deliveries of `status`, a page at a time. False when the
 * redrive stopped (a shutdown, or a page Pub/Sub refused).
 */
async function redriveStatus(
  ctx: RedriveContext,
  status: 'dead' | 'failed',
  reopen: (deliveryId: string) => Promise<ReopenResult>,
): Promise<boolean> {
  let cursor: string | null = null;
  for (;;) {
    if (stopForShutdown(ctx)) return false;
    const ids = await ctx.deps.ledger.deliveryIdsOfRun(ctx.runId, status, cursor, ctx.pageSize);
    if (ids.length === 0) return true;
    await redrivePage(ctx, ids, reopen);
    cursor = ids[ids.length - 1] ?? cursor;
    if (ids.length < ctx.pageSize) return true;
  }
}

interface RedriveContext {
  runId: string;
  redriveId: string;
  pageSize: number;
  result: RedriveResult;
  deps: RedriveDeps;
  clock: () => Date;
  /**
   * The deliveries this redrive has counted (redriven, skipped or failed): its pass over the
   * reopened ones does not count them again (as waiting, when recording a publish failed or
   * another redrive reopened one this one found no longer dead).
   */
  counted: Set<string>;
}

function stopForShutdown(ctx: RedriveContext): boolean {
  if (ctx.result.stopped !== undefined) return true;
  if (!ctx.deps.isDraining?.()) return false;
  ctx.result.interrupted = true;
  return true;
}

function countWaiting(result: RedriveResult, since: Date): void {
  result.waiting++;
  const until = new Date(since.getTime() + REDRIVE_STRANDED_AFTER_MS).toISOString();
  if (!result.waitingUntil || until > result.waitingUntil) result.waitingUntil = until;
}

function finish(ctx: RedriveContext): RedriveResult {
  const { result, runId, deps } = ctx;
  deps.log.info({ redrive: result, runId }, `redrive of ${runId}: ${result.redriven} redriven`);
  return result;
}

async function redrivePage(
  ctx: RedriveContext,
  ids: string[],
  reopen: (deliveryId: string) => Promise<StrandedCheck>,
): Promise<void> {
  const { runId, redriveId, result, deps, clock } = ctx;
  // Reopened before publishing: a message that arrived while the delivery was still dead would be acked unsent.
  const reopened = await Promise.all(
    ids.map(async (deliveryId) => {
      try {
        return { deliveryId, r: await reopen(deliveryId) };
      } catch (err) {
        // The reopen did not commit (or its outcome is unknown): dead still, or stranded for a later redrive.
        deps.log.warn({ deliveryId, runId, err: (err as Error).message }, 'could not reopen a delivery for redrive');
        return { deliveryId, r: { kind: 'reopen_failed' } as const };
      }
    }),
  );
  const page: { deliveryId: string; message: DispatchMessage }[] = [];
  for (const { deliveryId, r } of reopened) {
    // Retrying on Pub/Sub's own redelivery, claimed, or another redrive's to publish: not this one's.
    if (r.kind === 'not_stranded' || r.kind === 'waiting') continue;
    ctx.counted.add(deliveryId);
    if (r.kind === 'not_a_failure') continue;
    if (r.kind === 'reopen_failed') {
      result.failed++;
      continue;
    }
    if (r.kind === 'paused') {
      result.paused = (result.paused ?? 0) + 1;
      result.pausedNotifications ??= [];
      namePaused(result.pausedNotifications, r.notificationId);
      continue;
    }
    if (r.kind !== 'reopened') {
      result.skipped++;
      if (r.kind === 'incomplete') deps.log.warn({ deliveryId, runId }, 'dead delivery lacks its ids; not redriven');
      if (r.kind === 'notification_gone') {
        result.deleted = (result.deleted ?? 0) + 1;
        deps.log.warn({ deliveryId, runId }, 'failed delivery of a notification deleted since; not redriven');
      }
      continue;
    }
    const scheduleId = scheduleIdOf(r.delivery.runId, r.delivery.occurrence);
    if (!scheduleId) {
      await restore(ctx, deliveryId);
      result.skipped++;
      deps.log.warn({ deliveryId, runId }, 'dead delivery has a run id that does not match its occurrence');
      continue;
    }
    page.push({
      deliveryId,
      message: {
        v: 1,
        notificationId: r.delivery.notificationId,
        occurrence: r.delivery.occurrence,
        scheduleId,
        runId: r.delivery.runId,
        redrive: true,
        redriveId,
      },
    });
  }
  if (page.length > 0) {
    let published = false;
    try {
      await deps.publisher.publishPage(
        page.map((p) => ({
          message: p.message,
          attributes: { ...dispatchAttributes(p.deliveryId, p.message.runId), redrive: 'true' },
        })),
      );
      published = true;
    } catch (err) {
      // Some may have gone out: those find the delivery dead again and are acked unsent, which is safe.
      await Promise.all(page.map((p) => restore(ctx, p.deliveryId)));
      result.failed += page.length;
      result.stopped = `Pub/Sub refused a page: ${(err as Error).message}`;
      deps.log.error(
        { runId, err: (err as Error).message, count: page.length },
        'redrive publish failed; stopping (what it had not reached is still dead, or failed)',
      );
    }
    if (published) {
      result.redriven += page.length;
      // If this write is lost, a later redrive publishes them again: the ledger acks the repeat.
      await deps.ledger
        .markPublished(
          page.map((p) => p.deliveryId),
          clock(),
          redriveId,
        )
        .catch((err: unknown) => {
          deps.log.warn({ runId, err: (err as Error).message }, 'could not record that the redrive was published');
        });
    }
  }
  deps.onProgress?.({ ...result });
}

/** restoreReopened, whose failure leaves the delivery marked: a later redrive takes it as stranded. */
async function restore(ctx: RedriveContext, deliveryId: string): Promise<void> {
  await ctx.deps.ledger.restoreReopened(deliveryId, ctx.clock(), ctx.redriveId).catch((err: unknown) => {
    ctx.deps.log.warn(
      { deliveryId, runId: ctx.runId, err: (err as Error).message },
      'could not put a delivery back to dead (or failed); a later redrive takes it over',
    );
  });
}

/** The RedriveLedger over the Firestore store: each reopen is a transaction, so one redrive wins. */
export function firestoreRedriveLedger(store: FirestoreStore): RedriveLedger {
  const deliveries = () => store.db.collection(COLLECTIONS.deliveries);
  /**
   * What a redrive's transaction finds of a delivery's notification: gone, paused, or there to
   * send. Read in the transaction, so that one paused before the commit makes it retry, and be seen.
   */
  const notificationIn = async (tx: Transaction, id: string): Promise<'gone' | 'paused' | 'enabled'> => {
    const snap = await tx.get(store.db.collection(COLLECTIONS.notifications).doc(id));
    if (!snap.exists) return 'gone';
    return snap.get('enabled') === false ? 'paused' : 'enabled';
  };
  return {
    deliveryIdsOfRun: (runId, status, cursor, limit) => store.deliveryIdsOfRun(runId, status, cursor, limit),
    async redrivePendingOfRun(runId, cursor, limit) {
      const docs = await store.deliveriesOfRun(runId, 'retrying', cursor, limit, ['redrivePending', 'lastRedriveAt']);
      return {
        pending: docs
          .filter((d) => d.data.redrivePending === true)
          .map((d) => ({ id: d.id, since: toDate(d.data.lastRedriveAt) })),
        scanned: docs.at(-1)?.id ?? null,
        done: docs.length < limit,
      };
    },
    reopenDead: (deliveryId, now, redriveId) =>
      store.db.runTransaction(async (tx): Promise<ReopenResult> => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        if (!snap.exists || snap.get('status') !== 'dead') return { kind: 'not_dead' };
        const ids = idsOf(snap);
        if (!ids) return { kind: 'incomplete' };
        // As for a failed one: sent while its notification is paused, the redriven message would
        // be recorded skipped, and the report lost. One deleted since is sent, and recorded
        // failed (notification_not_found) as the message would have been.
        if ((await notificationIn(tx, ids.notificationId)) === 'paused') {
          return { kind: 'paused', notificationId: ids.notificationId };
        }
        // Any value but none or a count of 0 (one written by hand among them) as attempted: the
        // redriven attempt then looks for an earlier post first, which cannot post twice.
        const attempts: unknown = snap.get('attempts');
        const attempted = !(attempts === undefined || attempts === null || attempts === 0 || attempts === '0');
        tx.update(ref, {
          status: 'retrying',
          // A claim still live is kept: the attempt the dead letter overtook may still be posting,
          // and the redriven message waits for it (claimHeld).
          claimExpiresAt: liveClaim({ claimExpiresAt: toDate(snap.get('claimExpiresAt')) }, now),
          // Dead-lettering overwrites a claim that may have posted: look in the channel before posting again.
          ...(attempted ? { outcomeUnknown: true } : {}),
          ...reopenedFields(now, redriveId, 'dead'),
          deadBeforeRedriveAt: toDate(snap.get('deadAt')),
        });
        return { kind: 'reopened', delivery: ids };
      }),
    reopenFailed: (deliveryId, now, redriveId) =>
      store.db.runTransaction(async (tx): Promise<ReopenResult> => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        const record = {
          status: snap.get('status') as DeliveryStatus | undefined,
          attempts: storedCount(snap.get('attempts')),
          lastError: snap.get('lastError') as DeliveryDoc['lastError'],
        };
        if (!snap.exists || record.status !== 'failed') return { kind: 'not_dead' };
        // A broken message's record (no attempt made) is not a failure of the delivery.
        if (!endsDelivery(record)) return { kind: 'not_a_failure' };
        const ids = idsOf(snap);
        if (!ids) return { kind: 'incomplete' };
        // Read in the transaction: a notification paused after this read and before the commit
        // makes the commit retry, and the retry finds it paused.
        const notification = await notificationIn(tx, ids.notificationId);
        if (notification === 'gone') return { kind: 'notification_gone' };
        if (notification === 'paused') return { kind: 'paused', notificationId: ids.notificationId };
        tx.update(ref, {
          status: 'retrying',
          // A failure is recorded by the attempt that ended: no claim is left to wait for.
          claimExpiresAt: null,
          ...reopenedFields(now, redriveId, 'failed'),
          // When it failed (not when a failed publish last put it back): set, whatever the
          // record holds, as it also tells the redriven attempt that this failure was counted.
          failedBeforeRedriveAt: toDate(snap.get('lastError.at')) ?? toDate(snap.get('updatedAt')) ?? now,
        });
        return { kind: 'reopened', delivery: ids };
      }),
    reopenStranded: (deliveryId, now, staleBefore, redriveId) =>
      store.db.runTransaction(async (tx): Promise<StrandedCheck> => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        const since = toDate(snap.get('lastRedriveAt'));
        // A claim still live (the attempt a dead letter overtook, kept by reopenDead) does not
        // keep it from being published again: the message then waits for that claim (claimHeld).
        if (snap.get('status') !== 'retrying' || snap.get('redrivePending') !== true || !since) {
          return { kind: 'not_stranded' };
        }
        if (since.getTime() >= staleBefore.getTime()) return { kind: 'waiting', since };
        const ids = idsOf(snap);
        if (!ids) return { kind: 'incomplete' };
        // Paused since the redrive that reopened it: put back to what it was reopened from, as a
        // reopen of it now would leave it, so that its report is not recorded skipped and lost.
        if ((await notificationIn(tx, ids.notificationId)) === 'paused') {
          tx.update(ref, putBack(snap, now));
          return { kind: 'paused', notificationId: ids.notificationId };
        }
        tx.update(ref, { lastRedriveAt: now, redriveId, updatedAt: now });
        return { kind: 'reopened', delivery: ids };
      }),
    markPublished: async (deliveryIds, now, redriveId) => {
      await Promise.all(
        deliveryIds.map((id) =>
          store.db.runTransaction(async (tx) => {
            const ref = deliveries().doc(id);
            const snap = await tx.get(ref);
            // Taken over by a later redrive since: that one records its own publish.
            if (snap.get('redriveId') !== redriveId) return;
            tx.update(ref, {
              redrivePending: FieldValue.delete(),
              redriveFrom: FieldValue.delete(),
              redrives: FieldValue.increment(1),
              updatedAt: now,
            });
          }),
        ),
      );
    },
    restoreReopened: async (deliveryId, now, redriveId) => {
      await store.db.runTransaction(async (tx) => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        // Only what this redrive reopened, still waiting for it, and unclaimed since goes back.
        if (
          snap.get('status') !== 'retrying' ||
          snap.get('redrivePending') !== true ||
          snap.get('redriveId') !== redriveId
        ) {
          return;
        }
        tx.update(ref, putBack(snap, now));
      });
    },
  };
}

/**
 * What puts a reopened delivery back to what it was reopened from: dead, or failed (a record
 * reopened before redrives said which was dead), no longer waiting for a publish.
 */
function putBack(snap: { get(field: string): unknown }, now: Date) {
  const from = snap.get('redriveFrom') === 'failed' ? 'failed' : 'dead';
  return { status: from, redrivePending: FieldValue.delete(), redriveFrom: FieldValue.delete(), updatedAt: now };
}

/**
 * What a reopen writes besides the status: marked as waiting for this redrive's publish, and
 * what it was reopened from, for restoreReopened should that publish fail.
 */
function reopenedFields(now: Date, redriveId: string, from: 'dead' | 'failed') {
  return { lastRedriveAt: now, redrivePending: true, redriveId, redriveFrom: from, updatedAt: now };
}

function idsOf(snap: {
  get(field: string): unknown;
}): Pick<DeliveryDoc, 'notificationId' | 'occurrence' | 'runId'> | null {
  const notificationId = snap.get('notificationId');
  const occurrence = snap.get('occurrence');
  const runId = snap.get('runId');
  if (typeof notificationId !== 'string' || typeof occurrence !== 'string' || typeof runId !== 'string') return null;
  return { notificationId, occurrence, runId };
}
