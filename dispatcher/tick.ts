import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { mapLimit, Semaphore, unlessDrained, within } from '../shared/concurrency';
import { errorMessage } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { isBucketId } from '../shared/members';
import { dispatchAttributes } from '../shared/messages';
import { deliveryIdOf, quoted, runIdOf } from '../shared/model';
import {
  type CheckpointProgress,
  type DueCursor,
  type DueSchedule,
  LeaseLostError,
  type RunStore,
} from '../shared/ports';
import type { PagePublisher } from '../shared/pubsub';
import {
  InvalidScheduleError,
  nextOccurrence,
  type OccurrencePlan,
  planOccurrence,
  validateSchedule,
} from '../shared/schedule';

/** The dispatcher's publisher port (shared with the redrive). */
export type DispatchPublisher = PagePublisher;

export interface TickDeps {
  runs: RunStore;
  publisher: DispatchPublisher;
  log: Logger;
  pageSize: number;
  leaseSeconds: number;
  catchUpWindowSeconds: number;
  /** Due schedules read a page at a time (default DUE_PAGE_SIZE); a tick takes on every page. */
  duePageSize?: number;
  /** How many of them are dispatched at once (default 1). */
  scheduleConcurrency?: number;
  /**
   * Of those, how many runs may read a large part of their index at once (default 1): a read
   * expected to bring more than LARGE_READ_IDS ids (shared/members.ts) waits for one of these
   * slots, held until its run ends, its lease renewed while it waits. Many small schedules at
   * once then cost little memory. A Semaphore is shared by every tick given it (the service's
   * overlapping ticks); a number is a tick's own.
   */
  largeRuns?: number | Semaphore;
  /**
   * Pages of one run being published at once (default 1). A page is checkpointed once it and
   * every page before it are accepted, so a crash still republishes only unacknowledged pages.
   */
  pagesInFlight?: number;
  /**
   * The least time between two checkpoints of a run, in ms (default 0: as often as one write
   * at a time allows). Each is a transaction; a crash republishes what came after the last.
   */
  checkpointIntervalMs?: number;
  clock?: () => Date;
  /**
   * True once the service is shutting down: a run stops at its next page, checkpointed up to
   * what Pub/Sub accepted and released, so that the tick answers within the shutdown grace and a
   * later tick resumes it; a schedule not started yet is left for a later tick.
   */
  isDraining?: () => boolean;
  /**
   * How long the tick may dispatch, in ms from its arrival (TICK_DEADLINE_SECONDS; none if unset).
   * Past it, the tick stops as for a shutdown: each run at its next page, checkpointed up to what
   * Pub/Sub accepted and released, each schedule not started answered failed; the tick then
   * answers 503 and Cloud Scheduler's retry, or the next tick, resumes them.
   */
  deadlineMs?: number;
  /** When the tick's request arrived (Date.now()), which its deadline counts from; its start if not given. */
  arrivedAtMs?: number;
}

/** Due schedules a tick reads at a time (TickDeps.duePageSize). */
export const DUE_PAGE_SIZE = 1000;

/**
 * The longest a stopped run (a shutdown, the tick's deadline) waits in all, from when it sees
 * the stop, for its reads, its publishes, then its checkpoint and its release (StopBudget).
 */
export const DRAIN_WAIT_MS = 2_500;
/** The least a stopped run waits for its last checkpoint and its release, once its drain wait is spent. */
export const RELEASE_WAIT_MS = 500;

/**
 * A run's waits once its tick stops (a shutdown, its deadline): DRAIN_WAIT_MS in all from when
 * the run first sees the stop, shared by every wait after it, so that a run with several pages
 * in flight that Pub/Sub does not answer ends within one bound, not one for each page.
 */
class StopBudget {
  private seenAt: number | null = null;

  constructor(private readonly stopped: () => string | null) {}

  /** Why the tick stopped, or null; the first time it says why, the budget starts. */
  why(): string | null {
    const why = this.stopped();
    if (why !== null) this.seenAt ??= Date.now();
    return why;
  }

  /** What is left of the budget, in ms; all of it before the stop. */
  left(): number {
    return this.seenAt === null ? DRAIN_WAIT_MS : Math.max(0, this.seenAt + DRAIN_WAIT_MS - Date.now());
  }

