import { deliveryClaimStep, freshClaim, holdsClaim } from './delivery-claim';
import { bucketOf, LARGE_READ_IDS, pagesOfBuckets } from './members';
import {
  DELIVERY_STATUSES,
  type DeliveryDoc,
  type DeliveryError,
  type DeliveryStatus,
  deadClaimUpdate,
  deadLetterPredatesRedrive,
  endsDelivery,
  FINAL_STATUSES,
  liveClaim,
  permanentFailureUpdate,
  type RunDoc,
  type ScheduleDoc,
  storedText,
} from './model';
import type {
  AccountStore,
  CheckpointProgress,
  ClaimRequest,
  DeliveryClaim,
  DeliveryLedger,
  DueCursor,
  DueSchedule,
  NotificationPage,
  NotificationStore,
  RunClaim,
  RunStore,
  SkippedCount,
} from './ports';
import { type DeadLetterFields, LeaseLostError, leaseLost, type SentFields } from './ports';
import { activeOccurrenceOf, claimStep, publishedCount, scheduleAdvance, scheduleRunState } from './schedule-state';

/**
 * The ports of shared/ports.ts over Maps, with the semantics of FirestoreStore (claim and
 * lease rules, final statuses, `update()` failing on a missing document), for fast unit
 * tests. The emulator tests prove the Firestore store does the same.
 */

/** A schedule document as stored; a merge-write on a missing document leaves fields out. */
export type StoredSchedule = Partial<ScheduleDoc> & {
  activeOccurrence?: string | null;
  invalidReason?: string;
  updatedAt?: Date;
};

/** A delivery document as stored: the dead-letter and invalid-input paths write partial ones. */
export type StoredDelivery = Partial<DeliveryDoc> & Record<string, unknown>;

const FINAL = new Set<DeliveryStatus>(FINAL_STATUSES);
const DISABLED_UNTIL = new Date('9999-12-31T00:00:00Z');

/** Firestore's answer to `update()` on a document that does not exist. */
export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
  readonly code = 5;
}

/**
 * Stored documents never leak out by reference, as with a real database. Not
 * structuredClone: under jest it gives Dates of another realm, which fail `instanceof Date`.
 */
function copy<T>(v: T): T {
  if (v instanceof Date) return new Date(v.getTime()) as T;
  if (Array.isArray(v)) return v.map(copy) as T;
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)])) as T;
  }
  return v;
}

/** A run's cursor and counts once `progress` is added, as FirestoreStore's increments make them. */
function withProgress(run: RunDoc, { cursor, published, pages }: CheckpointProgress) {
  return { cursor, published: run.published + published, pages: run.pages + pages };
}

export class MemoryStore implements RunStore, DeliveryLedger, NotificationStore {
  readonly scheduleDocs = new Map<string, StoredSchedule>();
  readonly runDocs = new Map<string, RunDoc>();
  readonly deliveryDocs = new Map<string, StoredDelivery>();
  readonly notificationDocs = new Map<string, Record<string, unknown>>();
  readonly accountDocs = new Map<string, Record<string, unknown>>();
  /** As FirestoreStore's `largeReadIds`: more ids than this after a run's first page is a large read. */
  largeReadIds = LARGE_READ_IDS;

  /** The AccountStore port (its `getRaw` would clash with the notifications' one). */
  readonly accounts: AccountStore = {
    getRaw: async (accountId) => {
      const doc = this.accountDocs.get(accountId);
      return doc ? copy(doc) : null;
    },
  };

  // ---- seeding, for tests ----

  putSchedule(id: string, doc: StoredSchedule): void {
    this.scheduleDocs.set(id, copy({ activeOccurrence: null, skippedOccurrences: 0, ...doc }));
  }

  putNotification(id: string, doc: Record<string, unknown>): void {
    this.notificationDocs.set(id, copy(doc));
  }

  putAccount(id: string, doc: Record<string, unknown>): void {
    this.accountDocs.set(id, copy(doc));
  }

  schedule(id: string): StoredSchedule | null {
    const s = this.scheduleDocs.get(id);
    return s ? copy(s) : null;
  }

