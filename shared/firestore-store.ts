import type { Readable } from 'node:stream';
import {
  type DocumentSnapshot,
  FieldPath,
  FieldValue,
  type Firestore,
  type Query,
  type QueryDocumentSnapshot,
  Timestamp,
  type Transaction,
} from '@google-cloud/firestore';
import { deliveryClaimStep, freshClaim, holdsClaim } from './delivery-claim';
import { DIRECT_CALLS, type DocumentCalls, FirestoreCoalescer } from './firestore-batching';
import { CODES, grpcCode } from './grpc';
import {
  bucketIds,
  bucketOf,
  type IndexBucket,
  indexedSchedule,
  isBucketId,
  LARGE_READ_IDS,
  MEMBER_BUCKETS,
  membersOf,
  pagesOfBuckets,
  writeIndexChanges,
} from './members';
import {
  DELIVERY_STATUSES,
  type DeliveryDoc,
  type DeliveryStatus,
  deadClaimUpdate,
  deadLetterPredatesRedrive,
  deliveryFromData,
  endsDelivery,
  FINAL_STATUSES,
  liveClaim,
  permanentFailureUpdate,
  type RunDoc,
  runFromData,
  storedText,
} from './model';
import type {
  AccountStore,
  ClaimRequest,
  DeliveryClaim,
  DeliveryLedger,
  DueCursor,
  DueSchedule,
  NotificationStore,
  RunClaim,
  RunStore,
  SkippedCount,
} from './ports';
import {
  type CheckpointProgress,
  type DeadLetterFields,
  LeaseLostError,
  leaseLost,
  type NotificationPage,
  type SentFields,
} from './ports';
import { QUERIES, type QuerySpec } from './queries';
import {
  activeOccurrenceOf,
  claimStep,
  publishedCount,
  type ScheduleAdvance,
  scheduleAdvance,
  scheduleRunState,
} from './schedule-state';
import { COLLECTIONS, expiryFrom } from './topology';

/** Firestore gives Timestamps back; the rest of the code speaks Date. */
export function toDate(v: unknown): Date | null {
  if (v instanceof Timestamp) return v.toDate();
  if (v instanceof Date) return v;
  return null;
}

function fromDoc<T>(data: FirebaseFirestore.DocumentData): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) out[k] = v instanceof Timestamp ? v.toDate() : v;
  return out as T;
}

/** Builds a query from its spec in shared/queries.ts, so each query has its declared index. */
export function buildQuery(db: Firestore, spec: QuerySpec, values: Record<string, unknown>): Query {
  let q: Query = db.collection(spec.collection);
  for (const f of spec.fields) {
    const path = f.fieldPath === '__name__' ? FieldPath.documentId() : f.fieldPath;
    if (f.op === 'orderBy') {
      q = q.orderBy(path, f.order === 'ASCENDING' ? 'asc' : 'desc');
    } else {
      if (!(f.fieldPath in values)) throw new Error(`query ${spec.name} needs a value for ${f.fieldPath}`);
      q = q.where(path, f.op, values[f.fieldPath]);
      if (f.op !== '==') q = q.orderBy(path, f.order === 'ASCENDING' ? 'asc' : 'desc');
    }
  }
  return q;
}

const FINAL = new Set<DeliveryStatus>(FINAL_STATUSES);

export interface FirestoreStoreOptions {
  /**
   * Coalesce the delivery hot path's single-document calls across concurrent requests (the
   * notifier): the claim's create, markSent's update, and the notification and account reads
   * go out batched per event-loop turn (shared/firestore-batching.ts). Every transaction, and
   * every other call, is made as without it. The store must then be closed before the client
   * is terminated.
   */
  coalesce?: boolean;
  /** How old a read time may be for the index to be read as it was then (INDEX_VERSION_AGE_MS). */
  indexVersionAgeMs?: number;
  /** About how many ids a read of the index at a past time brings (IDS_PER_READ). */
  indexIdsPerRead?: number;
  /** A read of the index expected to bring more ids than this waits for `beforeLargeRead` (LARGE_READ_IDS). */
  largeReadIds?: number;
}

