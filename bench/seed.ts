import type { Firestore } from '@google-cloud/firestore';
import { demoAccounts } from '../dev/demo';
import { chunksOf } from '../shared/concurrency';
import { indexedSchedule, writeIndexChanges } from '../shared/members';
import { type NewNotification, notificationDoc, saveAccounts } from '../shared/notifications';
import { latestOccurrence } from '../shared/schedule';
import { COLLECTIONS } from '../shared/topology';

/**
 * Benchmark data: N notifications spread over a few schedules, each schedule due now. The
 * documents are the ones `saveNotifications` writes (`notificationDoc` and the dispatch
 * index of shared/members.ts) into an empty database, written with a
 * BulkWriter whose ramp-up throttle is off: its default starts at 500 writes/s and grows
 * 50% every 5 minutes, which would make seeding, not dispatch, the slow part.
 */

/** Every minute in a few time zones: always an occurrence inside the catch-up window. */
export const BENCH_SCHEDULES = [
  { cron: '* * * * *', timezone: 'Europe/Paris' },
  { cron: '* * * * *', timezone: 'America/New_York' },
  { cron: '* * * * *', timezone: 'Asia/Tokyo' },
  { cron: '* * * * *', timezone: 'UTC' },
] as const;

export function benchNotifications(count: number, accounts: number, prefix = 'n'): NewNotification[] {
  return Array.from({ length: count }, (_, i) => {
    const s = BENCH_SCHEDULES[i % BENCH_SCHEDULES.length] as (typeof BENCH_SCHEDULES)[number];
    return {
      id: `${prefix}-${String(i + 1).padStart(7, '0')}`,
      accountId: `acct-${String((i % accounts) + 1).padStart(4, '0')}`,
      channelId: `C${String(i + 1).padStart(9, '0')}`,
      cron: s.cron,
      timezone: s.timezone,
    };
  });
}

/** Notifications a schedule of the many-schedules tick holds (spreadNotifications). */
export const SPREAD_PER_SCHEDULE = 10;

/** Every-minute crons written differently: each is a schedule of its own in every time zone. */
const SPREAD_CRONS = ['* * * * *', '*/1 * * * *', '0-59 * * * *', '0-59/1 * * * *'] as const;

/** The time zones the spread schedules use: the runtime's own list, in its order. */
function spreadZones(): string[] {
  return Intl.supportedValuesOf('timeZone');
}

/** How many distinct every-minute schedules spreadNotifications can make. */
export function maxSpreadSchedules(): number {
  return SPREAD_CRONS.length * spreadZones().length;
}

/**
 * `schedules` distinct schedules, each due every minute (one cron text in one time zone), of
 * `perSchedule` notifications each: the shape of many tenants that each pick their own zone and
 * time, where the BENCH_SCHEDULES shape is a few large audiences.
 */
export function spreadNotifications(schedules: number, perSchedule: number, prefix = 's'): NewNotification[] {
  const zones = spreadZones();
  if (!Number.isInteger(schedules) || schedules < 1 || schedules > maxSpreadSchedules()) {
    throw new RangeError(`schedules must be a whole number from 1 to ${maxSpreadSchedules()}, got ${schedules}`);
  }
  const out: NewNotification[] = [];
  for (let s = 0; s < schedules; s++) {
    const cron = SPREAD_CRONS[Math.floor(s / zones.length)] as string;
    const timezone = zones[s % zones.length] as string;
    for (let k = 0; k < perSchedule; k++) {
      const i = s * perSchedule + k;
      out.push({
        id: `${prefix}-${String(i + 1).padStart(7, '0')}`,
        accountId: `acct-${String((i % 100) + 1).padStart(4, '0')}`,
        channelId: `C${String(i + 1).padStart(9, '0')}`,
        cron,
        timezone,
      });
    }
  }
  return out;
}

/** Writes the notifications and their schedules (due at `now`), and `accounts` demo accounts. */
export async function seed(
  db: Firestore,
  items: NewNotification[],
  accounts: number,
  now: Date,
  onProgress?: (written: number) => void,
): Promise<void> {
  if (accounts > 0) await saveAccounts(db, demoAccounts(accounts));
  const docs = items.map((n) => ({ id: n.id, doc: notificationDoc(n) }));
  const schedules = new Map<string, { cron: string; timezone: string }>();
  for (const { doc } of docs) schedules.set(doc.scheduleId, doc.schedule);
  await resetSchedules(db, schedules, now);

  const writer = db.bulkWriter({ throttling: false });
  let written = 0;
  // Slices bound how many batches are on the wire at once (unthrottled, all would be).
  for (const slice of chunksOf(docs, 5000)) {
    for (const { id, doc } of slice) {
      void writer
        .set(db.collection(COLLECTIONS.notifications).doc(id), { ...doc, createdAt: now, updatedAt: now })
        .then(() => {
          written++;
        });
    }
    await writer.flush();
    onProgress?.(written);
  }
  // The dispatch index, as saveNotifications writes it: one write per bucket, every id in it.
  const changes = docs.map(({ id, doc }) => ({ id, from: null, to: indexedSchedule(doc) }));
  writeIndexChanges(writer, db, changes);
  await writer.close();
  if (written !== docs.length) throw new Error(`seeded ${written} of ${docs.length} notifications`);
}

/**
 * Makes every schedule due at `at` again and forgets earlier runs, so the same seeded data can
 * be dispatched once per benchmark run.
 */
export async function resetSchedules(
  db: Firestore,
  schedules: Map<string, { cron: string; timezone: string }>,
  at: Date,
): Promise<void> {
  const runs = await db.collection(COLLECTIONS.runs).select().get();
  const writer = db.bulkWriter({ throttling: false });
  for (const d of runs.docs) void writer.delete(d.ref);
  for (const [id, s] of schedules) {
    const nextRunAt = latestOccurrence(s, at) ?? at;
    void writer.set(db.collection(COLLECTIONS.schedules).doc(id), {
      ...s,
      nextRunAt,
      activeOccurrence: null,
      skippedOccurrences: 0,
      createdAt: at,
    });
  }
  await writer.close();
}

export function schedulesOf(items: NewNotification[]): Map<string, { cron: string; timezone: string }> {
  const out = new Map<string, { cron: string; timezone: string }>();
  for (const n of items) {
    const doc = notificationDoc(n);
    out.set(doc.scheduleId, doc.schedule);
  }
  return out;
}
