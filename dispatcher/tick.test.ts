import { deferred } from '../shared/concurrency';
import { createLogger } from '../shared/logger';
import { bucketOf } from '../shared/members';
import { MemoryStore } from '../shared/memory-store';
import type { DispatchMessage } from '../shared/messages';
import { deliveryIdOf, runIdOf } from '../shared/model';
import { LeaseLostError } from '../shared/ports';
import * as schedule from '../shared/schedule';
import { nextOccurrence, scheduleIdOf } from '../shared/schedule';
import { SHUTDOWN_GRACE_MS } from '../shared/service';
import { Checkpoints, type DispatchPublisher, DRAIN_WAIT_MS, runTick, type TickDeps } from './tick';

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

/** A publisher whose every publish waits for the test to answer it. */
function heldPublisher() {
  const pending: { ids: string[]; answer: (error?: Error) => void }[] = [];
  const publisher: DispatchPublisher = {
    publishPage: (page) =>
      new Promise<void>((resolve, reject) => {
        pending.push({ ids: page.map((m) => m.message.notificationId), answer: (e) => (e ? reject(e) : resolve()) });
      }),
  };
  return { publisher, pending };
}

/** Lets the tick run until `done()` holds (bounded), and fails the test if it never does. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setImmediate(r));
  expect(done()).toBe(true);
}

const log = createLogger({ service: 'tick-test', level: 'silent' });

/** The order a run publishes in: by dispatch-index bucket, then by id. */
const inDispatchOrder = (ids: string[]) =>
  [...ids].sort((a, b) => bucketOf(a).localeCompare(bucketOf(b)) || a.localeCompare(b));
const lastBucket = (ids: string[]) => bucketOf(inDispatchOrder(ids).at(-1) as string);
const daily9 = { cron: '0 9 * * *', timezone: 'Europe/Paris' };
const scheduleId = scheduleIdOf(daily9);
// 09:00 Paris in winter.
const occurrence = new Date('2026-01-15T08:00:00.000Z');
const occ = occurrence.toISOString();
const runId = runIdOf(scheduleId, occ);

/**
 * Another dispatcher ("thief", its lease taken an hour after the occurrence) takes the run over
 * just before the `at`-th checkpoint write; `calls` counts the writes.
 */
function takeOverAtCheckpoint(store: MemoryStore, at: number): { calls: number } {
  const counter = { calls: 0 };
  const real = store.checkpoint.bind(store);
  jest.spyOn(store, 'checkpoint').mockImplementation(async (...args) => {
    counter.calls++;
    if (counter.calls === at)
      await store.claimRun(scheduleId, occ, 'thief', 60_000, new Date(occurrence.getTime() + 61 * 60_000), new Date());
    return real(...args);
  });
  return counter;
}

/**
 * A run's progress as it is written: each checkpoint, then what the run's end writes with it
 * (finishRun's `progress`), if anything.
 */
function progressWrites(store: MemoryStore): { cursor: string; published: number; pages: number; by: string }[] {
  const writes: { cursor: string; published: number; pages: number; by: string }[] = [];
  const checkpoint = store.checkpoint.bind(store);
  jest.spyOn(store, 'checkpoint').mockImplementation(async (id, owner, p, leaseMs, now) => {
    writes.push({ ...p, by: 'checkpoint' });
    return checkpoint(id, owner, p, leaseMs, now);
  });
  const finish = store.finishRun.bind(store);
  jest.spyOn(store, 'finishRun').mockImplementation(async (id, owner, sid, next, skipped, now, p) => {
    if (p) writes.push({ ...p, by: 'finishRun' });
    return finish(id, owner, sid, next, skipped, now, p);
  });
  return writes;
}

/** Every-minute schedules due now, one a time zone, of `count` notifications each; their ids. */
function everyMinute(store: MemoryStore, zones: string[], count: number): string[] {
  return zones.map((timezone) => {
    const schedule = { cron: '* * * * *', timezone };
    const id = scheduleIdOf(schedule);
    store.putSchedule(id, { ...schedule, nextRunAt: occurrence });
    for (let i = 0; i < count; i++) store.putNotification(`${timezone}-${i}`, { scheduleId: id, enabled: true });
    return id;
  });
}

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

