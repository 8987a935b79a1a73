import type { DeliveryDoc, DeliveryError, DeliveryStatus, PostTarget, RunDoc, ScheduleDoc } from './model';

/**
 * The storage the services depend on, as small interfaces. `FirestoreStore` implements
 * them for production and the emulator tests.
 */

export interface DueSchedule extends ScheduleDoc {
  id: string;
  /** An occurrence whose run was started and not finished; it is resumed first. */
  activeOccurrence: string | null;
  /** An `activeOccurrence` stored that is not a date-time, taken as none (storedOccurrence): for the log. */
  ignoredActiveOccurrence?: string;
  /** When the store read it (Firestore's read time, the same for a whole answer); absent in memory. */
  readAt?: Date;
}

/** Occurrences a run's plan passed over: a count, or one made from the schedule's stored `nextRunAt`. */
export type SkippedCount = number | ((storedNextRunAt: Date | null) => number);

export type RunClaim =
  | { kind: 'acquired'; run: RunDoc }
  | { kind: 'resumed'; run: RunDoc }
  | { kind: 'done'; run: RunDoc }
  | { kind: 'leased'; run: RunDoc }
  /** The tick's copy of the schedule was stale (shared/schedule-state.ts): nothing is claimed. */
  | { kind: 'superseded'; reason: string };

export interface NotificationRef {
  id: string;
}

/** One page of a run: ids to publish, and the cursor that resumes after them. */
export interface NotificationPage {
  ids: string[];
  cursor: string;
}

/** Pages published since the last checkpoint: the cursor after the last, and their sizes. */
export interface CheckpointProgress {
  cursor: string;
  published: number;
  pages: number;
}

/** Where the next page of due schedules starts: after this schedule, in (nextRunAt, id) order. */
export interface DueCursor {
  nextRunAt: Date;
  id: string;
}

export interface RunStore {
  /** The schedules due at `at`, by nextRunAt then id, at most `limit`, after `after` when given. */
  dueSchedules(at: Date, limit: number, after?: DueCursor): Promise<DueSchedule[]>;
  /**
   * Creates the run or takes it over when its lease expired; marks it on the schedule. Checks
   * the schedule as it is (runBlocker): another occurrence's run holding it, or a schedule
   * moved past the occurrence, is `superseded`.
   */
  claimRun(
    scheduleId: string,
    occurrence: string,
    owner: string,
    leaseMs: number,
    now: Date,
    indexReadAt: Date | null,
    /**
     * Occurrences the run's plan passed over as missed, kept on a run it creates
     * (RunDoc.skippedBefore): a count, or the count from the schedule's `nextRunAt` as the claim
     * finds it stored, where another tick may have moved it on since the plan's copy was read.
     */
    skipped?: SkippedCount,
  ): Promise<RunClaim>;
  /**
   * A schedule's enabled notification ids after `cursor`, in pages of whole index buckets of at
   * most `pageSize` ids (a bucket that holds more is a page alone; see pagesOfBuckets). Each page carries the cursor a checkpoint records. With
   * `readAt`, the index as it was then (where the store keeps versions that old: FirestoreStore
   * within the last 55 minutes; MemoryStore keeps none and reads it as it is). Before a read
   * expected to bring more than LARGE_READ_IDS ids (shared/members.ts; a store may be given
   * another bound), the store waits for `beforeLargeRead()`: a run's first read, and every read
   * of a small schedule, do not.
   */
  notificationPages(
    scheduleId: string,
    cursor: string | null,
    pageSize: number,
    readAt?: Date | null,
    beforeLargeRead?: () => Promise<void>,
  ): AsyncIterable<NotificationPage>;
  /** Renews the lease alone (a run waiting its turn); throws LeaseLostError when another owner took it. */
  renewLease(runId: string, owner: string, leaseMs: number, now: Date): Promise<void>;
  /** Records progress and renews the lease; throws LeaseLostError when another owner took it. */
  checkpoint(runId: string, owner: string, progress: CheckpointProgress, leaseMs: number, now: Date): Promise<void>;
  /**
   * Marks the run done and moves the schedule on, as scheduleAdvance allows; with `progress`,
   * records the run's last pages as a checkpoint would, in the same write (the run's last
   * checkpoint, saved a transaction of its own); throws LeaseLostError when another owner took it.
   */
  finishRun(
    runId: string,
    owner: string,
    scheduleId: string,
    nextRunAt: Date,
    skipped: number,
    now: Date,
    progress?: CheckpointProgress | null,
  ): Promise<void>;
  /**
   * Moves a schedule on without running: every due occurrence was too old (`finished` null), or
   * the run of `finished` was found done. As scheduleAdvance allows: never while another
   * occurrence's run holds the schedule, never backwards.
   */
  advanceSchedule(
    scheduleId: string,
    nextRunAt: Date,
    skipped: SkippedCount,
    now: Date,
    finished: string | null,
  ): Promise<void>;
  /** Marks a schedule whose cron or time zone cannot be parsed, so it stops being due. */
  disableSchedule(scheduleId: string, reason: string, now: Date): Promise<void>;
  releaseRun(runId: string, owner: string, error: string, now: Date): Promise<void>;
  getRun(runId: string): Promise<RunDoc | null>;
}