/**
 * How old a read time may be for the index to be read as it was then: Firestore keeps a
 * document's older versions for an hour (without point-in-time recovery). Older, a run resumed
 * that late reads the index as it is.
 */
export const INDEX_VERSION_AGE_MS = 55 * 60_000;
/**
 * Index buckets read at once at a past read time. The first read takes a few; each next one as
 * many as hold about IDS_PER_READ ids at the size the last ones had (buckets hold up to 20,000
 * ids each), so a schedule of ordinary size is read in two reads and a huge one in bounded
 * pieces. (A query is read at a past time a page at a time, and each page costs a read of its
 * own: the emulator, for one, scans to a page's start.)
 */
const FIRST_BUCKETS_PER_READ = 8;
const MAX_BUCKETS_PER_READ = 256;
const IDS_PER_READ = 50_000;

/** How many buckets the next read at a past time asks for, after one of `buckets` buckets held `ids` ids. */
export function bucketsPerRead(buckets: number, ids: number, idsPerRead = IDS_PER_READ): number {
  return Math.max(1, Math.min(MAX_BUCKETS_PER_READ, Math.floor((idsPerRead * buckets) / Math.max(1, ids))));
}

/**
 * One dispatch-index bucket as a run reads it: its id (a run's cursor) and its enabled ids, in
 * the order its list keeps them (a run resumes after a whole bucket, so the order within one
 * does not matter; sorting them cost about 1% of a tick's CPU).
 */
function indexBucket(snap: QueryDocumentSnapshot): IndexBucket {
  return { id: snap.id, ids: bucketIds(snap) };
}

/** A schedule's fields once moved on (scheduleAdvance), as one merge-write. */
function advancedFields(advance: ScheduleAdvance, now: Date): Record<string, unknown> {
  return {
    nextRunAt: advance.nextRunAt,
    ...(advance.lastRunAt ? { lastRunAt: advance.lastRunAt } : {}),
    activeOccurrence: null,
    ...(advance.skipped > 0 ? { skippedOccurrences: FieldValue.increment(advance.skipped) } : {}),
    ...(advance.published !== undefined ? { lastRunPublished: advance.published } : {}),
    updatedAt: now,
  };
}

/**
 * A run's progress as a write adds it to the run as read in the same transaction: its cursor,
 * and its counts incremented. The client runs a transaction again when its commit's answer is
 * lost (DEADLINE_EXCEEDED, UNAVAILABLE), and the commit may have landed: the run read then
 * holds this progress's cursor already (each checkpoint's cursor is a later bucket than the
 * last), and the counts are not added twice; a run's `published` once read 105 for 100 sent.
 */
function progressFields(run: Pick<RunDoc, 'cursor'>, progress: CheckpointProgress): Record<string, unknown> {
  if (progressApplied(run, progress)) return { cursor: progress.cursor };
  const { cursor, published, pages } = progress;
  return { cursor, published: FieldValue.increment(published), pages: FieldValue.increment(pages) };
}

/** Whether a run, as read, holds `progress` already: a transaction run again after its commit landed. */
function progressApplied(run: Pick<RunDoc, 'cursor'>, progress: CheckpointProgress): boolean {
  return run.cursor === progress.cursor;
}

/** A run read in a transaction, while `owner` holds its lease; LeaseLostError otherwise. */
function leasedRun(runId: string, owner: string, snap: DocumentSnapshot | undefined): RunDoc {
  if (!snap?.exists) throw new LeaseLostError(`run ${runId} does not exist`);
  const run = runFromData(fromDoc(snap.data() ?? {}));
  if (run.leaseOwner !== owner) throw leaseLost(runId, run);
  return run;
}

export class FirestoreStore implements RunStore, DeliveryLedger, NotificationStore {
  /** The hot path's single-document calls: coalesced (shared/firestore-batching.ts) with `coalesce: true`. */
  private readonly calls: DocumentCalls;

