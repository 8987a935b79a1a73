import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FieldValue, type Firestore, Timestamp } from '@google-cloud/firestore';
import { ROOT } from '../dev/processes';
import { uniqueProjectId } from '../dev/stack';
import { runTick } from '../dispatcher/tick';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { createLogger } from '../shared/logger';
import { bucketOf, MEMBER_BUCKETS, membersOf } from '../shared/members';
import { notificationDoc, saveNotifications, setNotificationEnabled } from '../shared/notifications';
import { nextOccurrence, scheduleIdOf } from '../shared/schedule';
import { COLLECTIONS } from '../shared/topology';
import { notification } from './helpers';

/** The dispatch index on the Firestore emulator: every write path keeps it equal to the notifications. */

const paris = { cron: '0 9 * * *', timezone: 'Europe/Paris' };
const tokyo = { cron: '0 9 * * *', timezone: 'Asia/Tokyo' };
const parisId = scheduleIdOf(paris);
const tokyoId = scheduleIdOf(tokyo);

let db: Firestore;
let store: FirestoreStore;

beforeAll(() => {
  db = createFirestore(uniqueProjectId('members'));
  store = new FirestoreStore(db);
});
afterAll(async () => {
  await db.terminate();
});

/** Every id a tick would dispatch for the schedule, sorted (from the suite's project, or another). */
async function indexed(scheduleId: string, from: FirestoreStore = store): Promise<string[]> {
  const ids: string[] = [];
  for await (const page of from.notificationPages(scheduleId, null, 100)) ids.push(...page.ids);
  return ids.sort();
}

/** `slack-fanout reindex` on a project, as an operator runs it. */
function reindex(projectId: string): Promise<{ stdout: string; stderr: string }> {
  const env = { ...process.env, GOOGLE_CLOUD_PROJECT: projectId };
  return promisify(execFile)(process.execPath, [join(ROOT, 'dist', 'bin', 'slack-fanout.js'), 'reindex'], { env });
}

