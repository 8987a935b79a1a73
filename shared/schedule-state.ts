/**
 * The rules for a schedule document's run state (`activeOccurrence`, `nextRunAt`, `lastRunAt`)
 * when ticks overlap: a tick retried by Cloud Scheduler alongside the next one, or a tick slow
 * enough to reach a schedule with a copy read before another tick moved it on. Both stores
 * apply them inside the transaction that writes the state, against the document as it is then.
 *
 * - One run at a time holds a schedule: while `activeOccurrence` names a run, no other
 *   occurrence's run starts, and only that run's end clears the mark. A run left unfinished is
 *   then always found, and resumed, by a later tick.
 * - `nextRunAt` never moves back, and an occurrence the schedule has moved past is not started.
 *   (A save brings back only a schedule no tick has reached: owedInstants in shared/notifications.ts.)
 */

import { canonicalOccurrence } from './messages';
import { type RunDoc, storedDate } from './model';
import type { RunClaim, SkippedCount } from './ports';

export interface ScheduleRunState {
  /**
   * False when the schedule document is gone (deleted while a tick ran): nothing writes it
   * again, as a write of the run state alone would make a document without its cron and time
   * zone, which the next tick would disable for good.
   */
  exists: boolean;
  nextRunAt: Date | null;
  activeOccurrence: string | null;
  lastRunAt: Date | null;
}

/** Reads the state out of a stored schedule document (missing or mistyped fields as null). */
/**
 * A schedule's `activeOccurrence` as stored, in its canonical spelling, or null when there is
 * none, or when it is not a date-time at all (a document edited by hand): such a mark names no
 * run any tick could resume, and would hold the schedule for ever, so it is taken as none, and
 * the schedule's next write clears it.
 */
export function storedOccurrence(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  const c = canonicalOccurrence(v);
  return c.ok ? c.occurrence : null;
}

/**
 * A due schedule's `activeOccurrence` as the tick takes it (storedOccurrence), and, when one was
 * stored that is not a date-time, that value for the tick to log.
 */
export function activeOccurrenceOf(v: unknown): { activeOccurrence: string | null; ignoredActiveOccurrence?: string } {
  const activeOccurrence = storedOccurrence(v);
  return typeof v === 'string' && activeOccurrence === null
    ? { activeOccurrence, ignoredActiveOccurrence: v }
    : { activeOccurrence };
}

/** A stored `lastRunPublished`: a whole count, or null (none recorded, or not a count). */
export function publishedCount(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null;
}

export function scheduleRunState(doc: Record<string, unknown> | undefined): ScheduleRunState {
  return {
    exists: doc !== undefined,
    nextRunAt: storedDate(doc?.nextRunAt),
    activeOccurrence: storedOccurrence(doc?.activeOccurrence),
    lastRunAt: storedDate(doc?.lastRunAt),
  };
}

/**
 * Why a tick may not start (`resume` false) or take over (`resume` true) the run of
 * `occurrence`, or null when it may. The tick's copy of the schedule was stale: a later tick
 * works from the document as it is.
 */
export function runBlocker(state: ScheduleRunState, occurrence: string, resume: boolean): string | null {
  if (!state.exists) return 'the schedule document is gone (deleted); `slack-fanout reindex` makes it again';
  if (state.activeOccurrence !== null && state.activeOccurrence !== occurrence) {
    return `the schedule is dispatching ${state.activeOccurrence}; that run finishes first`;
  }
  if (
    !resume &&
    state.activeOccurrence === null &&
    state.nextRunAt &&
    state.nextRunAt.getTime() > Date.parse(occurrence)
  ) {
    return `the schedule has moved past ${occurrence} (next run at ${state.nextRunAt.toISOString()})`;
  }
  return null;
}

/**
 * What a plan passed over, as a count, or counted from `nextRunAt` as stored where the plan gave
 * a way to count it: a tick that sent an occurrence the plan took as missed (it overlapped the
 * planning one) moved nextRunAt past it.
 */
