import { FieldValue } from '@google-cloud/firestore';
import type { FirestoreStore } from './firestore-store';
import { toDate } from './firestore-store';
import type { Logger } from './logger';
import type { DispatchMessage } from './messages';
import type { DeliveryDoc, DeliveryStatus } from './model';
import type { PagePublisher } from './pubsub';
import { COLLECTIONS } from './topology';

/**
 * Redrive: puts a run's dead deliveries back on the dispatch topic. Shared by the admin API
 * and any command-line tool, over two small ports.
 */

export type ReopenResult =
  | { kind: 'reopened'; delivery: Pick<DeliveryDoc, 'notificationId' | 'occurrence' | 'runId'> }
  /** Someone else redrove it, or it was settled since the page was read. */
  | { kind: 'not_dead' }
  /** Recorded dead from a message too broken to say which notification it was for. */
  | { kind: 'incomplete' };

/**
 * How long a delivery a redrive reopened may wait for that redrive to publish it. Past this, a
 * later redrive takes it as stranded (the redrive that reopened it was interrupted, or crashed,
 * between the two steps) and publishes it again. Longer than a publish can take, retries
 * included, so a redrive still running is not overtaken.
 */
export const REDRIVE_STRANDED_AFTER_MS = 10 * 60_000;

export interface RedriveLedger {
  deliveryIdsOfRun(runId: string, status: DeliveryStatus, cursor: string | null, limit: number): Promise<string[]>;
  /**
   * Moves a dead delivery to `retrying`, attempts kept, marked as waiting for its redrive's
   * publish: the ledger refuses to claim a final status, so the redriven message could not be
   * delivered while it is still `dead`.
   */
  reopenDead(deliveryId: string, now: Date): Promise<ReopenResult>;
  /**
   * Takes over a delivery an earlier redrive reopened but never published: still `retrying`,
   * still waiting for its publish since before `staleBefore`, unclaimed. Anything else (a
   * delivery retrying on Pub/Sub's own redelivery, a redrive still publishing) is `not_stranded`.
   */
  reopenStranded(deliveryId: string, now: Date, staleBefore: Date): Promise<ReopenResult | { kind: 'not_stranded' }>;
  /** Records that the redriven messages are on the topic: their deliveries are no longer waiting. */
  markPublished(deliveryIds: string[], now: Date): Promise<void>;
  /** Undoes a reopen when its message could not be published, so a later redrive finds it dead. */
  restoreDead(deliveryId: string, now: Date): Promise<void>;
}

export type RedrivePublisher = PagePublisher;

export interface RedriveDeps {
  ledger: RedriveLedger;
  publisher: RedrivePublisher;
  log: Logger;
  pageSize?: number;
  clock?: () => Date;
  /** Called after each page with the counts so far (a redrive of many pages can take a while). */
  onProgress?: (so_far: RedriveResult) => void;
}

export interface RedriveResult {
  runId: string;
  /** Reopened and published. */
  redriven: number;
  /** No longer dead when reached, or too incomplete to publish. */
  skipped: number;
  /** Publishing failed; these are dead again and a later redrive retries them. */
  failed: number;
}

/** The schedule id is the run id without its `:occurrence` suffix. */
function scheduleIdOf(runId: string, occurrence: string): string | null {
  const suffix = `:${occurrence}`;
  return runId.endsWith(suffix) && runId.length > suffix.length ? runId.slice(0, -suffix.length) : null;
}

export async function redriveRun(runId: string, deps: RedriveDeps): Promise<RedriveResult> {
  const clock = deps.clock ?? (() => new Date());
  const pageSize = deps.pageSize ?? 200;
  const result: RedriveResult = { runId, redriven: 0, skipped: 0, failed: 0 };
  // The dead deliveries, then any an interrupted redrive left reopened but unpublished.
  await redrivePages(runId, 'dead', (id) => deps.ledger.reopenDead(id, clock()), pageSize, result, deps, clock);
  const staleBefore = new Date(clock().getTime() - REDRIVE_STRANDED_AFTER_MS);
  await redrivePages(
    runId,
    'retrying',
    (id) => deps.ledger.reopenStranded(id, clock(), staleBefore),
    pageSize,
    result,
    deps,
    clock,
  );
  deps.log.info({ redrive: result, runId }, `redrive of ${runId}: ${result.redriven} redriven`);
  return result;
}

