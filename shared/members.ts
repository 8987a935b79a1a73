import { createHash } from 'node:crypto';
import { type DocumentReference, FieldValue, type Firestore, type Transaction } from '@google-cloud/firestore';
import { COLLECTIONS } from './topology';

/**
 * The dispatch index: which notifications a schedule sends to. Each schedule keeps its enabled
 * notifications' ids in `schedules/{scheduleId}/members/{bucket}` documents, as the keys of an
 * `ids` map, a notification in the bucket its id hashes to. A tick reads a schedule's whole
 * audience in at most MEMBER_BUCKETS document reads, instead of one read per notification.
 *
 * The index is written in the same transaction as the notification it describes (see
 * shared/notifications.ts and FirestoreStore.recordPermanentFailure), so the two cannot disagree.
 * The notifier still reads the notification itself before it posts, and skips a paused one.
 */

/**
 * Buckets per schedule. A bucket document holds at most 20,000 ids (Firestore's field limit),
 * so one schedule holds up to about 20 million notifications; a schedule with n notifications
 * has min(n, MEMBER_BUCKETS) bucket documents.
 */
export const MEMBER_BUCKETS = 1024;

/** Whether `id` is a bucket document id, as bucketOf() makes them. */
export function isBucketId(id: string): boolean {
  return /^b\d{4}$/.test(id) && Number(id.slice(1)) < MEMBER_BUCKETS;
}

/** The bucket document id of a notification: stable, evenly spread, sortable. */
export function bucketOf(notificationId: string): string {
  const h = createHash('sha1').update(notificationId).digest().readUInt32BE(0);
  return `b${String(h % MEMBER_BUCKETS).padStart(4, '0')}`;
}

export function membersOf(db: Firestore, scheduleId: string) {
  return db.collection(COLLECTIONS.schedules).doc(scheduleId).collection(COLLECTIONS.members);
}

/** One notification's place in the index: where it is now, and where it should be. */
export interface MemberChange {
  id: string;
  /** The schedule whose index lists it now (null: none, or it was disabled). */
  from: string | null;
  /** The schedule whose index should list it (null: none, it is disabled or deleted). */
  to: string | null;
}

/** What one bucket document needs: ids to add and ids to drop. */
export interface BucketWrite {
  ref: DocumentReference;
  add: string[];
  remove: string[];
}

/**
 * The bucket writes that carry out a set of changes, one per bucket document touched, so a
 * batch or transaction writes each bucket once however many of its notifications changed.
 */
export function bucketWrites(db: Firestore, changes: Iterable<MemberChange>): BucketWrite[] {
  const byPath = new Map<string, BucketWrite>();
  const entry = (scheduleId: string, id: string): BucketWrite => {
    const ref = membersOf(db, scheduleId).doc(bucketOf(id));
    let w = byPath.get(ref.path);
    if (!w) {
      w = { ref, add: [], remove: [] };
      byPath.set(ref.path, w);
    }
    return w;
  };
  for (const c of changes) {
    if (c.from === c.to) {
      // Re-adding is harmless and repairs an index entry that went missing.
      if (c.to) entry(c.to, c.id).add.push(c.id);
      continue;
    }
    if (c.from) entry(c.from, c.id).remove.push(c.id);
    if (c.to) entry(c.to, c.id).add.push(c.id);
  }
  return [...byPath.values()];
}

/** The merge-set data of one bucket write: present ids are true, dropped ids are deleted. */
export function bucketData(w: BucketWrite): { ids: Record<string, unknown> } {
  const ids: Record<string, unknown> = {};
  for (const id of w.remove) ids[id] = FieldValue.delete();
  for (const id of w.add) ids[id] = true;
  return { ids };
}

/** Writes the index changes in the transaction that writes the notifications they describe. */
export function writeIndexChanges(tx: Transaction, db: Firestore, changes: Iterable<MemberChange>): void {
  for (const w of bucketWrites(db, changes)) tx.set(w.ref, bucketData(w), { merge: true });
}

/** The index entry a notification document calls for: its schedule while enabled, else none. */
export function indexedSchedule(doc: { scheduleId?: unknown; enabled?: unknown } | undefined | null): string | null {
  if (doc?.enabled !== true || typeof doc.scheduleId !== 'string' || !doc.scheduleId) return null;
  return doc.scheduleId;
}