  /**
   * Waits for `promise`; once the tick stops, for what is left of the budget at most, then
   * rejects with why it stopped: a publish or a read that Pub/Sub or Firestore does not answer
   * must not hold the tick past the shutdown grace or its deadline.
   */
  async unlessStopped<T>(promise: Promise<T>): Promise<T> {
    const outcome = await unlessDrained(promise, () => this.why() !== null, this.left());
    if (outcome.drained) throw new Error(this.why() ?? SHUTTING_DOWN);
    return outcome.value;
  }
}

/** Each promise's outcome once it settles, or 'pending' if it has not within `ms` (null: no bound). */
async function settledWithin(
  promises: Promise<unknown>[],
  ms: number | null,
): Promise<('fulfilled' | 'rejected' | 'pending')[]> {
  const outcomes: ('fulfilled' | 'rejected' | 'pending')[] = promises.map(() => 'pending');
  const all = Promise.all(
    promises.map((p, i) =>
      p.then(
        () => {
          outcomes[i] = 'fulfilled';
        },
        () => {
          outcomes[i] = 'rejected';
        },
      ),
    ),
  );
  await (ms === null ? all : within(all, ms));
  return [...outcomes];
}

/** Why a run stopped early when the service began shutting down. */
export const SHUTTING_DOWN = 'the dispatcher is shutting down; a later tick resumes the run from its checkpoint';
/** Why a due schedule was not started when the service began shutting down. */
export const SHUTTING_DOWN_NOT_STARTED = 'the dispatcher is shutting down; a later tick runs the schedule';

/** Why a run stopped early when its tick passed its deadline. */
export function pastDeadline(deadlineMs: number): string {
  return `the tick passed its deadline (${deadlineMs / 1000} s, TICK_DEADLINE_SECONDS); the tick's retry or the next tick resumes the run from its checkpoint`;
}

/** Why a due schedule was not started when its tick passed its deadline. */
export function pastDeadlineNotStarted(deadlineMs: number): string {
  return `the tick passed its deadline (${deadlineMs / 1000} s, TICK_DEADLINE_SECONDS) before this schedule's turn; the tick's retry or the next tick runs it`;
}

export type OccurrenceStatus =
  | 'dispatched'
  | 'resumed'
  | 'already-done'
  | 'leased-elsewhere'
  | 'superseded'
  | 'skipped-missed'
  | 'no-notifications'
  | 'invalid-schedule'
  | 'failed';

export interface OccurrenceResult {
  scheduleId: string;
  occurrence: string | null;
  runId: string | null;
  status: OccurrenceStatus;
  published: number;
  skipped: number;
  error?: string;
}

export interface TickSummary {
  tickTime: string;
  dueSchedules: number;
  occurrences: OccurrenceResult[];
  published: number;
  resumed: boolean;
  failed: number;
  durationMs: number;
}

/**
 * The most occurrences a tick's log line lists. Cloud Logging takes an entry of at most 256 KB,
 * and a tick of 1,673 schedules summed up to 318 KB: its one line would be lost. Each run logs
 * its own lines besides, and the tick's answer lists every occurrence.
 */
export const LOGGED_OCCURRENCES = 100;

/** A tick's summary as its log line gives it: the occurrences counted by status, the first listed. */
export type LoggedTickSummary = Omit<TickSummary, 'occurrences'> & {
  statuses: Partial<Record<OccurrenceStatus, number>>;
  occurrences: OccurrenceResult[];
  /** Occurrences past LOGGED_OCCURRENCES, counted in `statuses`, not listed. */
  occurrencesNotListed?: number;
};

/** `summary` for its log line: the failed occurrences listed first, at most `max` in all. */
export function loggedSummary(summary: TickSummary, max = LOGGED_OCCURRENCES): LoggedTickSummary {
  const statuses: Partial<Record<OccurrenceStatus, number>> = {};
  for (const o of summary.occurrences) statuses[o.status] = (statuses[o.status] ?? 0) + 1;
  const listed =
    summary.occurrences.length <= max
      ? summary.occurrences
      : [
          ...summary.occurrences.filter((o) => o.status === 'failed'),
          ...summary.occurrences.filter((o) => o.status !== 'failed'),
        ].slice(0, max);
  const notListed = summary.occurrences.length - listed.length;
  return { ...summary, statuses, occurrences: listed, ...(notListed > 0 ? { occurrencesNotListed: notListed } : {}) };
}