  constructor(
    readonly db: Firestore,
    opts: FirestoreStoreOptions = {},
  ) {
    this.calls = opts.coalesce ? new FirestoreCoalescer(db) : DIRECT_CALLS;
    this.indexVersionAgeMs = opts.indexVersionAgeMs ?? INDEX_VERSION_AGE_MS;
    this.indexIdsPerRead = opts.indexIdsPerRead ?? IDS_PER_READ;
    this.largeReadIds = opts.largeReadIds ?? LARGE_READ_IDS;
  }

  private readonly indexVersionAgeMs: number;
  private readonly indexIdsPerRead: number;
  private readonly largeReadIds: number;

  /** Sends the coalesced writes still queued and waits for them; call before db.terminate(). */
  async close(): Promise<void> {
    await this.calls.close();
  }

  private runs() {
    return this.db.collection(COLLECTIONS.runs);
  }
  private schedules() {
    return this.db.collection(COLLECTIONS.schedules);
  }
  private deliveries() {
    return this.db.collection(COLLECTIONS.deliveries);
  }
  private notifications() {
    return this.db.collection(COLLECTIONS.notifications);
  }

  // ---- RunStore ----

  async dueSchedules(at: Date, limit: number, after?: DueCursor): Promise<DueSchedule[]> {
    let q = buildQuery(this.db, QUERIES.dueSchedules, { nextRunAt: at });
    if (after) q = q.startAfter(Timestamp.fromDate(after.nextRunAt), after.id);
    const snap = await q.limit(limit).get();
    return snap.docs.map((d) => {
      const data = fromDoc<Record<string, unknown>>(d.data());
      return {
        id: d.id,
        // Blanks around either, written by hand, are dropped, as when a notification is saved.
        cron: storedText(data.cron).trim(),
        timezone: storedText(data.timezone).trim(),
        nextRunAt: (data.nextRunAt as Date) ?? at,
        lastRunAt: (data.lastRunAt as Date | null) ?? null,
        lastRunPublished: publishedCount(data.lastRunPublished),
        ...activeOccurrenceOf(data.activeOccurrence),
        readAt: snap.readTime.toDate(),
      };
    });
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
    const runRef = this.runs().doc(runId);
    const scheduleRef = this.schedules().doc(scheduleId);
    return this.db.runTransaction(async (tx): Promise<RunClaim> => {
      const [snap, scheduleSnap] = await tx.getAll(runRef, scheduleRef);
      const step = claimStep(
        snap?.exists ? runFromData(fromDoc(snap.data() ?? {})) : null,
        scheduleRunState(
          scheduleSnap?.exists ? fromDoc<Record<string, unknown>>(scheduleSnap.data() ?? {}) : undefined,
        ),
        { scheduleId, occurrence, owner, leaseMs, now, indexReadAt, skipped },
      );
      if (step.kind === 'create') {
        tx.create(runRef, { ...step.run, expireAt: expiryFrom(now) });
        tx.set(scheduleRef, { activeOccurrence: occurrence }, { merge: true });
        return { kind: 'acquired', run: step.run };
      }
      if (step.kind === 'take') {
        const { status, leaseOwner, leaseExpiresAt, resumes, updatedAt } = step.run;
        tx.update(runRef, { status, leaseOwner, leaseExpiresAt, resumes, updatedAt });
        return { kind: 'resumed', run: step.run };
      }
      return step;
    });
  }

  /**
   * A schedule's enabled notifications, read from its dispatch index (shared/members.ts): whole
   * buckets, at most `pageSize` ids a page (pagesOfBuckets), and each page's cursor is its last
   * bucket, so a run resumed from a checkpoint starts at the next bucket. With
   * `readAt` (a run's indexReadAt) the index as it was then, while Firestore still keeps that
   * version; otherwise as it is.
   */
  async *notificationPages(
    scheduleId: string,
    cursor: string | null,
    pageSize: number,
    readAt?: Date | null,
    beforeLargeRead?: () => Promise<void>,
  ): AsyncGenerator<NotificationPage> {
    const buckets =
      readAt && Date.now() - readAt.getTime() < this.indexVersionAgeMs
        ? this.bucketsAt(scheduleId, cursor, readAt, beforeLargeRead)
        : this.bucketsNow(scheduleId, cursor, beforeLargeRead);
    yield* pagesOfBuckets(buckets, pageSize);
  }

