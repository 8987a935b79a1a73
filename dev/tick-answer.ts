import { counted } from '../shared/words';

/** The dispatcher's answer to a tick, as `npm start` reads it. */
export interface TickSummary {
  published?: number;
  occurrences?: {
    scheduleId?: string;
    occurrence?: string | null;
    runId: string | null;
    status: string;
    published: number;
    skipped?: number;
    /** Why a failed one failed, as the dispatcher says it. */
    error?: string;
  }[];
  error?: string;
  message?: string;
  /** With `dependency_unavailable`: each dependency's check, `ok`, `unavailable`, or a setup mistake's reason. */
  checks?: Record<string, string>;
}

/** The dependencies as a person names them. */
const TITLES: Record<string, string> = { firestore: 'Firestore', pubsub: 'Pub/Sub' };

/** A check's reason (shared/pubsub.ts topicReady) as a person says it; any other state as it is. */
const REASONS: Record<string, string> = {
  topic_missing: 'the dispatch topic does not exist',
  topic_has_no_subscription: 'the dispatch topic has no subscription, so no notifier would read what it publishes',
  topic_not_visible: 'the dispatcher may not see the dispatch topic: it does not exist, or has no viewer grant for it',
};

/**
 * The line for a tick the dispatcher refused: the tick's time, its status and error, and with the
 * checks it answered, which dependency did not answer (`tick 2026-…Z failed: HTTP 503
 * dependency_unavailable: Pub/Sub unavailable (Firestore ok)`).
 */
export function tickRefusal(at: Date, status: number, summary: TickSummary): string {
  const what = summary.message ?? summary.error ?? '';
  const checks = Object.entries(summary.checks ?? {}).map(([name, state]) => [TITLES[name] ?? name, state] as const);
  const down = checks.filter(([, state]) => state !== 'ok');
  const up = checks.filter(([, state]) => state === 'ok');
  const said = ([name, state]: readonly [string, string]) =>
    REASONS[state] ? `${name}: ${REASONS[state]}` : `${name} ${state}`;
  const named = down.length > 0 ? `: ${down.map(said).join(', ')}` : '';
  const fine = down.length > 0 && up.length > 0 ? ` (${up.map(([name]) => `${name} ok`).join(', ')})` : '';
  return `tick ${at.toISOString()} failed: HTTP ${status} ${what}${named}${fine}`.trimEnd();
}

/**
 * A run's line under its tick: what it published, and the occurrences the catch-up policy
 * passed over (those before it, or it too, when older than the catch-up window), which a
 * schedule due more often than the ticks has at every tick.
 */
export function occurrenceLine(o: NonNullable<TickSummary['occurrences']>[number]): string {
  const what = o.runId ? `run ${o.runId}` : `schedule ${o.scheduleId ?? '?'}`;
  const skipped = o.skipped ?? 0;
  const passed =
    skipped > 0
      ? `, ${counted(skipped, 'occurrence')} passed over (${o.status === 'skipped-missed' ? 'older than the catch-up window' : 'only the latest due is sent'})`
      : '';
  return `  ${what}: ${o.status}, ${o.published} published${passed}`;
}

/**
 * The lines of a tick's runs not said before for the same tick: a tick sent again, while a dead
 * dispatcher's lease runs out, answers the same `leased-elsewhere` runs every few seconds, and
 * the line that the tick is sent again counts them. `said` keeps the lines said so far.
 */
export function newOccurrenceLines(occurrences: NonNullable<TickSummary['occurrences']>, said: Set<string>): string[] {
  const lines: string[] = [];
  for (const o of occurrences) {
    const line = occurrenceLine(o);
    if (said.has(line)) continue;
    said.add(line);
    lines.push(line);
  }
  return lines;
}

/** At most this many distinct errors are quoted in a line. */
const ERRORS_SHOWN = 2;

/**
 * What the runs not dispatched yet were, for the line that says the tick is sent again: their
 * statuses counted, and the first distinct errors (`15 failed: 10 ABORTED: Transaction lock
 * timeout.`), so that the reason is on screen and not in the dispatcher's log alone.
 */
export function pendingRuns(pending: NonNullable<TickSummary['occurrences']>): string {
  const byStatus = new Map<string, number>();
  for (const o of pending) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
  const statuses = [...byStatus].map(([status, n]) => `${n} ${status}`).join(', ');
  const errors = [...new Set(pending.flatMap((o) => (o.error ? [o.error] : [])))];
  const shown = errors.slice(0, ERRORS_SHOWN).map((e) => (e.length > 200 ? `${e.slice(0, 199)}…` : e));
  const more = errors.length > ERRORS_SHOWN ? `; and ${counted(errors.length - ERRORS_SHOWN, 'other error')}` : '';
  return shown.length > 0 ? `${statuses}: ${shown.join('; ')}${more}` : statuses;
}

/** A line said when it differs from the last one said, and otherwise, every `reminderMs`, a reminder. */
class ChangedOrReminder {
  private last = '';
  private saidAt = 0;

  constructor(private readonly reminderMs: number) {}

  /** Forgets the last line: the next is said whatever it is. */
  clear(): void {
    this.last = '';
  }

  next(line: string, nowMs: number, reminder: () => string): string | null {
    if (line !== this.last) {
      this.last = line;
      this.saidAt = nowMs;
      return line;
    }
    if (nowMs - this.saidAt < this.reminderMs) return null;
    this.saidAt = nowMs;
    return reminder();
  }
}

/**
 * What a tick sent again says of its runs not dispatched yet: their line when it changes, and
 * while it stays the same (a dead dispatcher's lease running out, about 75 s), a reminder every
 * `reminderMs`, not the same line with every send.
 */
export class PendingRunsLine {
  private readonly said: ChangedOrReminder;

  constructor(
    /** How often the tick is sent again, in seconds. */
    private readonly everySeconds: number,
    reminderMs = 30_000,
  ) {
    this.said = new ChangedOrReminder(reminderMs);
  }

  /** The line to say after a send that left `pending` not dispatched, or null for none. */
  next(pending: NonNullable<TickSummary['occurrences']>, nowMs: number, firstSentMs: number): string | null {
    const runs = counted(pending.length, 'run');
    return this.said.next(
      `  ${runs} not dispatched yet (${pendingRuns(pending)}); the tick is sent again every ${this.everySeconds} s, as Cloud Scheduler retries`,
      nowMs,
      () =>
        `  still ${runs} not dispatched, ${Math.round((nowMs - firstSentMs) / 1000)} s after the tick was first sent`,
    );
  }
}

/**
 * The line to say after a send of the tick that the dispatcher refused (or that never got an
 * answer): the refusal when it is new, and otherwise, every `reminderMs`, that it still is, so
 * that an outage of 90 s is not 18 times the same line.
 */
export class RefusedTickLine {
  private readonly said: ChangedOrReminder;

  constructor(
    /** How often the tick is sent again, in seconds. */
    private readonly everySeconds: number,
    reminderMs = 30_000,
  ) {
    this.said = new ChangedOrReminder(reminderMs);
  }

  /** A send got through: a refusal after it is said again, not taken as the one before still going on. */
  accepted(): void {
    this.said.clear();
  }

  next(refusal: string, nowMs: number, firstSentMs: number): string | null {
    return this.said.next(
      `${refusal}; the tick is sent again every ${this.everySeconds} s, as Cloud Scheduler retries`,
      nowMs,
      () => `  still refused, ${Math.round((nowMs - firstSentMs) / 1000)} s after the tick was first sent`,
    );
  }
}
