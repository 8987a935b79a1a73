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
 */

export interface ScheduleRunState {
  nextRunAt: Date | null;
  activeOccurrence: string | null;
  lastRunAt: Date | null;
}

/** Reads the state out of a stored schedule document (missing or mistyped fields as null). */
export function scheduleRunState(doc: Record<string, unknown> | undefined): ScheduleRunState {
  const date = (v: unknown): Date | null => (v instanceof Date && !Number.isNaN(v.getTime()) ? v : null);
  return {
    nextRunAt: date(doc?.nextRunAt),
    activeOccurrence: typeof doc?.activeOccurrence === 'string' ? doc.activeOccurrence : null,
    lastRunAt: date(doc?.lastRunAt),
  };
}

/**
 * Why a tick may not start (`resume` false) or take over (`resume` true) the run of
 * `occurrence`, or null when it may. The tick's copy of the schedule was stale: a later tick
 * works from the document as it is.
 */
export function runBlocker(state: ScheduleRunState, occurrence: string, resume: boolean): string | null {
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

export interface ScheduleAdvance {
  nextRunAt: Date;
  /** Set when the finished occurrence is later than the one recorded. */
  lastRunAt?: Date;
  /** Added to skippedOccurrences: only when this write moves nextRunAt on. */
  skipped: number;
}

/**
 * The fields to write when the run of `finished` ends (or is found done), or when nothing was
 * due (`finished` null): null when another occurrence's run holds the schedule, as that run
 * moves it on when it ends. `activeOccurrence` is cleared with them.
 */
export function scheduleAdvance(
  state: ScheduleRunState,
  finished: string | null,
  nextRunAt: Date,
  skipped: number,
): ScheduleAdvance | null {
  if (state.activeOccurrence !== null && state.activeOccurrence !== finished) return null;
  const moves = state.nextRunAt === null || nextRunAt.getTime() > state.nextRunAt.getTime();
  const advance: ScheduleAdvance = {
    nextRunAt: moves || state.nextRunAt === null ? nextRunAt : state.nextRunAt,
    skipped: moves ? skipped : 0,
  };
  if (finished !== null) {
    const at = new Date(finished);
    if (!state.lastRunAt || at.getTime() > state.lastRunAt.getTime()) advance.lastRunAt = at;
  }
  return advance;
}