/** A tick of 6 notifications, 2 pages in flight, both held unanswered; `drain()` is the SIGTERM. */
async function twoPagesHeld() {
  const store = new MemoryStore();
  const ids = seed(store, { count: 6 });
  const { publisher, pending } = heldPublisher();
  let draining = false;
  const t0 = performance.now();
  const tick = runTick(occurrence, deps(store, publisher, { pagesInFlight: 2, isDraining: () => draining }));
  await until(() => pending.length === 2);
  return {
    store,
    ids,
    pending,
    tick,
    t0,
    drain: () => {
      draining = true;
    },
  };
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

/**
 * The run stopped after its first page (2 published): checkpointed there and released, and a
 * tick a minute later resumes it with the rest, in order.
 */
async function expectResumedAfterFirstPage(store: MemoryStore, ids: string[], over: Partial<TickDeps> = {}) {
  const order = inDispatchOrder(ids);
  expect(await store.getRun(runId)).toMatchObject({
    status: 'running',
    cursor: bucketOf(order[1] as string),
    published: 2,
    leaseOwner: null,
  });
  const rest = new FakePublisher();
  const second = await runTick(new Date(occurrence.getTime() + 60_000), deps(store, rest, over));
  expect(second.occurrences[0]).toMatchObject({ status: 'resumed', published: ids.length - 2 });
  expect(rest.messages.map((m) => m.notificationId)).toEqual(order.slice(2));
}

/**
 * A second schedule due at the tick's occurrence, besides the seeded one (any due one: the same
 * instant as 10:00 Paris is not needed), with one notification, u1.
 */
function addOtherDueSchedule(store: MemoryStore): { cron: string; timezone: string } {
  const other = { cron: '0 8 * * *', timezone: 'UTC' };
  store.putSchedule(scheduleIdOf(other), { ...other, nextRunAt: occurrence });
  store.putNotification('u1', {
    accountId: 'acct-u',
    slack: { channelId: 'CU' },
    schedule: other,
    scheduleId: scheduleIdOf(other),
    enabled: true,
  });
  return other;
}

describe('runTick', () => {
  it('takes on every due schedule, a page of them at a time: none waits for the next tick, none skips its occurrence', async () => {
    const store = new MemoryStore();
    // Seven every-minute schedules (one time zone each), one notification each, all due now.
    const zones = [
      'UTC',
      'Europe/Paris',
      'Asia/Tokyo',
      'America/New_York',
      'Europe/London',
      'Asia/Kolkata',
      'Africa/Cairo',
    ];
    const everyMinute = zones.map((timezone) => ({ cron: '* * * * *', timezone }));
    for (const [i, s] of everyMinute.entries()) {
      const id = scheduleIdOf(s);
      store.putSchedule(id, { ...s, nextRunAt: occurrence });
      store.putNotification(`m${i}`, {
        accountId: 'a',
        slack: { channelId: 'C1' },
        schedule: s,
        scheduleId: id,
        enabled: true,
      });
    }
    const publisher = new FakePublisher();
    const pagesRead: number[] = [];
    const real = store.dueSchedules.bind(store);
    jest.spyOn(store, 'dueSchedules').mockImplementation(async (...args) => {
      const page = await real(...args);
      pagesRead.push(page.length);
      return page;
    });
    const summary = await runTick(occurrence, deps(store, publisher, { duePageSize: 3 }));
    expect(pagesRead).toEqual([3, 3, 1]);
    expect(summary.dueSchedules).toBe(7);
    expect(summary.occurrences.map((o) => [o.status, o.occurrence, o.skipped])).toEqual(
      zones.map(() => ['dispatched', occ, 0]),
    );
    expect(publisher.messages.map((m) => m.notificationId).sort()).toEqual(zones.map((_, i) => `m${i}`));
    // Each schedule has moved on to its next minute; none is left due at this tick's time.
    expect(await real(occurrence, 10)).toEqual([]);
  });

  it('publishes one message per enabled notification, with its delivery id, and finishes the run', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5, disabled: ['n003'] });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));

    const enabled = ids.filter((id) => id !== 'n003');
    expect(publisher.messages.map((m) => m.notificationId)).toEqual(inDispatchOrder(enabled));
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
    expect(run).toMatchObject({ status: 'done', published: 4, cursor: lastBucket(enabled), leaseOwner: null });
    const schedule = store.schedule(scheduleId);
    expect(schedule?.nextRunAt?.toISOString()).toBe(nextOccurrence(daily9, occurrence).toISOString());
    expect(schedule?.activeOccurrence).toBeNull();
    expect(schedule?.lastRunAt?.toISOString()).toBe(occ);
  });

  it('checkpoints every published page: page size 2 and 5 notifications make 3 pages', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    // Five ids in 128 buckets, each its own bucket (checked), so pages are 2, 2 and 1.
    expect(new Set(ids.map(bucketOf)).size).toBe(5);
    const publisher = new FakePublisher();
    const progress = progressWrites(store);
    await runTick(occurrence, deps(store, publisher));

    expect(publisher.pages.map((p) => p.length)).toEqual([2, 2, 1]);
    // Writes may fold pages together, but together they cover every page once, in order.
    expect(progress.reduce((n, p) => n + p.published, 0)).toBe(5);
    expect(progress.reduce((n, p) => n + p.pages, 0)).toBe(3);
    const cursors = progress.map((p) => p.cursor);
    expect(cursors).toEqual([...cursors].sort());
    expect(cursors.at(-1)).toBe(lastBucket(ids));
    expect(await store.getRun(runId)).toMatchObject({ pages: 3, published: 5 });
  });

  it('with a checkpoint interval, a fast run of 5 pages takes 1 checkpoint write and the run’s end, which still cover every page', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 10 });
    const publisher = new FakePublisher();
    const progress = progressWrites(store);
    const summary = await runTick(occurrence, { ...deps(store, publisher), checkpointIntervalMs: 60_000 });

    expect(summary.published).toBe(10);
    expect(publisher.pages.length).toBeGreaterThanOrEqual(5);
    // The first page at once, the rest with the run's end (the interval never passed).
    expect(progress.map((p) => p.by)).toEqual(['checkpoint', 'finishRun']);
    expect(progress[0]?.pages).toBe(1);
    expect(progress.reduce((n, p) => n + p.published, 0)).toBe(10);
    expect(progress.at(-1)?.cursor).toBe(lastBucket(ids));
    expect(await store.getRun(runId)).toMatchObject({ status: 'done', pages: publisher.pages.length, published: 10 });
  });

  it('keeps publishing while a checkpoint write is slow, and folds the pages published meanwhile into the next write', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    const publisher = new FakePublisher();
    const real = store.checkpoint.bind(store);
    let release: () => void = () => undefined;
    const firstWriteHeld = new Promise<void>((resolve) => {
      release = resolve;
    });
    const calls: { published: number; pages: number; pagesPublishedBefore: number }[] = [];
    jest.spyOn(store, 'checkpoint').mockImplementation(async (id, owner, p, leaseMs, now) => {
      calls.push({ published: p.published, pages: p.pages, pagesPublishedBefore: publisher.pages.length });
      if (calls.length === 1) {
        // Held until every page is out: publishing must not wait for it.
        while (publisher.pages.length < 3) await new Promise((r) => setImmediate(r));
        release();
      }
      await firstWriteHeld;
      return real(id, owner, p, leaseMs, now);
    });
    const finish = jest.spyOn(store, 'finishRun');
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.occurrences[0]).toMatchObject({ status: 'dispatched', published: 5 });
    // The pages published meanwhile go with the run's end, once the slow write has landed.
    expect(calls).toEqual([{ published: 2, pages: 1, pagesPublishedBefore: 1 }]);
    expect(finish.mock.calls[0]?.[6]).toEqual({ cursor: lastBucket(ids), published: 3, pages: 2 });
    expect(await store.getRun(runId)).toMatchObject({
      status: 'done',
      pages: 3,
      published: 5,
      cursor: lastBucket(ids),
    });
  });

  it('writes no checkpoint for a run of one page: the run’s end records it', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 3 });
    const publisher = new FakePublisher();
    const progress = progressWrites(store);
    const summary = await runTick(occurrence, deps(store, publisher, { pageSize: 1000 }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'dispatched', published: 3 });
    expect(publisher.pages).toHaveLength(1);
    expect(progress).toEqual([{ cursor: lastBucket(ids), published: 3, pages: 1, by: 'finishRun' }]);
    expect(await store.getRun(runId)).toMatchObject({
      status: 'done',
      published: 3,
      pages: 1,
      cursor: lastBucket(ids),
    });
  });

  it('checkpoints the last pages when the run’s end fails, so that the run resumes after them', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 3 });
    const publisher = new FakePublisher();
    // The run's first end fails (Firestore out of reach); a later one goes through.
    const finish = store.finishRun.bind(store);
    let failed = false;
    store.finishRun = async (...args) => {
      if (failed) return finish(...args);
      failed = true;
      throw new Error('14 UNAVAILABLE: Firestore went away');
    };
    const progress = progressWrites(store);
    const summary = await runTick(occurrence, deps(store, publisher, { pageSize: 1000 }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed', published: 3 });
    // The end that failed carried the page; the checkpoint after it records it instead.
    const page = { cursor: lastBucket(ids), published: 3, pages: 1 };
    expect(progress).toEqual([
      { ...page, by: 'finishRun' },
      { ...page, by: 'checkpoint' },
    ]);
    const run = await store.getRun(runId);
    expect(run).toMatchObject({ cursor: lastBucket(ids), published: 3, leaseOwner: null });
    expect(run?.status).not.toBe('done');
    // The next tick resumes after the checkpoint: nothing is published twice, and the run ends.
    const again = await runTick(new Date(occurrence.getTime() + 60_000), deps(store, publisher, { pageSize: 1000 }));
    expect(again.occurrences[0]).toMatchObject({ status: 'resumed', published: 0 });
    expect(publisher.pages).toHaveLength(1);
    expect(await store.getRun(runId)).toMatchObject({ status: 'done', published: 3 });
  });

  it('publishes up to pagesInFlight pages at once and checkpoints them in page order, whatever order they land in', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    const order = inDispatchOrder(ids);
    const { publisher, pending } = heldPublisher();
    const checkpoints = progressWrites(store);
    const tick = runTick(occurrence, deps(store, publisher, { pagesInFlight: 2 }));
    // Pages 1 and 2 go out together; page 3 waits for page 1.
    await until(() => pending.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(pending).toHaveLength(2);
    // Page 2 lands first: nothing may be checkpointed until page 1 has.
    pending[1]?.answer();
    await new Promise((r) => setTimeout(r, 20));
    expect(checkpoints).toEqual([]);
    expect(pending).toHaveLength(2);
    pending[0]?.answer();
    await until(() => pending.length === 3);
    pending[2]?.answer();
    const summary = await tick;
    expect(summary.occurrences[0]).toMatchObject({ status: 'dispatched', published: 5 });
    expect(pending.map((p) => p.ids)).toEqual([order.slice(0, 2), order.slice(2, 4), order.slice(4)]);
    // The first write may cover one page or both landed pages; cursors only move forward.
    expect(checkpoints[0]?.cursor).toBe(bucketOf(order[1] as string));
    expect(checkpoints.at(-1)).toMatchObject({ cursor: lastBucket(ids) });
    expect(await store.getRun(runId)).toMatchObject({ status: 'done', published: 5, pages: 3 });
  });

  it('with pages in flight, a refused page stops the checkpoint before it, even when a later page landed', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    const order = inDispatchOrder(ids);
    const { publisher, pending } = heldPublisher();
    const tick = runTick(occurrence, deps(store, publisher, { pagesInFlight: 3 }));
    await until(() => pending.length === 3);
    pending[1]?.answer(new Error('Pub/Sub unavailable (page 2)'));
    pending[2]?.answer();
    pending[0]?.answer();
    const first = await tick;
    expect(first.occurrences[0]).toMatchObject({ status: 'failed', published: 2 });
    expect(first.occurrences[0]?.error).toContain('page 2');
    // Page 3 was accepted, but page 2 was not: the checkpoint stays after page 1.
    expect(await store.getRun(runId)).toMatchObject({ cursor: bucketOf(order[1] as string), published: 2 });

    // The resume sends pages 2 and 3 again: nothing is lost (the ledger turns page 3's repeats into acks).
    const again = new FakePublisher();
    const second = await runTick(new Date(occurrence.getTime() + 60_000), deps(store, again, { pagesInFlight: 3 }));
    expect(second.occurrences[0]).toMatchObject({ status: 'resumed', published: 3 });
    expect(again.messages.map((m) => m.notificationId)).toEqual(order.slice(2));
  });

  it('with pages in flight, publishes nothing more once Pub/Sub has refused a page', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    const order = inDispatchOrder(ids);
    // Page 1 stays out until released; page 2 is refused at once.
    const sent: string[][] = [];
    const page1 = deferred();
    const publisher: DispatchPublisher = {
      async publishPage(page) {
        sent.push(page.map((m) => m.message.notificationId));
        if (sent.length === 1) return page1.promise;
        if (sent.length === 2) throw new Error('Pub/Sub unavailable (page 2)');
      },
    };
    const tick = runTick(occurrence, deps(store, publisher, { pagesInFlight: 3 }));
    await until(() => sent.length >= 2);
    await new Promise((r) => setTimeout(r, 20));
    page1.resolve();
    const summary = await tick;
    // Page 3 is never sent: the run stopped at the refusal.
    expect(sent).toEqual([order.slice(0, 2), order.slice(2, 4)]);
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed', published: 2 });
    // Page 1 was accepted: it is checkpointed although the run failed after it.
    expect(await store.getRun(runId)).toMatchObject({ cursor: bucketOf(order[1] as string), published: 2 });
  });

  it('with pages in flight, a failed read still checkpoints the pages Pub/Sub accepted', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    const order = inDispatchOrder(ids);
    const real = store.notificationPages.bind(store);
    jest.spyOn(store, 'notificationPages').mockImplementation(async function* (id, cursor, size) {
      let n = 0;
      for await (const page of real(id, cursor, size)) {
        if (n++ === 2) throw new Error('Firestore unavailable (page 3)');
        yield page;
      }
    });
    const summary = await runTick(occurrence, deps(store, new FakePublisher(), { pagesInFlight: 2 }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed', published: 4 });
    expect(summary.occurrences[0]?.error).toContain('page 3');
    // Page 2 was still in flight when the read failed; it was accepted, so it is checkpointed.
    expect(await store.getRun(runId)).toMatchObject({ cursor: bucketOf(order[3] as string), published: 4 });
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
    const order = inDispatchOrder(ids);
    expect(halfway).toMatchObject({
      status: 'running',
      cursor: bucketOf(order[1] as string),
      published: 2,
      leaseOwner: null,
    });
    // The schedule stays due, with its unfinished occurrence marked.
    expect(store.schedule(scheduleId)).toMatchObject({ nextRunAt: occurrence, activeOccurrence: occ });

    const publisher = new FakePublisher();
    const second = await runTick(new Date(occurrence.getTime() + 60_000), deps(store, publisher));
    expect(second.occurrences[0]).toMatchObject({ status: 'resumed', occurrence: occ, published: 3 });
    expect(second.resumed).toBe(true);
    // Only the rest, for the same occurrence.
    expect(publisher.messages.map((m) => m.notificationId)).toEqual(order.slice(2));
    expect(publisher.messages.every((m) => m.occurrence === occ && m.runId === runId)).toBe(true);
    expect(await store.getRun(runId)).toMatchObject({ status: 'done', published: 5, resumes: 1 });
    expect(store.schedule(scheduleId)?.activeOccurrence).toBeNull();
  });

  it('stops a run at the next page once the service drains, checkpointed and released, and a later tick resumes it', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    let draining = false;
    const publisher = new FakePublisher();
    const real = publisher.publishPage.bind(publisher);
    // SIGTERM arrives while the first page is being published.
    jest.spyOn(publisher, 'publishPage').mockImplementation(async (page) => {
      draining = true;
      return real(page);
    });
    const first = await runTick(occurrence, deps(store, publisher, { isDraining: () => draining }));

    expect(first.failed).toBe(1);
    expect(first.occurrences[0]).toMatchObject({ status: 'failed', published: 2, runId });
    expect(first.occurrences[0]?.error).toContain('shutting down');
    await expectResumedAfterFirstPage(store, ids);
  });

  it('shutting down, does not wait past the drain bound for a publish that never answers', async () => {
    const { store, ids, pending, drain, tick, t0 } = await twoPagesHeld();
    // SIGTERM; the first page is accepted, the second never answers.
    drain();
    pending[0]?.answer();
    const summary = await tick;
    expect(performance.now() - t0).toBeLessThan(DRAIN_WAIT_MS + 2000);
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed', published: 2 });
    const order = inDispatchOrder(ids);
    // Checkpointed up to the page Pub/Sub accepted, and released for a later tick.
    expect(await store.getRun(runId)).toMatchObject({ cursor: bucketOf(order[1] as string), leaseOwner: null });
  });

  it('shutting down, does not wait past the drain bound for the oldest page either', async () => {
    const { store, drain, tick, t0 } = await twoPagesHeld();
    // Two pages out, neither ever answered: the run waits on the oldest when SIGTERM comes.
    drain();
    const summary = await tick;
    expect(performance.now() - t0).toBeLessThan(DRAIN_WAIT_MS + 1500);
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed', published: 0 });
    expect(await store.getRun(runId)).toMatchObject({ leaseOwner: null });
  });

  it('starts no schedule once the service drains: each is left due for a later tick', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher, { isDraining: () => true }));
    expect(publisher.pages).toHaveLength(0);
    expect(summary.occurrences).toEqual([
      expect.objectContaining({
        scheduleId,
        status: 'failed',
        published: 0,
        error: expect.stringContaining('shutting down'),
      }),
    ]);
    expect(await store.getRun(runId)).toBeNull();
    expect(store.schedule(scheduleId)).toMatchObject({ nextRunAt: occurrence });
  });

  it('after resuming an old run, a newer occurrence that fell due meanwhile runs in the same tick', async () => {
    const hourly = { cron: '0 * * * *', timezone: 'UTC' };
    const id = scheduleIdOf(hourly);
    const store = new MemoryStore();
    store.putSchedule(id, { ...hourly, nextRunAt: new Date('2026-01-15T09:00:00Z') });
    for (const n of ['a', 'b', 'c']) store.putNotification(n, { scheduleId: id, enabled: true });

    // 09:00 fails half-way; the next tick comes at 10:00:30, when 10:00 is due too.
    await runTick(new Date('2026-01-15T09:00:00Z'), deps(store, new FakePublisher([2])));
    const publisher = new FakePublisher();
    const resume = await runTick(new Date('2026-01-15T10:00:30Z'), deps(store, publisher));
    expect(resume.occurrences).toEqual([
      expect.objectContaining({ status: 'resumed', occurrence: '2026-01-15T09:00:00.000Z' }),
      expect.objectContaining({ status: 'dispatched', occurrence: '2026-01-15T10:00:00.000Z', skipped: 0 }),
    ]);
    expect(publisher.messages.filter((m) => m.occurrence === '2026-01-15T10:00:00.000Z')).toHaveLength(3);
    expect(store.schedule(id)?.nextRunAt?.toISOString()).toBe('2026-01-15T11:00:00.000Z');
    // Nothing is left for the next tick.
    const next = await runTick(new Date('2026-01-15T10:01:00Z'), deps(store, publisher));
    expect(next.occurrences).toEqual([]);
  });

  it.each<[string, string | null]>([
    ['still marked as the schedule’s active run', occ],
    ['not marked (the schedule’s copy still due at it)', null],
  ])(
    'a run found already done, %s, moves the schedule on to its next occurrence without publishing',
    async (_what, active) => {
      const store = new MemoryStore();
      seed(store, { count: 3 });
      // Another dispatcher finished the run; the write that moves the schedule on did not land.
      await store.claimRun(scheduleId, occ, 'other-dispatcher', 60_000, occurrence, new Date());
      const run = await store.getRun(runId);
      if (!run) throw new Error('no run');
      store.runDocs.set(runId, { ...run, status: 'done', leaseOwner: null, leaseExpiresAt: null, published: 3 });
      store.putSchedule(scheduleId, { ...daily9, nextRunAt: occurrence, activeOccurrence: active });
      const publisher = new FakePublisher();
      const summary = await runTick(occurrence, deps(store, publisher));
      expect(summary.occurrences).toEqual([
        expect.objectContaining({ scheduleId, occurrence: occ, runId, status: 'already-done', published: 0 }),
      ]);
      expect(publisher.pages).toHaveLength(0);
      const moved = store.schedule(scheduleId);
      expect(moved?.nextRunAt?.toISOString()).toBe('2026-01-16T08:00:00.000Z');
      expect(moved?.nextRunAt?.toISOString()).toBe(nextOccurrence(daily9, occurrence).toISOString());
      expect(moved?.activeOccurrence).toBeNull();
      expect(moved?.lastRunAt?.toISOString()).toBe(occ);
      // The next tick finds nothing due.
      expect((await runTick(new Date(occurrence.getTime() + 60_000), deps(store, publisher))).occurrences).toEqual([]);
    },
  );

  it('after finding an old run already done, a newer occurrence that fell due meanwhile runs in the same tick', async () => {
    const hourly = { cron: '0 * * * *', timezone: 'UTC' };
    const id = scheduleIdOf(hourly);
    const store = new MemoryStore();
    store.putSchedule(id, { ...hourly, nextRunAt: new Date('2026-01-15T09:00:00Z') });
    for (const n of ['a', 'b', 'c']) store.putNotification(n, { scheduleId: id, enabled: true });
    // The 09:00 run was finished by another dispatcher, whose write of the schedule did not land:
    // the schedule still names 09:00 as its active run.
    await store.claimRun(id, '2026-01-15T09:00:00.000Z', 'other', 60_000, new Date('2026-01-15T09:00:01Z'), null);
    const nine = runIdOf(id, '2026-01-15T09:00:00.000Z');
    const run = await store.getRun(nine);
    if (!run) throw new Error('no run');
    store.runDocs.set(nine, { ...run, status: 'done', leaseOwner: null, leaseExpiresAt: null });
    expect(store.schedule(id)?.activeOccurrence).toBe('2026-01-15T09:00:00.000Z');

    // The next tick comes at 10:00:30, when 10:00 is due too.
    const publisher = new FakePublisher();
    const tick = new Date('2026-01-15T10:00:30Z');
    const summary = await runTick(tick, deps(store, publisher, { clock: () => tick }));
    expect(summary.occurrences.map((o) => [o.status, o.occurrence, o.published])).toEqual([
      ['already-done', '2026-01-15T09:00:00.000Z', 0],
      ['dispatched', '2026-01-15T10:00:00.000Z', 3],
    ]);
    expect(publisher.messages.every((m) => m.occurrence === '2026-01-15T10:00:00.000Z')).toBe(true);
    expect(store.schedule(id)).toMatchObject({ activeOccurrence: null, nextRunAt: new Date('2026-01-15T11:00:00Z') });
  });

  it('gives a late run’s and a resumed run’s messages the delivery id of their occurrence, not of the tick', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 3 });
    // Ten minutes late: 09:00 Paris is still inside the catch-up window. Its second page is refused.
    const late = new Date(occurrence.getTime() + 600_000);
    const first = new FakePublisher([2]);
    expect((await runTick(late, deps(store, first, { clock: () => late }))).occurrences[0]).toMatchObject({
      status: 'failed',
      occurrence: occ,
    });
    // Resumed by the next tick, a minute later.
    const later = new Date(late.getTime() + 60_000);
    const second = new FakePublisher();
    expect((await runTick(later, deps(store, second, { clock: () => later }))).occurrences[0]).toMatchObject({
      status: 'resumed',
      occurrence: occ,
    });
    const sent = [...first.pages.flat(), ...second.pages.flat()];
    expect(sent.map((p) => p.message.notificationId).sort()).toEqual(ids);
    for (const { message, attributes } of sent) {
      expect(message.occurrence).toBe(occ);
      expect(attributes.deliveryId).toBe(deliveryIdOf(message.notificationId, '2026-01-15T08:00:00.000Z'));
      expect(attributes.runId).toBe(runId);
    }
  });

  it('dispatches several due schedules at once, up to scheduleConcurrency, each to completion', async () => {
    const store = new MemoryStore();
    const ids = everyMinute(store, ['UTC', 'Asia/Tokyo', 'America/New_York'], 5);
    let inFlight = 0;
    let peak = 0;
    const publisher: DispatchPublisher = {
      async publishPage() {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
      },
    };
    const summary = await runTick(occurrence, deps(store, publisher, { scheduleConcurrency: 2 }));
    expect(peak).toBe(2);
    expect(summary.published).toBe(15);
    expect(summary.occurrences.map((o) => o.status)).toEqual(['dispatched', 'dispatched', 'dispatched']);
    expect(new Set(summary.occurrences.map((o) => o.scheduleId))).toEqual(new Set(ids));
    for (const o of summary.occurrences)
      expect(await store.getRun(o.runId as string)).toMatchObject({ status: 'done', published: 5 });
  });

  it('lets only largeRuns runs past a large read at once, while small schedules go on beside them', async () => {
    const store = new MemoryStore();
    // A read of more than 4 ids after a run's first page is a large one.
    store.largeReadIds = 4;
    const large = everyMinute(store, ['UTC', 'Asia/Tokyo', 'America/New_York'], 12);
    const small = everyMinute(store, ['Europe/Paris', 'Europe/Berlin', 'Australia/Sydney', 'Africa/Cairo'], 2);
    // Every publish, in order: which schedule, and its how-manyth page.
    const log: { sid: string; page: number }[] = [];
    const publisher: DispatchPublisher = {
      async publishPage(page) {
        const sid = page[0]?.message.scheduleId as string;
        log.push({ sid, page: log.filter((e) => e.sid === sid).length + 1 });
        await new Promise((r) => setTimeout(r, 2));
      },
    };
    const summary = await runTick(
      occurrence,
      deps(store, publisher, { pageSize: 2, scheduleConcurrency: 7, largeRuns: 1, pagesInFlight: 1 }),
    );
    expect(summary.published).toBe(3 * 12 + 4 * 2);
    expect(summary.occurrences.map((o) => o.status)).toEqual(Array(7).fill('dispatched'));
    const pages = (sid: string) => log.filter((e) => e.sid === sid).length;
    for (const id of large) expect(pages(id)).toBeGreaterThanOrEqual(6);
    // Replayed: a large run is past its large read from its second page to its last.
    let peakLarge = 0;
    const past = new Set<string>();
    const largeLeftAtSmall: boolean[] = [];
    for (const [i, e] of log.entries()) {
      if (large.includes(e.sid) && e.page === 2) past.add(e.sid);
      peakLarge = Math.max(peakLarge, past.size);
      if (large.includes(e.sid) && e.page === pages(e.sid)) past.delete(e.sid);
      if (small.includes(e.sid)) largeLeftAtSmall.push(large.some((id) => log.slice(i).some((l) => l.sid === id)));
    }
    expect(peakLarge).toBe(1);
    // The small schedules did not wait for the large ones: each was published with large pages still to come.
    expect(largeLeftAtSmall).toEqual(Array(4).fill(true));
  });

  it('gives a large-read slot back when its run fails, so the next large run goes on', async () => {
    const store = new MemoryStore();
    store.largeReadIds = 2;
    const ids = everyMinute(store, ['UTC', 'Asia/Tokyo'], 6);
    let calls = 0;
    const publisher: DispatchPublisher = {
      async publishPage() {
        // The second page of whichever run gets the slot first is refused.
        if (++calls === 3) throw new Error('Pub/Sub refused the page');
      },
    };
    const summary = await runTick(
      occurrence,
      deps(store, publisher, { pageSize: 2, scheduleConcurrency: 2, largeRuns: 1 }),
    );
    expect(summary.occurrences.map((o) => o.status).sort()).toEqual(['dispatched', 'failed']);
    expect(new Set(summary.occurrences.map((o) => o.scheduleId))).toEqual(new Set(ids));
  });

  it('renews the lease of a run waiting for a large-read slot, so that no later tick takes it over meanwhile', async () => {
    const store = new MemoryStore();
    store.largeReadIds = 2;
    everyMinute(store, ['UTC', 'Asia/Tokyo'], 8);
    let now = occurrence.getTime() + 5_000;
    // Each run's first page goes out; the slot holder's next pages wait until the test is done.
    const held = deferred();
    const pagesOf = new Map<string, number>();
    const publisher: DispatchPublisher = {
      async publishPage(page) {
        const sid = page[0]?.message.scheduleId as string;
        pagesOf.set(sid, (pagesOf.get(sid) ?? 0) + 1);
        if ((pagesOf.get(sid) ?? 0) > 1) await held.promise;
      },
    };
    const renew = jest.spyOn(store, 'renewLease');
    // Renewals come on timers: waited for in real time, at most 3 s.
    const waitFor = async (done: () => boolean) => {
      for (let i = 0; i < 300 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(done()).toBe(true);
    };
    // A lease of 0.3 s, renewed every 0.1 s while the run waits.
    const tick = runTick(
      occurrence,
      deps(store, publisher, { scheduleConcurrency: 2, largeRuns: 1, leaseSeconds: 0.3, clock: () => new Date(now) }),
    );
    await waitFor(() => renew.mock.calls.length >= 2);
    const waiting = renew.mock.calls[0]?.[0] as string;
    expect(new Set(renew.mock.calls.map((c) => c[0]))).toEqual(new Set([waiting]));
    // The waiting run published its first page only; the holder is past it.
    expect(pagesOf.get(waiting.split(':')[0] as string)).toBe(1);
    // An hour later by the clock, the next renewal still holds the lease from then.
    now += 3_600_000;
    const calls = renew.mock.calls.length;
    await waitFor(() => renew.mock.calls.length > calls);
    expect((await store.getRun(waiting))?.leaseExpiresAt?.getTime()).toBeGreaterThan(now);
    held.resolve();
    const summary = await tick;
    expect(summary.occurrences.map((o) => o.status)).toEqual(['dispatched', 'dispatched']);
    expect(summary.published).toBe(16);
  });

  it('refuses a large-read slot asked for once its run has ended, so the next large run still gets one', async () => {
    const store = new MemoryStore();
    everyMinute(store, ['UTC', 'Asia/Tokyo'], 8);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // As FirestoreStore: a later page is a read in flight, and the large read's gate is asked
    // once that read has come back, which may be after the run stopped.
    const firestoreLike = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop !== 'notificationPages') return Reflect.get(target, prop, receiver);
        return async function* (
          sid: string,
          cursor: string | null,
          size: number,
          at?: Date | null,
          beforeLargeRead?: () => Promise<void>,
        ) {
          let k = 0;
          for await (const page of target.notificationPages(sid, cursor, size, at)) {
            if (++k > 1) await sleep(5);
            if (k >= 3) await beforeLargeRead?.();
            yield page;
          }
        };
      },
    });
    let calls = 0;
    const publisher: DispatchPublisher = {
      async publishPage() {
        if (++calls === 1) throw new Error('Pub/Sub refused the page');
      },
    };
    const tick = runTick(occurrence, {
      ...deps(store, publisher, { scheduleConcurrency: 1, largeRuns: 1, pagesInFlight: 2 }),
      runs: firestoreLike,
    }).then((s) => s.occurrences.map((o) => o.status));
    const outcome = await Promise.race([tick, sleep(3000).then(() => 'the tick still runs after 3 s')]);
    expect(outcome).toEqual(['failed', 'dispatched']);
  });

  it('leaves an occurrence leased by another dispatcher alone', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    await store.claimRun(scheduleId, occ, 'other-dispatcher', 60_000, occurrence, new Date());
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));

    expect(summary.occurrences[0]).toMatchObject({ status: 'leased-elsewhere', published: 0, runId });
    expect(publisher.pages).toHaveLength(0);
    expect((await store.getRun(runId))?.leaseOwner).toBe('other-dispatcher');
  });

  it('takes over a run whose lease expired', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    await store.claimRun(
      scheduleId,
      occ,
      'dead-dispatcher',
      60_000,
      new Date(occurrence.getTime() - 120_000),
      new Date(),
    );
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

  it('takes a schedule mark that is not a date-time (a document edited by hand) as none, says so, and clears it', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    store.scheduleDocs.set(scheduleId, { ...store.schedule(scheduleId), activeOccurrence: 'garbage' });
    const lines: string[] = [];
    const publisher = new FakePublisher();
    const logged = createLogger({
      service: 'tick-test',
      level: 'error',
      destination: { write: (l: string) => void lines.push(l) },
    });
    const summary = await runTick(occurrence, deps(store, publisher, { log: logged }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'dispatched', published: 3 });
    expect(store.schedule(scheduleId)?.activeOccurrence).toBeNull();
    expect(lines.join('')).toContain('the schedule\'s activeOccurrence \\"garbage\\" is not a date-time');
    // A mark in another spelling of a real instant is that instant's run.
    store.scheduleDocs.set(scheduleId, {
      ...store.schedule(scheduleId),
      activeOccurrence: '2026-01-15T09:00:00+01:00',
    });
    expect((await store.dueSchedules(new Date('2030-01-01T00:00:00Z'), 10))[0]?.activeOccurrence).toBe(
      '2026-01-15T08:00:00.000Z',
    );
  });

  it('runs a schedule whose cron and time zone were written by hand with blanks around them', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    store.scheduleDocs.set(scheduleId, {
      ...store.schedule(scheduleId),
      cron: ` ${daily9.cron} `,
      timezone: ` ${daily9.timezone} `,
    });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.occurrences[0]).toMatchObject({ status: 'dispatched', published: 3 });
    expect(store.schedule(scheduleId)?.invalidReason).toBeUndefined();
    expect(store.schedule(scheduleId)?.nextRunAt?.toISOString()).toBe(nextOccurrence(daily9, occurrence).toISOString());
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
    const lines: string[] = [];
    const logged = createLogger({
      service: 'tick-test',
      level: 'warn',
      destination: { write: (l: string) => void lines.push(l) },
    });
    const summary = await runTick(tick, deps(store, publisher, { clock: () => tick, log: logged }));
    // The log line says which instants were passed over, from the first on, and the window.
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.skipped !== undefined);
    expect(line).toMatchObject({
      message: 'missed occurrences are older than the catch-up window; skipped',
      scheduleId,
      skipped: 4,
      missedFrom: occurrence.toISOString(),
      catchUpWindowSeconds: 900,
    });

    // 15th, 16th, 17th and 18th at 09:00 Paris were all due.
    expect(summary.occurrences[0]).toMatchObject({ status: 'skipped-missed', skipped: 4, published: 0 });
    expect(publisher.pages).toHaveLength(0);
    expect(store.schedule(scheduleId)).toMatchObject({ skippedOccurrences: 4 });
    expect(store.schedule(scheduleId)?.nextRunAt?.toISOString()).toBe(nextOccurrence(daily9, tick).toISOString());
  });

  it('a tick whose schedule time is hours old (a late retry) does not send that stale occurrence', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3, nextRunAt: occurrence });
    const publisher = new FakePublisher();
    // The tick says 09:00:30 Paris, the occurrence's minute; the clock says three hours later.
    const tick = new Date(occurrence.getTime() + 30_000);
    const now = new Date(occurrence.getTime() + 3 * 3_600_000);
    const summary = await runTick(tick, deps(store, publisher, { clock: () => now }));

    expect(summary.occurrences[0]).toMatchObject({ status: 'skipped-missed', skipped: 1, published: 0 });
    expect(publisher.pages).toHaveLength(0);
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

  it('a schedule whose planning throws fails alone: the other schedules of the tick are dispatched', async () => {
    const store = new MemoryStore();
    seed(store, { count: 2 });
    const other = addOtherDueSchedule(store);
    const real = schedule.planOccurrence;
    const spy = jest.spyOn(schedule, 'planOccurrence').mockImplementation((s, ...rest) => {
      if (s.timezone === 'Europe/Paris') throw new Error('Invalid expression, loop limit exceeded');
      return real(s, ...rest);
    });
    try {
      const publisher = new FakePublisher();
      const summary = await runTick(occurrence, deps(store, publisher));
      const byId = new Map(summary.occurrences.map((o) => [o.scheduleId, o]));
      expect(byId.get(scheduleId)).toMatchObject({ status: 'failed', error: expect.stringContaining('loop limit') });
      expect(byId.get(scheduleIdOf(other))).toMatchObject({ status: 'dispatched', published: 1 });
      expect(summary.failed).toBe(1);
      // The failed schedule stays due, for the next tick.
      expect(store.schedule(scheduleId)?.nextRunAt?.toISOString()).toBe(occurrence.toISOString());
    } finally {
      spy.mockRestore();
    }
  });

  it('a schedule whose run cannot be claimed (a Firestore error) fails alone: the others are dispatched, the tick is retried', async () => {
    const store = new MemoryStore();
    seed(store, { count: 2 });
    const other = addOtherDueSchedule(store);
    const real = store.claimRun.bind(store);
    jest.spyOn(store, 'claimRun').mockImplementation(async (id, ...rest) => {
      if (id === scheduleId) throw new Error('4 DEADLINE_EXCEEDED: Deadline exceeded');
      return real(id, ...rest);
    });
    const publisher = new FakePublisher();
    // One at a time, the failing schedule first or not: the other still runs.
    const summary = await runTick(occurrence, deps(store, publisher));
    const byId = new Map(summary.occurrences.map((o) => [o.scheduleId, o]));
    expect(byId.get(scheduleId)).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('DEADLINE_EXCEEDED'),
    });
    expect(byId.get(scheduleIdOf(other))).toMatchObject({ status: 'dispatched', published: 1 });
    expect(summary.failed).toBe(1);
    expect(store.schedule(scheduleId)?.nextRunAt?.toISOString()).toBe(occurrence.toISOString());
  });

  it('shutting down once a page of due schedules has run, answers the later pages failed, so the tick is retried', async () => {
    const store = new MemoryStore();
    const zones = ['UTC', 'Europe/Paris', 'Asia/Tokyo'];
    for (const [i, timezone] of zones.entries()) {
      const s = { cron: '* * * * *', timezone };
      store.putSchedule(scheduleIdOf(s), { ...s, nextRunAt: occurrence });
      store.putNotification(`m${i}`, {
        accountId: 'a',
        slack: { channelId: 'C1' },
        schedule: s,
        scheduleId: scheduleIdOf(s),
        enabled: true,
      });
    }
    let draining = false;
    const real = store.finishRun.bind(store);
    jest.spyOn(store, 'finishRun').mockImplementation(async (...args) => {
      await real(...args);
      // The shutdown comes as the first page's last run ends.
      draining = true;
    });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher, { duePageSize: 1, isDraining: () => draining }));
    expect(summary.occurrences.map((o) => o.status)).toEqual(['dispatched', 'failed', 'failed']);
    expect(summary.failed).toBe(2);
    expect(publisher.messages).toHaveLength(1);
  });

  it('does nothing when no schedule is due', async () => {
    const store = new MemoryStore();
    seed(store, { count: 2, nextRunAt: new Date(occurrence.getTime() + 1) });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary).toMatchObject({ dueSchedules: 0, published: 0, occurrences: [] });
  });

  it('stops, without failing the tick, when another dispatcher took the run over and finished it', async () => {
    const store = new MemoryStore();
    seed(store, { count: 5 });
    const publisher = new FakePublisher();
    // The other dispatcher takes the run over (this one's lease ran out) and finishes it, all
    // before this one's first checkpoint.
    const real = store.checkpoint.bind(store);
    jest.spyOn(store, 'checkpoint').mockImplementationOnce(async (...args) => {
      const later = new Date(occurrence.getTime() + 61 * 60_000);
      await store.claimRun(scheduleId, occ, 'thief', 60_000, later, new Date());
      await store.finishRun(runId, 'thief', scheduleId, nextOccurrence(daily9, occurrence), 0, later);
      return real(...args);
    });
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.occurrences[0]).toMatchObject({ status: 'already-done', occurrence: occ });
    expect(summary.occurrences[0]?.error).toBeUndefined();
    expect(summary.failed).toBe(0);
    expect(await store.getRun(runId)).toMatchObject({ status: 'done', leaseOwner: null });
  });

  it('with pages in flight, stops at a lost lease without writing another checkpoint', async () => {
    const store = new MemoryStore();
    seed(store, { count: 5 });
    const publisher = new FakePublisher();
    // Another dispatcher takes the run over before the first checkpoint lands.
    const checkpoint = takeOverAtCheckpoint(store, 1);
    const summary = await runTick(occurrence, deps(store, publisher, { pagesInFlight: 2 }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed' });
    expect(summary.occurrences[0]?.error).toMatch(/leased by thief/);
    expect(checkpoint.calls).toBe(1);
    expect((await store.getRun(runId))?.leaseOwner).toBe('thief');
  });

  it('stops at a lost lease and reports the run failed', async () => {
    const store = new MemoryStore();
    seed(store, { count: 5 });
    const publisher = new FakePublisher();
    // Another dispatcher takes the run over after the first page.
    takeOverAtCheckpoint(store, 2);
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed' });
    expect((await store.getRun(runId))?.leaseOwner).toBe('thief');
    expect(store.schedule(scheduleId)?.activeOccurrence).toBe(occ);
  });
});

