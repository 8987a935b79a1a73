import type { Firestore } from '@google-cloud/firestore';
import { uniqueProjectId } from '../dev/stack';
import { type DispatchPublisher, runTick } from '../dispatcher/tick';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { createLogger } from '../shared/logger';
import { bucketOf } from '../shared/members';
import type { DispatchMessage } from '../shared/messages';
import { runIdOf } from '../shared/model';
import { deleteNotification, saveNotifications, setNotificationEnabled } from '../shared/notifications';
import { scheduleIdOf } from '../shared/schedule';
import { COLLECTIONS } from '../shared/topology';
import { emulatorTickDeps, notification } from './helpers';

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

const tickDeps = (p: DispatchPublisher, now: Date) => emulatorTickDeps(store, p, now, log);

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
  // Made 30 s after its instant of 09:59, within NEW_SCHEDULE_GRACE_MS: due at it.
  expect(await schedule()).toMatchObject({ nextRunAt: '2026-12-07T09:59:00.000Z' });

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
  // And then 10:02 itself, in the same tick.
  expect(next.occurrences[1]).toMatchObject({ status: 'dispatched', occurrence: '2026-12-07T10:02:00.000Z' });
  const sent = new Set(
    [...late.messages, ...rest.messages]
      .filter((m) => m.occurrence === '2026-12-07T10:01:00.000Z')
      .map((m) => m.notificationId),
  );
  expect(sent).toEqual(new Set(ids));
  const run = await store.getRun(runIdOf(id, '2026-12-07T10:01:00.000Z'));
  expect(run?.status).toBe('done');
  expect(await schedule()).toEqual({ activeOccurrence: null, nextRunAt: '2026-12-07T10:03:00.000Z' });
});

test('a notification moved between two schedules due at the same instant, mid-tick, is published once, by the index as the tick found it', async () => {
  // 08:00 UTC is 09:00 in Paris and 08:00 in London: both schedules are due at that instant.
  const at = new Date('2026-12-07T08:00:00.000Z');
  const paris = { cron: '0 9 * * *', timezone: 'Europe/Paris' };
  const london = { cron: '0 8 * * *', timezone: 'Europe/London' };
  // The tick reads the schedules in id order, one at a time: `first` is read before `second`.
  const [first, second] = [paris, london].sort((a, b) => scheduleIdOf(a).localeCompare(scheduleIdOf(b)));
  const entry = (id: string, s: { cron: string; timezone: string }) => ({
    ...notification(0, { id, ...s }),
  });
  await saveNotifications(db, [entry('mover', second as typeof paris), entry('stay', first as typeof paris)], {
    now: new Date(at.getTime() - 3_600_000),
  });
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const messages: DispatchMessage[] = [];
  let calls = 0;
  const pub: DispatchPublisher = {
    async publishPage(page) {
      if (++calls === 1) await held;
      messages.push(...page.map((m) => m.message));
    },
  };
  const tick = runTick(at, { ...tickDeps(pub, new Date(at.getTime() + 1000)), scheduleConcurrency: 1 });
  for (let i = 0; i < 200 && calls === 0; i++) await new Promise((r) => setTimeout(r, 25));
  expect(calls).toBe(1);
  // While the first schedule's run publishes (its index read), the notification moves to it
  // from the second, whose index the tick has not read yet.
  await saveNotifications(db, [entry('mover', first as typeof paris)], { now: new Date(at.getTime() + 2000) });
  release();
  const summary = await tick;
  expect(summary.occurrences.map((o) => o.status)).toEqual(['dispatched', 'dispatched']);
  // Read as it was when the tick found the schedules due: in the second schedule's index.
  expect(messages.filter((m) => m.notificationId === 'mover')).toEqual([
    expect.objectContaining({ scheduleId: scheduleIdOf(second as typeof paris), occurrence: at.toISOString() }),
  ]);
  expect(messages.filter((m) => m.notificationId === 'stay')).toHaveLength(1);
});