/**
 * One tick: for each due schedule, dispatch its occurrence under a lease, one message per
 * enabled notification, a page at a time, each page checkpointed once Pub/Sub has it.
 */
export async function runTick(tickTime: Date, deps: TickDeps): Promise<TickSummary> {
  // The deadline and the summary's duration count from the tick's arrival.
  const since = deps.arrivedAtMs ?? Date.now();
  const clock = deps.clock ?? (() => new Date());
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  // When the tick arrived: every schedule's occurrence is aged from it, however long the tick runs.
  const arrivedAt = clock();
  const pageSize = deps.duePageSize ?? DUE_PAGE_SIZE;
  const occurrences: OccurrenceResult[] = [];
  let dueCount = 0;
  // Every run this tick starts reads its schedule's index as it was when the first page of due
  // schedules was read (the store's own read time): a notification moved between two schedules
  // due at the same instant is then in exactly one of the indexes the tick reads, whenever each is read.
  let indexReadAt: Date | null | undefined;
  let after: DueCursor | undefined;
  const largeRuns = deps.largeRuns instanceof Semaphore ? deps.largeRuns : new Semaphore(deps.largeRuns ?? 1);
  // What a stop says, of a run and of a schedule not started: built once.
  const shutdown: StopReason = { run: SHUTTING_DOWN, notStarted: SHUTTING_DOWN_NOT_STARTED };
  const { deadlineMs } = deps;
  const deadline: StopReason | null =
    deadlineMs === undefined ? null : { run: pastDeadline(deadlineMs), notStarted: pastDeadlineNotStarted(deadlineMs) };
  // Measured on the process's own clock, not `clock` (a test's fixed time).
  const stop = (): StopReason | null => {
    if (deps.isDraining?.()) return shutdown;
    if (deadline && deadlineMs !== undefined && Date.now() - since >= deadlineMs) return deadline;
    return null;
  };
  // Every due schedule, a page at a time: a tick that left some for the next would skip an
  // every-minute schedule's occurrence each time, and make every other one late.
  for (;;) {
    const due = await deps.runs.dueSchedules(tickTime, pageSize, after);
    indexReadAt ??= due[0]?.readAt ?? null;
    dueCount += due.length;
    // Schedules run side by side: one waits on Firestore while another publishes.
    const page = await mapLimit(due, deps.scheduleConcurrency ?? 1, (schedule) =>
      runDueSchedule(schedule, {
        tickTime,
        arrivedAt,
        owner,
        indexReadAt: indexReadAt ?? null,
        largeRuns,
        deps,
        clock,
        stop,
      }),
    );
    occurrences.push(...page.flat());
    const last = due.at(-1);
    // Draining, the pages after this one are still read: each schedule on them is answered
    // failed at once (runSchedule), so the tick answers 503 and Cloud Scheduler's retry, on
    // another instance, runs them. Left unread, the tick could answer 200 without them.
    if (due.length < pageSize || !last) break;
    after = { nextRunAt: last.nextRunAt, id: last.id };
  }
  return {
    tickTime: tickTime.toISOString(),
    dueSchedules: dueCount,
    occurrences,
    published: occurrences.reduce((n, o) => n + o.published, 0),
    resumed: occurrences.some((o) => o.status === 'resumed'),
    failed: occurrences.filter((o) => o.status === 'failed').length,
    // From the tick's arrival, as its deadline is counted.
    durationMs: Date.now() - since,
  };
}

/**
 * A due schedule's part of a tick: its unfinished run first (runSchedule), and, once that run
 * has ended, the occurrence due now, in the same tick. Left to the next tick, that occurrence
 * would be passed over as missed whenever another fell due before it (an every-minute
 * schedule whose run a crashed dispatcher left half-sent lost one more occurrence so).
 */