  notification(id: string): Record<string, unknown> | null {
    const n = this.notificationDocs.get(id);
    return n ? copy(n) : null;
  }

  /** A merge-write, as `set(..., { merge: true })`; `skipped` is an increment of skippedOccurrences. */
  private mergeSchedule(id: string, patch: StoredSchedule, skipped?: number): void {
    const prev = this.scheduleDocs.get(id) ?? {};
    const next: StoredSchedule = { ...prev, ...copy(patch) };
    if (skipped !== undefined) next.skippedOccurrences = (prev.skippedOccurrences ?? 0) + skipped;
    this.scheduleDocs.set(id, next);
  }

  // ---- RunStore ----

  async dueSchedules(at: Date, limit: number, after?: DueCursor): Promise<DueSchedule[]> {
    const key = (time: number, id: string) => (c: DueCursor) => time - c.nextRunAt.getTime() || cmp(id, c.id);
    return [...this.scheduleDocs.entries()]
      .filter(([, s]) => s.nextRunAt instanceof Date && s.nextRunAt.getTime() <= at.getTime())
      .filter(([id, s]) => !after || key((s.nextRunAt as Date).getTime(), id)(after) > 0)
      .sort(([ia, a], [ib, b]) => (a.nextRunAt as Date).getTime() - (b.nextRunAt as Date).getTime() || cmp(ia, ib))
      .slice(0, limit)
      .map(([id, s]) => ({
        id,
        cron: storedText(s.cron).trim(),
        timezone: storedText(s.timezone).trim(),
        nextRunAt: new Date((s.nextRunAt as Date).getTime()),
        lastRunAt: s.lastRunAt ? new Date(s.lastRunAt.getTime()) : null,
        lastRunPublished: publishedCount(s.lastRunPublished),
        ...activeOccurrenceOf(s.activeOccurrence),
      }));
  }

  async claimRun(
    scheduleId: string,
    occurrence: string,
    owner: string,
    leaseMs: number,
    now: Date,
    indexReadAt: Date | null,
    skipped: SkippedCount = 0,
  ): Promise<RunClaim> {
    const runId = `${scheduleId}:${occurrence}`;
    const existing = this.runDocs.get(runId);
    const step = claimStep(existing ? copy(existing) : null, scheduleRunState(this.scheduleDocs.get(scheduleId)), {
      scheduleId,
      occurrence,
      owner,
      leaseMs,
      now,
      indexReadAt,
      skipped,
    });
    if (step.kind === 'create') {
      this.runDocs.set(runId, copy(step.run));
      this.mergeSchedule(scheduleId, { activeOccurrence: occurrence });
      return { kind: 'acquired', run: step.run };
    }
    if (step.kind === 'take') {
      this.runDocs.set(runId, copy(step.run));
      return { kind: 'resumed', run: step.run };
    }
    return step;
  }

  /**
   * The same pages as FirestoreStore's dispatch index gives: whole buckets, in bucket order.
   * It keeps no older versions: `readAt` is not used, and the index is read as it is.
   */
  async *notificationPages(
    scheduleId: string,
    cursor: string | null,
    pageSize: number,
    _readAt?: Date | null,
    beforeLargeRead?: () => Promise<void>,
  ): AsyncGenerator<NotificationPage> {
    const buckets = new Map<string, string[]>();
    for (const [id, n] of this.notificationDocs) {
      if (n.scheduleId !== scheduleId || n.enabled !== true) continue;
      const b = bucketOf(id);
      if (cursor !== null && b <= cursor) continue;
      buckets.set(b, [...(buckets.get(b) ?? []), id]);
    }
    const ordered = [...buckets.keys()].sort(cmp).map((b) => ({ id: b, ids: (buckets.get(b) ?? []).sort(cmp) }));
    // The index is all in memory; the first page stands for FirestoreStore's first read, and the
    // rest for one read, large when it holds more than largeReadIds ids.
    let left = ordered.reduce((n, b) => n + b.ids.length, 0);
    let first = true;
    for await (const page of pagesOfBuckets(ordered, pageSize)) {
      if (!first && left > this.largeReadIds && beforeLargeRead) {
        await beforeLargeRead();
        left = 0;
      }
      first = false;
      left -= page.ids.length;
      yield page;
    }
  }

