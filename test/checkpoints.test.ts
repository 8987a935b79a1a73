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
import { emulatorTickDeps, notification } from './helpers';

/** A run's checkpoints at the services' default interval, on the Firestore emulator (dispatcher/tick.ts). */

const everyMinute = { cron: '* * * * *', timezone: 'UTC' };
const scheduleId = scheduleIdOf(everyMinute);
const log = createLogger({ service: 'checkpoints-test', level: 'silent' });

let db: Firestore;
let store: FirestoreStore;
beforeAll(() => {
  db = createFirestore(uniqueProjectId('checkpoints'));
  store = new FirestoreStore(db);
});
afterAll(async () => {
  await db.terminate();
});

test('at 1 s between checkpoints, a run that fails mid-way has checkpointed every page Pub/Sub accepted, and the next tick publishes only the rest', async () => {
  const n = 60;
  const at = new Date('2026-12-07T10:00:00.000Z');
  await saveNotifications(
    db,
    Array.from({ length: n }, (_, i) => notification(i, { id: `cp-${i}`, ...everyMinute })),
    { now: new Date(at.getTime() - 3_600_000) },
  );
  // Pages of 2 that take 60 ms each to be accepted: the run lasts well over a second.
  const published: DispatchMessage[] = [];
  let pages = 0;
  const slow = (failAt?: number): DispatchPublisher => ({
    async publishPage(page) {
      await new Promise((r) => setTimeout(r, 60));
      if (++pages === failAt) throw new Error('Pub/Sub refused the page');
      published.push(...page.map((m) => m.message));
    },
  });
  const deps = (publisher: DispatchPublisher, now: Date) => ({
    ...emulatorTickDeps(store, publisher, now, log),
    checkpointIntervalMs: 1000,
  });
  const checkpoint = jest.spyOn(store, 'checkpoint');

  const started = Date.now();
  const first = await runTick(at, deps(slow(25), new Date(at.getTime() + 5_000)));
  const elapsed = Date.now() - started;
  expect(first.occurrences[0]).toMatchObject({ status: 'failed' });
  const accepted = published.length;
  expect(accepted).toBeGreaterThan(20);
  // The first page's checkpoint at once, then at most one a second, and the rest when the run
  // failed: over about 24 pages of about 1.5 s (longer on a loaded machine), a handful of writes.
  const writes = checkpoint.mock.calls.length;
  expect(writes).toBeGreaterThanOrEqual(2);
  expect(writes).toBeLessThanOrEqual(Math.floor(elapsed / 1000) + 2);
  expect(writes).toBeLessThan(24 / 2);
  const runId = runIdOf(scheduleId, at.toISOString());
  expect(await store.getRun(runId)).toMatchObject({ status: 'running', published: accepted, leaseOwner: null });

  const second = await runTick(new Date(at.getTime() + 60_000), deps(slow(), new Date(at.getTime() + 61_000)));
  expect(second.occurrences[0]).toMatchObject({ status: 'resumed', published: n - accepted });
  // Every notification once: the checkpoint covered every page Pub/Sub had accepted.
  const ids = published.filter((m) => m.runId === runId).map((m) => m.notificationId);
  expect(ids).toHaveLength(n);
  expect(new Set(ids).size).toBe(n);
  expect(await store.getRun(runId)).toMatchObject({ status: 'done', published: n });
}, 60_000);