describe('a schedule no notification uses any more', () => {
  it('writes one run that published nothing, then no run while its index stays empty, and runs again once one joins', async () => {
    const store = new MemoryStore();
    const [id] = everyMinute(store, ['Europe/Paris'], 1) as [string];
    const at = (minutes: number) => new Date(occurrence.getTime() + minutes * 60_000);
    const tickAt = (minutes: number) =>
      runTick(at(minutes), deps(store, new FakePublisher(), { clock: () => new Date(at(minutes).getTime() + 5_000) }));
    const only = async (minutes: number) => (await tickAt(minutes)).occurrences[0];

    expect(await only(0)).toMatchObject({ status: 'dispatched', published: 1 });
    expect(store.schedule(id)?.lastRunPublished).toBe(1);
    // Its one notification paused: the next run finds the index empty, and says so with a run.
    store.putNotification('Europe/Paris-0', { scheduleId: id, enabled: false });
    expect(await only(1)).toMatchObject({
      status: 'dispatched',
      published: 0,
      runId: runIdOf(id, at(1).toISOString()),
    });
    expect(store.schedule(id)?.lastRunPublished).toBe(0);
    // From then on the index is read and the schedule moved on, with no run.
    for (const minute of [2, 3]) {
      expect(await only(minute)).toMatchObject({ status: 'no-notifications', published: 0, runId: null });
      expect(await store.getRun(runIdOf(id, at(minute).toISOString()))).toBeNull();
      expect(store.schedule(id)?.nextRunAt).toEqual(at(minute + 1));
      expect(store.schedule(id)?.activeOccurrence).toBeNull();
    }
    // Resumed: the next occurrence runs and sends it.
    store.putNotification('Europe/Paris-0', { scheduleId: id, enabled: true });
    const publisher = new FakePublisher();
    const summary = await runTick(at(4), deps(store, publisher, { clock: () => new Date(at(4).getTime() + 5_000) }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'dispatched', published: 1 });
    expect(publisher.messages.map((m) => m.notificationId)).toEqual(['Europe/Paris-0']);
    expect(store.schedule(id)?.lastRunPublished).toBe(1);
  });

  it('still counts what the catch-up policy passed over', async () => {
    const store = new MemoryStore();
    const [id] = everyMinute(store, ['UTC'], 0) as [string];
    store.putSchedule(id, { cron: '* * * * *', timezone: 'UTC', nextRunAt: occurrence, lastRunPublished: 0 });
    const late = new Date(occurrence.getTime() + 5 * 60_000);
    const summary = await runTick(late, deps(store, new FakePublisher(), { clock: () => late }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'no-notifications', skipped: 5 });
    expect(store.schedule(id)?.skippedOccurrences).toBe(5);
    expect(store.schedule(id)?.nextRunAt).toEqual(new Date(late.getTime() + 60_000));
  });
});