  private leased(runId: string, owner: string): RunDoc {
    const run = this.runDocs.get(runId);
    if (!run) throw new LeaseLostError(`run ${runId} does not exist`);
    if (run.leaseOwner !== owner) throw leaseLost(runId, run);
    return run;
  }

  async renewLease(runId: string, owner: string, leaseMs: number, now: Date): Promise<void> {
    const run = this.leased(runId, owner);
    this.runDocs.set(runId, { ...run, leaseExpiresAt: new Date(now.getTime() + leaseMs), updatedAt: now });
  }

  async checkpoint(
    runId: string,
    owner: string,
    progress: CheckpointProgress,
    leaseMs: number,
    now: Date,
  ): Promise<void> {
    const run = this.leased(runId, owner);
    this.runDocs.set(runId, {
      ...run,
      ...withProgress(run, progress),
      leaseExpiresAt: new Date(now.getTime() + leaseMs),
      updatedAt: now,
    });
  }

  async finishRun(
    runId: string,
    owner: string,
    scheduleId: string,
    nextRunAt: Date,
    skipped: number,
    now: Date,
    progress: CheckpointProgress | null = null,
  ): Promise<void> {
    const run = this.leased(runId, owner);
    const done = { ...run, ...(progress ? withProgress(run, progress) : {}) };
    this.runDocs.set(runId, {
      ...done,
      status: 'done',
      leaseOwner: null,
      leaseExpiresAt: null,
      finishedAt: now,
      updatedAt: now,
    });
    this.advance(scheduleId, run.occurrence, nextRunAt, skipped, now, done.published);
  }

  async advanceSchedule(
    scheduleId: string,
    nextRunAt: Date,
    skipped: SkippedCount,
    now: Date,
    finished: string | null,
  ): Promise<void> {
    this.advance(scheduleId, finished, nextRunAt, skipped, now);
  }

  /** As FirestoreStore: the schedule moved on only as scheduleAdvance allows. */
  private advance(
    scheduleId: string,
    finished: string | null,
    nextRunAt: Date,
    skipped: SkippedCount,
    now: Date,
    published?: number,
  ): void {
    const advance = scheduleAdvance(
      scheduleRunState(this.scheduleDocs.get(scheduleId)),
      finished,
      nextRunAt,
      skipped,
      published,
    );
    if (!advance) return;
    this.mergeSchedule(
      scheduleId,
      {
        nextRunAt: advance.nextRunAt,
        ...(advance.lastRunAt ? { lastRunAt: advance.lastRunAt } : {}),
        ...(advance.published !== undefined ? { lastRunPublished: advance.published } : {}),
        activeOccurrence: null,
        updatedAt: now,
      },
      advance.skipped,
    );
  }

  async disableSchedule(scheduleId: string, reason: string, now: Date): Promise<void> {
    this.mergeSchedule(scheduleId, { nextRunAt: DISABLED_UNTIL, invalidReason: reason, updatedAt: now });
  }

  async releaseRun(runId: string, owner: string, error: string, now: Date): Promise<void> {
    const run = this.leased(runId, owner);
    this.runDocs.set(runId, { ...run, leaseOwner: null, leaseExpiresAt: null, lastError: error, updatedAt: now });
  }

  async getRun(runId: string): Promise<RunDoc | null> {
    const run = this.runDocs.get(runId);
    return run ? copy(run) : null;
  }

  // ---- DeliveryLedger ----

  async claim(req: ClaimRequest): Promise<DeliveryClaim> {
    const d = this.deliveryDocs.get(req.deliveryId);
    if (!d) {
      const fresh = freshClaim(req);
      this.deliveryDocs.set(req.deliveryId, { ...copy(fresh.doc) });
      return copy(fresh.claim);
    }
    const step = deliveryClaimStep(d, req);
    if (step.kind !== 'claimed') return copy(step);
    if (step.update) {
      // As FirestoreStore: a redriven message arrived, so its redrive is no longer waiting to publish it.
      const { redrivePending: _published, ...rest } = d;
      this.deliveryDocs.set(req.deliveryId, { ...rest, ...copy(step.update) });
    }
    return copy(step.claim);
  }

