import type { DocumentReference, Firestore } from '@google-cloud/firestore';
import { uniqueProjectId } from '../dev/stack';
import { createFirestore } from '../shared/firestore';
import {
  type NewNotification,
  notificationDoc,
  SAVE_TRANSACTION_ATTEMPTS,
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
 * Saves `item` while another client holds a transaction open on `held` for HELD_MS, having
 * read it, and gives back how long the save took; then checks that its write landed.
 */
async function saveWhileHeld(held: DocumentReference, item: NewNotification): Promise<number> {
  let locked!: () => void;
  const lockTaken = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holding = holder.runTransaction(
    async (tx) => {
      await tx.get(held);
      locked();
      await new Promise((resolve) => setTimeout(resolve, HELD_MS));
    },
    { maxAttempts: 1 },
  );
  await lockTaken;
  const started = Date.now();
  await saveNotifications(db, [item]);
  const waited = Date.now() - started;
  await holding;
  const saved = await db.collection(COLLECTIONS.notifications).doc(item.id).get();
  expect(saved.get('slack.channelId')).toBe(item.channelId);
  return waited;
}

test('a save of notifications another transaction holds locks on waits until they are let go, then saves', async () => {
  expect(SAVE_TRANSACTION_ATTEMPTS).toBeGreaterThan(5);
  const first = notification(1);
  await saveNotifications(db, [first]);
  // Another client reads the notification in a transaction and holds it open.
  const waited = await saveWhileHeld(holder.collection(COLLECTIONS.notifications).doc(first.id), {
    ...first,
    channelId: 'C999999999',
  });
  // It waited for the lock (longer than five attempts take), and its write landed.
  expect(waited).toBeGreaterThan(HELD_MS - 2_000);
}, 120_000);

test('a save whose schedule document another transaction holds locks on waits until they are let go, then saves', async () => {
  // A schedule of its own, not yet made.
  const first = { ...notification(2), cron: '17 3 * * *', timezone: 'Asia/Tokyo' };
  const ref = holder.collection(COLLECTIONS.schedules).doc(notificationDoc(first).scheduleId);
  expect((await ref.get()).exists).toBe(false);
  // Another client reads the schedule in a transaction and holds it open, as an import stopped
  // while it made its schedules leaves it: the save's create waits for its lock.
  const waited = await saveWhileHeld(ref, { ...first, channelId: 'C888888888' });
  expect(waited).toBeGreaterThan(HELD_MS - 2_000);
}, 120_000);