test('the index read at a past time is the index as it was then, and as it is once that time is too old to keep', async () => {
  const hourly = { cron: '0 * * * *', timezone: 'Asia/Tokyo' };
  const before = (await db.collection(COLLECTIONS.schedules).limit(1).get()).readTime.toDate();
  await saveNotifications(db, [notification(0, { id: 'late-1', ...hourly })]);
  const ids = async (readAt: Date | null) => {
    const out: string[] = [];
    for await (const page of store.notificationPages(scheduleIdOf(hourly), null, 10, readAt)) out.push(...page.ids);
    return out;
  };
  expect(await ids(before)).toEqual([]);
  expect(await ids(null)).toEqual(['late-1']);
  // Past what Firestore keeps (an hour): read as it is.
  expect(await ids(new Date(Date.now() - 2 * 3_600_000))).toEqual(['late-1']);
});

/** Saves `ids` on `schedule` and gives a time Firestore read them at, for reads of the index at a past time. */
async function savedAt(schedule: { cron: string; timezone: string }, ids: string[]): Promise<Date> {
  await saveNotifications(
    db,
    ids.map((n, i) => notification(i, { id: n, ...schedule })),
  );
  return (await db.collection(COLLECTIONS.schedules).limit(1).get()).readTime.toDate();
}

test('a read at a past time that grows older than Firestore keeps, mid-read, reads the rest as it is', async () => {
  const weekly = { cron: '0 6 * * 1', timezone: 'UTC' };
  const id = scheduleIdOf(weekly);
  const ids = Array.from({ length: 200 }, (_, i) => `aged-${i}`);
  const readAt = await savedAt(weekly, ids);
  // Added after the read time, in a bucket the first reads do not reach.
  const late = Array.from({ length: 500 }, (_, i) => `late-${i}`).find((n) => bucketOf(n) >= 'm0100') as string;
  await saveNotifications(db, [notification(0, { id: late, ...weekly })]);
  const read = async (store: FirestoreStore, pauseMs: number) => {
    const out: string[] = [];
    let first = true;
    // One bucket a read after the first: many reads, so the read time can age in between.
    for await (const page of store.notificationPages(id, null, 1, readAt)) {
      out.push(...page.ids);
      if (first) await new Promise((r) => setTimeout(r, pauseMs));
      first = false;
    }
    return out;
  };
  const kept = await read(new FirestoreStore(db, { indexIdsPerRead: 1 }), 0);
  expect(kept.sort()).toEqual([...ids].sort());
  const aging = new FirestoreStore(db, { indexIdsPerRead: 1, indexVersionAgeMs: Date.now() - readAt.getTime() + 1000 });
  const aged = await read(aging, 1500);
  expect(aged.sort()).toEqual([...ids, late].sort());
});

test('a read of the index expected to be large waits for beforeLargeRead; a small schedule’s reads never ask', async () => {
  const daily = { cron: '0 7 * * *', timezone: 'America/Chicago' };
  const id = scheduleIdOf(daily);
  const ids = Array.from({ length: 60 }, (_, i) => `big-${i}`);
  const readAt = await savedAt(daily, ids);
  const firstRead = new Set(
    [...new Set(ids.map(bucketOf))]
      .sort()
      .slice(0, 8)
      .flatMap((b) => ids.filter((n) => bucketOf(n) === b)),
  );
  // 60 ids in about 50 buckets: after the first read of 8 buckets, the rest is expected to
  // hold over 20 ids, a large read for a bound of 20, a small one for a bound of 1,000.
  let asked = 0;
  let open: () => void = () => undefined;
  const gate = () => {
    asked++;
    return new Promise<void>((r) => {
      open = r;
    });
  };
  const bounded = new FirestoreStore(db, { largeReadIds: 20 });
  const out: string[] = [];
  const reading = (async () => {
    // A bucket a page: the first read's buckets come through while the next read waits.
    for await (const page of bounded.notificationPages(id, null, 1, readAt, gate)) out.push(...page.ids);
  })();
  await new Promise((r) => setTimeout(r, 300));
  expect(asked).toBe(1);
  expect(new Set(out)).toEqual(firstRead);
  open();
  await reading;
  expect(out.sort()).toEqual([...ids].sort());

  let askedSmall = 0;
  const small = new FirestoreStore(db, { largeReadIds: 1000 });
  const all: string[] = [];
  for await (const page of small.notificationPages(id, null, 1000, readAt, async () => {
    askedSmall++;
  }))
    all.push(...page.ids);
  expect(askedSmall).toBe(0);
  expect(all.sort()).toEqual([...ids].sort());
});