async function runDueSchedule(schedule: DueSchedule, tick: TickRun): Promise<OccurrenceResult[]> {
  const { tickTime } = tick;
  const first = await confined(schedule, tick);
  const ended = first.status === 'resumed' || first.status === 'dispatched' || first.status === 'already-done';
  if (!schedule.activeOccurrence || first.occurrence !== schedule.activeOccurrence || !ended) return [first];
  // The schedule as that run's end left it: due at the occurrence after the run's own.
  let after: Date;
  try {
    after = nextOccurrence(schedule, new Date(schedule.activeOccurrence));
  } catch {
    return [first];
  }
  if (after.getTime() > tickTime.getTime()) return [first];
  // Stopped (a shutdown, the deadline), this is answered failed at once (runSchedule), and the
  // tick 503: the retry runs it.
  const { ignoredActiveOccurrence: _ignored, ...rest } = schedule;
  const then = await confined({ ...rest, activeOccurrence: null, nextRunAt: after }, tick);
  return [first, then];
}

/**
 * runSchedule, with a failure of its own Firestore calls (its run's claim, its schedule moved
 * on or disabled) confined to its schedule: the tick goes on with the others, and answers 503
 * for Cloud Scheduler to retry, as for a run that failed.
 */
async function confined(schedule: DueSchedule, tick: TickRun): Promise<OccurrenceResult> {
  try {
    return await runSchedule(schedule, tick);
  } catch (err) {
    tick.deps.log.error(
      { scheduleId: schedule.id, err: errorMessage(err) },
      'could not run the schedule’s occurrence; the tick’s retry tries again',
    );
    return {
      scheduleId: schedule.id,
      occurrence: null,
      runId: null,
      published: 0,
      skipped: 0,
      status: 'failed',
      error: errorMessage(err),
    };
  }
}

/** Thrown by hasNotifications' beforeLargeRead: the read it would make is left to the run. */
class LargeReadLeft extends Error {}

/**
 * Whether the schedule's dispatch index lists a notification (as it was at `readAt`, when
 * given). It reads buckets until one lists an id. A read the store expects to be large (it
 * reads ahead, sized on the ids of the buckets before) is not made here: it waits for one of
 * the tick's slots in a run (TickDeps.largeRuns), so such an index is taken as not empty, and
 * the run reads it as usual.
 */
async function hasNotifications(runs: RunStore, scheduleId: string, readAt: Date | null): Promise<boolean> {
  const refuseLarge = async (): Promise<void> => {
    throw new LargeReadLeft();
  };
  const pages = runs.notificationPages(scheduleId, null, 1, readAt, refuseLarge)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const page = await pages.next();
      if (page.done) return false;
      if (page.value.ids.length > 0) return true;
    }
  } catch (err) {
    if (err instanceof LargeReadLeft) return true;
    throw err;
  } finally {
    await pages.return?.(undefined);
  }
}

/** What every run of one tick shares. */
interface TickRun {
  tickTime: Date;
  /** When the tick arrived: every schedule's occurrence is aged from it. */
  arrivedAt: Date;
  owner: string;
  indexReadAt: Date | null;
  /** The tick's slots for runs reading a large part of their index (TickDeps.largeRuns). */
  largeRuns: Semaphore;
  deps: TickDeps;
  clock: () => Date;
  /** Why the tick stops early (a shutdown, its deadline), or null while it goes on. */
  stop: () => StopReason | null;
}

/** What a stop says of a run it stops (SHUTTING_DOWN, pastDeadline) and of a schedule not started. */
interface StopReason {
  run: string;
  notStarted: string;
}