  /**
   * The index's buckets after `cursor` as they were at `readAt`, a few at a time: each read is
   * a read-only transaction at that read time (the client streams a query only as it is now).
   */
  private async *bucketsAt(
    scheduleId: string,
    cursor: string | null,
    readAt: Date,
    beforeLargeRead: (() => Promise<void>) | undefined,
  ): AsyncGenerator<IndexBucket> {
    const readTime = Timestamp.fromDate(readAt);
    let limit = FIRST_BUCKETS_PER_READ;
    const read = async (after: string | null) => {
      const asked = limit;
      let q = membersOf(this.db, scheduleId).orderBy(FieldPath.documentId()).limit(asked);
      if (after) q = q.startAfter(after);
      const snap = await this.db.runTransaction((tx) => tx.get(q), { readOnly: true, readTime });
      // The ids alone are kept: the snapshot's decoded documents are garbage at once, not held
      // while the buckets are published (they would outlive the young generation, for the
      // collector to mark again and again).
      return { buckets: snap.docs.map(indexBucket), more: snap.size === asked };
    };
    let next = read(cursor);
    // Read ahead; an early stop leaves it unread, and its failure is then no one's.
    next.catch(() => undefined);
    for (;;) {
      const { buckets, more } = await next;
      const last = buckets[buckets.length - 1];
      const ids = buckets.reduce((n, b) => n + b.ids.length, 0);
      limit = bucketsPerRead(buckets.length, ids, this.indexIdsPerRead);
      // Past what Firestore keeps (a long run): the rest as it is now.
      const aged = Date.now() - readAt.getTime() >= this.indexVersionAgeMs;
      // The next read goes out while this one's buckets are published, as a stream's would; a
      // large one once the run may make it (the wait holds the read, not these buckets).
      if (more && last && !aged) {
        const after = last.id;
        // The read brings at most `limit` buckets, and no more than today's layout has left.
        const left = isBucketId(after) ? MEMBER_BUCKETS - 1 - Number(after.slice(1)) : limit;
        const expected = (Math.min(limit, left) * ids) / Math.max(1, buckets.length);
        next =
          beforeLargeRead && expected > this.largeReadIds ? beforeLargeRead().then(() => read(after)) : read(after);
        next.catch(() => undefined);
      }
      yield* buckets;
      if (!more || !last) return;
      if (aged) {
        yield* this.bucketsNow(scheduleId, last.id, beforeLargeRead);
        return;
      }
    }
  }

  /**
   * The index's buckets after `cursor` as they are, with one query stream pulled a bucket at a
   * time, so memory stays near one page whatever the schedule's size.
   */
  private async *bucketsNow(
    scheduleId: string,
    cursor: string | null,
    beforeLargeRead: (() => Promise<void>) | undefined,
  ): AsyncGenerator<IndexBucket> {
    // A stream's size is not known before it is read: it is taken as large (a run older than
    // Firestore keeps versions for, or from before runs kept their read time).
    await beforeLargeRead?.();
    let q = membersOf(this.db, scheduleId).orderBy(FieldPath.documentId());
    if (cursor) q = q.startAfter(cursor);
    // The client's query stream is a Node Readable; its typings say only ReadableStream.
    const stream = q.stream() as Readable;
    try {
      // Not destroyed on an early stop (a failed run, a drain): see below.
      for await (const doc of stream.iterator({ destroyOnReturn: false }))
        yield indexBucket(doc as QueryDocumentSnapshot);
    } finally {
      // The client cannot cancel a query stream: destroying it leaves its gRPC call open and
      // paused, and the client's terminate() waits on that call for ever. A run stopped early
      // reads the rest to the end instead, discarded, in the background: at most the rest of
      // one schedule's index. An error meanwhile is the run's no more: it must not end the process.
      if (!stream.readableEnded && !stream.destroyed) stream.on('error', () => undefined).resume();
    }
  }

  private async withLease(tx: Transaction, runId: string, owner: string): Promise<RunDoc> {
    return leasedRun(runId, owner, await tx.get(this.runs().doc(runId)));
  }