async function redrivePages(
  runId: string,
  status: DeliveryStatus,
  reopen: (deliveryId: string) => Promise<ReopenResult | { kind: 'not_stranded' }>,
  pageSize: number,
  result: RedriveResult,
  deps: RedriveDeps,
  clock: () => Date,
): Promise<void> {
  let cursor: string | null = null;
  for (;;) {
    const ids = await deps.ledger.deliveryIdsOfRun(runId, status, cursor, pageSize);
    if (ids.length === 0) break;
    // Reopened before publishing: a message that arrived while the delivery was still dead would be acked unsent.
    const reopened = await Promise.all(ids.map(async (deliveryId) => ({ deliveryId, r: await reopen(deliveryId) })));
    const page: { deliveryId: string; message: DispatchMessage }[] = [];
    for (const { deliveryId, r } of reopened) {
      // Retrying on Pub/Sub's own redelivery, or another redrive's: not this redrive's to count.
      if (r.kind === 'not_stranded') continue;
      if (r.kind !== 'reopened') {
        result.skipped++;
        if (r.kind === 'incomplete') deps.log.warn({ deliveryId, runId }, 'dead delivery lacks its ids; not redriven');
        continue;
      }
      const scheduleId = scheduleIdOf(r.delivery.runId, r.delivery.occurrence);
      if (!scheduleId) {
        await deps.ledger.restoreDead(deliveryId, clock());
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
        },
      });
    }
    if (page.length > 0) {
      let published = false;
      try {
        await deps.publisher.publishPage(
          page.map((p) => ({
            message: p.message,
            attributes: { deliveryId: p.deliveryId, runId: p.message.runId, redrive: 'true' },
          })),
        );
        published = true;
      } catch (err) {
        // Some may have gone out: those find the delivery dead again and are acked unsent, which is safe.
        await Promise.all(page.map((p) => deps.ledger.restoreDead(p.deliveryId, clock())));
        result.failed += page.length;
        deps.log.error({ runId, err: (err as Error).message, count: page.length }, 'redrive publish failed');
      }
      if (published) {
        result.redriven += page.length;
        // If this write is lost, a later redrive publishes them again: the ledger acks the repeat.
        await deps.ledger
          .markPublished(
            page.map((p) => p.deliveryId),
            clock(),
          )
          .catch((err: unknown) => {
            deps.log.warn({ runId, err: (err as Error).message }, 'could not record that the redrive was published');
          });
      }
    }
    deps.onProgress?.({ ...result });
    cursor = ids[ids.length - 1] ?? cursor;
    if (ids.length < pageSize) break;
  }
}

/** The RedriveLedger over the Firestore store: each reopen is a transaction, so one redrive wins. */
export function firestoreRedriveLedger(store: FirestoreStore): RedriveLedger {
  const deliveries = () => store.db.collection(COLLECTIONS.deliveries);
  return {
    deliveryIdsOfRun: (runId, status, cursor, limit) => store.deliveryIdsOfRun(runId, status, cursor, limit),
    reopenDead: (deliveryId, now) =>
      store.db.runTransaction(async (tx): Promise<ReopenResult> => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        if (!snap.exists || snap.get('status') !== 'dead') return { kind: 'not_dead' };
        const notificationId = snap.get('notificationId');
        const occurrence = snap.get('occurrence');
        const runId = snap.get('runId');
        if (typeof notificationId !== 'string' || typeof occurrence !== 'string' || typeof runId !== 'string') {
          return { kind: 'incomplete' };
        }
        const attempted = (Number(snap.get('attempts')) || 0) > 0;
        tx.update(ref, {
          status: 'retrying',
          claimExpiresAt: null,
          // Dead-lettering overwrites a claim that may have posted: look in the channel before posting again.
          ...(attempted ? { outcomeUnknown: true } : {}),
          redrives: (Number(snap.get('redrives')) || 0) + 1,
          lastRedriveAt: now,
          redrivePending: true,
          deadBeforeRedriveAt: toDate(snap.get('deadAt')),
          updatedAt: now,
        });
        return { kind: 'reopened', delivery: { notificationId, occurrence, runId } };
      }),
    reopenStranded: (deliveryId, now, staleBefore) =>
      store.db.runTransaction(async (tx) => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        const since = toDate(snap.get('lastRedriveAt'));
        const claimUntil = toDate(snap.get('claimExpiresAt'));
        if (
          snap.get('status') !== 'retrying' ||
          snap.get('redrivePending') !== true ||
          !since ||
          since.getTime() >= staleBefore.getTime() ||
          (claimUntil && claimUntil.getTime() > now.getTime())
        ) {
          return { kind: 'not_stranded' } as const;
        }
        const notificationId = snap.get('notificationId');
        const occurrence = snap.get('occurrence');
        const runId = snap.get('runId');
        if (typeof notificationId !== 'string' || typeof occurrence !== 'string' || typeof runId !== 'string') {
          return { kind: 'incomplete' } as const;
        }
        tx.update(ref, { lastRedriveAt: now, updatedAt: now });
        return { kind: 'reopened', delivery: { notificationId, occurrence, runId } } as const;
      }),
    markPublished: async (deliveryIds, now) => {
      // A batch holds at most 500 writes.
      for (let i = 0; i < deliveryIds.length; i += 500) {
        const batch = store.db.batch();
        for (const id of deliveryIds.slice(i, i + 500)) {
          // Deleting the mark is harmless once the delivery has moved on (claimed, sent).
          batch.update(deliveries().doc(id), { redrivePending: FieldValue.delete(), updatedAt: now });
        }
        await batch.commit();
      }
    },
    restoreDead: async (deliveryId, now) => {
      await store.db.runTransaction(async (tx) => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        // Only what this redrive reopened and nobody has claimed since goes back.
        if (snap.get('status') !== 'retrying') return;
        tx.update(ref, {
          status: 'dead',
          redrivePending: FieldValue.delete(),
          // The reopen did not count: the message was never republished.
          redrives: Math.max(0, (Number(snap.get('redrives')) || 0) - 1),
          updatedAt: now,
        });
      });
    },
  };
}