async function runSchedule(schedule: DueSchedule, tick: TickRun): Promise<OccurrenceResult> {
  const { tickTime, arrivedAt, owner, indexReadAt, deps, clock } = tick;
  const base = { scheduleId: schedule.id, published: 0, skipped: 0 };
  const stop = tick.stop();
  if (stop !== null) return { ...base, occurrence: null, runId: null, status: 'failed', error: stop.notStarted };
  try {
    validateSchedule(schedule);
  } catch (err) {
    if (!(err instanceof InvalidScheduleError)) throw err;
    deps.log.error(
      { scheduleId: schedule.id, cron: schedule.cron, timezone: schedule.timezone },
      `schedule disabled: ${err.message}`,
    );
    await deps.runs.disableSchedule(schedule.id, err.message, clock());
    return { ...base, occurrence: null, runId: null, status: 'invalid-schedule', error: err.message };
  }

  if (schedule.ignoredActiveOccurrence !== undefined) {
    deps.log.error(
      { scheduleId: schedule.id, activeOccurrence: schedule.ignoredActiveOccurrence },
      `the schedule's activeOccurrence ${quoted(schedule.ignoredActiveOccurrence)} is not a date-time: taken as none, and cleared by the schedule's next write`,
    );
  }
  let plan: OccurrencePlan;
  let resumedNext: Date | null;
  try {
    plan = planOccurrence(schedule, schedule.nextRunAt, tickTime, deps.catchUpWindowSeconds, arrivedAt);
    resumedNext = schedule.activeOccurrence ? nextOccurrence(schedule, new Date(schedule.activeOccurrence)) : null;
  } catch (err) {
    // Confined to this schedule: the tick goes on with the others, and a later tick tries again.
    deps.log.error(
      { scheduleId: schedule.id, cron: schedule.cron, timezone: schedule.timezone, err: errorMessage(err) },
      'could not plan the schedule’s occurrence; a later tick tries again',
    );
    return { ...base, occurrence: null, runId: null, status: 'failed', error: `planning: ${errorMessage(err)}` };
  }
  // What the plan passed over, counted again from the schedule as the store finds it when it
  // writes: a tick that overlapped this one may have sent an occurrence this plan took as
  // missed, and moved nextRunAt past it.
  const skippedFrom =
    (counted: number) =>
    (stored: Date | null): number =>
      counted > 0 && stored && stored.getTime() > schedule.nextRunAt.getTime()
        ? planOccurrence(schedule, stored, tickTime, deps.catchUpWindowSeconds, arrivedAt).skipped
        : counted;
  // An unfinished run is resumed before anything newer: its notifications are half sent.
  const occurrence = schedule.activeOccurrence ?? plan.run?.toISOString() ?? null;
  if (!occurrence) {
    await deps.runs.advanceSchedule(schedule.id, plan.nextRunAt, skippedFrom(plan.skipped), clock(), null);
    // Which instants, so that an operator can tell whose reports did not go out, and when.
    deps.log.warn(
      {
        scheduleId: schedule.id,
        skipped: plan.skipped,
        missedFrom: schedule.nextRunAt.toISOString(),
        catchUpWindowSeconds: deps.catchUpWindowSeconds,
        nextRunAt: plan.nextRunAt.toISOString(),
      },
      'missed occurrences are older than the catch-up window; skipped',
    );
    return { ...base, occurrence: null, runId: null, status: 'skipped-missed', skipped: plan.skipped };
  }

  // A resumed run moves the schedule on from its own occurrence, not from the tick: a newer
  // occurrence that fell due meanwhile is then planned at once, by the same tick
  // (runDueSchedule), instead of dropped.
  const nextRunAt = resumedNext ?? plan.nextRunAt;
  const runId = runIdOf(schedule.id, occurrence);
  const log = deps.log.child({ runId, scheduleId: schedule.id, occurrence });
  const leaseMs = deps.leaseSeconds * 1000;
  // What this plan passed over is kept on the run it creates, for whichever dispatcher ends it.
  const planned = schedule.activeOccurrence ? 0 : plan.skipped;
  // A schedule whose last run published nothing (each of its notifications moved to another
  // schedule, paused or deleted) gets no run while its index stays empty: it is read first, as a
  // run would read it (as it was at the tick's read), and the schedule moved on. A notification
  // indexed after that read would have been left out of a run too.
  if (!schedule.activeOccurrence && schedule.lastRunPublished === 0) {
    if (!(await hasNotifications(deps.runs, schedule.id, indexReadAt))) {
      await deps.runs.advanceSchedule(schedule.id, nextRunAt, skippedFrom(planned), clock(), null);
      log.debug({ nextRunAt: nextRunAt.toISOString() }, 'no notification uses the schedule; no run written');
      return { ...base, occurrence, runId: null, status: 'no-notifications', skipped: planned };
    }
  }
  const claim = await deps.runs.claimRun(
    schedule.id,
    occurrence,
    owner,
    leaseMs,
    clock(),
    indexReadAt,
    skippedFrom(planned),
  );
  if (claim.kind === 'done') {
    await deps.runs.advanceSchedule(schedule.id, nextRunAt, 0, clock(), occurrence);
    return { ...base, occurrence, runId, status: 'already-done' };
  }
  if (claim.kind === 'superseded') {
    // This tick's copy of the schedule was stale (another tick moved it on, or holds it with
    // another occurrence's run): a later tick works from the schedule as it is.
    log.info({ reason: claim.reason }, 'schedule moved on since this tick read it; left to a later tick');
    return { ...base, occurrence, runId, status: 'superseded' };
  }
  if (claim.kind === 'leased') {
    log.info({ leaseOwner: claim.run.leaseOwner }, 'occurrence is being dispatched by another tick');
    return { ...base, occurrence, runId, status: 'leased-elsewhere' };
  }
  if (claim.kind === 'resumed') {
    log.info({ cursor: claim.run.cursor, published: claim.run.published }, 'resuming run from its checkpoint');
  }

  // A cursor is a dispatch-index bucket id. One of another shape (a run checkpointed by a
  // version that paged by notification id) resumes from the start: the ledger acks the repeats.
  let cursor = claim.run.cursor && isBucketId(claim.run.cursor) ? claim.run.cursor : null;
  if (claim.run.cursor && cursor === null) {
    log.warn({ cursor: claim.run.cursor }, 'checkpoint is not an index bucket; resuming the run from its start');
  }
  let published = 0;
  // A large read waits for one of the slots (TickDeps.largeRuns), taken once and held until the
  // run ends. The wait may outlast the lease (other runs hold the slots), so the lease is renewed
  // meanwhile. The store may ask only once the run has ended (a read that was in flight then):
  // refused, so that no slot is held by a run that is over.
  const large: { slot: Promise<() => void> | null; ended: boolean } = { slot: null, ended: false };
  const ended = () => new Error(`run ${runId} has ended; its index is not read further`);
  const waitForSlot = async (): Promise<() => void> => {
    const slot = tick.largeRuns.acquire();
    try {
      for (;;) {
        // Unref'd: a wait for a slot must not hold a process that is shutting down.
        const granted = await within(slot, Math.max(1, Math.floor(leaseMs / 3)), true);
        if (large.ended) throw ended();
        if (granted) return granted;
        await deps.runs.renewLease(runId, owner, leaseMs, clock());
      }
    } catch (err) {
      void slot.then((release) => release());
      throw err;
    }
  };
  const beforeLargeRead = async (): Promise<void> => {
    if (large.ended) throw ended();
    large.slot ??= waitForSlot();
    await large.slot;
  };
  // The run's own read time: this tick's for a new run, its first tick's for a resumed one (none
  // kept, on a run from before it was: as it is now).
  const pages = deps.runs
    .notificationPages(schedule.id, cursor, deps.pageSize, claim.run.indexReadAt ?? null, beforeLargeRead)
    [Symbol.asyncIterator]();
  const budget = new StopBudget(() => tick.stop()?.run ?? null);
  const checkpoints = new Checkpoints(
    (p) => deps.runs.checkpoint(runId, owner, p, leaseMs, clock()),
    deps.checkpointIntervalMs ?? 0,
  );
  // Pages being published, oldest first: each is checkpointed in order once accepted.
  const publishing: InFlightPage[] = [];
  // Publishes Pub/Sub refused, as soon as they are known: the run then publishes no more.
  const refused: { error: unknown }[] = [];
  const maxInFlight = Math.max(1, deps.pagesInFlight ?? 1);
  /** Counts a page Pub/Sub accepted (every page before it was) and hands it to the checkpoints. */
  const land = (page: InFlightPage): void => {
    cursor = page.cursor;
    published += page.count;
    checkpoints.add(page.cursor, page.count);
    log.debug({ published, cursor }, 'page published');
  };
  const landOldest = async (): Promise<void> => {
    const oldest = publishing[0];
    if (!oldest) return;
    await budget.unlessStopped(oldest.accepted);
    publishing.shift();
    land(oldest);
  };
  try {
    // One page is read ahead while the current ones are published; a page's checkpoint is
    // written while the next ones are published (see Checkpoints).
    let next = pages.next();
    for (;;) {
      const page = await budget.unlessStopped(next);
      if (page.done) break;
      const { ids } = page.value;
      next = pages.next();
      next.catch(() => undefined);
      // A lost lease, a page Pub/Sub refused, a shutdown or the tick's deadline stops the run
      // before it publishes more.
      checkpoints.throwIfFailed();
      const refusal = refused[0];
      if (refusal) throw refusal.error;
      const why = budget.why();
      if (why !== null) throw new Error(why);
      const accepted = deps.publisher.publishPage(
        ids.map((notificationId) => ({
          message: { v: 1, notificationId, occurrence, scheduleId: schedule.id, runId },
          attributes: dispatchAttributes(deliveryIdOf(notificationId, occurrence), runId),
        })),
      );
      accepted.catch((error: unknown) => {
        refused.push({ error });
      });
      publishing.push({ accepted, cursor: page.value.cursor, count: ids.length });
      if (publishing.length >= maxInFlight) {
        // Whether a next page comes is known first: the last pages go with the run's end.
        if ((await budget.unlessStopped(next)).done) break;
        await landOldest();
      }
    }
    // The last pages go with the run's end, in the same transaction: a run of one page (most
    // schedules, when they are many and small) then costs no checkpoint of its own.
    checkpoints.hold();
    while (publishing.length > 0) await landOldest();
    const last = await checkpoints.unwritten();
    // The run's own count (a resumed run's, kept by the dispatcher that planned it), or this plan's.
    const skipped = claim.run.skippedBefore ?? planned;
    await deps.runs.finishRun(runId, owner, schedule.id, nextRunAt, skipped, clock(), last);
    checkpoints.clear();
    log.info({ published, total: (claim.run.published ?? 0) + published }, 'run finished');
    return {
      ...base,
      occurrence,
      runId,
      status: claim.kind === 'resumed' ? 'resumed' : 'dispatched',
      published,
      skipped,
    };
  } catch (err) {
    // The release must not race a publish or a checkpoint still in flight. Pages Pub/Sub
    // accepted before the failure are still checkpointed, in order, up to the first it did not
    // accept; nothing more once a checkpoint has failed (a lost lease).
    // Stopped (a shutdown, the deadline), the waits are bounded so that the tick answers within
    // the grace: a page still unanswered then counts as not accepted (the resume publishes it
    // again, and the ledger acks the repeat), and a release that races a checkpoint still in
    // flight is safe (the checkpoint then finds its lease gone, or lands first; either way it
    // covers only pages Pub/Sub accepted).
    // What is left of the run's one DRAIN_WAIT_MS (StopBudget), for the three waits together,
    // and never less than RELEASE_WAIT_MS: a release that Firestore answers at once is waited for,
    // so that the next tick need not wait for the lease to run out.
    const until = budget.why() !== null ? Date.now() + Math.max(budget.left(), RELEASE_WAIT_MS) : null;
    const left = () => (until === null ? null : Math.max(0, until - Date.now()));
    const outcomes = await settledWithin(
      publishing.map((p) => p.accepted),
      left(),
    );
    for (const [i, outcome] of outcomes.entries()) {
      const page = publishing[i];
      if (outcome !== 'fulfilled' || !page || checkpoints.failed) break;
      land(page);
    }
    await settledWithin([checkpoints.settle()], left());
    if (err instanceof LeaseLostError && err.finishedElsewhere) {
      // Nothing is lost: the other dispatcher sent it all (what this one sent again, the ledger
      // acks), and nothing is left to resume, so the tick need not be retried.
      log.warn({ published, cursor }, `${err.message}; this dispatcher stopped`);
      return { ...base, occurrence, runId, status: 'already-done', published };
    }
    log.error({ err: errorMessage(err), published, cursor }, 'run failed; a later tick resumes it from the checkpoint');
    // Bounded too once stopped: a Firestore that does not answer leaves the lease to expire.
    await settledWithin([deps.runs.releaseRun(runId, owner, errorMessage(err), clock())], left());
    return { ...base, occurrence, runId, status: 'failed', published, error: errorMessage(err) };
  } finally {
    // Closes the store's query stream when the run stops early; a no-op once it has ended.
    pages.return?.(undefined).catch(() => undefined);
    // A slot still awaited (a run stopped early) is given back once it comes.
    large.ended = true;
    void large.slot?.then(
      (release) => release(),
      () => undefined,
    );
  }
}

