import { createLogger } from '../shared/logger';
import { MemoryStore } from '../shared/memory-store';
import type { DispatchMessage } from '../shared/messages';
import { deliveryIdOf, runIdOf } from '../shared/model';
import { nextOccurrence, scheduleIdOf } from '../shared/schedule';
import { type DispatchPublisher, runTick, type TickDeps } from './tick';

type Page = { message: DispatchMessage; attributes: Record<string, string> }[];

/** Records every page; fails the pages whose (1-based) numbers are in `failPages`. */
class FakePublisher implements DispatchPublisher {
  readonly pages: Page[] = [];
  private calls = 0;
  constructor(private readonly failPages: number[] = []) {}

  async publishPage(messages: Page): Promise<void> {
    this.calls++;
    if (this.failPages.includes(this.calls)) throw new Error(`Pub/Sub unavailable (page ${this.calls})`);
    this.pages.push(messages);
  }

  get messages(): DispatchMessage[] {
    return this.pages.flat().map((p) => p.message);
  }
}

const log = createLogger({ service: 'tick-test', level: 'silent' });
const daily9 = { cron: '0 9 * * *', timezone: 'Europe/Paris' };
const scheduleId = scheduleIdOf(daily9);
// 09:00 Paris in winter.
const occurrence = new Date('2026-01-15T08:00:00.000Z');
const occ = occurrence.toISOString();
const runId = runIdOf(scheduleId, occ);

function seed(store: MemoryStore, opts: { count: number; disabled?: string[]; nextRunAt?: Date }) {
  store.putSchedule(scheduleId, { ...daily9, nextRunAt: opts.nextRunAt ?? occurrence });
  const ids: string[] = [];
  for (let i = 1; i <= opts.count; i++) {
    const id = `n${String(i).padStart(3, '0')}`;
    ids.push(id);
    store.putNotification(id, {
      accountId: `acct-${i}`,
      slack: { channelId: `C${i}` },
      schedule: daily9,
      scheduleId,
      enabled: !opts.disabled?.includes(id),
    });
  }
  // A notification of another schedule is never part of this run.
  store.putNotification('other', {
    scheduleId: 's_other',
    enabled: true,
    schedule: { cron: '0 * * * *', timezone: 'UTC' },
  });
  return ids;
}

function deps(store: MemoryStore, publisher: DispatchPublisher, over: Partial<TickDeps> = {}): TickDeps {
  return {
    runs: store,
    publisher,
    log,
    pageSize: 2,
    leaseSeconds: 60,
    catchUpWindowSeconds: 900,
    clock: () => new Date(occurrence.getTime() + 5_000),
    ...over,
  };
}