describe('a notification id saved before ids were capped to fit a Pub/Sub attribute', () => {
  it('is dispatched, its message without the delivery-id attribute Pub/Sub would refuse; the others keep theirs', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 2 });
    // 1,400 bytes: a document id Firestore takes, a delivery id (1,425 bytes) no attribute holds.
    const long = 'é'.repeat(700);
    store.putNotification(long, {
      accountId: 'acct-long',
      slack: { channelId: 'C-long' },
      schedule: daily9,
      scheduleId,
      enabled: true,
    });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.published).toBe(3);
    const sent = publisher.pages.flat();
    const at = occurrence.toISOString();
    const runId = runIdOf(scheduleId, at);
    expect(sent.find((m) => m.message.notificationId === long)?.attributes).toEqual({ runId });
    for (const id of ids) {
      expect(sent.find((m) => m.message.notificationId === id)?.attributes).toEqual({
        deliveryId: deliveryIdOf(id, at),
        runId,
      });
    }
  });
});

describe('the time a run reads its index at', () => {
  it('is when the tick read the due schedules, for every run it starts, and the same again when a run is resumed', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    const readAt = new Date('2026-11-29T12:00:00.000Z');
    const real = store.dueSchedules.bind(store);
    jest
      .spyOn(store, 'dueSchedules')
      .mockImplementation(async (...args) => (await real(...args)).map((d) => ({ ...d, readAt })));
    const pages = jest.spyOn(store, 'notificationPages');
    // Fails on its second page: the run is left to resume.
    await runTick(occurrence, deps(store, new FakePublisher([2])));
    expect(pages.mock.calls[0]?.[3]).toEqual(readAt);
    expect((await store.getRun(runId))?.indexReadAt).toEqual(readAt);

    // The next tick found the schedules at another time; the resumed run keeps its own.
    const later = new Date('2026-11-29T12:01:00.000Z');
    jest
      .spyOn(store, 'dueSchedules')
      .mockImplementation(async (...args) => (await real(...args)).map((d) => ({ ...d, readAt: later })));
    const publisher = new FakePublisher();
    const resumed = await runTick(
      occurrence,
      deps(store, publisher, { clock: () => new Date(occurrence.getTime() + 90_000) }),
    );
    expect(resumed.occurrences[0]).toMatchObject({ status: 'resumed' });
    expect(pages.mock.calls[1]?.[3]).toEqual(readAt);
    expect(ids.length).toBe(5);
  });
});