test('the due schedules a page at a time, by nextRunAt then id, ties included, each page after the last, whatever was written by hand', async () => {
  const pagedDb = createFirestore(uniqueProjectId('runs-due'));
  try {
    const paged = new FirestoreStore(pagedDb);
    // Five due at 08:00 (a tie the id breaks), two due earlier, one not due yet.
    const at = new Date('2026-12-07T08:00:00.000Z');
    const due = [
      ['s_b', '2026-12-07T08:00:00.000Z'],
      ['s_a', '2026-12-07T08:00:00.000Z'],
      ['s_e', '2026-12-07T08:00:00.000Z'],
      ['s_c', '2026-12-07T08:00:00.000Z'],
      ['s_d', '2026-12-07T08:00:00.000Z'],
      ['s_z', '2026-12-07T07:00:00.000Z'],
      ['s_y', '2026-12-07T07:30:00.000Z'],
      ['s_later', '2026-12-07T08:01:00.000Z'],
    ] as const;
    for (const [sid, next] of due) {
      await pagedDb
        .collection(COLLECTIONS.schedules)
        .doc(sid)
        .set({ ...everyMinute, nextRunAt: new Date(next) });
    }
    const seen: string[][] = [];
    let after: { nextRunAt: Date; id: string } | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await paged.dueSchedules(at, 3, after);
      seen.push(page.map((s) => s.id));
      const last = page.at(-1);
      if (page.length < 3 || !last) break;
      after = { nextRunAt: last.nextRunAt, id: last.id };
    }
    expect(seen).toEqual([['s_z', 's_y', 's_a'], ['s_b', 's_c', 's_d'], ['s_e']]);
    // A cron and zone written by hand with blanks around them are read without.
    await pagedDb
      .collection(COLLECTIONS.schedules)
      .doc('s_a')
      .set({ cron: ` ${everyMinute.cron} `, timezone: ` ${everyMinute.timezone} `, nextRunAt: new Date(due[1][1]) });
    const padded = (await paged.dueSchedules(at, 10)).find((s) => s.id === 's_a');
    expect([padded?.cron, padded?.timezone]).toEqual([everyMinute.cron, everyMinute.timezone]);
    // A cron and zone written by hand as maps whose toString is not a function (String() throws
    // on them) are read as their JSON, a cron that cannot be read, and the page with them.
    await pagedDb
      .collection(COLLECTIONS.schedules)
      .doc('s_b')
      .set({ cron: { toString: 'x' }, timezone: { valueOf: 1 }, nextRunAt: new Date(due[1][1]) });
    const page = await paged.dueSchedules(at, 10);
    expect(page.find((s) => s.id === 's_b')).toMatchObject({ cron: '{"toString":"x"}', timezone: '{"valueOf":1}' });
    expect(page.map((s) => s.id)).toContain('s_a');
  } finally {
    await pagedDb.terminate();
  }
});