describe('runTick', () => {
  it('publishes one message per enabled notification, with its delivery id, and finishes the run', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5, disabled: ['n003'] });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));

    const enabled = ids.filter((id) => id !== 'n003');
    expect(publisher.messages.map((m) => m.notificationId)).toEqual(enabled);
    for (const { message, attributes } of publisher.pages.flat()) {
      expect(message).toEqual({ v: 1, notificationId: message.notificationId, occurrence: occ, scheduleId, runId });
      expect(attributes.deliveryId).toBe(deliveryIdOf(message.notificationId, occ));
    }
    expect(summary.dueSchedules).toBe(1);
    expect(summary.published).toBe(enabled.length);
    expect(summary.occurrences).toEqual([
      expect.objectContaining({ scheduleId, occurrence: occ, runId, status: 'dispatched', published: 4, skipped: 0 }),
    ]);

    const run = await store.getRun(runId);
    expect(run).toMatchObject({ status: 'done', published: 4, cursor: 'n005', leaseOwner: null });
    const schedule = store.schedule(scheduleId);
    expect(schedule?.nextRunAt?.toISOString()).toBe(nextOccurrence(daily9, occurrence).toISOString());
    expect(schedule?.activeOccurrence).toBeNull();
    expect(schedule?.lastRunAt?.toISOString()).toBe(occ);
  });

  it('checkpoints once per page: page size 2 and 5 notifications make 3 pages', async () => {
    const store = new MemoryStore();
    seed(store, { count: 5 });
    const publisher = new FakePublisher();
    const checkpoint = jest.spyOn(store, 'checkpoint');
    await runTick(occurrence, deps(store, publisher));

    expect(publisher.pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(checkpoint.mock.calls.map(([, , cursor, published]) => [cursor, published])).toEqual([
      ['n002', 2],
      ['n004', 2],
      ['n005', 1],
    ]);
    expect((await store.getRun(runId))?.pages).toBe(3);
  });

  it('a second tick for the same occurrence publishes nothing again', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    const publisher = new FakePublisher();
    await runTick(occurrence, deps(store, publisher));
    const again = await runTick(new Date(occurrence.getTime() + 60_000), deps(store, publisher));
    expect(again.dueSchedules).toBe(0);
    expect(publisher.messages).toHaveLength(3);
  });

  it('resumes from the checkpoint after a publisher failure mid-run', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    const failing = new FakePublisher([2]);
    const first = await runTick(occurrence, deps(store, failing));

    expect(first.failed).toBe(1);
    expect(first.occurrences[0]).toMatchObject({ status: 'failed', published: 2, runId });
    expect(first.occurrences[0]?.error).toContain('Pub/Sub unavailable');
    const halfway = await store.getRun(runId);
    expect(halfway).toMatchObject({ status: 'running', cursor: 'n002', published: 2, leaseOwner: null });
    // The schedule stays due, with its unfinished occurrence marked.
    expect(store.schedule(scheduleId)).toMatchObject({ nextRunAt: occurrence, activeOccurrence: occ });

    const publisher = new FakePublisher();
    const second = await runTick(new Date(occurrence.getTime() + 60_000), deps(store, publisher));
    expect(second.occurrences[0]).toMatchObject({ status: 'resumed', occurrence: occ, published: 3 });
    expect(second.resumed).toBe(true);
    // Only the rest, for the same occurrence.
    expect(publisher.messages.map((m) => m.notificationId)).toEqual(ids.slice(2));
    expect(publisher.messages.every((m) => m.occurrence === occ && m.runId === runId)).toBe(true);
    expect(await store.getRun(runId)).toMatchObject({ status: 'done', published: 5, resumes: 1 });
    expect(store.schedule(scheduleId)?.activeOccurrence).toBeNull();
  });

  it('after resuming an old run, a newer occurrence that fell due meanwhile still runs', async () => {
    const hourly = { cron: '0 * * * *', timezone: 'UTC' };
    const id = scheduleIdOf(hourly);
    const store = new MemoryStore();
    store.putSchedule(id, { ...hourly, nextRunAt: new Date('2026-01-15T09:00:00Z') });
    for (const n of ['a', 'b', 'c']) store.putNotification(n, { scheduleId: id, enabled: true });

    // 09:00 fails half-way; the next tick comes at 10:00:30, when 10:00 is due too.
    await runTick(new Date('2026-01-15T09:00:00Z'), deps(store, new FakePublisher([2])));
    const publisher = new FakePublisher();
    const resume = await runTick(new Date('2026-01-15T10:00:30Z'), deps(store, publisher));
    expect(resume.occurrences[0]).toMatchObject({ status: 'resumed', occurrence: '2026-01-15T09:00:00.000Z' });
    const next = await runTick(new Date('2026-01-15T10:01:00Z'), deps(store, publisher));
    expect(next.occurrences[0]).toMatchObject({ status: 'dispatched', occurrence: '2026-01-15T10:00:00.000Z' });
    expect(publisher.messages.filter((m) => m.occurrence === '2026-01-15T10:00:00.000Z')).toHaveLength(3);
    expect(store.schedule(id)?.nextRunAt?.toISOString()).toBe('2026-01-15T11:00:00.000Z');
  });

  it('leaves an occurrence leased by another dispatcher alone', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    await store.claimRun(scheduleId, occ, 'other-dispatcher', 60_000, occurrence);
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));

    expect(summary.occurrences[0]).toMatchObject({ status: 'leased-elsewhere', published: 0, runId });
    expect(publisher.pages).toHaveLength(0);
    expect((await store.getRun(runId))?.leaseOwner).toBe('other-dispatcher');
  });

  it('takes over a run whose lease expired', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    await store.claimRun(scheduleId, occ, 'dead-dispatcher', 60_000, new Date(occurrence.getTime() - 120_000));
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.occurrences[0]).toMatchObject({ status: 'resumed', published: 3 });
    expect(publisher.messages).toHaveLength(3);
  });

  it('disables a schedule whose cron cannot be parsed', async () => {
    const store = new MemoryStore();
    const bad = { cron: '61 * * * *', timezone: 'UTC' };
    store.putSchedule('s_bad', { ...bad, nextRunAt: occurrence });
    store.putNotification('n1', { scheduleId: 's_bad', enabled: true });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));

    expect(summary.occurrences[0]).toMatchObject({ scheduleId: 's_bad', status: 'invalid-schedule', runId: null });
    expect(summary.occurrences[0]?.error).toContain('61 * * * *');
    expect(publisher.pages).toHaveLength(0);
    expect(store.schedule('s_bad')?.invalidReason).toContain('61 * * * *');
    // No longer due.
    expect(await store.dueSchedules(new Date('2030-01-01T00:00:00Z'), 10)).toEqual([]);
  });

  it('disables a schedule with an unknown time zone', async () => {
    const store = new MemoryStore();
    store.putSchedule('s_tz', { cron: '0 9 * * *', timezone: 'Mars/Olympus_Mons', nextRunAt: occurrence });
    const summary = await runTick(occurrence, deps(store, new FakePublisher()));
    expect(summary.occurrences[0]).toMatchObject({ status: 'invalid-schedule' });
    expect(summary.occurrences[0]?.error).toContain('Mars/Olympus_Mons');
  });

  it('skips occurrences missed beyond the catch-up window, counting them, without publishing', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3, nextRunAt: occurrence });
    const publisher = new FakePublisher();
    // Three days later, one hour after that day's 09:00: outside a 15-minute window.
    const tick = new Date('2026-01-18T09:00:00.000Z');
    const summary = await runTick(tick, deps(store, publisher, { clock: () => tick }));

    // 15th, 16th, 17th and 18th at 09:00 Paris were all due.
    expect(summary.occurrences[0]).toMatchObject({ status: 'skipped-missed', skipped: 4, published: 0 });
    expect(publisher.pages).toHaveLength(0);
    expect(store.schedule(scheduleId)).toMatchObject({ skippedOccurrences: 4 });
    expect(store.schedule(scheduleId)?.nextRunAt?.toISOString()).toBe(nextOccurrence(daily9, tick).toISOString());
  });

  it('runs the latest missed occurrence inside the window and counts the older ones', async () => {
    const store = new MemoryStore();
    seed(store, { count: 2, nextRunAt: occurrence });
    const publisher = new FakePublisher();
    const tick = new Date('2026-01-18T08:10:00.000Z');
    const summary = await runTick(tick, deps(store, publisher, { clock: () => tick }));

    expect(summary.occurrences[0]).toMatchObject({
      status: 'dispatched',
      occurrence: '2026-01-18T08:00:00.000Z',
      skipped: 3,
      published: 2,
    });
    expect(store.schedule(scheduleId)).toMatchObject({ skippedOccurrences: 3 });
  });

  it('does nothing when no schedule is due', async () => {
    const store = new MemoryStore();
    seed(store, { count: 2, nextRunAt: new Date(occurrence.getTime() + 1) });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary).toMatchObject({ dueSchedules: 0, published: 0, occurrences: [] });
  });

  it('stops at a lost lease and reports the run failed', async () => {
    const store = new MemoryStore();
    seed(store, { count: 5 });
    const publisher = new FakePublisher();
    const real = store.checkpoint.bind(store);
    let calls = 0;
    jest.spyOn(store, 'checkpoint').mockImplementation(async (...args) => {
      calls++;
      // Another dispatcher takes the run over after the first page.
      if (calls === 2)
        await store.claimRun(scheduleId, occ, 'thief', 60_000, new Date(occurrence.getTime() + 61 * 60_000));
      return real(...args);
    });
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed' });
    expect((await store.getRun(runId))?.leaseOwner).toBe('thief');
    expect(store.schedule(scheduleId)?.activeOccurrence).toBe(occ);
  });
});