describe('ticks that overlap on one schedule', () => {
  const everyMinute = { cron: '* * * * *', timezone: 'UTC' };
  const id = scheduleIdOf(everyMinute);
  const t = (hhmmss: string) => new Date(`2026-12-07T${hhmmss}.000Z`);
  const ids = ['a', 'b', 'c', 'd'];
  function everyMinuteStore(nextRunAt: Date): MemoryStore {
    const store = new MemoryStore();
    store.putSchedule(id, { ...everyMinute, nextRunAt });
    for (const n of ids) store.putNotification(n, { scheduleId: id, enabled: true });
    return store;
  }
  /** Holds every dueSchedules() answer until `count` ticks have read: they all start from one copy. */
  function readTogether(store: MemoryStore, count: number): void {
    const all = deferred();
    let reads = 0;
    const real = store.dueSchedules.bind(store);
    jest.spyOn(store, 'dueSchedules').mockImplementation(async (...args) => {
      const due = await real(...args);
      if (++reads === count) all.resolve();
      await all.promise;
      return due;
    });
  }

  it('a run a crashed dispatcher left half-sent costs an every-minute schedule no occurrence but those the resume came too late for', async () => {
    const store = everyMinuteStore(t('10:00:00'));
    // The 10:00 run, its second page refused: half-sent, as a crash leaves it once its lease expires.
    await runTick(t('10:00:00'), deps(store, new FakePublisher([2]), { clock: () => t('10:00:01') }));
    expect(store.schedule(id)?.activeOccurrence).toBe('2026-12-07T10:00:00.000Z');
    // The 10:01 tick resumes it, then sends 10:01 itself: before, 10:01 was left to the 10:02
    // tick, which passed over it as missed.
    const publisher = new FakePublisher();
    const tick = await runTick(t('10:01:00'), deps(store, publisher, { clock: () => t('10:01:01') }));
    expect(tick.occurrences.map((o) => [o.status, o.occurrence, o.skipped])).toEqual([
      ['resumed', '2026-12-07T10:00:00.000Z', 0],
      ['dispatched', '2026-12-07T10:01:00.000Z', 0],
    ]);
    expect(
      new Set(
        publisher.messages.filter((m) => m.occurrence === '2026-12-07T10:01:00.000Z').map((m) => m.notificationId),
      ),
    ).toEqual(new Set(ids));
    expect(store.schedule(id)).toMatchObject({
      activeOccurrence: null,
      nextRunAt: t('10:02:00'),
      skippedOccurrences: 0,
    });
  });

  it('the occurrences a run passed over are counted once, by whichever dispatcher ends the run', async () => {
    const store = everyMinuteStore(t('10:00:00'));
    // 10:03 comes after three missed ticks; its run fails half-way (as a crash would leave it).
    const first = await runTick(t('10:03:00'), deps(store, new FakePublisher([2]), { clock: () => t('10:03:01') }));
    expect(first.occurrences[0]).toMatchObject({ status: 'failed', occurrence: '2026-12-07T10:03:00.000Z' });
    expect(store.schedule(id)?.skippedOccurrences ?? 0).toBe(0);
    // The next tick resumes it and ends it: the three it passed over are counted then.
    const next = await runTick(t('10:04:00'), deps(store, new FakePublisher(), { clock: () => t('10:04:01') }));
    expect(next.occurrences.map((o) => [o.status, o.occurrence, o.skipped])).toEqual([
      ['resumed', '2026-12-07T10:03:00.000Z', 3],
      ['dispatched', '2026-12-07T10:04:00.000Z', 0],
    ]);
    expect(store.schedule(id)?.skippedOccurrences).toBe(3);
  });

  it('a retried tick does not clear the mark of the next tick’s run: that run, failed half-way, is resumed and finished', async () => {
    const store = everyMinuteStore(t('10:00:00'));
    readTogether(store, 2);
    // The 10:01 tick (its second page refused) and Cloud Scheduler's retry of the 10:00 tick.
    const failing = new FakePublisher([2]);
    const retry = new FakePublisher();
    const [late, retried] = await Promise.all([
      runTick(t('10:01:00'), deps(store, failing, { clock: () => t('10:01:15') })),
      runTick(t('10:00:00'), deps(store, retry, { clock: () => t('10:01:15') })),
    ]);
    jest.restoreAllMocks();
    expect(late.occurrences[0]).toMatchObject({ status: 'failed', occurrence: '2026-12-07T10:01:00.000Z' });
    // The retry's copy said nothing ran; the schedule says 10:01's run holds it.
    expect(retried.occurrences[0]).toMatchObject({ status: 'superseded', occurrence: '2026-12-07T10:00:00.000Z' });
    expect(retry.pages).toHaveLength(0);
    expect(store.schedule(id)?.activeOccurrence).toBe('2026-12-07T10:01:00.000Z');

    const publisher = new FakePublisher();
    const next = await runTick(t('10:02:00'), deps(store, publisher, { clock: () => t('10:02:01') }));
    expect(next.occurrences[0]).toMatchObject({ status: 'resumed', occurrence: '2026-12-07T10:01:00.000Z' });
    // Then 10:02 itself, in the same tick.
    expect(next.occurrences[1]).toMatchObject({ status: 'dispatched', occurrence: '2026-12-07T10:02:00.000Z' });
    const sentAt1001 = [...failing.messages, ...publisher.messages]
      .filter((m) => m.occurrence === '2026-12-07T10:01:00.000Z')
      .map((m) => m.notificationId);
    expect(new Set(sentAt1001)).toEqual(new Set(ids));
    expect(await store.getRun(runIdOf(id, '2026-12-07T10:01:00.000Z'))).toMatchObject({ status: 'done' });
    expect(store.schedule(id)).toMatchObject({ activeOccurrence: null, nextRunAt: t('10:03:00') });
  });

  it('a tick with a copy read before another tick moved the schedule on leaves it as it is', async () => {
    const store = everyMinuteStore(t('10:00:00'));
    // The slow tick read the schedule at 10:00; meanwhile the 10:01 tick started its run.
    const stale = await store.dueSchedules(t('10:00:00'), 10);
    await store.claimRun(id, '2026-12-07T10:01:00.000Z', 'the-10-01-tick', 60_000, t('10:01:01'), new Date());
    jest.spyOn(store, 'dueSchedules').mockResolvedValueOnce(stale);
    const publisher = new FakePublisher();
    const summary = await runTick(t('10:00:00'), deps(store, publisher, { clock: () => t('10:01:05') }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'superseded' });
    expect(publisher.pages).toHaveLength(0);
    expect(store.schedule(id)).toMatchObject({
      activeOccurrence: '2026-12-07T10:01:00.000Z',
      nextRunAt: t('10:00:00'),
    });
  });

  it('an occurrence a tick took as missed, but another tick sent before this one claimed its run, is not counted passed over', async () => {
    const store = everyMinuteStore(t('10:24:00'));
    // The 10:25 tick reads the schedule still due at 10:24, so it plans 10:25 with 10:24 passed
    // over; before it claims its run, Cloud Scheduler's retry of the 10:24 tick sends 10:24.
    const stale = await store.dueSchedules(t('10:25:00'), 10);
    const retried = await runTick(t('10:24:00'), deps(store, new FakePublisher(), { clock: () => t('10:25:01') }));
    expect(retried.occurrences.map((o) => [o.status, o.occurrence, o.skipped])).toEqual([
      ['dispatched', '2026-12-07T10:24:00.000Z', 0],
    ]);
    jest.spyOn(store, 'dueSchedules').mockResolvedValueOnce(stale);
    const summary = await runTick(t('10:25:00'), deps(store, new FakePublisher(), { clock: () => t('10:25:02') }));
    expect(summary.occurrences.map((o) => [o.status, o.occurrence, o.skipped])).toEqual([
      ['dispatched', '2026-12-07T10:25:00.000Z', 0],
    ]);
    expect((await store.getRun(runIdOf(id, '2026-12-07T10:25:00.000Z')))?.skippedBefore).toBe(0);
    expect(store.schedule(id)).toMatchObject({ nextRunAt: t('10:26:00'), skippedOccurrences: 0 });
  });

  it('a stale tick whose occurrences are all too old counts as passed over only those no tick sent meanwhile', async () => {
    const store = everyMinuteStore(t('09:00:00'));
    const stale = await store.dueSchedules(t('09:05:00'), 10);
    // Meanwhile the 09:03 tick passes 09:00 to 09:02 over and sends 09:03.
    await runTick(t('09:03:00'), deps(store, new FakePublisher(), { clock: () => t('09:03:01') }));
    expect(store.schedule(id)).toMatchObject({ nextRunAt: t('09:04:00'), skippedOccurrences: 3 });
    jest.spyOn(store, 'dueSchedules').mockResolvedValueOnce(stale);
    // A retry of the 09:05 tick an hour late: its copy says due since 09:00, all of it too old now.
    const summary = await runTick(
      t('09:05:00'),
      deps(store, new FakePublisher(), { clock: () => t('10:01:05'), catchUpWindowSeconds: 60 }),
    );
    expect(summary.occurrences[0]).toMatchObject({ status: 'skipped-missed' });
    // 09:04 and 09:05 are passed over, not 09:00 to 09:05 again.
    expect(store.schedule(id)).toMatchObject({ nextRunAt: t('09:06:00'), skippedOccurrences: 5 });
  });

  it('an occurrence a tick took as missed, and no tick sent, is still counted passed over', async () => {
    const store = everyMinuteStore(t('10:23:00'));
    const stale = await store.dueSchedules(t('10:25:00'), 10);
    // 10:23 is sent meanwhile, but 10:24 by no one.
    await runTick(t('10:23:00'), deps(store, new FakePublisher(), { clock: () => t('10:23:01') }));
    jest.spyOn(store, 'dueSchedules').mockResolvedValueOnce(stale);
    const summary = await runTick(t('10:25:00'), deps(store, new FakePublisher(), { clock: () => t('10:25:02') }));
    expect(summary.occurrences.map((o) => [o.status, o.occurrence, o.skipped])).toEqual([
      ['dispatched', '2026-12-07T10:25:00.000Z', 1],
    ]);
    expect(store.schedule(id)).toMatchObject({ nextRunAt: t('10:26:00'), skippedOccurrences: 1 });
  });

  it('a stale tick whose occurrences are all too old does not move the schedule while a run holds it', async () => {
    const store = everyMinuteStore(t('09:00:00'));
    const stale = await store.dueSchedules(t('10:00:00'), 10);
    await store.claimRun(id, '2026-12-07T10:01:00.000Z', 'the-10-01-tick', 60_000, t('10:01:01'), new Date());
    jest.spyOn(store, 'dueSchedules').mockResolvedValueOnce(stale);
    // Aged by the clock (a late retry): nothing inside the window, so it would only skip.
    const summary = await runTick(
      t('09:00:00'),
      deps(store, new FakePublisher(), { clock: () => t('10:01:05'), catchUpWindowSeconds: 60 }),
    );
    expect(summary.occurrences[0]).toMatchObject({ status: 'skipped-missed' });
    expect(store.schedule(id)).toMatchObject({
      activeOccurrence: '2026-12-07T10:01:00.000Z',
      nextRunAt: t('09:00:00'),
    });
  });
});