  /** Writes `fields` (or those it makes of the run as read) to a run in a transaction, while `owner` holds its lease. */
  private async updateLeased(
    runId: string,
    owner: string,
    fields: Record<string, unknown> | ((run: RunDoc) => Record<string, unknown>),
  ): Promise<void> {
    await this.db.runTransaction(async (tx) => {
      const run = await this.withLease(tx, runId, owner);
      tx.update(this.runs().doc(runId), typeof fields === 'function' ? fields(run) : fields);
    });
  }

  async renewLease(runId: string, owner: string, leaseMs: number, now: Date): Promise<void> {
    await this.updateLeased(runId, owner, { leaseExpiresAt: new Date(now.getTime() + leaseMs), updatedAt: now });
  }

  async checkpoint(
    runId: string,
    owner: string,
    progress: CheckpointProgress,
    leaseMs: number,
    now: Date,
  ): Promise<void> {
    await this.updateLeased(runId, owner, (run) => ({
      ...progressFields(run, progress),
      leaseExpiresAt: new Date(now.getTime() + leaseMs),
      updatedAt: now,
    }));
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
    const runRef = this.runs().doc(runId);
    const scheduleRef = this.schedules().doc(scheduleId);
    await this.db.runTransaction(async (tx) => {
      // Both in one read: a small schedule's run is a handful of round trips in all.
      const [runSnap, scheduleSnap] = await tx.getAll(runRef, scheduleRef);
      const run = leasedRun(runId, owner, runSnap);
      const state = scheduleRunState(
        scheduleSnap?.exists ? fromDoc<Record<string, unknown>>(scheduleSnap.data() ?? {}) : undefined,
      );
      tx.update(runRef, {
        ...(progress ? progressFields(run, progress) : {}),
        status: 'done',
        leaseOwner: null,
        leaseExpiresAt: null,
        finishedAt: now,
        updatedAt: now,
        expireAt: expiryFrom(now),
      });
      const added = progress && !progressApplied(run, progress) ? progress.published : 0;
      const published = run.published + added;
      const advance = scheduleAdvance(state, run.occurrence, nextRunAt, skipped, published);
      if (advance) tx.set(scheduleRef, advancedFields(advance, now), { merge: true });
    });
  }

