import type { Firestore } from '@google-cloud/firestore';
import { endedElsewhere } from '../dev/ended-elsewhere';
import { uniqueProjectId } from '../dev/stack';
import { createFirestore } from '../shared/firestore';
import { deliveryIdOf, runIdOf } from '../shared/model';
import { COLLECTIONS } from '../shared/topology';

/** npm start's count of a run's deliveries that ended under another run (a notification moved after it was sent). */
let db: Firestore;
beforeAll(() => {
  db = createFirestore(uniqueProjectId('elsewhere'));
});
afterAll(async () => {
  await db.terminate();
});

const OCCURRENCE = '2030-01-01T09:00:00.000Z';

async function member(id: string, scheduleId: string): Promise<void> {
  await db.collection(COLLECTIONS.notifications).doc(id).set({ scheduleId });
}

async function delivery(notificationId: string, runId: string, status: string): Promise<void> {
  await db
    .collection(COLLECTIONS.deliveries)
    .doc(deliveryIdOf(notificationId, OCCURRENCE))
    .set({ notificationId, occurrence: OCCURRENCE, runId, status });
}

test('counts the schedule’s deliveries of the occurrence that ended under another run, and only those', async () => {
  const run = { scheduleId: 's_new', occurrence: OCCURRENCE };
  const runId = runIdOf(run.scheduleId, OCCURRENCE);
  await member('moved-sent', 's_new');
  await member('moved-failed', 's_new');
  await member('moved-in-flight', 's_new');
  await member('own', 's_new');
  await member('never-sent', 's_new');
  await member('other-schedule', 's_other');
  await delivery('moved-sent', 's_old:x', 'sent');
  await delivery('moved-failed', 's_old:x', 'failed');
  // Not final yet: it is still on its way, under its own run.
  await delivery('moved-in-flight', 's_old:x', 'retrying');
  // Its own delivery is on its own record, counted there.
  await delivery('own', runId, 'sent');
  // Another schedule's notification is not this run's.
  await delivery('other-schedule', 's_old:x', 'sent');
  expect(await endedElsewhere(db, runId, run)).toBe(2);
  // A schedule larger than the bound is not looked through.
  expect(await endedElsewhere(db, runId, run, 4)).toBe(0);
  expect(
    await endedElsewhere(db, runIdOf('s_none', OCCURRENCE), { scheduleId: 's_none', occurrence: OCCURRENCE }),
  ).toBe(0);
});