describe('a tick past its deadline', () => {
  it('stops its run at the next page, checkpointed and released, and a later tick resumes the rest', async () => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 6 });
    const { publisher, pending } = heldPublisher();
    const tick = runTick(occurrence, deps(store, publisher, { deadlineMs: 150 }));
    await until(() => pending.length === 1);
    // The first page is accepted once the deadline has passed: the run publishes no more.
    await new Promise((r) => setTimeout(r, 200));
    pending[0]?.answer();
    const summary = await tick;
    expect(pending).toHaveLength(1);
    expect(summary.failed).toBe(1);
    expect(summary.occurrences[0]).toMatchObject({
      status: 'failed',
      published: 2,
      error: expect.stringContaining('the tick passed its deadline (0.15 s, TICK_DEADLINE_SECONDS)'),
    });
    await expectResumedAfterFirstPage(store, ids, { deadlineMs: 60_000 });
  });

  it('does not wait past the drain bound for a publish that never answers', async () => {
    const store = new MemoryStore();
    seed(store, { count: 6 });
    const { publisher, pending } = heldPublisher();
    const t0 = performance.now();
    const summary = await runTick(occurrence, deps(store, publisher, { deadlineMs: 100 }));
    expect(performance.now() - t0).toBeLessThan(100 + DRAIN_WAIT_MS + 1500);
    expect(pending).toHaveLength(1);
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed', published: 0 });
    expect(await store.getRun(runId)).toMatchObject({ leaseOwner: null, published: 0 });
  });

  it('starts no schedule once past it: each is answered failed and left due', async () => {
    const store = new MemoryStore();
    seed(store, { count: 3 });
    addOtherDueSchedule(store);
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher, { deadlineMs: 0 }));
    expect(publisher.pages).toHaveLength(0);
    expect(summary.failed).toBe(2);
    // Said as schedules not started: no run of theirs exists to resume.
    const notStarted =
      "the tick passed its deadline (0 s, TICK_DEADLINE_SECONDS) before this schedule's turn; the tick's retry or the next tick runs it";
    expect(summary.occurrences.map((o) => o.error)).toEqual([notStarted, notStarted]);
    expect(await store.getRun(runId)).toBeNull();
    expect(store.schedule(scheduleId)).toMatchObject({ nextRunAt: occurrence });
  });

  it('within it, changes nothing', async () => {
    const store = new MemoryStore();
    seed(store, { count: 5 });
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher, { deadlineMs: 60_000 }));
    expect(summary.occurrences[0]).toMatchObject({ status: 'dispatched', published: 5 });
  });
});