/** A page of a run being published: where it ends and how many messages it holds. */
interface InFlightPage {
  accepted: Promise<void>;
  cursor: string;
  count: number;
}

/**
 * A run's checkpoints, written behind the publishing. Only pages Pub/Sub has accepted are
 * added, in order, so a checkpoint never covers an unpublished page. One write is in flight at
 * a time, and a write starts at least `minIntervalMs` after the one before it started; pages
 * added meanwhile are folded into the next write, so a slow write never holds up publishing,
 * a fast run makes a checkpoint transaction a second or so rather than one a page
 * (docs/PERFORMANCE.md, item 24), and a crash republishes at most the pages since the last
 * write that landed (the delivery ledger turns those repeats into acks, not posts). Once the
 * run ends (`flush`, `settle`), what is left is written at once; or, once the run is about to
 * finish (`hold`), it is kept for the run's last write (`unwritten`, then `clear`).
 */
export class Checkpoints {
  private pending: CheckpointProgress | null = null;
  private writing: Promise<void> | null = null;
  private failure: { error: unknown } | null = null;
  private lastStarted = Number.NEGATIVE_INFINITY;
  private ending = false;
  private holding = false;
  private wake: (() => void) | null = null;

  constructor(
    private readonly write: (progress: CheckpointProgress) => Promise<void>,
    private readonly minIntervalMs = 0,
  ) {}

