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

export interface RedriveLedger {
  deliveryIdsOfRun(runId: string, status: DeliveryStatus, cursor: string | null, limit: number): Promise<string[]>;
  /**
   * Moves a dead delivery to `retrying`, attempts kept: the ledger refuses to claim a final
   * status, so the redriven message could not be delivered while it is still `dead`.
   */
  reopenDead(deliveryId: string, now: Date): Promise<ReopenResult>;
  /** Undoes `reopenDead` when its message could not be published, so a later redrive finds it. */
  restoreDead(deliveryId: string, now: Date): Promise<void>;
}

export type RedrivePublisher = PagePublisher;

export interface RedriveDeps {
  ledger: RedriveLedger;
  publisher: RedrivePublisher;
  log: Logger;
  pageSize?: number;
  clock?: () => Date;
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
  let cursor: string | null = null;
  for (;;) {
    const ids = await deps.ledger.deliveryIdsOfRun(runId, 'dead', cursor, pageSize);
    if (ids.length === 0) break;
    // Reopened before publishing: a message that arrived while the delivery was still dead would be acked unsent.
    const reopened = await Promise.all(
      ids.map(async (deliveryId) => ({ deliveryId, r: await deps.ledger.reopenDead(deliveryId, clock()) })),
    );
    const page: { deliveryId: string; message: DispatchMessage }[] = [];
    for (const { deliveryId, r } of reopened) {
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
      try {
        await deps.publisher.publishPage(
          page.map((p) => ({
            message: p.message,
            attributes: { deliveryId: p.deliveryId, runId: p.message.runId, redrive: 'true' },
          })),
        );
        result.redriven += page.length;
      } catch (err) {
        // Some may have gone out: those find the delivery dead again and are acked unsent, which is safe.
        await Promise.all(page.map((p) => deps.ledger.restoreDead(p.deliveryId, clock())));
        result.failed += page.length;
        deps.log.error({ runId, err: (err as Error).message, count: page.length }, 'redrive publish failed');
      }
    }
    cursor = ids[ids.length - 1] ?? cursor;
    if (ids.length < pageSize) break;
  }
  deps.log.info({ redrive: result, runId }, `redrive of ${runId}: ${result.redriven} redriven`);
  return result;
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
          deadBeforeRedriveAt: toDate(snap.get('deadAt')),
          updatedAt: now,
        });
        return { kind: 'reopened', delivery: { notificationId, occurrence, runId } };
      }),
    restoreDead: async (deliveryId, now) => {
      await store.db.runTransaction(async (tx) => {
        const ref = deliveries().doc(deliveryId);
        const snap = await tx.get(ref);
        // Only what this redrive reopened and nobody has claimed since goes back.
        if (snap.get('status') !== 'retrying') return;
        tx.update(ref, { status: 'dead', updatedAt: now });
      });
    },
  };
}