describe('a tick stopped with several pages in flight that Pub/Sub never answers', () => {
  it('waits one drain bound in all, not one for each page', async () => {
    const store = new MemoryStore();
    seed(store, { count: 8 });
    const { publisher, pending } = heldPublisher();
    let draining = false;
    const tick = runTick(occurrence, deps(store, publisher, { pagesInFlight: 4, isDraining: () => draining }));
    await until(() => pending.length === 4);
    const t0 = performance.now();
    draining = true;
    // Each page is accepted just before a fresh bound would run out, never all at once.
    const answers = pending.map((p, i) => setTimeout(() => p.answer(), (i + 1) * (DRAIN_WAIT_MS - 300)));
    const summary = await tick;
    for (const a of answers) clearTimeout(a);
    expect(performance.now() - t0).toBeLessThan(DRAIN_WAIT_MS + 1000);
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed' });
    expect(await store.getRun(runId)).toMatchObject({ leaseOwner: null });
  }, 20_000);
});

describe('a tick shutting down while Firestore does not answer', () => {
  it('answers within the shutdown grace though its checkpoint and its release both hang', async () => {
    const store = new MemoryStore();
    seed(store, { count: 6 });
    const never = new Promise<void>(() => undefined);
    jest.spyOn(store, 'checkpoint').mockReturnValue(never);
    jest.spyOn(store, 'releaseRun').mockReturnValue(never);
    const { publisher, pending } = heldPublisher();
    let draining = false;
    const tick = runTick(occurrence, deps(store, publisher, { pagesInFlight: 2, isDraining: () => draining }));
    await until(() => pending.length === 2);
    pending[0]?.answer();
    await until(() => pending.length === 3);
    const t0 = performance.now();
    draining = true;
    const summary = await tick;
    expect(performance.now() - t0).toBeLessThan(SHUTDOWN_GRACE_MS);
    expect(summary.occurrences[0]).toMatchObject({ status: 'failed' });
    expect(store.releaseRun).toHaveBeenCalledTimes(1);
  }, 20_000);
});