  add(cursor: string, published: number): void {
    this.throwIfFailed();
    const p = this.pending;
    this.pending = { cursor, published: (p?.published ?? 0) + published, pages: (p?.pages ?? 0) + 1 };
    if (!this.writing && !this.holding) this.startDrain();
  }

  private startDrain(): void {
    const writing = this.drain();
    this.writing = writing;
    // Cleared when this drain ends, however it ends (even a write that throws at once).
    void writing.finally(() => {
      if (this.writing === writing) this.writing = null;
    });
  }

  /**
   * The run is about to finish: no write starts from now on, and pages added are kept with
   * what is not written yet, for the run's last write (`unwritten`). `settle` undoes it.
   */
  hold(): void {
    this.holding = true;
    this.wake?.();
  }

  /**
   * Once the write in flight has ended: what is added and not written, kept until `clear` (a
   * run that then fails to finish still writes it on `settle`); throws if a write failed.
   */
  async unwritten(): Promise<CheckpointProgress | null> {
    while (this.writing) await this.writing;
    this.throwIfFailed();
    return this.pending;
  }

  /** What `unwritten` gave is written (with the run's end). */
  clear(): void {
    this.pending = null;
  }

  /** Whether a write failed (a lost lease). */
  get failed(): boolean {
    return this.failure !== null;
  }

  /** Rethrows a failed write (a lost lease): the run must stop. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Writes what is left at once and waits until every added page is written; throws if a write failed. */
  async flush(): Promise<void> {
    await this.settle();
    this.throwIfFailed();
  }

  /** Writes what is left at once (no more waiting out the interval) and waits, whatever the outcome. */
  async settle(): Promise<void> {
    this.ending = true;
    this.holding = false;
    this.wake?.();
    if (this.pending && !this.writing && !this.failure) this.startDrain();
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending && !this.failure && !this.holding) {
        const wait = this.lastStarted + this.minIntervalMs - Date.now();
        if (wait > 0 && !this.ending) await this.sleep(wait);
        if (this.holding) break;
        const progress = this.pending;
        this.pending = null;
        this.lastStarted = Date.now();
        await this.write(progress);
      }
    } catch (error) {
      this.failure = { error };
    }
  }

  /** Waits `ms`, or less if the run ends meanwhile. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