export type DeliveryClaim =
  | {
      kind: 'claimed';
      attempts: number;
      outcomeUnknown: boolean;
      firstAttemptAt: Date;
      claimExpiresAt: Date;
      /** Where earlier attempts were to post (DeliveryDoc.postTargets), before this claim's own. */
      earlierTargets: PostTarget[];
      /**
       * The delivery failed for good before a redrive reopened it (DeliveryDoc
       * failedBeforeRedriveAt): that failure went through the count towards pausing the
       * notification, and failing again is not counted a second time.
       */
      failedBefore: boolean;
    }
  | { kind: 'final'; status: DeliveryStatus }
  | { kind: 'busy'; claimExpiresAt: Date };

/** What a dead letter says of the message that died, for markDead. */
export interface DeadLetterFields {
  attempts: number | null;
  notificationId: string | null;
  occurrence: string | null;
  runId: string | null;
  reason: string;
  now: Date;
  /** When the message that died was published (its dead letter's source publish time). */
  sourcePublishedAt?: Date | null;
  /** The redrive the message names, null for none (deadLetterPredatesRedrive). */
  redriveOf?: string | null;
  /** Pushed without its envelope, so with no publish time (deadLetterPredatesRedrive). */
  unwrapped?: boolean;
}

export interface ClaimRequest {
  deliveryId: string;
  notificationId: string;
  occurrence: string;
  runId: string;
  owner: string;
  ttlMs: number;
  now: Date;
  publishedAt: Date | null;
  /** Where this attempt is to post, kept on the record; null when the notification cannot be read. */
  target?: PostTarget | null;
}

/** What a delivery's `sent` record holds. */
export interface SentFields {
  slackTs: string;
  channelId: string;
  accountId: string;
  latencyMs: number | null;
  now: Date;
  /** When the post was made, where that is earlier than `now` (one found in the channel); else `now`. */
  sentAt?: Date;
}

export interface DeliveryLedger {
  claim(req: ClaimRequest): Promise<DeliveryClaim>;
  markSent(deliveryId: string, fields: SentFields): Promise<void>;
  /**
   * With `claimedBy`, only the attempt that still holds the claim releases it. With `holdUntil`
   * (a post that timed out may still land until then), the claim is kept until then instead of
   * released, so that no other message of the delivery looks in the channel before it could.
   */
  markRetry(
    deliveryId: string,
    error: DeliveryError,
    outcomeUnknown: boolean,
    now: Date,
    claimedBy?: string,
    holdUntil?: Date,
  ): Promise<void>;
  /**
   * Extends this attempt's claim (`claimedBy`) to `until`, while the attempt still holds it on a
   * record being sent; false when it does not (another attempt took over, a dead letter came).
   */
  renewClaim(deliveryId: string, claimedBy: string, until: Date, now: Date): Promise<boolean>;
  markFinal(
    deliveryId: string,
    status: Extract<DeliveryStatus, 'failed' | 'skipped'>,
    error: DeliveryError,
    now: Date,
    /**
     * The attempt's claim token: given, nothing is written once another attempt holds the
     * delivery (this one outlived its claim), as for markRetry.
     */
    claimedBy?: string,
  ): Promise<void>;
  /**
   * A push too broken to deliver, recorded `failed` under the delivery its envelope names, only
   * if that delivery has no record yet: a broken message never ends one a good message carries.
   */
  recordInvalid(
    deliveryId: string,
    error: DeliveryError,
    now: Date,
    init?: Partial<Pick<DeliveryDoc, 'runId'>>,
  ): Promise<void>;
  /**
   * Dead-lettered: recorded `dead` unless it had already ended (sent, failed for good, skipped
   * while paused, dead), or the message that died was published before the delivery's last
   * redrive (deadLetterPredatesRedrive). The record's status after it.
   */
  markDead(deliveryId: string, fields: DeadLetterFields): Promise<DeliveryStatus>;
  get(deliveryId: string): Promise<DeliveryDoc | null>;
  countByStatus(runId: string): Promise<Record<DeliveryStatus, number>>;
}

export interface NotificationStore {
  getRaw(id: string): Promise<Record<string, unknown> | null>;
  /** Counts a permanent failure; pauses the notification at `threshold` in a row. Returns whether it paused. */
  /**
   * Counts a permanent failure of the notification towards pausing it, once per occurrence (a
   * failure of the occurrence counted last is not counted again); true when this one paused it.
   */
  recordPermanentFailure(
    id: string,
    reason: string,
    threshold: number,
    now: Date,
    occurrence?: string,
  ): Promise<boolean>;
  resetFailures(id: string): Promise<void>;
  /**
   * Takes `id` out of `scheduleId`'s dispatch index where the notification, read in the same
   * transaction, calls for no entry there (gone, paused, on another schedule, or a document the
   * index cannot hold): an entry that a change outside this system left (a document deleted or
   * edited in the console), which every tick would otherwise publish again. True when it wrote.
   */
  leaveIndex(id: string, scheduleId: string): Promise<boolean>;
}

export interface AccountStore {
  getRaw(accountId: string): Promise<Record<string, unknown> | null>;
}

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';

  /** True when the run is done: another dispatcher took it over when this one's lease ran out, and finished it. */
  constructor(
    message: string,
    readonly finishedElsewhere = false,
  ) {
    super(message);
  }
}

/** Why `owner` no longer holds the run as stored: LeaseLostError's words for it. */
export function leaseLost(runId: string, run: { status: string; leaseOwner: string | null }): LeaseLostError {
  if (run.status === 'done') {
    return new LeaseLostError(
      `run ${runId} was finished by another dispatcher, which took it over when this one's lease ran out`,
      true,
    );
  }
  return new LeaseLostError(`run ${runId} is leased by ${run.leaseOwner ?? 'no one (released)'}`);
}