  private update(deliveryId: string, fields: StoredDelivery): void {
    const d = this.deliveryDocs.get(deliveryId);
    if (!d) throw new NotFoundError(`No document to update: deliveries/${deliveryId}`);
    this.deliveryDocs.set(deliveryId, { ...d, ...copy(fields) });
  }

  async markSent(deliveryId: string, f: SentFields): Promise<void> {
    this.update(deliveryId, {
      status: 'sent',
      slackTs: f.slackTs,
      channelId: f.channelId,
      accountId: f.accountId,
      latencyMs: f.latencyMs,
      sentAt: f.sentAt ?? f.now,
      claimExpiresAt: null,
      outcomeUnknown: false,
      updatedAt: f.now,
    });
  }

  async markRetry(
    deliveryId: string,
    error: DeliveryError,
    outcomeUnknown: boolean,
    now: Date,
    claimedBy?: string,
    holdUntil?: Date,
  ): Promise<void> {
    const current = this.deliveryDocs.get(deliveryId);
    if (claimedBy !== undefined) {
      // As FirestoreStore: a final record is never turned back into a retry (a delivery
      // dead-lettered while its last attempt, past its deadline, still ran), but a dead one
      // takes the ending attempt's claim as it leaves it.
      if (current?.status === 'dead' && current.claimedBy === claimedBy) {
        this.update(deliveryId, deadClaimUpdate(copy(error), holdUntil, outcomeUnknown, now));
        return;
      }
      if (!current || FINAL.has(current.status as DeliveryStatus)) return;
      // An attempt that outlived its claim must not release the claim of the one that took over.
      if (current.claimedBy !== claimedBy) {
        if (outcomeUnknown) this.update(deliveryId, { outcomeUnknown: true });
        return;
      }
    }
    // Once unknown, it stays unknown until a later attempt settles it.
    this.update(deliveryId, {
      status: 'retrying',
      lastError: error,
      claimExpiresAt: holdUntil ?? null,
      updatedAt: now,
      ...(outcomeUnknown ? { outcomeUnknown: true } : {}),
    });
  }

  async renewClaim(deliveryId: string, claimedBy: string, until: Date, now: Date): Promise<boolean> {
    if (!holdsClaim(this.deliveryDocs.get(deliveryId), claimedBy)) return false;
    this.update(deliveryId, { claimExpiresAt: new Date(until.getTime()), updatedAt: now });
    return true;
  }

  async markFinal(
    deliveryId: string,
    status: 'failed' | 'skipped',
    error: DeliveryError,
    now: Date,
    claimedBy?: string,
  ): Promise<void> {
    const stored = this.deliveryDocs.get(deliveryId);
    const d = stored ?? {};
    if (claimedBy !== undefined && stored?.status === 'dead' && stored.claimedBy === claimedBy) {
      this.update(deliveryId, deadClaimUpdate(copy(error), undefined, false, now));
      return;
    }
    // A finished delivery is never downgraded, whatever a later (possibly forged) message says.
    if (d.status && FINAL.has(d.status as DeliveryStatus)) return;
    // An attempt that outlived its claim must not overwrite the attempt that took over.
    if (claimedBy !== undefined && stored && stored.claimedBy !== claimedBy) return;
    this.deliveryDocs.set(deliveryId, {
      ...d,
      status,
      lastError: copy(error),
      claimExpiresAt: null,
      updatedAt: now,
      attempts: d.attempts ?? 0,
    });
  }

  async recordInvalid(
    deliveryId: string,
    error: DeliveryError,
    now: Date,
    init: Partial<Pick<DeliveryDoc, 'runId'>> = {},
  ): Promise<void> {
    if (this.deliveryDocs.has(deliveryId)) return;
    this.deliveryDocs.set(deliveryId, {
      ...copy(init),
      status: 'failed',
      attempts: 0,
      lastError: copy(error),
      updatedAt: now,
    });
  }