test('a notification moved, just after an instant, to a schedule not made yet that falls due then too is sent at that instant', async () => {
  const moveDb = createFirestore(uniqueProjectId('runs-move-new'));
  try {
    const moveStore = new FirestoreStore(moveDb);
    const at = new Date('2026-11-30T13:24:00.000Z');
    const everyTwo = { cron: '*/2 * * * *', timezone: 'UTC' };
    // The same instants under another spelling: another schedule, not made until the move.
    const sameInstants = { cron: '0-59/2 * * * *', timezone: 'UTC' };
    await saveNotifications(moveDb, [notification(0, { id: 'n-mv', ...everyTwo })], {
      now: new Date(at.getTime() - 30_000),
    });
    // 1.4 s after 13:24, before the tick of 13:24 comes.
    await saveNotifications(moveDb, [notification(0, { id: 'n-mv', ...sameInstants })], {
      now: new Date(at.getTime() + 1_400),
    });
    const made = await moveDb.collection(COLLECTIONS.schedules).doc(scheduleIdOf(sameInstants)).get();
    expect(made.get('nextRunAt').toDate()).toEqual(at);
    const p = publisher();
    const summary = await runTick(at, { ...tickDeps(p, new Date(at.getTime() + 3_000)), runs: moveStore });
    expect(p.messages.map((m) => [m.notificationId, m.occurrence, m.scheduleId])).toEqual([
      ['n-mv', at.toISOString(), scheduleIdOf(sameInstants)],
    ]);
    expect(summary.dueSchedules).toBe(2);
  } finally {
    await moveDb.terminate();
  }
});

/** A project of its own, one notification on `schedule`, and its run at `at` claimed by owner-1. */
async function withClaimedRun(
  name: string,
  schedule: { cron: string; timezone: string },
  at: Date,
  fn: (c: { db: Firestore; store: FirestoreStore; sid: string; run: string }) => Promise<void>,
): Promise<void> {
  const runDb = createFirestore(uniqueProjectId(name));
  try {
    const runStore = new FirestoreStore(runDb);
    const sid = scheduleIdOf(schedule);
    await saveNotifications(runDb, [notification(0, { id: `${name}-1`, ...schedule })], {
      now: new Date(at.getTime() - 60_000),
    });
    expect((await runStore.claimRun(sid, at.toISOString(), 'owner-1', 60_000, at, null)).kind).toBe('acquired');
    await fn({ db: runDb, store: runStore, sid, run: runIdOf(sid, at.toISOString()) });
  } finally {
    await runDb.terminate();
  }
}

test('a schedule document deleted while its run goes on is not made again, half, by the run’s end', async () => {
  const at = new Date('2026-12-07T10:00:00.000Z');
  await withClaimedRun(
    'runs-gone',
    { cron: '0 * * * *', timezone: 'UTC' },
    at,
    async ({ db: goneDb, store: goneStore, sid, run }) => {
      await goneDb.collection(COLLECTIONS.schedules).doc(sid).delete();
      await goneStore.finishRun(run, 'owner-1', sid, new Date('2026-12-07T11:00:00.000Z'), 0, at);
      expect((await goneDb.collection(COLLECTIONS.schedules).doc(sid).get()).exists).toBe(false);
      expect((await goneStore.getRun(run))?.status).toBe('done');
      // Nor does a claim make it again: the run is refused, naming why.
      const again = await goneStore.claimRun(sid, '2026-12-07T11:00:00.000Z', 'owner-2', 60_000, at, null);
      expect(again).toEqual({ kind: 'superseded', reason: expect.stringMatching(/the schedule document is gone/) });
      expect((await goneDb.collection(COLLECTIONS.schedules).doc(sid).get()).exists).toBe(false);
    },
  );
});

