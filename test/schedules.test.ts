import type { DocumentReference, Firestore } from '@google-cloud/firestore';
import { Timestamp } from '@google-cloud/firestore';
import { uniqueProjectId } from '../dev/stack';
import { createFirestore } from '../shared/firestore';
import { firstDueAt, notificationDoc, saveNotifications } from '../shared/notifications';
import { nextOccurrence } from '../shared/schedule';
import { COLLECTIONS } from '../shared/topology';
import { notification } from './helpers';

/**
 * The schedule documents a save makes: read a page at a time, the missing ones made in a batch
 * of creates, the others mended in a transaction each, and the sound ones left alone.
 */

let db: Firestore;
beforeAll(() => {
  db = createFirestore(uniqueProjectId('schedules'));
});
afterAll(async () => {
  await db.terminate();
});

const now = new Date('2026-12-06T10:00:30.000Z');
/** A notification on a schedule of its own: minute i % 60 of hour i / 60, in Paris. */
const onItsOwn = (i: number) => notification(i, { cron: `${i % 60} ${Math.floor(i / 60) % 24} * * *` });
const refOf = (n: ReturnType<typeof onItsOwn>) =>
  db.collection(COLLECTIONS.schedules).doc(notificationDoc(n).scheduleId);
const nextRunAtOf = async (ref: DocumentReference) => ((await ref.get()).get('nextRunAt') as Timestamp).toDate();

test('makes the missing ones due when a save says, mends one that cannot run, and leaves a sound one as it is', async () => {
  const items = Array.from({ length: 700 }, (_, i) => onItsOwn(i));
  const [sound, broken] = items.map(refOf) as [DocumentReference, DocumentReference];
  const kept = new Date('2030-01-01T00:00:00.000Z');
  const [s0, s1] = items.map((n) => ({ cron: n.cron, timezone: n.timezone }));
  await sound.set({ ...s0, nextRunAt: Timestamp.fromDate(kept), activeOccurrence: null, skippedOccurrences: 0 });
  await broken.set({ ...s1, nextRunAt: 'not a time', invalidReason: 'by hand', activeOccurrence: null });

  await saveNotifications(db, items, { now });

  expect(await nextRunAtOf(sound)).toEqual(kept);
  const mended = (await broken.get()).data() ?? {};
  expect(mended.invalidReason).toBeUndefined();
  expect((mended.nextRunAt as Timestamp).toDate()).toEqual(
    nextOccurrence(s1 as { cron: string; timezone: string }, now),
  );
  // Every other one made, due as a save makes it (an instant just past, else its next).
  const made = await db.getAll(...items.slice(2).map(refOf));
  expect(made.every((snap) => snap.exists)).toBe(true);
  for (const [i, snap] of made.entries()) {
    const n = items[i + 2] as ReturnType<typeof onItsOwn>;
    const s = { cron: n.cron, timezone: n.timezone };
    expect({ ...snap.data(), nextRunAt: (snap.get('nextRunAt') as Timestamp).toDate() }).toEqual({
      ...s,
      nextRunAt: firstDueAt(s, now),
      activeOccurrence: null,
      skippedOccurrences: 0,
      createdAt: expect.any(Timestamp),
    });
  }
}, 60_000);

test('one made by another save between its read and its batch is left as that save made it, and the rest are made', async () => {
  const items = Array.from({ length: 20 }, (_, i) => onItsOwn(1000 + i));
  const raced = refOf(items[7] as ReturnType<typeof onItsOwn>);
  const theirs = new Date('2031-05-05T05:05:00.000Z');
  const getAll = db.getAll.bind(db);
  // The schedules are read as missing; one is made just after, before the batch commits.
  const spy = jest.spyOn(db, 'getAll').mockImplementationOnce(async (...refs) => {
    const snaps = await getAll(...refs);
    const s = items[7] as ReturnType<typeof onItsOwn>;
    await raced.set({
      cron: s.cron,
      timezone: s.timezone,
      nextRunAt: Timestamp.fromDate(theirs),
      activeOccurrence: null,
    });
    return snaps;
  });
  try {
    await saveNotifications(db, items, { now });
  } finally {
    spy.mockRestore();
  }
  expect(await nextRunAtOf(raced)).toEqual(theirs);
  const all = await db.getAll(...items.map(refOf));
  expect(all.every((snap) => snap.exists)).toBe(true);
  // And every notification saved.
  const saved = await db.getAll(...items.map((n) => db.collection(COLLECTIONS.notifications).doc(n.id)));
  expect(saved.every((snap) => snap.exists)).toBe(true);
}, 60_000);
