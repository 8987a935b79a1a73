import type { DocumentReference, Firestore } from '@google-cloud/firestore';
import { uniqueProjectId } from '../dev/stack';
import { createFirestore } from '../shared/firestore';
import {
  type NewNotification,
  notificationDoc,
  SAVE_TRANSACTION_ATTEMPTS,
  SaveInterrupted,
  saveNotifications,
} from '../shared/notifications';
import { COLLECTIONS } from '../shared/topology';
import { notification } from './helpers';

/**
 * A transaction left open holds its locks until Firestore ends it: an import stopped at its
 * --stall-timeout leaves its chunks' transactions so, and one run again at once meets them.
 * The save waits them out instead of failing on the client's five attempts (about 18 s).
 */

const HELD_MS = 25_000;

let projectId: string;
let db: Firestore;
let holder: Firestore;

beforeAll(() => {
  projectId = uniqueProjectId('import-locks');
  db = createFirestore(projectId);
  holder = createFirestore(projectId);
});
afterAll(async () => {
  await Promise.all([db.terminate(), holder.terminate()]);
});

/**
 * Saves `item` while another client holds a transaction open on `held` for `heldMs`, having
 * read it, and gives back how long the save took, or what it failed with.
 */
async function saveWhileHeld(
  held: DocumentReference,
  item: NewNotification,
  { heldMs = HELD_MS, lateSignal }: { heldMs?: number; lateSignal?: AbortSignal } = {},
): Promise<{ waited: number; error?: unknown }> {
  let locked!: () => void;
  const lockTaken = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holding = holder.runTransaction(
    async (tx) => {
      await tx.get(held);
      locked();
      await new Promise((resolve) => setTimeout(resolve, heldMs));
    },
    { maxAttempts: 1 },
  );
  await lockTaken;
  const started = Date.now();
  let error: unknown;
  await saveNotifications(db, [item], lateSignal ? { lateSignal } : {}).catch((err: unknown) => {
    error = err;
  });
  const waited = Date.now() - started;
  await holding;
  return { waited, ...(error === undefined ? {} : { error }) };
}

/** The channel a notification has in Firestore. */
async function channelOf(id: string): Promise<unknown> {
  return (await db.collection(COLLECTIONS.notifications).doc(id).get()).get('slack.channelId');
}

test('a save of notifications another transaction holds locks on waits until they are let go, then saves', async () => {
  expect(SAVE_TRANSACTION_ATTEMPTS).toBeGreaterThan(5);
  const first = notification(1);
  await saveNotifications(db, [first]);
  // Another client reads the notification in a transaction and holds it open.
  const { waited, error } = await saveWhileHeld(holder.collection(COLLECTIONS.notifications).doc(first.id), {
    ...first,
    channelId: 'C999999999',
  });
  // It waited for the lock (longer than five attempts take), and its write landed.
  expect(error).toBeUndefined();
  expect(waited).toBeGreaterThan(HELD_MS - 2_000);
  expect(await channelOf(first.id)).toBe('C999999999');
}, 120_000);

test('a save whose schedule document another transaction holds locks on waits until they are let go, then saves', async () => {
  // A schedule of its own, not yet made.
  const first = { ...notification(2), cron: '17 3 * * *', timezone: 'Asia/Tokyo' };
  const ref = holder.collection(COLLECTIONS.schedules).doc(notificationDoc(first).scheduleId);
  expect((await ref.get()).exists).toBe(false);
  // Another client reads the schedule in a transaction and holds it open, as an import stopped
  // while it made its schedules leaves it: the save's create waits for its lock.
  const { waited, error } = await saveWhileHeld(ref, { ...first, channelId: 'C888888888' });
  expect(error).toBeUndefined();
  expect(waited).toBeGreaterThan(HELD_MS - 2_000);
  expect(await channelOf(first.id)).toBe('C888888888');
}, 120_000);

test('a save whose late signal is aborted while it waits for a lock begins no further attempt: it does not land after', async () => {
  const first = notification(3);
  await saveNotifications(db, [first]);
  const late = new AbortController();
  setTimeout(() => late.abort(), 1_000);
  const { error } = await saveWhileHeld(
    holder.collection(COLLECTIONS.notifications).doc(first.id),
    { ...first, channelId: 'C777777777' },
    { heldMs: 6_000, lateSignal: late.signal },
  );
  expect(error).toBeInstanceOf(SaveInterrupted);
  // The lock is let go: the write it would have made is not made.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(await channelOf(first.id)).toBe(first.channelId);
}, 60_000);

test("a save whose late signal is aborted while it waits for its schedule's lock makes neither the schedule nor the notification", async () => {
  const first = { ...notification(4), cron: '43 5 * * *', timezone: 'America/Lima' };
  const ref = holder.collection(COLLECTIONS.schedules).doc(notificationDoc(first).scheduleId);
  expect((await ref.get()).exists).toBe(false);
  const late = new AbortController();
  setTimeout(() => late.abort(), 1_000);
  const { error } = await saveWhileHeld(ref, first, { heldMs: 6_000, lateSignal: late.signal });
  expect(error).toBeInstanceOf(SaveInterrupted);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect((await ref.get()).exists).toBe(false);
  expect((await db.collection(COLLECTIONS.notifications).doc(first.id).get()).exists).toBe(false);
}, 60_000);

test('a save stopped before its schedules are made makes none, and says nothing was saved', async () => {
  const items = [5, 6, 7].map((i) => ({ ...notification(i), cron: `${i} 4 * * *`, timezone: 'Europe/Oslo' }));
  const stop = new AbortController();
  stop.abort();
  const error = await saveNotifications(db, items, { signal: stop.signal }).catch((err: unknown) => err);
  expect(error).toBeInstanceOf(SaveInterrupted);
  expect((error as Error).message).toBe(
    'interrupted: saved 0 of 3 notifications, while making their schedules (saving them again is safe)',
  );
  for (const item of items) {
    const ref = db.collection(COLLECTIONS.schedules).doc(notificationDoc(item).scheduleId);
    expect((await ref.get()).exists).toBe(false);
  }
});

test('a save that began before another made the notification lands with it updated no earlier than made', async () => {
  const item = notification(9_001);
  const made = new Date('2026-12-06T10:00:00.200Z');
  await saveNotifications(db, [item], { now: made });
  // The later commit of a save whose time was taken first (its request came in first).
  await saveNotifications(db, [{ ...item, channelId: 'C0LATER' }], { now: new Date(made.getTime() - 150) });
  const snap = await db.collection(COLLECTIONS.notifications).doc(item.id).get();
  expect(snap.get('slack.channelId')).toBe('C0LATER');
  expect(snap.get('createdAt').toDate()).toEqual(made);
  expect(snap.get('updatedAt').toDate()).toEqual(made);
});