test('a run’s end records its last pages with it, once, and not for an owner that lost the lease', async () => {
  const at = new Date('2026-12-07T10:00:00.000Z');
  await withClaimedRun(
    'runs-end',
    { cron: '0 * * * *', timezone: 'UTC' },
    at,
    async ({ db: endDb, store: endStore, sid, run }) => {
      await endStore.checkpoint(run, 'owner-1', { cursor: 'm0003', published: 5, pages: 1 }, 60_000, at);
      const next = new Date('2026-12-07T11:00:00.000Z');
      const last = { cursor: 'm0007', published: 2, pages: 1 };
      await expect(endStore.finishRun(run, 'thief', sid, next, 0, at, last)).rejects.toThrow(/leased by owner-1/);
      expect(await endStore.getRun(run)).toMatchObject({ status: 'running', cursor: 'm0003', published: 5, pages: 1 });
      await endStore.finishRun(run, 'owner-1', sid, next, 0, at, last);
      expect(await endStore.getRun(run)).toMatchObject({ status: 'done', cursor: 'm0007', published: 7, pages: 2 });
      const scheduleDoc = (await endDb.collection(COLLECTIONS.schedules).doc(sid).get()).data();
      expect(scheduleDoc?.nextRunAt.toDate()).toEqual(next);
      expect(scheduleDoc?.activeOccurrence).toBeNull();
    },
  );
});

test('a checkpoint or a run’s end applied again (its transaction run again after its commit landed) does not count its pages twice', async () => {
  const at = new Date('2026-12-07T12:00:00.000Z');
  await withClaimedRun('runs-again', { cron: '0 * * * *', timezone: 'UTC' }, at, async ({ store: s, sid, run }) => {
    const first = { cursor: 'm0003', published: 5, pages: 1 };
    await s.checkpoint(run, 'owner-1', first, 60_000, at);
    // The client's retry of a transaction whose commit's answer was lost reads the run as it
    // committed, and makes the same checkpoint of it again.
    await s.checkpoint(run, 'owner-1', first, 60_000, at);
    expect(await s.getRun(run)).toMatchObject({ cursor: 'm0003', published: 5, pages: 1 });
    await s.checkpoint(run, 'owner-1', { cursor: 'm0005', published: 3, pages: 1 }, 60_000, at);
    expect(await s.getRun(run)).toMatchObject({ cursor: 'm0005', published: 8, pages: 2 });
    // The end's last pages, already checkpointed: counted once, on the run and on its schedule.
    await s.finishRun(run, 'owner-1', sid, new Date('2026-12-07T13:00:00.000Z'), 0, at, {
      cursor: 'm0005',
      published: 3,
      pages: 1,
    });
    expect(await s.getRun(run)).toMatchObject({ status: 'done', cursor: 'm0005', published: 8, pages: 2 });
  });
});

test('a half-sent run whose cursor, counts and lease were written by hand as maps and strings is resumed from its start, and finishes', async () => {
  const at = new Date('2026-12-07T14:00:00.000Z');
  await withClaimedRun(
    'runs-hand',
    { cron: '0 * * * *', timezone: 'UTC' },
    at,
    async ({ db: handDb, store: s, run }) => {
      // Maps whose toString holds no function: String() and Number() throw on them.
      await handDb
        .collection(COLLECTIONS.runs)
        .doc(run)
        .update({
          cursor: { toString: 'x' },
          resumes: { toString: 'x' },
          published: { valueOf: 'x' },
          pages: 'many',
          leaseOwner: { toString: 'x' },
          leaseExpiresAt: 'soon',
        });
      const p = publisher();
      const summary = await runTick(at, emulatorTickDeps(s, p, new Date(at.getTime() + 5_000), log));
      expect(summary.occurrences).toMatchObject([{ status: 'resumed', published: 1 }]);
      expect(p.messages.map((m) => m.notificationId)).toEqual(['runs-hand-1']);
      expect(await s.getRun(run)).toMatchObject({ status: 'done', published: 1, resumes: 1 });
    },
  );
});

test('a run’s lease is renewed alone by its owner, and not for another', async () => {
  const at = new Date('2026-12-07T08:00:00.000Z');
  await withClaimedRun('runs-lease', { cron: '0 8 * * *', timezone: 'UTC' }, at, async ({ store: leaseStore, run }) => {
    const later = new Date(at.getTime() + 50_000);
    await leaseStore.renewLease(run, 'owner-1', 60_000, later);
    expect((await leaseStore.getRun(run))?.leaseExpiresAt).toEqual(new Date(later.getTime() + 60_000));
    await expect(leaseStore.renewLease(run, 'thief', 60_000, later)).rejects.toThrow(/leased by owner-1/);
    expect(await leaseStore.getRun(run)).toMatchObject({ leaseOwner: 'owner-1', published: 0, status: 'running' });
  });
});