describe('the dispatch index', () => {
  it('lists exactly the enabled notifications of each schedule, across imports, moves, pauses and resumes', async () => {
    const items = Array.from({ length: 300 }, (_, i) => notification(i + 1, paris));
    await saveNotifications(db, items);
    const all = items.map((n) => n.id).sort();
    expect(await indexed(parisId)).toEqual(all);

    // Ten move to Tokyo, five are imported again disabled: each leaves Paris in the same commit.
    const moved = items.slice(0, 10).map((n) => ({ ...n, ...tokyo }));
    const disabled = items.slice(10, 15).map((n) => ({ ...n, enabled: false }));
    await saveNotifications(db, [...moved, ...disabled]);
    const gone = new Set([...moved, ...disabled].map((n) => n.id));
    expect(await indexed(parisId)).toEqual(all.filter((id) => !gone.has(id)));
    expect(await indexed(tokyoId)).toEqual(moved.map((n) => n.id).sort());

    // Pause and resume through the operator path.
    const target = items[20]?.id as string;
    const before = Date.now();
    expect(await setNotificationEnabled(db, target, false, 'test')).toEqual({
      wasEnabled: true,
      wasPaused: false,
      pausedReason: 'test',
    });
    expect(await indexed(parisId)).not.toContain(target);
    const paused = (await db.collection('notifications').doc(target).get()).data();
    expect(paused?.pausedReason).toBe('test');
    expect(paused?.pausedAt?.toMillis()).toBeGreaterThanOrEqual(before);
    expect(await setNotificationEnabled(db, target, true)).toEqual({
      wasEnabled: false,
      wasPaused: true,
      pausedReason: null,
    });
    expect(await indexed(parisId)).toContain(target);
    // Resumed: nothing of the pause is left behind.
    const resumed = (await db.collection('notifications').doc(target).get()).data();
    expect([resumed?.enabled, resumed?.pausedReason, resumed?.pausedAt]).toEqual([true, null, null]);

    // One imported disabled was never paused: a pause gives it a reason and a time.
    const importedOff = disabled[0]?.id as string;
    const offBefore = (await db.collection('notifications').doc(importedOff).get()).data();
    expect([offBefore?.enabled, offBefore?.pausedReason ?? null, offBefore?.pausedAt ?? null]).toEqual([
      false,
      null,
      null,
    ]);
    const pausedNow = Date.now();
    expect(await setNotificationEnabled(db, importedOff, false)).toEqual({
      wasEnabled: false,
      wasPaused: false,
      pausedReason: 'paused by an operator',
    });
    const offAfter = (await db.collection('notifications').doc(importedOff).get()).data();
    expect(offAfter?.pausedReason).toBe('paused by an operator');
    expect(offAfter?.pausedAt?.toMillis()).toBeGreaterThanOrEqual(pausedNow);
    expect(await indexed(parisId)).not.toContain(importedOff);

    // The notifier's automatic pause after repeated permanent failures.
    const failing = items[21]?.id as string;
    expect(await store.recordPermanentFailure(failing, 'channel_not_found', 1, new Date())).toBe(true);
    expect(await indexed(parisId)).not.toContain(failing);

    // Saving the same notification twice keeps one entry.
    await saveNotifications(db, [items[30] as (typeof items)[number], items[30] as (typeof items)[number]]);
    const ids = await indexed(parisId);
    expect(ids.filter((id) => id === items[30]?.id)).toHaveLength(1);
  });

  it('pages whole buckets, and a cursor resumes after its bucket without losing or repeating an id', async () => {
    const schedule = { cron: '30 8 * * 1', timezone: 'UTC' };
    const id = scheduleIdOf(schedule);
    const items = Array.from({ length: 2_000 }, (_, i) => notification(10_000 + i, schedule));
    await saveNotifications(db, items);

    const buckets = await membersOf(db, id).get();
    expect(buckets.size).toBeLessThanOrEqual(MEMBER_BUCKETS);
    // 2,000 ids in the index's bucket documents, not 2,000 documents.
    expect(buckets.size).toBeLessThan(items.length);

    const pages: { ids: string[]; cursor: string }[] = [];
    for await (const page of store.notificationPages(id, null, 250)) pages.push(page);
    const seen = pages.flatMap((p) => p.ids);
    expect(seen.sort()).toEqual(items.map((n) => n.id).sort());
    for (const [i, page] of pages.entries()) {
      // At most 250 ids a page, or one bucket alone; and as full as allowed: the next page's
      // first bucket would not have fitted.
      expect(page.ids.length <= 250 || new Set(page.ids.map(bucketOf)).size === 1).toBe(true);
      const next = pages[i + 1];
      if (next) {
        const first = next.ids.map(bucketOf).sort()[0];
        expect(page.ids.length + next.ids.filter((n) => bucketOf(n) === first).length).toBeGreaterThan(250);
      }
      // A page ends at its cursor's bucket: every id in it hashes at or before the cursor.
      expect(page.ids.every((n) => bucketOf(n) <= page.cursor)).toBe(true);
    }

    // Resuming after the second page's cursor gives exactly the ids of later buckets.
    const cursor = pages[1]?.cursor as string;
    const rest: string[] = [];
    for await (const page of store.notificationPages(id, cursor, 250)) rest.push(...page.ids);
    const expected = items.map((n) => n.id).filter((n) => bucketOf(n) > cursor);
    expect(rest.sort()).toEqual(expected.sort());
    expect(rest.length + pages[0]!.ids.length + pages[1]!.ids.length).toBe(items.length);
  });

  it('slack-fanout reindex mends schedule documents that could not run as stored, and leaves sound ones alone', async () => {
    const projectId = uniqueProjectId('reindex-mend');
    const db = createFirestore(projectId);
    try {
      const kinds = {
        remade: { cron: '* * * * *', timezone: 'America/Sao_Paulo' },
        noTime: { cron: '*/6 * * * *', timezone: 'UTC' },
        stringTime: { cron: '*/5 * * * *', timezone: 'UTC' },
        disabled: { cron: '0 * * * *', timezone: 'Asia/Tokyo' },
        sound: { cron: '30 * * * *', timezone: 'UTC' },
      };
      await saveNotifications(
        db,
        Object.entries(kinds).map(([k, s], i) => notification(i, { id: `mend-${k}`, ...s })),
      );
      const ref = (k: keyof typeof kinds) => db.collection(COLLECTIONS.schedules).doc(scheduleIdOf(kinds[k]));
      const soundBefore = (await ref('sound').get()).data();
      // A run-state write that made a deleted document again; fields edited or lost by hand; a
      // schedule disabled for a time zone it has.
      // (Its nextRunAt is a time, and is kept.)
      await ref('remade').set({
        lastRunAt: new Date(),
        activeOccurrence: null,
        nextRunAt: new Date(Date.now() + 120_000),
        skippedOccurrences: 1,
      });
      await ref('noTime').update({ nextRunAt: FieldValue.delete() });
      await ref('stringTime').update({ nextRunAt: '2026-11-30T13:20:00Z' });
      await ref('disabled').update({
        nextRunAt: new Date('9999-12-31T00:00:00Z'),
        invalidReason: 'unknown time zone ""',
      });

      const before = new Date();
      const out = await reindex(projectId);
      expect(out.stdout).toContain('mended 4 schedule documents that could not run as stored');
      for (const k of ['remade', 'noTime', 'stringTime', 'disabled'] as const) {
        const d = (await ref(k).get()).data() ?? {};
        expect([k, d.cron, d.timezone, d.invalidReason]).toEqual([k, kinds[k].cron, kinds[k].timezone, undefined]);
        expect(d.nextRunAt).toBeInstanceOf(Timestamp);
        // Due at its next occurrence: never disabled, and never at an instant past, which may
        // have been sent already (it would be counted skipped).
        expect(d.nextRunAt.toDate().getTime()).toBeGreaterThan(before.getTime());
        expect(d.nextRunAt.toDate().getTime() - before.getTime()).toBeLessThan(3_700_000);
      }
      expect((await ref('sound').get()).data()).toEqual(soundBefore);
      // Again: nothing left to mend.
      expect((await reindex(projectId)).stdout).not.toContain('mended');
    } finally {
      await db.terminate();
    }
  });

  it('slack-fanout reindex adds notifications written without the index, and only the enabled ones', async () => {
    const projectId = uniqueProjectId('reindex');
    const old = createFirestore(projectId);
    try {
      const schedule = { cron: '45 6 * * *', timezone: 'America/New_York' };
      const id = scheduleIdOf(schedule);
      // Documents as a version without the index wrote them: no members at all.
      const items = Array.from({ length: 1_200 }, (_, i) =>
        notification(20_000 + i, { ...schedule, enabled: i % 10 !== 0 }),
      );
      const batch = old.bulkWriter();
      for (const n of items) void batch.set(old.collection(COLLECTIONS.notifications).doc(n.id), notificationDoc(n));
      await batch.close();
      const fresh = new FirestoreStore(old);
      const listed = () => indexed(id, fresh);
      expect(await listed()).toEqual([]);

      // Nor any schedule document: a tick would not find the schedule.
      expect((await old.collection(COLLECTIONS.schedules).doc(id).get()).exists).toBe(false);
      const before = new Date();
      const out = await reindex(projectId);
      const enabled = items.filter((n) => n.enabled).map((n) => n.id);
      expect(out.stdout).toContain(`scanned 1200 notifications; ${enabled.length} enabled ones`);
      expect(out.stdout).toContain('created 1 missing schedule document, due at their next occurrence');
      expect(await listed()).toEqual(enabled.sort());
      const created = await old.collection(COLLECTIONS.schedules).doc(id).get();
      expect(created.get('cron')).toBe(schedule.cron);
      expect(created.get('nextRunAt').toDate()).toEqual(nextOccurrence(schedule, before));
      // Again: nothing changes.
      expect((await reindex(projectId)).stdout).not.toContain('created');
      expect(await listed()).toEqual(enabled.sort());
    } finally {
      await old.terminate();
    }
  });

  it('an entry a change outside the system left (a console delete, a schedule or enabled edited by hand) is taken out by leaveIndex, and a sound one stays', async () => {
    const schedule = { cron: '15 7 * * *', timezone: 'Europe/Oslo' };
    const id = scheduleIdOf(schedule);
    // A sound one, then one deleted, one without a schedule, one not `true` enabled, one moved.
    const items = Array.from({ length: 5 }, (_, i) => notification(30_000 + i, schedule));
    const all = items.map((n) => n.id);
    await saveNotifications(db, items);
    expect(await indexed(id)).toEqual([...all].sort());
    const doc = (n: string) => db.collection(COLLECTIONS.notifications).doc(n);
    await doc(all[1] as string).delete();
    await doc(all[2] as string).update({ scheduleId: null });
    await doc(all[3] as string).update({ enabled: 'yes' });
    await doc(all[4] as string).update({ scheduleId: tokyoId });
    // Each change outside the system left its entry: every tick would publish it.
    expect(await indexed(id)).toEqual([...all].sort());
    const left = await Promise.all(all.map((n) => store.leaveIndex(n, id)));
    expect(left).toEqual([false, true, true, true, true]);
    expect(await indexed(id)).toEqual([all[0]]);
    // Again: nothing more to take out (no write: the bucket is read first), and the sound one is never taken out.
    expect(await Promise.all(all.map((n) => store.leaveIndex(n, id)))).toEqual([false, false, false, false, false]);
    expect(await indexed(id)).toEqual([all[0]]);
    // A schedule with no index at all: nothing is written, no bucket made.
    const unused = scheduleIdOf({ cron: '1 2 3 4 *', timezone: 'UTC' });
    expect(await store.leaveIndex(all[1] as string, unused)).toBe(false);
    expect((await membersOf(db, unused).get()).size).toBe(0);
  });

  it('slack-fanout reindex reads a time zone stored by hand with blanks around it as the zone', async () => {
    const projectId = uniqueProjectId('reindex-padded');
    const db = createFirestore(projectId);
    try {
      const schedule = { cron: '15 7 * * *', timezone: 'Europe/London' };
      const id = scheduleIdOf(schedule);
      const n = notification(30_000, schedule);
      await db
        .collection(COLLECTIONS.notifications)
        .doc(n.id)
        .set({ ...notificationDoc(n), schedule: { cron: schedule.cron, timezone: ' Europe/London ' } });
      const out = await reindex(projectId);
      expect(out.stdout).toContain('created 1 missing schedule document, due at their next occurrence');
      const created = await db.collection(COLLECTIONS.schedules).doc(id).get();
      expect([created.get('cron'), created.get('timezone')]).toEqual([schedule.cron, 'Europe/London']);
      expect(await indexed(id, new FirestoreStore(db))).toEqual([n.id]);
    } finally {
      await db.terminate();
    }
  });

  it('a run that stops reading early leaves no query open: the client still terminates', async () => {
    const fs = createFirestore(uniqueProjectId('members-early'));
    const schedule = { cron: '30 9 * * *', timezone: 'UTC' };
    await saveNotifications(
      fs,
      Array.from({ length: 400 }, (_, i) => notification(80_000 + i, schedule)),
    );
    const pages = new FirestoreStore(fs).notificationPages(scheduleIdOf(schedule), null, 10)[Symbol.asyncIterator]();
    expect((await pages.next()).done).toBe(false);
    await pages.return(undefined);
    const ended = await Promise.race([
      fs.terminate().then(() => 'terminated'),
      // Unref'd: once the race is decided, the timer must not hold the test's worker open.
      new Promise((resolve) => setTimeout(() => resolve('still open after 10 s'), 10_000).unref()),
    ]);
    expect(ended).toBe('terminated');
  });

  it('a run half done in the older layout when reindex moves its ids still sends every notification', async () => {
    const projectId = uniqueProjectId('relayout-run');
    const fs = createFirestore(projectId);
    try {
      const schedule = { cron: '0 9 * * *', timezone: 'UTC' };
      const id = scheduleIdOf(schedule);
      const items = Array.from({ length: 300 }, (_, i) => notification(60_000 + i, schedule));
      await saveNotifications(fs, items, { now: new Date('2026-01-01T00:00:00Z') });
      // The index as a version with 1,024 buckets a schedule left it.
      const older: Record<string, Record<string, true>> = {};
      for (const n of items) {
        const h = createHash('sha1').update(n.id).digest().readUInt32BE(0);
        const bucket = `b${String(h % 1024).padStart(4, '0')}`;
        older[bucket] = { ...older[bucket], [n.id]: true };
      }
      for (const doc of (await membersOf(fs, id).get()).docs) await doc.ref.delete();
      for (const [bucket, ids] of Object.entries(older)) await membersOf(fs, id).doc(bucket).set({ ids });

      const published: string[] = [];
      const publisher = (failOnPage: number | null) => {
        let pages = 0;
        return {
          async publishPage(page: { message: { notificationId: string } }[]) {
            if (++pages === failOnPage) throw new Error('Pub/Sub unavailable');
            published.push(...page.map((m) => m.message.notificationId));
          },
        };
      };
      const deps = (failOnPage: number | null, at: Date) => ({
        runs: new FirestoreStore(fs),
        publisher: publisher(failOnPage),
        log: createLogger({ service: 'test', level: process.env.DEBUG_TICK ? 'info' : 'silent' }),
        pageSize: 10,
        leaseSeconds: 1,
        catchUpWindowSeconds: 86_400 * 30,
        clock: () => at,
      });
      const occurrence = new Date('2026-01-01T09:00:00.000Z');
      // Pub/Sub fails on the 4th page: the run is checkpointed at an older bucket and released.
      const first = await runTick(occurrence, deps(4, occurrence));
      expect(first.occurrences[0]).toMatchObject({ status: 'failed' });
      expect(published.length).toBeGreaterThan(0);
      expect(published.length).toBeLessThan(items.length);

      expect((await reindex(projectId)).stdout).toContain('index buckets of an older layout');
      const later = new Date(occurrence.getTime() + 120_000);
      const second = await runTick(later, deps(null, later));
      expect(second.occurrences[0]).toMatchObject({ status: 'resumed', occurrence: occurrence.toISOString() });
      // Every notification published for the occurrence (repeats are the ledger's to ack).
      expect([...new Set(published)].sort()).toEqual(items.map((n) => n.id).sort());
    } finally {
      await fs.terminate();
    }
  });

  it('buckets written as a map of ids are still read and kept true, and reindex folds them into the list', async () => {
    const projectId = uniqueProjectId('fold');
    const fs = createFirestore(projectId);
    try {
      const schedule = { cron: '20 5 * * *', timezone: 'Europe/Madrid' };
      const id = scheduleIdOf(schedule);
      const items = Array.from({ length: 400 }, (_, i) => notification(50_000 + i, schedule));
      await saveNotifications(fs, items);
      const fresh = new FirestoreStore(fs);
      const listed = () => indexed(id, fresh);
      // One bucket as a version with the map wrote it: its ids as keys set to true, no list.
      const bucket = bucketOf(items[0]!.id);
      const inBucket = items.filter((n) => bucketOf(n.id) === bucket).map((n) => n.id);
      expect(inBucket.length).toBeGreaterThanOrEqual(3);
      await membersOf(fs, id)
        .doc(bucket)
        .set({ ids: { ...Object.fromEntries(inBucket.map((n) => [n, true])), 'n-hand-edit': false } });
      const expected = new Set(items.map((n) => n.id));
      expect(await listed()).toEqual([...expected].sort());

      // A pause drops the id from the map, not only from the list.
      const [paused, disabled] = inBucket as [string, string];
      expect(await setNotificationEnabled(fs, paused, false, 'test')).toEqual({
        wasEnabled: true,
        wasPaused: false,
        pausedReason: 'test',
      });
      expected.delete(paused);
      expect(await listed()).toEqual([...expected].sort());

      // One commit in which the bucket loses an id and gains another: two writes, in order.
      let n = 60_000;
      while (bucketOf(notification(n).id) !== bucket) n++;
      const added = notification(n, schedule);
      await saveNotifications(fs, [{ ...items.find((i) => i.id === disabled)!, enabled: false }, added]);
      expected.delete(disabled);
      expected.add(added.id);
      expect(await listed()).toEqual([...expected].sort());

      // Another bucket, hand-edited: an id twice, and values that are no ids. The repeat is published twice.
      const other = bucketOf(items.find((i) => bucketOf(i.id) !== bucket)!.id);
      const otherIds = [...expected].filter((i) => bucketOf(i) === other);
      await membersOf(fs, id)
        .doc(other)
        .set({ list: [...otherIds, otherIds[0], 7, ''] });
      expect((await listed()).filter((i) => i === otherIds[0])).toHaveLength(2);

      const out = await reindex(projectId);
      expect(out.stdout).toContain('rewrote 2 index buckets as a plain list of ids');
      expect([...((await membersOf(fs, id).doc(other).get()).get('list') as string[])].sort()).toEqual(
        [...otherIds].sort(),
      );
      const folded = await membersOf(fs, id).doc(bucket).get();
      expect(folded.get('ids')).toBeUndefined();
      expect([...(folded.get('list') as string[])].sort()).toEqual(
        [...expected].filter((i) => bucketOf(i) === bucket).sort(),
      );
      expect(await listed()).toEqual([...expected].sort());
      // Every bucket is a list now: nothing to fold again.
      expect((await reindex(projectId)).stdout).not.toContain('rewrote');
      expect(await listed()).toEqual([...expected].sort());
    } finally {
      await fs.terminate();
    }
  });

  it('a bucket of the older map near 1 MiB: saving its ids again moves them into the list, never holds them twice', async () => {
    const projectId = uniqueProjectId('fold-size');
    const fs = createFirestore(projectId);
    try {
      const schedule = { cron: '40 4 * * *', timezone: 'Europe/Lisbon' };
      const id = scheduleIdOf(schedule);
      // 7,000 ids of 80 bytes in one bucket: about 570 kB as a map, over 1 MiB if held twice.
      const ids: string[] = [];
      for (let i = 0; ids.length < 7_000 && i < 2_000_000; i++) {
        const candidate = `n-${String(i).padStart(10, '0')}-${'x'.repeat(67)}`;
        if (bucketOf(candidate) === 'm0000') ids.push(candidate);
      }
      expect(ids).toHaveLength(7_000);
      await membersOf(fs, id)
        .doc('m0000')
        .set({ ids: Object.fromEntries(ids.map((n) => [n, true])) });
      // Imported again, as a re-import or reindex writes them: every id added to the list.
      await saveNotifications(
        fs,
        ids.map((n, i) => notification(i, { ...schedule, id: n })),
      );
      const bucket = await membersOf(fs, id).doc('m0000').get();
      expect((bucket.get('list') as string[]).length).toBe(7_000);
      expect(Object.keys((bucket.get('ids') as Record<string, unknown> | undefined) ?? {})).toEqual([]);
      expect(await indexed(id, new FirestoreStore(fs))).toEqual([...ids].sort());
    } finally {
      await fs.terminate();
    }
  });

  it('slack-fanout reindex moves an older layout’s buckets into today’s and deletes them', async () => {
    const projectId = uniqueProjectId('relayout');
    const fs = createFirestore(projectId);
    try {
      const schedule = { cron: '15 7 * * 1', timezone: 'Europe/Berlin' };
      const id = scheduleIdOf(schedule);
      const items = Array.from({ length: 300 }, (_, i) =>
        notification(40_000 + i, { ...schedule, enabled: i % 5 !== 0 }),
      );
      await saveNotifications(fs, items);
      // What a version with 1,024 buckets a schedule left: every id, disabled ones too (they
      // were enabled when it wrote them), in its `b` buckets, which this layout no longer has.
      const stale = ['b0005', 'b0500', 'b1023'];
      for (const [k, bucket] of stale.entries()) {
        const ids = Object.fromEntries(items.filter((_, i) => i % 3 === k).map((n) => [n.id, true]));
        await membersOf(fs, id).doc(bucket).set({ ids });
      }
      const fresh = new FirestoreStore(fs);
      const listed = () => indexed(id, fresh);
      const enabled = items
        .filter((n) => n.enabled)
        .map((n) => n.id)
        .sort();
      // Read as they are, the stale buckets dispatch every id, a second time for the enabled.
      expect((await listed()).length).toBe(enabled.length + items.length);

      const out = await reindex(projectId);
      expect(out.stdout).toContain('deleted 3 index buckets of an older layout');
      expect(await listed()).toEqual(enabled);
      const left = (await membersOf(fs, id).listDocuments()).map((r) => r.id);
      expect(left.filter((b) => stale.includes(b))).toEqual([]);
      expect(left.every((b) => /^m\d{4}$/.test(b) && Number(b.slice(1)) < MEMBER_BUCKETS)).toBe(true);
      const again = await reindex(projectId);
      expect(again.stdout).not.toContain('older layout');
      expect(await listed()).toEqual(enabled);
    } finally {
      await fs.terminate();
    }
  });
});
