import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  type DocumentReference,
  FieldPath,
  FieldValue,
  type Firestore,
  type QueryDocumentSnapshot,
} from '@google-cloud/firestore';
import { mapLimit } from './concurrency';
import type { NotificationPage } from './ports';
import { BUCKET_FIELDS, COLLECTIONS } from './topology';

/**
 * The dispatch index: which notifications a schedule sends to. Each schedule keeps its enabled
 * notifications' ids in `schedules/{scheduleId}/members/{bucket}` documents, as the elements of
 * a `list` array, a notification in the bucket its id hashes to. A tick reads a schedule's whole
 * audience in at most MEMBER_BUCKETS document reads, instead of one read per notification.
 * Buckets written before kept their ids as the keys of an `ids` map (set to true); a read still
 * takes those too, a removal drops an id from both, and `slack-fanout reindex` folds the map into
 * the array (tidyBuckets).
 *
 * The index is written in the same transaction as the notification it describes (see
 * shared/notifications.ts and FirestoreStore.recordPermanentFailure), so no change this system
 * makes leaves the two disagreeing. A change made outside it (a document deleted or edited in
 * the console) can leave an entry behind: the notifier, after a message that did not post, takes
 * such an entry out (FirestoreStore.leaveIndex). The notifier still reads the notification
 * itself before it posts, and skips a paused one.
 */

/**
 * Buckets per schedule. A bucket document holds at most 1 MiB (Firestore's limit), about 20,000
 * ids of 50 bytes, so one schedule holds up to about 2.5 million notifications with ids of up to
 * 50 bytes (about 1 MiB ÷ (id bytes + 1) a bucket past that); a schedule with n notifications
 * has min(n, MEMBER_BUCKETS) bucket documents. Few buckets keep a tick cheap: the Firestore
 * client spends about 0.2 ms of CPU on each document a query streams, whatever its size, so at
 * 100,000 notifications on 4 schedules 1,024 buckets a schedule cost the dispatcher 29 µs of CPU
 * a message and 128 cost 23.5 (docs/PERFORMANCE.md, item 13). Index writes never read a bucket
 * (array union and remove), so concurrent imports do not contend on them.
 */
export const MEMBER_BUCKETS = 128;

/**
 * A read of a schedule's index expected to bring more ids than this is a large one: a tick lets
 * only a few runs make large reads at once (DISPATCH_LARGE_RUNS), so that many schedules at once
 * (DISPATCH_SCHEDULE_CONCURRENCY) do not mean many large indexes in memory at once.
 */
export const LARGE_READ_IDS = 10_000;

/**
 * Whether `id` is a bucket document id of today's layout, as bucketOf() makes them (`m0000` to
 * `m0127`). The older layout's buckets (`b0000` to `b1023`, 1,024 a schedule) are still read by a
 * tick until `slack-fanout reindex` moves their ids and deletes them (tidyBuckets). They
 * sort before today's, and a run's cursor is only ever one of today's: a run checkpointed at an
 * older bucket starts over, so a reindex moving ids between buckets cannot put one behind it
 * unsent, and a run past the older buckets has already sent every id they held.
 */
export function isBucketId(id: string): boolean {
  return /^m\d{4}$/.test(id) && Number(id.slice(1)) < MEMBER_BUCKETS;
}

/** A bucket document id of the older layout, which tidyBuckets deletes. */
function isOlderBucketId(id: string): boolean {
  return /^b\d{4}$/.test(id);
}