describe('Checkpoints', () => {
  it('writes in order, one at a time, folding pages added during a write', async () => {
    const writes: { cursor: string; published: number; pages: number }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const cp = new Checkpoints(async (p) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setImmediate(r));
      writes.push(p);
      inFlight--;
    });
    cp.add('m0001', 10);
    cp.add('m0002', 20);
    cp.add('m0003', 30);
    await cp.flush();
    expect(maxInFlight).toBe(1);
    expect(writes).toEqual([
      { cursor: 'm0001', published: 10, pages: 1 },
      { cursor: 'm0003', published: 50, pages: 2 },
    ]);
  });

  it('reports a failed write (a lost lease) to the run, and writes nothing after it', async () => {
    const written: string[] = [];
    const cp = new Checkpoints(async (p) => {
      if (p.cursor === 'm0001') throw new LeaseLostError('run r is leased by thief');
      written.push(p.cursor);
    });
    cp.add('m0001', 1);
    await cp.settle();
    expect(() => cp.throwIfFailed()).toThrow(LeaseLostError);
    expect(() => cp.add('m0002', 1)).toThrow('leased by thief');
    await expect(cp.flush()).rejects.toThrow(LeaseLostError);
    expect(written).toEqual([]);
  });
});

describe('Checkpoints at a least interval', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('writes the first page at once, then folds every page of the interval into one write', async () => {
    jest.useFakeTimers({ now: 0 });
    const writes: { cursor: string; published: number; pages: number; at: number }[] = [];
    const cp = new Checkpoints(async (p) => {
      writes.push({ ...p, at: Date.now() });
    }, 1000);
    cp.add('m0001', 10);
    await jest.advanceTimersByTimeAsync(0);
    for (const [i, cursor] of ['m0002', 'm0003', 'm0004'].entries()) {
      await jest.advanceTimersByTimeAsync(200);
      cp.add(cursor, i + 1);
    }
    // 600 ms in: only the first page is written.
    expect(writes.map((w) => w.cursor)).toEqual(['m0001']);
    await jest.advanceTimersByTimeAsync(399);
    expect(writes).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(writes).toEqual([
      { cursor: 'm0001', published: 10, pages: 1, at: 0 },
      { cursor: 'm0004', published: 6, pages: 3, at: 1000 },
    ]);
    // A page long after the last write is written at once.
    await jest.advanceTimersByTimeAsync(5000);
    cp.add('m0005', 1);
    await jest.advanceTimersByTimeAsync(0);
    expect(writes.at(-1)).toMatchObject({ cursor: 'm0005', at: 6000 });
  });

  it('flush and settle write what is left at once, not after the interval', async () => {
    jest.useFakeTimers({ now: 0 });
    const written: string[] = [];
    const cp = new Checkpoints(async (p) => {
      written.push(p.cursor);
    }, 60_000);
    cp.add('m0001', 1);
    cp.add('m0002', 1);
    const flushed = cp.flush();
    await jest.advanceTimersByTimeAsync(0);
    await flushed;
    expect(written).toEqual(['m0001', 'm0002']);
    expect(Date.now()).toBe(0);

    const other = new Checkpoints(async (p) => {
      written.push(p.cursor);
    }, 60_000);
    other.add('m0003', 1);
    await jest.advanceTimersByTimeAsync(0);
    other.add('m0004', 1);
    const settled = other.settle();
    await jest.advanceTimersByTimeAsync(0);
    await settled;
    expect(written).toEqual(['m0001', 'm0002', 'm0003', 'm0004']);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('Checkpoints held for the run’s end', () => {
  it('starts no write once held: what is added is kept, with what was waiting, after the write in flight', async () => {
    const writes: string[] = [];
    let finishWrite: () => void = () => undefined;
    const cp = new Checkpoints(async (p) => {
      writes.push(p.cursor);
      await new Promise<void>((r) => {
        finishWrite = r;
      });
    });
    cp.add('m0001', 1);
    // m0002 waits for the write of m0001.
    cp.add('m0002', 2);
    cp.hold();
    cp.add('m0003', 3);
    const unwritten = cp.unwritten();
    let given = false;
    void unwritten.then(() => {
      given = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(given).toBe(false);
    finishWrite();
    expect(await unwritten).toEqual({ cursor: 'm0003', published: 5, pages: 2 });
    expect(writes).toEqual(['m0001']);
    // Kept until cleared; cleared, nothing is left to write.
    expect(await cp.unwritten()).toEqual({ cursor: 'm0003', published: 5, pages: 2 });
    cp.clear();
    await cp.settle();
    expect(writes).toEqual(['m0001']);
  });

  it('wakes a write waiting out its interval, which then does not start', async () => {
    jest.useFakeTimers({ now: 0 });
    try {
      const writes: string[] = [];
      const cp = new Checkpoints(async (p) => {
        writes.push(p.cursor);
      }, 60_000);
      cp.add('m0001', 1);
      await jest.advanceTimersByTimeAsync(0);
      cp.add('m0002', 1);
      cp.hold();
      const unwritten = cp.unwritten();
      await jest.advanceTimersByTimeAsync(0);
      expect(await unwritten).toEqual({ cursor: 'm0002', published: 1, pages: 1 });
      expect(writes).toEqual(['m0001']);
      expect(Date.now()).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('writes what it held on settle, when the run could not finish', async () => {
    const writes: string[] = [];
    const cp = new Checkpoints(async (p) => {
      writes.push(p.cursor);
    });
    cp.hold();
    cp.add('m0001', 1);
    expect(await cp.unwritten()).toMatchObject({ cursor: 'm0001' });
    expect(writes).toEqual([]);
    await cp.settle();
    expect(writes).toEqual(['m0001']);
  });

  it('rethrows a failed write (a lost lease) instead of giving what is left', async () => {
    const cp = new Checkpoints(async () => {
      throw new LeaseLostError('run r is leased by thief');
    });
    cp.add('m0001', 1);
    cp.hold();
    cp.add('m0002', 1);
    await expect(cp.unwritten()).rejects.toThrow(LeaseLostError);
  });
});

describe('Checkpoints with a write that throws at once', () => {
  it('records the failure and does not leave flush() waiting', async () => {
    const cp = new Checkpoints(() => {
      throw new LeaseLostError('thrown before any await');
    });
    cp.add('m0001', 1);
    await expect(cp.flush()).rejects.toThrow('thrown before any await');
    await cp.settle();
  });
});

describe('resuming a run checkpointed by an older version', () => {
  it.each([
    ['a notification id (a version that paged by id)', 'n002'],
    ['a bucket of the 1,024-bucket layout, one beyond today’s', 'b0500'],
    ['a bucket of the 1,024-bucket layout, within today’s range', 'b0099'],
  ])('at %s starts the run over: nothing is skipped', async (_what, cursor) => {
    const store = new MemoryStore();
    const ids = seed(store, { count: 5 });
    // A run left by an older version, its lease expired.
    await store.claimRun(scheduleId, occ, 'old-version', 60_000, new Date(occurrence.getTime() - 120_000), new Date());
    await store.checkpoint(
      runId,
      'old-version',
      { cursor, published: 2, pages: 1 },
      60_000,
      new Date(occurrence.getTime() - 120_000),
    );
    const publisher = new FakePublisher();
    const summary = await runTick(occurrence, deps(store, publisher));
    expect(summary.occurrences[0]).toMatchObject({ status: 'resumed', published: 5 });
    expect(publisher.messages.map((m) => m.notificationId).sort()).toEqual(ids);
  });
});