test('a schedule whose notifications are all paused or deleted writes one empty run, then none, and runs again once one is resumed', async () => {
  // A project of its own: the ticks here see no other test's schedules.
  const own = createFirestore(uniqueProjectId('runs-empty'));
  const ownStore = new FirestoreStore(own);
  try {
    const tokyo = { cron: '* * * * *', timezone: 'Asia/Tokyo' };
    const sid = scheduleIdOf(tokyo);
    // Five, in pages of 2: the run's end adds its last page to what its checkpoints counted.
    const others = Array.from({ length: 3 }, (_, i) => notification(2 + i, { id: `empty-${2 + i}`, ...tokyo }));
    await saveNotifications(
      own,
      [notification(0, { id: 'empty-0', ...tokyo }), notification(1, { id: 'empty-1', ...tokyo }), ...others],
      { now: t('10:59:30') },
    );
    const tickAt = async (at: Date) => {
      const p = publisher();
      const summary = await runTick(at, emulatorTickDeps(ownStore, p, new Date(at.getTime() + 5_000), log));
      return { occurrence: summary.occurrences[0], messages: p.messages };
    };
    const stored = async () => (await own.collection(COLLECTIONS.schedules).doc(sid).get()).data() ?? {};
    const run = async (at: Date) =>
      (await own.collection(COLLECTIONS.runs).doc(runIdOf(sid, at.toISOString())).get()).exists;

    expect((await tickAt(t('10:59:00'))).occurrence).toMatchObject({ status: 'dispatched', published: 5 });
    const firstRun = await own
      .collection(COLLECTIONS.runs)
      .doc(runIdOf(sid, t('10:59:00').toISOString()))
      .get();
    expect(firstRun.get('pages')).toBeGreaterThan(1);
    expect((await stored()).lastRunPublished).toBe(5);

    await setNotificationEnabled(own, 'empty-0', false, 'test');
    await deleteNotification(own, 'empty-1');
    for (const n of others) await deleteNotification(own, n.id);
    expect((await tickAt(t('11:00:00'))).occurrence).toMatchObject({ status: 'dispatched', published: 0 });
    expect(await run(t('11:00:00'))).toBe(true);
    expect((await stored()).lastRunPublished).toBe(0);

    for (const at of [t('11:01:00'), t('11:02:00')]) {
      expect((await tickAt(at)).occurrence).toMatchObject({ status: 'no-notifications', runId: null });
      expect(await run(at)).toBe(false);
      const s = await stored();
      expect(s.nextRunAt.toDate().getTime()).toBe(at.getTime() + 60_000);
      expect(s.activeOccurrence).toBeNull();
    }

    await setNotificationEnabled(own, 'empty-0', true);
    const resumed = await tickAt(t('11:03:00'));
    expect(resumed.occurrence).toMatchObject({ status: 'dispatched', published: 1 });
    expect(resumed.messages.map((m) => m.notificationId)).toEqual(['empty-0']);
    expect(await run(t('11:03:00'))).toBe(true);
    expect((await stored()).lastRunPublished).toBe(1);
  } finally {
    await own.terminate();
  }
});