/** The bucket document id of a notification: stable, evenly spread, sortable. */
export function bucketOf(notificationId: string): string {
  const h = createHash('sha1').update(notificationId).digest().readUInt32BE(0);
  return `m${String(h % MEMBER_BUCKETS).padStart(4, '0')}`;
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

/** The array a bucket document keeps its ids in. */
const BUCKET_LIST = BUCKET_FIELDS.list;
/**
 * The map buckets written before kept their ids in, as keys set to true. Still read; a removal
 * deletes from it too; reindex folds it into the array and deletes it (tidyBuckets).
 */
const BUCKET_MAP = BUCKET_FIELDS.map;

/**
 * The merge-set data of one bucket write, in order: the removals first, then the additions. A
 * field takes one transform a write, so a bucket that gains and loses ids takes two writes.
 * Neither reads the bucket. Each also deletes its ids from an older bucket's map, so an id added
 * to the list moves there rather than being held twice: a bucket near Firestore's 1 MiB limit
 * as a map would otherwise outgrow it when its ids are written again (an import, a reindex).
 */
export function bucketData(w: BucketWrite): Record<string, unknown>[] {
  const fromMap = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, FieldValue.delete()]));
  const writes: Record<string, unknown>[] = [];
  if (w.remove.length > 0) {
    writes.push({ [BUCKET_LIST]: FieldValue.arrayRemove(...w.remove), [BUCKET_MAP]: fromMap(w.remove) });
  }
  if (w.add.length > 0) {
    writes.push({ [BUCKET_LIST]: FieldValue.arrayUnion(...w.add), [BUCKET_MAP]: fromMap(w.add) });
  }
  return writes;
}

/**
 * Writes the index changes: in the transaction that writes the notifications they describe, or
 * (bench/seed.ts) through a BulkWriter beside them.
 */
export function writeIndexChanges(
  writer: { set(ref: DocumentReference, data: Record<string, unknown>, options: { merge: true }): unknown },
  db: Firestore,
  changes: Iterable<MemberChange>,
): void {
  for (const w of bucketWrites(db, changes))
    for (const data of bucketData(w)) void writer.set(w.ref, data, { merge: true });
}

/**
 * The ids a bucket document lists: its array's, then any of an older bucket's map (keys set to
 * true) not in the array. Anything else a hand edit left there is passed over.
 */
export function bucketIds(snap: { get(field: string): unknown }): string[] {
  const list = snap.get(BUCKET_LIST);
  const ids = Array.isArray(list) ? list.filter((id): id is string => typeof id === 'string' && id !== '') : [];
  const map = snap.get(BUCKET_MAP);
  if (map !== null && typeof map === 'object' && !Array.isArray(map)) {
    const listed = new Set(ids);
    for (const [id, v] of Object.entries(map)) if (v === true && !listed.has(id)) ids.push(id);
  }
  return ids;
}

/** The schedule a notification document is on, paused or not; null when it names none. */
export function scheduleOf(doc: { scheduleId?: unknown } | undefined | null): string | null {
  return typeof doc?.scheduleId === 'string' && doc.scheduleId ? doc.scheduleId : null;
}

/** The index entry a notification document calls for: its schedule while enabled, else none. */
export function indexedSchedule(doc: { scheduleId?: unknown; enabled?: unknown } | undefined | null): string | null {
  return doc?.enabled === true ? scheduleOf(doc) : null;
}

/**
 * Tidies every schedule's buckets once every enabled notification has been added to its bucket
 * of today's layout (reindexNotifications does that first), in one pass over each schedule's
 * buckets, a bucket at a time (a schedule's buckets together can hold millions of ids), 16
 * schedules at once (TIDY_PARALLEL: 16 buckets of up to 1 MiB each in memory, and what their
 * streams read ahead):
 * - deletes each bucket of the older layout (`b0000` to `b1023`, written by a version with
 *   1,024 buckets a schedule): it then holds nothing a tick needs, and no write touches it;
 * - rewrites each bucket of today's layout that is not a plain list of ids as one: its `ids`
 *   map folded into its `list` array and deleted, and a repeated id, or a value that is not an
 *   id (a hand edit; `arrayUnion` writes neither), dropped. Each in a transaction of its own, so
 *   a write meanwhile is neither lost nor undone. A tick reads either shape; a bucket of one
 *   array costs the client and the emulator about half the CPU to read (docs/PERFORMANCE.md,
 *   item 22), and a repeated id would be published twice.
 * Returns how many buckets it deleted and rewrote.
 */