  async markDead(deliveryId: string, f: DeadLetterFields): Promise<DeliveryStatus> {
    const d = this.deliveryDocs.get(deliveryId);
    // A delivery that ended stays as it ended (sent, failed for good, skipped while paused, dead
    // already: under the run it died in, which a redrive of that run looks in); a record that
    // speaks only of another message (a broken push, a skip for a schedule left) does not.
    if (d && endsDelivery(d)) return d.status as DeliveryStatus;
    // A dead letter again of the message a redrive has replaced since: the redriven one carries it.
    if (d && deadLetterPredatesRedrive(d, f)) return d.status as DeliveryStatus;
    const fields: StoredDelivery = {
      status: 'dead',
      deadAt: f.now,
      deadReason: f.reason,
      claimExpiresAt: liveClaim(d, f.now),
      updatedAt: f.now,
    };
    if (f.attempts !== null) fields.deadLetterAttempts = f.attempts;
    if (!d)
      Object.assign(fields, {
        notificationId: f.notificationId,
        occurrence: f.occurrence,
        runId: f.runId,
        attempts: 0,
      });
    else {
      if (f.runId) fields.runId = f.runId;
      // As FirestoreStore: a broken message's record names neither, and a redrive needs both.
      if (typeof d.notificationId !== 'string' && f.notificationId) fields.notificationId = f.notificationId;
      if (typeof d.occurrence !== 'string' && f.occurrence) fields.occurrence = f.occurrence;
    }
    this.deliveryDocs.set(deliveryId, { ...(d ?? {}), ...fields });
    return 'dead';
  }

  async get(deliveryId: string): Promise<DeliveryDoc | null> {
    const d = this.deliveryDocs.get(deliveryId);
    return d ? (copy(d) as DeliveryDoc) : null;
  }

  async countByStatus(runId: string): Promise<Record<DeliveryStatus, number>> {
    const counts = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as Record<DeliveryStatus, number>;
    for (const d of this.deliveryDocs.values()) {
      if (d.runId === runId && d.status && d.status in counts) counts[d.status]++;
    }
    return counts;
  }

  /** Ids of a run's deliveries in one status, in pages (as FirestoreStore.deliveryIdsOfRun). */
  async deliveryIdsOfRun(
    runId: string,
    status: DeliveryStatus,
    cursor: string | null,
    limit: number,
  ): Promise<string[]> {
    return [...this.deliveryDocs.entries()]
      .filter(([id, d]) => d.runId === runId && d.status === status && (cursor === null || id > cursor))
      .map(([id]) => id)
      .sort(cmp)
      .slice(0, limit);
  }

  // ---- NotificationStore ----

  async getRaw(id: string): Promise<Record<string, unknown> | null> {
    return this.notification(id);
  }

  async recordPermanentFailure(
    id: string,
    reason: string,
    threshold: number,
    now: Date,
    occurrence?: string,
  ): Promise<boolean> {
    const n = this.notificationDocs.get(id);
    if (!n) return false;
    const counted = permanentFailureUpdate(n, reason, threshold, now, occurrence);
    if (!counted) return false;
    this.notificationDocs.set(id, { ...n, ...counted.update });
    return counted.pause;
  }

  /** The schedules each id was asked to leave (leaveIndex), in order. */
  readonly leftIndex: { id: string; scheduleId: string }[] = [];

  /** The index here is read from the documents themselves: no entry can outlive its document. */
  async leaveIndex(id: string, scheduleId: string): Promise<boolean> {
    this.leftIndex.push({ id, scheduleId });
    return false;
  }

  async resetFailures(id: string): Promise<void> {
    const n = this.notificationDocs.get(id);
    if (!n) throw new NotFoundError(`No document to update: notifications/${id}`);
    this.notificationDocs.set(id, { ...n, consecutiveFailures: 0 });
  }
}

/** Document ids in Firestore's order (byte order for ASCII ids). */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