test('after a run that published nothing, an index grown large is read by its run, which waits for a slot, not by the look that comes first', async () => {
  const own = createFirestore(uniqueProjectId('runs-empty-large'));
  // Few ids make a read large here: the first read (8 buckets) brings more than enough to say so.
  const bounded = new FirestoreStore(own, { largeReadIds: 20 });
  try {
    const oslo = { cron: '* * * * *', timezone: 'Europe/Oslo' };
    const sid = scheduleIdOf(oslo);
    await saveNotifications(own, [notification(0, { id: 'grown-first', ...oslo })], { now: t('11:59:30') });
    await setNotificationEnabled(own, 'grown-first', false, 'test');
    const at = (hhmm: string) => t(`${hhmm}:00`);
    const tickAt = async (when: Date) => {
      const p = publisher();
      const deps = emulatorTickDeps(bounded, p, new Date(when.getTime() + 5_000), log);
      const summary = await runTick(when, { ...deps, pageSize: 500 });
      return { occurrence: summary.occurrences[0], messages: p.messages };
    };
    expect((await tickAt(at('11:59'))).occurrence).toMatchObject({ status: 'dispatched', published: 0 });
    // 600 notifications join it: about 5 a bucket, 37 in the first read of 8 buckets.
    const ids = Array.from({ length: 600 }, (_, i) => `grown-${i}`);
    await saveNotifications(
      own,
      ids.map((n, i) => notification(i, { id: n, ...oslo })),
      { now: t('12:00:10') },
    );
    const asks: number[] = [];
    const pagesOf = bounded.notificationPages.bind(bounded);
    const spy = jest.spyOn(bounded, 'notificationPages').mockImplementation((...args) => {
      const [scheduleId, cursor, pageSize, readAt, before] = args;
      const call = asks.push(0) - 1;
      const counted = before
        ? async () => {
            asks[call] = (asks[call] ?? 0) + 1;
            await before();
          }
        : undefined;
      return pagesOf(scheduleId, cursor, pageSize, readAt, counted);
    });
    const grown = await tickAt(at('12:01'));
    spy.mockRestore();
    expect(grown.occurrence).toMatchObject({ status: 'dispatched', published: 600 });
    expect(grown.messages.map((m) => m.notificationId).sort()).toEqual([...ids].sort());
    // The look first (asked once, for the read it then leaves undone), then the run, which asked.
    expect(asks).toHaveLength(2);
    expect(asks[0]).toBe(1);
    expect(asks[1]).toBeGreaterThan(0);
    expect((await own.collection(COLLECTIONS.schedules).doc(sid).get()).get('lastRunPublished')).toBe(600);
  } finally {
    await own.terminate();
  }
});