export async function tidyBuckets(
  db: Firestore,
  opts: {
    /** The schedules whose buckets have been read. */
    onProgress?: (done: number, total: number) => void;
    /** Then, where there is any to do, the older layout's buckets deleted and the buckets rewritten. */
    onRewrites?: (done: number, total: number) => void;
  } = {},
): Promise<{ deleted: number; rewritten: number }> {
  // listDocuments includes schedule ids that have members but no document of their own.
  const schedules = await db.collection(COLLECTIONS.schedules).listDocuments();
  const writer = db.bulkWriter();
  const deletes: Promise<unknown>[] = [];
  const unplain: DocumentReference[] = [];
  let done = 0;
  opts.onProgress?.(0, schedules.length);
  // Several schedules at once: one after another, a few thousand schedules took minutes.
  await mapLimit(schedules, TIDY_PARALLEL, async (schedule) => {
    const stream = membersOf(db, schedule.id).orderBy(FieldPath.documentId()).stream() as Readable;
    for await (const doc of stream as AsyncIterable<QueryDocumentSnapshot>) {
      if (isOlderBucketId(doc.id)) deletes.push(writer.delete(doc.ref));
      else if (isBucketId(doc.id) && !isPlainList(doc)) unplain.push(doc.ref);
    }
    done += 1;
    opts.onProgress?.(done, schedules.length);
  });
  let rewrites = 0;
  if (deletes.length + unplain.length > 0) opts.onRewrites?.(0, unplain.length);
  await writer.close();
  // A delete that failed for good fails the whole: the next reindex tries again.
  await Promise.all(deletes);
  const rewritten = await mapLimit(unplain, REWRITE_PARALLEL, async (ref) => {
    const made = await db.runTransaction(async (tx) => {
      const snap = await tx.get(ref);
      if (!snap.exists || isPlainList(snap)) return 0;
      tx.update(ref, { [BUCKET_LIST]: [...new Set(bucketIds(snap))], [BUCKET_MAP]: FieldValue.delete() });
      return 1;
    });
    rewrites += 1;
    opts.onRewrites?.(rewrites, unplain.length);
    return made;
  });
  return { deleted: deletes.length, rewritten: rewritten.reduce((a: number, b) => a + b, 0) };
}

/** Whether a bucket is a plain list: no map, and a list (if any) of ids, each once. */
function isPlainList(snap: { get(field: string): unknown }): boolean {
  if (snap.get(BUCKET_MAP) !== undefined) return false;
  const list = snap.get(BUCKET_LIST);
  if (list === undefined) return true;
  if (!Array.isArray(list)) return false;
  const ids = bucketIds(snap);
  return ids.length === list.length && new Set(ids).size === ids.length;
}

/** Schedules whose buckets tidyBuckets reads at once. */
const TIDY_PARALLEL = 16;

/** Bucket rewrites in flight at once. */
const REWRITE_PARALLEL = 8;

/** One bucket of a schedule's index: its document id and its enabled notifications' ids. */
export interface IndexBucket {
  id: string;
  ids: string[];
}

/**
 * A schedule's index buckets, in order, gathered into pages of whole buckets of at most
 * `pageSize` ids (a bucket that holds more is a page alone), each page's cursor its last bucket.
 * A page of at most the size of one publish request leaves as one request; the earlier rule,
 * buckets gathered until a page held at least `pageSize`, sent a page of 1,170 ids as requests
 * of 1,000 and 170 (docs/PERFORMANCE.md, item 17).
 */
export async function* pagesOfBuckets(
  buckets: AsyncIterable<IndexBucket> | Iterable<IndexBucket>,
  pageSize: number,
): AsyncGenerator<NotificationPage> {
  let ids: string[] = [];
  let last: string | null = null;
  for await (const bucket of buckets) {
    if (last !== null && ids.length > 0 && ids.length + bucket.ids.length > pageSize) {
      yield { ids, cursor: last };
      ids = [];
    }
    for (const id of bucket.ids) ids.push(id);
    last = bucket.id;
    // Full: no bucket can join it, so it leaves now rather than when the next bucket comes.
    if (ids.length >= pageSize) {
      yield { ids, cursor: last };
      ids = [];
    }
  }
  if (ids.length > 0 && last !== null) yield { ids, cursor: last };
}
