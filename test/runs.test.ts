import type { Firestore } from '@google-cloud/firestore';
import { uniqueProjectId } from '../dev/stack';
import { type DispatchPublisher, runTick } from '../dispatcher/tick';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { createLogger } from '../shared/logger';
import type { DispatchMessage } from '../shared/messages';
import { runIdOf } from '../shared/model';
import { saveNotifications } from '../shared/notifications';
import { scheduleIdOf } from '../shared/schedule';
import { COLLECTIONS } from '../shared/topology';
import { notification } from './helpers';

/** A schedule's run state on the Firestore emulator when ticks overlap (shared/schedule-state.ts). */

const everyMinute = { cron: '* * * * *', timezone: 'UTC' };
const id = scheduleIdOf(everyMinute);
const t = (hhmmss: string) => new Date(`2026-12-07T${hhmmss}.000Z`);
const log = createLogger({ service: 'runs-test', level: 'silent' });

let db: Firestore;
let store: FirestoreStore;
beforeAll(() => {
  db = createFirestore(uniqueProjectId('runs'));
  store = new FirestoreStore(db);
});
afterAll(async () => {
  await db.terminate();
});

/** Records what it publishes; refuses its `failAt`-th page. */
function publisher(failAt?: number): DispatchPublisher & { messages: DispatchMessage[] } {
  let calls = 0;
  const messages: DispatchMessage[] = [];
  return {
    messages,
    async publishPage(page) {
      if (++calls === failAt) throw new Error('Pub/Sub refused the page');
      messages.push(...page.map((m) => m.message));
    },
  };
}

const tickDeps = (p: DispatchPublisher, now: Date) => ({
  runs: store,
  publisher: p,
  log,
  pageSize: 2,
  leaseSeconds: 60,
  catchUpWindowSeconds: 900,
  clock: () => now,
});

async function schedule() {
  const data = (await db.collection(COLLECTIONS.schedules).doc(id).get()).data() ?? {};
  return { activeOccurrence: data.activeOccurrence ?? null, nextRunAt: data.nextRunAt?.toDate().toISOString() };
}

test('a retried tick alongside the next one: the half-sent run keeps its mark, and a later tick finishes it', async () => {
  // Ids that fall in different index buckets, so that the run takes more than one page.
  const ids = Array.from({ length: 8 }, (_, i) => `run-${i}`);
  await saveNotifications(
    db,
    ids.map((n, i) => notification(i, { id: n, ...everyMinute })),
    { now: t('09:59:30') },
  );
  expect(await schedule()).toMatchObject({ nextRunAt: '2026-12-07T10:00:00.000Z' });

  // Cloud Scheduler's retry of the 10:00 tick read the schedule before the 10:01 tick claimed it.
  const stale = await store.dueSchedules(t('10:01:15'), 10);
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const late = publisher(2);
  const lateFirstPage = late.publishPage.bind(late);
  let pages = 0;
  late.publishPage = async (page) => {
    if (++pages === 1) await held;
    return lateFirstPage(page);
  };
  const first = runTick(t('10:01:00'), tickDeps(late, t('10:01:15')));
  for (let i = 0; i < 100 && pages === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await schedule()).toMatchObject({ activeOccurrence: '2026-12-07T10:01:00.000Z' });

  jest.spyOn(store, 'dueSchedules').mockResolvedValueOnce(stale);
  const retry = publisher();
  const b = await runTick(t('10:00:00'), tickDeps(retry, t('10:01:15')));
  expect(b.occurrences[0]).toMatchObject({ status: 'superseded', occurrence: '2026-12-07T10:00:00.000Z' });
  expect(retry.messages).toEqual([]);
  expect(await schedule()).toMatchObject({ activeOccurrence: '2026-12-07T10:01:00.000Z' });

  release();
  const a = await first;
  expect(a.occurrences[0]).toMatchObject({ status: 'failed', occurrence: '2026-12-07T10:01:00.000Z' });
  expect(await schedule()).toMatchObject({ activeOccurrence: '2026-12-07T10:01:00.000Z' });

  const rest = publisher();
  const next = await runTick(t('10:02:00'), tickDeps(rest, t('10:02:01')));
  expect(next.occurrences[0]).toMatchObject({ status: 'resumed', occurrence: '2026-12-07T10:01:00.000Z' });
  const sent = new Set(
    [...late.messages, ...rest.messages]
      .filter((m) => m.occurrence === '2026-12-07T10:01:00.000Z')
      .map((m) => m.notificationId),
  );
  expect(sent).toEqual(new Set(ids));
  const run = await store.getRun(runIdOf(id, '2026-12-07T10:01:00.000Z'));
  expect(run?.status).toBe('done');
  expect(await schedule()).toEqual({ activeOccurrence: null, nextRunAt: '2026-12-07T10:02:00.000Z' });
});