function skippedCount(skipped: SkippedCount, state: ScheduleRunState): number {
  return typeof skipped === 'function' ? skipped(state.nextRunAt) : skipped;
}

export interface ScheduleAdvance {
  nextRunAt: Date;
  /** Set when the finished occurrence is later than the one recorded. */
  lastRunAt?: Date;
  /** Added to skippedOccurrences: only when this write moves nextRunAt on. */
  skipped: number;
  /** What the finished run published in all (ScheduleDoc.lastRunPublished), when a run ended. */
  published?: number;
}

/**
 * The fields to write when the run of `finished` ends (or is found done), or when nothing was
 * due (`finished` null): null when another occurrence's run holds the schedule, as that run
 * moves it on when it ends, and when the document is gone. `activeOccurrence` is cleared with them.
 */
export function scheduleAdvance(
  state: ScheduleRunState,
  finished: string | null,
  nextRunAt: Date,
  skipped: SkippedCount,
  published?: number,
): ScheduleAdvance | null {
  if (!state.exists) return null;
  if (state.activeOccurrence !== null && state.activeOccurrence !== finished) return null;
  const moves = state.nextRunAt === null || nextRunAt.getTime() > state.nextRunAt.getTime();
  const advance: ScheduleAdvance = {
    nextRunAt: moves || state.nextRunAt === null ? nextRunAt : state.nextRunAt,
    skipped: moves ? skippedCount(skipped, state) : 0,
    ...(published !== undefined ? { published } : {}),
  };
  if (finished !== null) {
    const at = new Date(finished);
    if (!state.lastRunAt || at.getTime() > state.lastRunAt.getTime()) advance.lastRunAt = at;
  }
  return advance;
}

export interface ClaimRequest {
  scheduleId: string;
  occurrence: string;
  owner: string;
  leaseMs: number;
  now: Date;
  indexReadAt: Date | null;
  /** Occurrences passed over as missed when the run was planned (RunDoc.skippedBefore). */
  skipped?: SkippedCount;
}

/**
 * What a claim of a run does, given the run as stored (null: none yet) and its schedule's state:
 * create the run, take it over (its lease expired, or it is this owner's), or leave it (done,
 * leased by another, or superseded: runBlocker). Both stores write what it says in their own way.
 */
export function claimStep(
  existing: RunDoc | null,
  state: ScheduleRunState,
  r: ClaimRequest,
):
  | { kind: 'create'; run: RunDoc }
  | { kind: 'take'; run: RunDoc }
  | Exclude<RunClaim, { kind: 'acquired' | 'resumed' }> {
  const leaseExpiresAt = new Date(r.now.getTime() + r.leaseMs);
  if (!existing) {
    const blocker = runBlocker(state, r.occurrence, false);
    if (blocker) return { kind: 'superseded', reason: blocker };
    return {
      kind: 'create',
      run: {
        scheduleId: r.scheduleId,
        occurrence: r.occurrence,
        status: 'running',
        leaseOwner: r.owner,
        leaseExpiresAt,
        cursor: null,
        published: 0,
        pages: 0,
        resumes: 0,
        startedAt: r.now,
        updatedAt: r.now,
        finishedAt: null,
        indexReadAt: r.indexReadAt,
        skippedBefore: skippedCount(r.skipped ?? 0, state),
      },
    };
  }
  if (existing.status === 'done') return { kind: 'done', run: existing };
  const expires = existing.leaseExpiresAt ? existing.leaseExpiresAt.getTime() : 0;
  if (existing.leaseOwner && existing.leaseOwner !== r.owner && expires > r.now.getTime()) {
    return { kind: 'leased', run: existing };
  }
  const blocker = runBlocker(state, r.occurrence, true);
  if (blocker) return { kind: 'superseded', reason: blocker };
  return {
    kind: 'take',
    run: {
      ...existing,
      status: 'running',
      leaseOwner: r.owner,
      leaseExpiresAt,
      resumes: (existing.resumes ?? 0) + 1,
      updatedAt: r.now,
    },
  };
}