  async advanceSchedule(
    scheduleId: string,
    nextRunAt: Date,
    skipped: SkippedCount,
    now: Date,
    finished: string | null,
  ): Promise<void> {
    const ref = this.schedules().doc(scheduleId);
    await this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      const advance = scheduleAdvance(
        scheduleRunState(snap.exists ? fromDoc<Record<string, unknown>>(snap.data() ?? {}) : undefined),
        finished,
        nextRunAt,
        skipped,
      );
      if (advance) tx.set(ref, advancedFields(advance, now), { merge: true });
    });
  }

  async disableSchedule(scheduleId: string, reason: string, now: Date): Promise<void> {
    // A far-future nextRunAt takes it out of the due query until the notification is fixed.
    await this.schedules()
      .doc(scheduleId)
      .set({ nextRunAt: new Date('9999-12-31T00:00:00Z'), invalidReason: reason, updatedAt: now }, { merge: true });
  }

  async releaseRun(runId: string, owner: string, error: string, now: Date): Promise<void> {
    await this.updateLeased(runId, owner, { leaseOwner: null, leaseExpiresAt: null, lastError: error, updatedAt: now });
  }

  async getRun(runId: string): Promise<RunDoc | null> {
    const snap = await this.runs().doc(runId).get();
    // As stored, for an operator to read (the admin API, the CLI's run): runFromData is for decisions.
    return snap.exists ? fromDoc<RunDoc>(snap.data() ?? {}) : null;
  }

  // ---- DeliveryLedger ----

  async claim(req: ClaimRequest): Promise<DeliveryClaim> {
    const ref = this.deliveries().doc(req.deliveryId);
    const fresh = freshClaim(req);
    const created = { ...fresh.doc, expireAt: expiryFrom(req.now) };
    try {
      // The common path: one write, no read.
      await this.calls.create(ref, created);
      return fresh.claim;
    } catch (err) {
      if (grpcCode(err) !== CODES.ALREADY_EXISTS) throw err;
    }
    return this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      if (!snap.exists) {
        tx.create(ref, created);
        return fresh.claim;
      }
      const step = deliveryClaimStep(deliveryFromData(fromDoc<Record<string, unknown>>(snap.data() ?? {})), req);
      if (step.kind !== 'claimed') return step;
      if (step.update) {
        tx.update(ref, { ...step.update, redrivePending: FieldValue.delete(), redriveFrom: FieldValue.delete() });
      }
      return step.claim;
    });
  }

  async markSent(deliveryId: string, f: SentFields): Promise<void> {
    const ref = this.deliveries().doc(deliveryId);
    const sent = {
      status: 'sent',
      slackTs: f.slackTs,
      channelId: f.channelId,
      accountId: f.accountId,
      latencyMs: f.latencyMs,
      sentAt: f.sentAt ?? f.now,
      claimExpiresAt: null,
      outcomeUnknown: false,
      updatedAt: f.now,
      expireAt: expiryFrom(f.now),
    };
    await this.calls.update(ref, sent);
  }

  async markRetry(
    deliveryId: string,
    error: DeliveryDoc['lastError'],
    outcomeUnknown: boolean,
    now: Date,
    claimedBy?: string,
    holdUntil?: Date,
  ): Promise<void> {
    const ref = this.deliveries().doc(deliveryId);
    const update: Record<string, unknown> = {
      status: 'retrying',
      lastError: error,
      claimExpiresAt: holdUntil ?? null,
      updatedAt: now,
    };
    // Once unknown, it stays unknown until a later attempt settles it.
    if (outcomeUnknown) update.outcomeUnknown = true;
    if (claimedBy === undefined) {
      await ref.update(update);
      return;
    }
    await this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      if (!snap.exists) return;
      const mine = snap.get('claimedBy') === claimedBy;
      if (snap.get('status') === 'dead') {
        // Dead-lettered while this attempt ran: it stays dead, but the attempt's claim becomes
        // what it leaves behind (a hold while its post may still land, or none), which a redrive
        // carries over.
        if (mine) tx.update(ref, deadClaimUpdate(error, holdUntil, outcomeUnknown, now));
        return;
      }
      if (FINAL.has(snap.get('status'))) return;
      // An attempt that outlived its claim must not release the claim of the attempt that took over.
      if (mine) tx.update(ref, update);
      else if (outcomeUnknown) tx.update(ref, { outcomeUnknown: true });
    });
  }

  async renewClaim(deliveryId: string, claimedBy: string, until: Date, now: Date): Promise<boolean> {
    const ref = this.deliveries().doc(deliveryId);
    return this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      if (!holdsClaim(snap.data(), claimedBy)) return false;
      tx.update(ref, { claimExpiresAt: until, updatedAt: now });
      return true;
    });
  }

  async markFinal(
    deliveryId: string,
    status: 'failed' | 'skipped',
    error: NonNullable<DeliveryDoc['lastError']>,
    now: Date,
    claimedBy?: string,
  ): Promise<void> {
    const ref = this.deliveries().doc(deliveryId);
    await this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      // Dead-lettered while this attempt ran: it stays dead, and the attempt's claim goes.
      if (claimedBy !== undefined && snap.get('status') === 'dead' && snap.get('claimedBy') === claimedBy) {
        tx.update(ref, deadClaimUpdate(error, undefined, false, now));
        return;
      }
      // A finished delivery is never downgraded, whatever a later (possibly forged) message says.
      if (snap.exists && FINAL.has(snap.get('status'))) return;
      // An attempt that outlived its claim must not overwrite the attempt that took over.
      if (claimedBy !== undefined && snap.exists && snap.get('claimedBy') !== claimedBy) return;
      tx.set(
        ref,
        {
          status,
          lastError: error,
          claimExpiresAt: null,
          updatedAt: now,
          expireAt: expiryFrom(now),
          attempts: snap.get('attempts') ?? 0,
        },
        { merge: true },
      );
    });
  }

  async recordInvalid(
    deliveryId: string,
    error: NonNullable<DeliveryDoc['lastError']>,
    now: Date,
    init: Partial<Pick<DeliveryDoc, 'runId'>> = {},
  ): Promise<void> {
    const doc: Partial<DeliveryDoc> = {
      ...init,
      status: 'failed',
      attempts: 0,
      lastError: error,
      updatedAt: now,
      expireAt: expiryFrom(now),
    };
    await this.deliveries()
      .doc(deliveryId)
      .create(doc)
      .catch((err: unknown) => {
        // ALREADY_EXISTS: the delivery has a record of its own, which stays as it is.
        if (grpcCode(err) !== CODES.ALREADY_EXISTS) throw err;
      });
  }

  async markDead(deliveryId: string, f: DeadLetterFields): Promise<DeliveryStatus> {
    const ref = this.deliveries().doc(deliveryId);
    return this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      const d = snap.exists ? deliveryFromData(fromDoc<Record<string, unknown>>(snap.data() ?? {})) : null;
      // A delivery that ended stays as it ended (sent, failed for good, skipped while paused, dead
      // already: under the run it died in, which a redrive of that run looks in); a record that
      // speaks only of another message (a broken push, a skip for a schedule left) does not.
      if (d && endsDelivery(d)) return d.status as DeliveryStatus;
      // A dead letter again of the message a redrive has replaced since: the redriven one carries it.
      if (d && deadLetterPredatesRedrive(d, f)) return d.status as DeliveryStatus;
      const fields: Record<string, unknown> = {
        status: 'dead',
        deadAt: f.now,
        deadReason: f.reason,
        // An attempt still inside its claim may be posting: its claim outlives the dead letter, so
        // that a redrive's message waits for it instead of posting beside it.
        claimExpiresAt: liveClaim(d, f.now),
        updatedAt: f.now,
        expireAt: expiryFrom(f.now),
      };
      if (f.attempts !== null) fields.deadLetterAttempts = f.attempts;
      if (!d) {
        Object.assign(fields, {
          notificationId: f.notificationId,
          occurrence: f.occurrence,
          runId: f.runId,
          attempts: 0,
        });
      } else {
        // The run of the message that died, which a redrive of that run looks in: a record left
        // by another message (a skip for the schedule the notification left) named another.
        if (f.runId) fields.runId = f.runId;
        // A broken message's record names neither: a redrive needs both to publish it again.
        if (typeof d.notificationId !== 'string' && f.notificationId) fields.notificationId = f.notificationId;
        if (typeof d.occurrence !== 'string' && f.occurrence) fields.occurrence = f.occurrence;
      }
      tx.set(ref, fields, { merge: true });
      return 'dead' as const;
    });
  }

  async get(deliveryId: string): Promise<DeliveryDoc | null> {
    const snap = await this.deliveries().doc(deliveryId).get();
    return snap.exists ? fromDoc<DeliveryDoc>(snap.data() ?? {}) : null;
  }

  /**
   * How many of a run's deliveries are in each status, all counted at one read time (a read-only
   * transaction): counted one by one, a delivery moving from one status to another between two
   * counts was counted twice, or not at all.
   */
  async countByStatus(runId: string): Promise<Record<DeliveryStatus, number>> {
    // The client sends the first read with the transaction's start, and the others once it has
    // its id, so that every count reads the same snapshot.
    const counts = await this.db.runTransaction(
      (tx) =>
        Promise.all(
          DELIVERY_STATUSES.map(async (status) => {
            const q = buildQuery(this.db, QUERIES.deliveriesOfRunByStatus, { runId, status });
            return [status, (await tx.get(q.count())).data().count] as const;
          }),
        ),
      { readOnly: true },
    );
    return Object.fromEntries(counts) as Record<DeliveryStatus, number>;
  }

  /** A run's deliveries of one status, a page at a time by id, with only `fields` read. */
  async deliveriesOfRun(
    runId: string,
    status: DeliveryStatus,
    cursor: string | null,
    limit: number,
    fields: string[],
  ): Promise<{ id: string; data: Record<string, unknown> }[]> {
    return this.pageOf(buildQuery(this.db, QUERIES.deliveriesOfRunByStatus, { runId, status }), cursor, limit, fields);
  }

  /** The deliveries of one status across every run, a page at a time by id, with only `fields` read. */
  async deliveriesInStatus(
    status: DeliveryStatus,
    cursor: string | null,
    limit: number,
    fields: string[],
  ): Promise<{ id: string; data: Record<string, unknown> }[]> {
    return this.pageOf(buildQuery(this.db, QUERIES.deliveriesByStatus, { status }), cursor, limit, fields);
  }

  /** A page of `q`'s documents after `cursor` (by id), with only `fields` read. */
  private async pageOf(
    q: Query,
    cursor: string | null,
    limit: number,
    fields: string[],
  ): Promise<{ id: string; data: Record<string, unknown> }[]> {
    const snap = await (cursor ? q.startAfter(cursor) : q)
      .select(...fields)
      .limit(limit)
      .get();
    return snap.docs.map((d) => ({ id: d.id, data: d.data() }));
  }

  /** The deliveries a redrive reopened and has not published yet, across every run, a page at a time by id. */
  async redrivePendingDeliveries(
    cursor: string | null,
    limit: number,
    fields: string[],
  ): Promise<{ id: string; data: Record<string, unknown> }[]> {
    return this.pageOf(
      buildQuery(this.db, QUERIES.deliveriesRedrivePending, { redrivePending: true }),
      cursor,
      limit,
      fields,
    );
  }

  async deliveryIdsOfRun(
    runId: string,
    status: DeliveryStatus,
    cursor: string | null,
    limit: number,
  ): Promise<string[]> {
    return (await this.deliveriesOfRun(runId, status, cursor, limit, [])).map((d) => d.id);
  }

  // ---- NotificationStore / AccountStore ----

  async getRaw(id: string): Promise<Record<string, unknown> | null> {
    const ref = this.notifications().doc(id);
    const snap = await this.calls.get(ref);
    return snap.exists ? fromDoc<Record<string, unknown>>(snap.data() ?? {}) : null;
  }

  async getAccountRaw(accountId: string): Promise<Record<string, unknown> | null> {
    const ref = this.db.collection(COLLECTIONS.accounts).doc(accountId);
    const snap = await this.calls.get(ref);
    return snap.exists ? fromDoc<Record<string, unknown>>(snap.data() ?? {}) : null;
  }

  async recordPermanentFailure(
    id: string,
    reason: string,
    threshold: number,
    now: Date,
    occurrence?: string,
  ): Promise<boolean> {
    const ref = this.notifications().doc(id);
    return this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      if (!snap.exists) return false;
      const counted = permanentFailureUpdate(snap.data() ?? {}, reason, threshold, now, occurrence);
      if (!counted) return false;
      if (counted.pause) {
        // A paused notification leaves the dispatch index in the same commit.
        const change = { id, from: indexedSchedule(snap.data()), to: null };
        writeIndexChanges(tx, this.db, [change]);
      }
      tx.update(ref, counted.update);
      return counted.pause;
    });
  }

  async resetFailures(id: string): Promise<void> {
    await this.notifications().doc(id).update({ consecutiveFailures: 0 });
  }

  async leaveIndex(id: string, scheduleId: string): Promise<boolean> {
    // The bucket is read first, outside the transaction: most calls (a notification paused,
    // moved or deleted by this system after a tick published it) find its entry gone already,
    // and write nothing; and a transaction that read the bucket would hold up the imports that
    // write it without reading. An entry added after this read is one a notification called for.
    const bucket = await membersOf(this.db, scheduleId).doc(bucketOf(id)).get();
    if (!bucket.exists || !bucketIds(bucket).includes(id)) return false;
    const ref = this.notifications().doc(id);
    return this.db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      if (indexedSchedule(snap.data()) === scheduleId) return false;
      writeIndexChanges(tx, this.db, [{ id, from: scheduleId, to: null }]);
      return true;
    });
  }
}

/** The AccountStore port over the same Firestore store. */
export function accountStoreOf(store: FirestoreStore): AccountStore {
  return { getRaw: (accountId) => store.getAccountRaw(accountId) };
}
