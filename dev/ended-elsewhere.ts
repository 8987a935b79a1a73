import type { Firestore } from '@google-cloud/firestore';
import { deliveryIdOf, endsDelivery } from '../shared/model';
import { COLLECTIONS } from '../shared/topology';

/** The largest schedule the local runner looks through for deliveries of a run that ended under another. */
export const ENDED_ELSEWHERE_MAX = 1_000;

/**
 * Deliveries a run published that ended under another run, and so are not on its record: a
 * notification moved to the run's schedule after it was sent in the same minute under its old
 * one (its message acked, the ledger keeping it to one post). Looked for among the schedule's
 * notifications as they are now, for a schedule of at most `max` of them (0 for a larger one).
 */
export async function endedElsewhere(
  db: Firestore,
  runId: string,
  run: { scheduleId: string; occurrence: string },
  max = ENDED_ELSEWHERE_MAX,
): Promise<number> {
  const members = await db
    .collection(COLLECTIONS.notifications)
    .where('scheduleId', '==', run.scheduleId)
    .select()
    .limit(max + 1)
    .get();
  if (members.empty || members.size > max) return 0;
  const deliveries = await db.getAll(
    ...members.docs.map((n) => db.collection(COLLECTIONS.deliveries).doc(deliveryIdOf(n.id, run.occurrence))),
  );
  // Ended as a push that claims it finds it (endsDelivery): a record that speaks only of another
  // message is not an end, and the run's own message claims that delivery and records it there.
  return deliveries.filter((d) => {
    const data = d.data();
    return data !== undefined && data.runId !== runId && endsDelivery(data);
  }).length;
}