test('a notification moved in an outage to a schedule made then that fires at the instant its old schedule still owes is sent it, once; to another time, or after that instant was sent, it is not', async () => {
  const utc = { cron: '33 18 * * *', timezone: 'UTC' };
  // The same instant in December: a change of zone that changes nothing about when it goes out.
  const london = { cron: '33 18 * * *', timezone: 'Europe/London' };
  const lisbon = { cron: '33 18 * * *', timezone: 'Europe/Lisbon' };
  const dublin = { cron: '33 18 * * *', timezone: 'Europe/Dublin' };
  // Another time: its first instant after the owed one is past too, but sending it could make
  // a second post that day (a tick under way may still send the owed one from the old schedule).
  const later = { cron: '34 18 * * *', timezone: 'Europe/London' };
  // Written another way: the same instants.
  const respelled = { cron: '33 18 * * 0-6', timezone: 'UTC' };
  const nextRunAt = async (s: { cron: string; timezone: string }) =>
    ((await db.collection(COLLECTIONS.schedules).doc(scheduleIdOf(s)).get()).get('nextRunAt') as { toDate(): Date })
      .toDate()
      .toISOString();
  const ids = ['owed-stay', 'owed-move', 'owed-later', 'owed-resumed'];
  await saveNotifications(
    db,
    ids.map((n, i) => notification(i, { id: n, ...utc, enabled: n !== 'owed-resumed' })),
    { now: t('10:00:00') },
  );
  expect(await nextRunAt(utc)).toBe('2026-12-07T18:33:00.000Z');
  // No tick since 18:31 (an outage); at 18:35:30, past NEW_SCHEDULE_GRACE_MS, one moves to a
  // schedule this save makes, one to another time, one paused is resumed on a cron written
  // another way, and a new one is added to a schedule made now.
  await saveNotifications(
    db,
    [
      notification(1, { id: 'owed-move', ...london }),
      notification(2, { id: 'owed-later', ...later }),
      notification(3, { id: 'owed-resumed', ...respelled }),
      notification(4, { id: 'owed-new', ...dublin }),
    ],
    { now: t('18:35:30') },
  );
  // The instant the old schedule owed, not tomorrow's; nothing for another time or a new one.
  expect(await nextRunAt(london)).toBe('2026-12-07T18:33:00.000Z');
  expect(await nextRunAt(respelled)).toBe('2026-12-07T18:33:00.000Z');
  expect(await nextRunAt(later)).toBe('2026-12-08T18:34:00.000Z');
  expect(await nextRunAt(dublin)).toBe('2026-12-08T18:33:00.000Z');

  const p = publisher();
  await runTick(t('18:36:00'), tickDeps(p, t('18:36:01')));
  const sent = (n: string) => p.messages.filter((m) => m.notificationId === n).map((m) => m.occurrence);
  expect(sent('owed-stay')).toEqual(['2026-12-07T18:33:00.000Z']);
  expect(sent('owed-move')).toEqual(['2026-12-07T18:33:00.000Z']);
  expect(sent('owed-resumed')).toEqual(['2026-12-07T18:33:00.000Z']);
  expect(sent('owed-later')).toEqual([]);
  expect(sent('owed-new')).toEqual([]);
  expect(await nextRunAt(london)).toBe('2026-12-08T18:33:00.000Z');

  // Once its old schedule has sent the instant, a move owes nothing: the new schedule is due tomorrow.
  await saveNotifications(db, [notification(0, { id: 'owed-stay', ...lisbon })], { now: t('18:37:30') });
  expect(await nextRunAt(lisbon)).toBe('2026-12-08T18:33:00.000Z');
  // And a schedule a tick has reached is left as it is: moving back to UTC changes nothing there.
  await saveNotifications(db, [notification(1, { id: 'owed-move', ...utc })], { now: t('18:38:00') });
  expect(await nextRunAt(utc)).toBe('2026-12-08T18:33:00.000Z');
});

test('a notification moved off a schedule whose run is under way leaves it to that run: the schedule it moves to is not brought back', async () => {
  const from = { cron: '45 18 * * *', timezone: 'UTC' };
  const to = { cron: '45 18 * * *', timezone: 'Europe/London' };
  // Ids each in an index bucket of its own, so that the run takes more than one page.
  const byBucket = new Map(Array.from({ length: 64 }, (_, i) => `active-${i}`).map((n) => [bucketOf(n), n]));
  const ids = [...byBucket.values()].slice(0, 8);
  await saveNotifications(
    db,
    ids.map((n, i) => notification(i, { id: n, ...from })),
    { now: t('10:00:00') },
  );
  // A run of 18:45 claimed and not ended.
  // Its second page refused, whatever else the tick publishes (other tests' schedules are due too).
  let pages = 0;
  const refusing: DispatchPublisher = {
    async publishPage(page) {
      if (page.some((m) => m.message.scheduleId === scheduleIdOf(from)) && ++pages === 2) {
        throw new Error('Pub/Sub refused the page');
      }
    },
  };
  await runTick(t('18:45:00'), tickDeps(refusing, t('18:45:01')));
  const fromDoc = await db.collection(COLLECTIONS.schedules).doc(scheduleIdOf(from)).get();
  expect(fromDoc.get('activeOccurrence')).toBe('2026-12-07T18:45:00.000Z');
  await saveNotifications(db, [notification(0, { id: ids[0] as string, ...to })], { now: t('18:46:30') });
  const toDoc = await db.collection(COLLECTIONS.schedules).doc(scheduleIdOf(to)).get();
  expect(toDoc.get('nextRunAt').toDate().toISOString()).toBe('2026-12-08T18:45:00.000Z');
});
