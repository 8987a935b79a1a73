import {
  type DocumentReference,
  type DocumentSnapshot,
  FieldPath,
  FieldValue,
  type Firestore,
  type Query,
  type QueryDocumentSnapshot,
  Timestamp,
  type Transaction,
} from '@google-cloud/firestore';
import { chunksOf, mapLimit } from './concurrency';
import { buildQuery, toDate } from './firestore-store';
import { indexedSchedule, type MemberChange, scheduleOf, tidyBuckets, writeIndexChanges } from './members';
import {
  type Account,
  accountSchema,
  conversationIdProblem,
  looksBlank,
  type NotificationInput,
  newIdProblem,
  notificationIdProblem,
  notificationSchema,
  quoted,
  slackIdCharacterProblem,
  storedText,
  titleSchema,
} from './model';
import { QUERIES } from './queries';
import {
  checkedSchedule,
  firesAt,
  latestOccurrence,
  nextOccurrence,
  normalCron,
  scheduleIdOf,
  scheduleProblemField,
  stepPastCycle,
} from './schedule';
import { COLLECTIONS } from './topology';

/** Writing notifications and accounts: the admin API, the CLI and the local seed share this. */

export interface NewNotification {
  id: string;
  accountId: string;
  channelId: string;
  teamId?: string;
  cron: string;
  timezone: string;
  title?: string;
  enabled?: boolean;
}

export class InvalidNotificationError extends Error {
  override readonly name = 'InvalidNotificationError';
  constructor(
    message: string,
    /** The field of a new notification ({id, accountId, channelId, cron, …}) that is wrong. */
    readonly field: string,
    /** What is wrong with that field, without naming it (for a caller that names it its own way). */
    readonly problem: string,
  ) {
    super(message);
  }
}

/** The stored document's paths, as the fields of a new notification. */
const FIELD_OF_PATH: Record<string, string> = {
  accountId: 'accountId',
  'slack.channelId': 'channelId',
  'slack.teamId': 'teamId',
  'report.title': 'title',
  schedule: 'cron',
};

/** Validates a notification (schema, cron, time zone) and gives the document to store. */
export function notificationDoc(n: NewNotification): NotificationInput & { scheduleId: string } {
  const { doc, problems } = checkedNotification(n);
  if (problems[0]) throw problems[0];
  return doc;
}

/**
 * Everything wrong with a notification, each an InvalidNotificationError naming its field, in
 * the order its fields are checked (the first is what notificationDoc throws): an import names
 * them all, so a file is mended in one pass.
 */
export function notificationProblems(n: NewNotification): InvalidNotificationError[] {
  return checkedNotification(n).problems;
}

/** The same cron in a zone every cron takes; the same zone with a cron every zone takes. */
const ANY_ZONE = 'UTC';
const ANY_CRON = '* * * * *';

function checkedNotification(n: NewNotification): {
  doc: NotificationInput & { scheduleId: string };
  problems: InvalidNotificationError[];
} {
  const problems: InvalidNotificationError[] = [];
  const named = new Set<string>();
  // An id that is not one (an invisible character, a line break) is quoted with its escapes, as
  // its own problem quotes it, not written as it is before every other problem.
  const idRuleProblem = newIdProblem(n.id);
  const who = `notification ${idRuleProblem === null ? n.id : quoted(n.id)}`;
  const add = (field: string, problem: string, message = `${who}: ${field}: ${problem}`) => {
    if (named.has(field)) return;
    named.add(field);
    problems.push(new InvalidNotificationError(message, field, problem));
  };
  const checked = checkedSchedule(n.cron.trim(), n.timezone);
  if ('problem' in checked) {
    // The schedule is checked as one, its zone first; when it fails, each field is checked on
    // its own too (the cron in a zone any cron takes, the zone with a cron any zone takes), so
    // that a cron and a zone both wrong are both named, and each by the check that refused it.
    const alone = (c: ReturnType<typeof checkedSchedule>) => ('problem' in c ? c.problem : undefined);
    const zoneProblem = alone(checkedSchedule(ANY_CRON, n.timezone));
    const cronProblem = alone(checkedSchedule(n.cron.trim(), ANY_ZONE));
    const field =
      checked.problem === zoneProblem
        ? 'timezone'
        : checked.problem === cronProblem
          ? 'cron'
          : scheduleProblemField(checked.problem);
    add(field, checked.problem, `${who}: ${checked.problem}`);
    if (zoneProblem !== undefined) add('timezone', zoneProblem, `${who}: ${zoneProblem}`);
    if (cronProblem !== undefined) add('cron', cronProblem, `${who}: ${cronProblem}`);
  }
  // A cron good on its own, whatever its zone: a step past its cycle is named beside a bad zone.
  const cron = 'problem' in checked ? normalCron(n.cron) : checked.cron;
  const step = named.has('cron') ? null : stepPastCycle(cron);
  if (step !== null) {
    const problem = `invalid cron ${JSON.stringify(cron)}: ${step}`;
    add('cron', problem, `${who}: ${problem}`);
  }
  // A Slack id has no blanks, control or invisible characters: one with them could never be
  // posted to (the document's schema says so too; named here, in the order fields are checked).
  for (const [field, id] of [
    ['channelId', n.channelId],
    ['teamId', n.teamId],
  ] as const) {
    const problem = id === undefined ? null : slackIdCharacterProblem(id);
    if (problem !== null) add(field, problem);
  }
  const channelProblem = n.channelId.trim() === '' ? null : conversationIdProblem(n.channelId);
  if (channelProblem !== null) add('channelId', channelProblem);
  // The rules of a new account's id (parseAccountsFile): an accountId no account can have now
  // would name an account never found, and the notification would fail at every occurrence.
  const accountIdProblem = newIdProblem(n.accountId);
  if (accountIdProblem) add('accountId', accountIdProblem);
  // A title given blank would be dropped, or kept and never shown: said instead.
  if (n.title !== undefined && looksBlank(n.title)) {
    add('title', 'is blank: leave the title out for the default, "{account name}: scheduled report"');
  }
  const titleProblem = n.title === undefined ? undefined : titleSchema.safeParse(n.title).error?.issues[0]?.message;
  if (titleProblem !== undefined) add('title', titleProblem);
  // A schedule that is wrong is named above; the document is checked with one that is not.
  const schedule = 'problem' in checked ? { cron: ANY_CRON, timezone: ANY_ZONE } : { ...checked };
  const doc = {
    accountId: n.accountId,
    // A workspace id given blank is named as such (slackIdSchema), not dropped.
    slack: n.teamId !== undefined ? { teamId: n.teamId, channelId: n.channelId } : { channelId: n.channelId },
    schedule,
    scheduleId: scheduleIdOf(schedule),
    enabled: n.enabled ?? true,
    report: n.title !== undefined ? { kind: 'account-summary', title: n.title } : { kind: 'account-summary' },
    consecutiveFailures: 0,
    pausedReason: null,
  };
  const parsed = notificationSchema.safeParse(doc);
  // Each field the document's schema refuses, once, by its first issue, unless named above.
  for (const issue of parsed.error?.issues ?? []) {
    const path = issue.path.join('.');
    add(fieldOfPath(path), issue.message, `${who}: ${FIELD_OF_PATH[path] ?? path}: ${issue.message}`);
  }
  const idProblem = notificationIdProblem(n.id);
  if (idProblem) add('id', idProblem, `notification id ${quoted(n.id)}: ${idProblem}`);
  return { doc, problems };
}

/** The field of a new notification a stored document's path is. */
function fieldOfPath(path: string): string {
  return FIELD_OF_PATH[path] ?? FIELD_OF_PATH[path.split('.')[0] ?? ''] ?? '(body)';
}

export interface SaveOptions {
  now?: Date;
  /**
   * Make a schedule created now due at once (its latest occurrence), instead of at its
   * next one. The local demo uses it so the first tick has work.
   */
  dueNow?: boolean;
  onProgress?: (written: number) => void;
  /**
   * Each schedule document checked or made, before any notification is written: an import of
   * per-tenant schedules has thousands, one transaction each, which take a while on their own.
   */
  onSchedules?: (done: number, total: number) => void;
  /**
   * Once aborted (a Ctrl-C), no further chunk starts; the transactions under way finish, so
   * none is left open holding its locks, and the call fails saying how many were saved.
   */
  signal?: AbortSignal;
  /**
   * Once aborted (an admin request answered 504), no attempt of a chunk's transaction begins:
   * a write its caller was told may not have landed does not land a minute later, over a newer
   * one. An attempt under way may still commit.
   */
  lateSignal?: AbortSignal;
  /** Attempts of each chunk's transaction (SAVE_TRANSACTION_ATTEMPTS unless given). */
  transactionAttempts?: number;
  /**
   * Runs the transaction that makes, mends or reads a schedule the save's first read found
   * missing or in need of it, in the turn this gives that schedule; a schedule found sound
   * takes no turn. The admin API's saves take one schedule's turn at a time: of many saves at
   * once onto a schedule none has yet, one makes it and the rest find it made, where a
   * transaction each, all reading the missing document to create it, met each other's locks
   * and were tried again (40 at once: 39 retries and 8.8 s; 100 at once: every one answered 504).
   */
  scheduleTurn?: <T>(scheduleId: string, make: () => Promise<T>) => Promise<T>;
}

/**
 * Notifications written per transaction: each needs its own write and at most two index
 * writes, inside Firestore's 500 writes per commit.
 */
const SAVE_CHUNK = 150;
/** Chunks written at once. */
const SAVE_PARALLEL = 4;

/** Schedule documents made at once, each in a transaction of its own (ensureSchedules), in all pages together. */
const SCHEDULES_PARALLEL = 16;
/** Schedule documents read in one call, and made in one batch, by ensureSchedules (a batch holds 500 writes at most). */
const SCHEDULES_PER_READ = 300;
/** Pages of those at once. */
const SCHEDULE_READS_PARALLEL = 4;

/**
 * Attempts of one chunk's transaction (the client's default is 5). A transaction an import
 * left open when it stopped without ending it (its Firestore stalled, the process killed) keeps
 * its locks until Firestore expires it, about a minute after its last call (measured on the
 * emulator: 64 s; Firestore's idle timeout is 60 s); a save of the same notifications meanwhile
 * is aborted on a lock timeout, and five attempts give up after about 18 s. Twenty outlast
 * it, and an import is still bounded by its --stall-timeout.
 */
export const SAVE_TRANSACTION_ATTEMPTS = 20;

/** Accounts handed to the writer between two checks of the signal. */
const ACCOUNTS_PER_FLUSH = 500;

/** A save stopped by its signal (SaveOptions.signal): the chunks under way finished, none after. */
export class SaveInterrupted extends Error {
  override readonly name = 'SaveInterrupted';
}

/**
 * Firestore's time, as a read gives it: a save's first instants and times are taken from it,
 * not from the clock of the machine that runs the save (an operator's, for the command line),
 * which may be off by minutes: a new schedule's first instant would be passed over, or one
 * before the save sent. One read, of one schedule's id.
 */
async function firestoreNow(db: Firestore): Promise<Date> {
  const snap = await db.collection(COLLECTIONS.schedules).select().limit(1).get();
  return snap.readTime.toDate();
}

/**
 * Writes notifications, the schedule documents they need, and their entries in the dispatch
 * index (shared/members.ts). Each chunk is one transaction that reads the notifications'
 * current documents, so a notification that moves to another schedule, or is disabled, leaves
 * its old schedule's index in the same commit.
 */
export async function saveNotifications(
  db: Firestore,
  items: NewNotification[],
  opts: SaveOptions = {},
): Promise<{ created: Set<string>; resumed: Set<string> }> {
  const now = opts.now ?? (await firestoreNow(db));
  const docs = items.map((n) => ({ id: n.id, doc: notificationDoc(n) }));
  const schedules = new Map<string, { cron: string; timezone: string }>();
  for (const { doc } of docs) schedules.set(doc.scheduleId, doc.schedule);

  // A save makes a schedule due at the instant just past, for a notification moved to it then.
  try {
    await ensureSchedules(db, schedules, now, {
      dueNow: opts.dueNow ?? false,
      grace: true,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.lateSignal ? { lateSignal: opts.lateSignal } : {}),
      ...(opts.onSchedules ? { onProgress: opts.onSchedules } : {}),
      ...(opts.scheduleTurn ? { turn: opts.scheduleTurn } : {}),
    });
  } catch (err) {
    if (!(err instanceof SaveInterrupted)) throw err;
    const ids = new Set(items.map((n) => n.id)).size;
    throw new SaveInterrupted(
      `interrupted: saved 0 of ${ids} notifications, while making their schedules (saving them again is safe)`,
    );
  }

  // The last write of an id wins, as it would one write after another.
  const latest = [...new Map(docs.map((d) => [d.id, d])).values()];
  const chunks = chunksOf(latest, SAVE_CHUNK);
  let written = 0;
  let reported = 0;
  const created = new Set<string>();
  const resumed = new Set<string>();
  const writeChunk = async (chunk: typeof latest): Promise<void> => {
    if (opts.signal?.aborted) throw new SaveInterrupted();
    const refs = chunk.map(({ id }) => db.collection(COLLECTIONS.notifications).doc(id));
    // Read in the transaction that writes: what a concurrent save made first is not called new here.
    const made = await db.runTransaction(
      async (tx) => {
        if (opts.lateSignal?.aborted) throw new SaveInterrupted();
        const current = await tx.getAll(...refs);
        const stored = current.map((snap) => snap?.data());
        // Read before any write, as a transaction must.
        const owed = opts.dueNow
          ? new Map<string, Date>()
          : await owedInstants(
              tx,
              db,
              chunk.map(({ doc }, i) => ({ from: scheduleOf(stored[i]), to: doc })),
              now,
            );
        for (const [id, at] of owed) tx.update(db.collection(COLLECTIONS.schedules).doc(id), { nextRunAt: at });
        chunk.forEach(({ doc }, i) => {
          // A notification replaced keeps the time it was first made, and is not said to be
          // updated before it: a save that began before another made it lands after that one.
          const since: unknown = current[i]?.exists ? current[i]?.get('createdAt') : undefined;
          const updatedAt = since instanceof Timestamp && since.toMillis() > now.getTime() ? since : now;
          tx.set(refs[i] as DocumentReference, { ...doc, createdAt: since ?? now, updatedAt });
        });
        const changes = chunk.map(({ id, doc }, i) => ({
          id,
          from: indexedSchedule(stored[i]),
          to: indexedSchedule(doc),
        }));
        writeIndexChanges(tx, db, changes);
        return {
          made: chunk.filter((_, i) => !current[i]?.exists).map(({ id }) => id),
          // Paused (a reason kept) and saved enabled: resumed by this save.
          resumed: chunk
            .filter(
              ({ doc }, i) =>
                doc.enabled && stored[i]?.enabled === false && typeof stored[i]?.pausedReason === 'string',
            )
            .map(({ id }) => id),
        };
      },
      { maxAttempts: opts.transactionAttempts ?? SAVE_TRANSACTION_ATTEMPTS },
    );
    for (const id of made.made) created.add(id);
    for (const id of made.resumed) resumed.add(id);
    written += chunk.length;
    if (opts.onProgress && written - reported >= 500) {
      reported = written;
      opts.onProgress(written);
    }
  };
  try {
    await mapLimit(chunks, SAVE_PARALLEL, writeChunk);
  } catch (err) {
    if (err instanceof SaveInterrupted) {
      throw new SaveInterrupted(
        `interrupted: saved ${written} of ${latest.length} notifications, every one whole (saving them again is safe)`,
      );
    }
    // Each chunk landed whole or not at all, and saving again is harmless: say how far it got.
    throw new Error(
      `saved ${written} of ${latest.length} notifications before a write failed (saving them again is safe): ${(err as Error).message}`,
      { cause: err },
    );
  }
  opts.onProgress?.(written);
  return { created, resumed };
}

/** How many accounts one existence read asks for. */
const ACCOUNTS_PER_READ = 300;

/**
 * Those of `accountIds` that have no account document, in the order given: a notification
 * naming one is saved all the same (accounts may be imported after it), and is recorded failed
 * (`account_not_found`) when it is sent. Only the account's name is read, a few hundred at once.
 */
export async function missingAccounts(db: Firestore, accountIds: Iterable<string>): Promise<string[]> {
  const ids = [...new Set(accountIds)];
  const missing: string[] = [];
  for (const chunk of chunksOf(ids, ACCOUNTS_PER_READ)) {
    const refs = chunk.map((id) => db.collection(COLLECTIONS.accounts).doc(id));
    const snaps = await db.getAll(...refs, { fieldMask: ['name'] });
    for (const snap of snaps) if (!snap.exists) missing.push(snap.id);
  }
  return missing;
}

/**
 * Creates or replaces accounts. Every write is awaited: one that fails (after the writer's own
 * retries) fails the call, saying how many were saved; saving them again is safe.
 */
export async function saveAccounts(
  db: Firestore,
  accounts: { id: string; account: Account }[],
  opts: { onProgress?: (written: number) => void; signal?: AbortSignal } = {},
): Promise<void> {
  const writer = db.bulkWriter();
  let written = 0;
  const failures: string[] = [];
  const writes: Promise<void>[] = [];
  // A slice at a time, so that an abort (SaveOptions.signal) stops between two.
  for (const slice of chunksOf(accounts, ACCOUNTS_PER_FLUSH)) {
    if (opts.signal?.aborted) break;
    for (const { id, account } of slice) {
      writes.push(
        writer.set(db.collection(COLLECTIONS.accounts).doc(id), accountSchema.parse(account)).then(
          () => {
            written++;
            opts.onProgress?.(written);
          },
          (err: unknown) => {
            failures.push(`${id}: ${(err as Error).message}`);
          },
        ),
      );
    }
    await writer.flush();
  }
  await writer.close();
  await Promise.all(writes);
  if (opts.signal?.aborted && writes.length < accounts.length) {
    throw new SaveInterrupted(
      `interrupted: saved ${written} of ${accounts.length} accounts (saving them again is safe)`,
    );
  }
  if (failures.length > 0) {
    throw new Error(
      `saved ${written} of ${accounts.length} accounts; ${failures.length} failed (saving them again is safe), the first: ${failures[0]}`,
    );
  }
}

/** The reason a pause keeps when none is given. */
export const DEFAULT_PAUSE_REASON = 'paused by an operator';

type EnabledWrite = { update: Record<string, unknown>; change: MemberChange };

/** A notification's update, with the dispatch index change that goes with it. */
function withIndexChange(
  id: string,
  data: Record<string, unknown> | undefined,
  update: Record<string, unknown>,
): EnabledWrite {
  return { update, change: { id, from: indexedSchedule(data), to: indexedSchedule({ ...data, ...update }) } };
}

/**
 * The update that resumes a notification, and its dispatch index change: both are written in
 * one transaction. It clears the failure count. The single and the bulk resume write through this.
 */
function resumeWrite(id: string, data: Record<string, unknown> | undefined, now: Date): EnabledWrite {
  return withIndexChange(id, data, {
    enabled: true,
    pausedReason: null,
    pausedAt: null,
    consecutiveFailures: 0,
    updatedAt: now,
  });
}

/**
 * The update that pauses a notification, and its dispatch index change; null when nothing is to
 * change. Pausing one already paused keeps its `pausedAt`, and its `pausedReason` unless a
 * reason is given: an automatic pause (`invalid_auth`) is not renamed by a second pause that
 * gives none, so a bulk resume for that reason still finds it. One that is off but was never
 * paused (imported with `enabled: false`) is paused now: it gets a reason and a `pausedAt`.
 */
function pauseWrite(
  id: string,
  data: Record<string, unknown> | undefined,
  reason: string | undefined,
  now: Date,
  defaultReason = DEFAULT_PAUSE_REASON,
): EnabledWrite | null {
  if (data?.enabled !== false || typeof data.pausedReason !== 'string') {
    return withIndexChange(id, data, {
      enabled: false,
      pausedReason: reason ?? defaultReason,
      pausedAt: now,
      updatedAt: now,
    });
  }
  if (reason === undefined || reason === data.pausedReason) return null;
  return withIndexChange(id, data, { pausedReason: reason, updatedAt: now });
}

/** What a pause or resume found and left: null from setNotificationEnabled for no such notification. */
export interface EnabledChange {
  /** Whether it was enabled before. */
  wasEnabled: boolean;
  /** Whether it was paused before: off with a pausedReason (one imported with `enabled: false` has none). */
  wasPaused: boolean;
  /** Its pausedReason after (null once resumed). */
  pausedReason: string | null;
}

/**
 * Pauses or resumes a notification, and its dispatch index entry with it; null when it does
 * not exist. Resuming clears the failure count. A pause with no reason gives `defaultReason` to
 * one that was enabled, and leaves one already paused as it was.
 */
export async function setNotificationEnabled(
  db: Firestore,
  id: string,
  enabled: boolean,
  reason?: string,
  defaultReason?: string,
): Promise<EnabledChange | null> {
  const ref = db.collection(COLLECTIONS.notifications).doc(id);
  return db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    if (!snap.exists) return null;
    const data = snap.data();
    const now = new Date();
    const write = enabled ? resumeWrite(id, data, now) : pauseWrite(id, data, reason, now, defaultReason);
    if (write !== null) {
      tx.update(ref, write.update);
      writeIndexChanges(tx, db, [write.change]);
    }
    const after = { ...data, ...write?.update };
    return {
      wasEnabled: data?.enabled !== false,
      wasPaused: data?.enabled === false && typeof data.pausedReason === 'string',
      pausedReason: typeof after.pausedReason === 'string' ? after.pausedReason : null,
    };
  });
}

/**
 * What a pause or resume answers (the CLI prints it, the admin API sends it): the state it left,
 * and `alreadyPaused` or `alreadyEnabled` when the notification was so before (one imported with
 * `enabled: false` and never paused is paused by this call: not `alreadyPaused`).
 */
export function enabledOutput(
  id: string,
  enabled: boolean,
  change: EnabledChange,
): { id: string; enabled: boolean; pausedReason?: string | null; alreadyPaused?: true; alreadyEnabled?: true } {
  if (enabled) return change.wasEnabled ? { id, enabled, alreadyEnabled: true } : { id, enabled };
  return change.wasPaused
    ? { id, enabled, pausedReason: change.pausedReason, alreadyPaused: true }
    : { id, enabled, pausedReason: change.pausedReason };
}

/**
 * Deletes a notification, and its dispatch index entry in the same commit, so no tick
 * publishes it again; false when it does not exist. A message already published for it finds
 * it gone and posts nothing. Its schedule document stays (shared with others, or ticking over
 * an empty index), and so do its deliveries, until they expire.
 */
export async function deleteNotification(db: Firestore, id: string): Promise<boolean> {
  const ref = db.collection(COLLECTIONS.notifications).doc(id);
  return db.runTransaction(async (tx) => {
    const snap = await tx.get(ref);
    if (!snap.exists) return false;
    writeIndexChanges(tx, db, [{ id, from: indexedSchedule(snap.data()), to: null }]);
    tx.delete(ref);
    return true;
  });
}

/** Which paused notifications a bulk resume takes: those paused for one reason, or every paused one. */
export type PausedSelector = { pausedReason: string } | { allPaused: true };

export interface ResumePausedOptions {
  /** Count and list the matches, write nothing. */
  dryRun?: boolean;
  /** Notifications read per page (each page is resumed before the next is read). */
  pageSize?: number;
  /** Ids a dry run lists at most (the rest are counted). */
  listLimit?: number;
  now?: Date;
  onProgress?: (progress: ResumePausedProgress) => void;
  /**
   * Once aborted (a Ctrl-C, a SIGTERM), no further page is read and no further chunk of the
   * page under way starts; the transactions under way finish, so none is left open holding its
   * locks, and the result says it was interrupted.
   */
  signal?: AbortSignal;
}

export interface ResumePausedProgress {
  /** Matches read so far. */
  matched: number;
  resumed: number;
  /** No longer paused as selected when their transaction read them (resumed, re-paused or deleted meanwhile). */
  skipped: number;
  /** In a transaction that failed: still paused; running the resume again takes them. */
  failed: number;
}

export interface ResumePausedResult extends ResumePausedProgress {
  dryRun: boolean;
  /** The matches by pausedReason, as read. */
  byReason: Record<string, number>;
  /** A dry run's matches by id, up to listLimit (empty otherwise). */
  ids: string[];
  /** Matches a dry run did not list. */
  unlisted: number;
  /** The first failure's message, if any. */
  firstError: string | null;
  /** Stopped by its signal (ResumePausedOptions.signal): what is still paused is left to a resume again. */
  interrupted?: boolean;
  /** Stopped: matches read whose chunk was not begun (still paused), besides those in no page read. */
  notReached?: number;
}

/** A bulk resume's result before it has matched anything. */
export function noneResumed(dryRun: boolean): ResumePausedResult {
  return {
    dryRun,
    matched: 0,
    resumed: 0,
    skipped: 0,
    failed: 0,
    byReason: {},
    ids: [],
    unlisted: 0,
    firstError: null,
  };
}

/** The query of a bulk resume's matches (and of its count). */
export function pausedQuery(db: Firestore, selector: PausedSelector): Query {
  return 'pausedReason' in selector
    ? buildQuery(db, QUERIES.notificationsPausedFor, { pausedReason: selector.pausedReason })
    : buildQuery(db, QUERIES.pausedNotifications, { pausedReason: null });
}

/** Notifications a bulk resume reads per page. */
export const RESUME_PAGE_SIZE = 500;
/** The largest page `resume` reads at once: a page's ids are held in memory until it is done. */
export const RESUME_PAGE_SIZE_MAX = 10_000;

/**
 * Resumes every notification paused for a reason (`{ pausedReason }`), or every paused one
 * (`{ allPaused: true }`: a pausedReason is set; one imported with `enabled: false` has none and
 * is left alone). Reads the matches a page at a time (ids and reasons only), and resumes each
 * chunk in a transaction that reads them again and resumes only those still paused as selected,
 * exactly as `setNotificationEnabled(id, true)` does: failure count cleared, back in the dispatch
 * index in the same commit. A resumed notification leaves the query, so running it again
 * resumes only what is still (or newly) paused: safe to repeat, and safe to interrupt.
 */
export async function resumePaused(
  db: Firestore,
  selector: PausedSelector,
  opts: ResumePausedOptions = {},
): Promise<ResumePausedResult> {
  const pageSize = opts.pageSize ?? RESUME_PAGE_SIZE;
  const listLimit = opts.listLimit ?? 1000;
  const reason = 'pausedReason' in selector ? selector.pausedReason : null;
  const base = pausedQuery(db, selector);
  const selected = (data: Record<string, unknown> | undefined): boolean =>
    data?.enabled === false &&
    (reason !== null ? data.pausedReason === reason : typeof data?.pausedReason === 'string');

  const result = noneResumed(opts.dryRun === true);
  let after: QueryDocumentSnapshot | null = null;
  for (;;) {
    if (opts.signal?.aborted) {
      result.interrupted = true;
      break;
    }
    // The cursor is the last match's (reason, id): resuming a page does not move the next one.
    let q = base.select('pausedReason').limit(pageSize);
    if (after) q = q.startAfter(after);
    const page = await q.get();
    if (page.empty) break;
    for (const d of page.docs) {
      const why = storedText(d.get('pausedReason'));
      result.byReason[why] = (result.byReason[why] ?? 0) + 1;
    }
    result.matched += page.size;
    if (result.dryRun) {
      for (const d of page.docs) {
        if (result.ids.length < listLimit) result.ids.push(d.id);
        else result.unlisted++;
      }
    } else {
      const now = opts.now ?? new Date();
      await mapLimit(chunksOf(page.docs, SAVE_CHUNK), SAVE_PARALLEL, async (chunk) => {
        // Stopped: the chunks under way finish, none after (still paused, for a resume again).
        if (opts.signal?.aborted) {
          result.interrupted = true;
          result.notReached = (result.notReached ?? 0) + chunk.length;
          return;
        }
        try {
          const resumed = await db.runTransaction(async (tx) => {
            const current = await tx.getAll(...chunk.map((d) => d.ref));
            const changes: MemberChange[] = [];
            for (const snap of current) {
              if (!snap.exists || !selected(snap.data())) continue;
              const { update, change } = resumeWrite(snap.id, snap.data(), now);
              tx.update(snap.ref, update);
              changes.push(change);
            }
            writeIndexChanges(tx, db, changes);
            return changes.length;
          });
          result.resumed += resumed;
          result.skipped += chunk.length - resumed;
        } catch (err) {
          result.failed += chunk.length;
          result.firstError ??= (err as Error).message;
        }
      });
    }
    opts.onProgress?.({
      matched: result.matched,
      resumed: result.resumed,
      skipped: result.skipped,
      failed: result.failed,
    });
    after = page.docs[page.docs.length - 1] ?? null;
    if (page.size < pageSize) break;
  }
  return result;
}

/**
 * The schedules that notifications of a save move to, and that no tick has reached yet, brought
 * back to the instant the schedules they leave still owe, where the new schedule fires then too
 * (a zone with the same offset that day, the same cron written another way): that instant is
 * past and not yet dispatched (ticks held up by an outage, or the seconds before an instant's
 * tick), and the notification has left the old schedule's index, so it would be sent by
 * neither. The next tick sends it, or counts it skipped when it is older than the catch-up
 * window, as the old schedule would have. The same instant alone: a tick under way may still
 * send it from the old schedule (its index read before the move), and the ledger then keeps it
 * to one post, where another instant of the new schedule would make a second post that day. A
 * notification paused until this save counts as leaving its schedule too (resumed in place, the
 * old schedule would send it). Left as they are: a schedule a tick has reached (one that ran,
 * counted skipped instants, or runs now), which sends what it owes to the moved notification
 * too, and a move from a schedule whose run is under way, which sends the notification itself.
 */
async function owedInstants(
  tx: Transaction,
  db: Firestore,
  moves: { from: string | null; to: { scheduleId: string; schedule: { cron: string; timezone: string } } }[],
  now: Date,
): Promise<Map<string, Date>> {
  const moved = moves.filter(
    (m): m is { from: string; to: (typeof moves)[number]['to'] } =>
      m.from !== null && indexedSchedule(m.to) !== null && m.from !== m.to.scheduleId,
  );
  const owed = new Map<string, Date>();
  if (moved.length === 0) return owed;
  const collection = db.collection(COLLECTIONS.schedules);
  // The schedules left are read without a lock: this save does not write them, and the
  // dispatcher claims and moves them on; what is written, the schedules moved to, is locked.
  const [left, targets] = await Promise.all([
    db.getAll(...[...new Set(moved.map((m) => m.from))].map((id) => collection.doc(id))),
    tx.getAll(...[...new Set(moved.map((m) => m.to.scheduleId))].map((id) => collection.doc(id))),
  ]);
  const snaps = new Map([...left, ...targets].map((snap) => [snap.ref.path, snap]));
  for (const { from, to } of moved) {
    const target = snaps.get(collection.doc(to.scheduleId).path);
    const old = snaps.get(collection.doc(from).path);
    if (
      !target?.exists ||
      target.get('lastRunAt') ||
      target.get('activeOccurrence') ||
      target.get('skippedOccurrences') ||
      old?.get('activeOccurrence')
    ) {
      continue;
    }
    const pending = toDate(old?.get('nextRunAt'));
    const due = owed.get(to.scheduleId) ?? toDate(target.get('nextRunAt'));
    if (pending === null || due === null || pending > now || pending >= due) continue;
    if (firesAt(to.schedule, pending)) owed.set(to.scheduleId, pending);
  }
  return owed;
}

/**
 * When a notification is next sent: its schedule's `nextRunAt`, the instant a tick dispatches
 * next (past, when ticks are behind), or null when it is paused, or its schedule has no
 * document or no time (`slack-fanout reindex` makes and mends them).
 */
export async function nextRunOf(db: Firestore, notification: Record<string, unknown>): Promise<Date | null> {
  const scheduleId = indexedSchedule(notification);
  if (scheduleId === null) return null;
  const snap = await db.collection(COLLECTIONS.schedules).doc(scheduleId).get();
  return toDate(snap.get('nextRunAt'));
}

/**
 * How long after one of its instants a schedule made then is still due at that instant. A
 * notification moved to a schedule that does not exist yet, in the seconds between an instant
 * and the tick that dispatches it, has left the old schedule's index before that tick reads it:
 * made due at its next instant, the new schedule would not send that one, and neither would
 * the old. Made due at the instant just past, the tick sends it; where the old schedule's run
 * had already sent it, the ledger keeps it to one post (the same delivery id).
 */
export const NEW_SCHEDULE_GRACE_MS = 60_000;

/** When a schedule made at `now` is first due: its instant just past (NEW_SCHEDULE_GRACE_MS), else its next. */
export function firstDueAt(s: { cron: string; timezone: string }, now: Date): Date {
  const latest = latestOccurrence(s, now);
  if (latest && now.getTime() - latest.getTime() <= NEW_SCHEDULE_GRACE_MS) return latest;
  return nextOccurrence(s, now);
}

/**
 * What to write to mend a stored schedule document that cannot work as it is (edited by hand,
 * or made again by an older version's write after it was deleted): its cron or time zone not
 * those of its id's, a `nextRunAt` that is not a time (no due query finds it), or disabled
 * (`invalidReason`) although its cron and time zone are valid. Null when it is sound.
 */
export function scheduleRepair(
  stored: Record<string, unknown>,
  s: { cron: string; timezone: string },
  nextRunAt: Date,
): Record<string, unknown> | null {
  const fields: Record<string, unknown> = {};
  // Its own cron and zone, however spaced: a cron written with other blanks shares the id (scheduleIdOf).
  const own =
    typeof stored.cron === 'string' &&
    typeof stored.timezone === 'string' &&
    scheduleIdOf({ cron: stored.cron, timezone: stored.timezone }) === scheduleIdOf(s);
  if (!own) Object.assign(fields, s);
  const disabled = typeof stored.invalidReason === 'string';
  if (disabled || !(stored.nextRunAt instanceof Timestamp)) fields.nextRunAt = nextRunAt;
  if (disabled) fields.invalidReason = FieldValue.delete();
  return Object.keys(fields).length > 0 ? fields : null;
}

/**
 * Creates each schedule document that does not exist yet, due at its next occurrence (with
 * `grace`, a save's, at firstDueAt; with `dueNow`, at its latest occurrence, which also makes an
 * existing one due now unless a run of it is under way), and mends one that cannot work as
 * stored (scheduleRepair), due at its next occurrence: an instant just past may have been sent
 * already. Returns how many it created and mended.
 */
async function ensureSchedules(
  db: Firestore,
  schedules: Map<string, { cron: string; timezone: string }>,
  now: Date,
  opts: {
    dueNow: boolean;
    grace: boolean;
    signal?: AbortSignal;
    lateSignal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
    /** SaveOptions.scheduleTurn. */
    turn?: <T>(scheduleId: string, make: () => Promise<T>) => Promise<T>;
  },
): Promise<{ created: number; repaired: number }> {
  const counts = { created: 0, repaired: 0 };
  let checked = 0;
  const total = schedules.size;
  const progressed = (n: number) => {
    checked += n;
    opts.onProgress?.(checked, total);
  };
  // Before the first: what came before (the notifications' documents built) may have taken long.
  opts.onProgress?.(0, total);
  const collection = db.collection(COLLECTIONS.schedules);
  // Where a schedule made now is first due, and whether one that exists is made due now too.
  const firstRunAt = (s: { cron: string; timezone: string }) => {
    const latest = opts.dueNow ? latestOccurrence(s, now) : null;
    return { latest, nextRunAt: latest ?? (opts.grace ? firstDueAt(s, now) : nextOccurrence(s, now)) };
  };
  // What a stored schedule document needs: mending (scheduleRepair, whose fields do not depend on
  // the time given), making due now, or nothing. The page's read and the transaction both ask.
  const needs = (snap: DocumentSnapshot, s: { cron: string; timezone: string }): 'repair' | 'due' | null =>
    scheduleRepair(snap.data() ?? {}, s, now) ? 'repair' : opts.dueNow && !snap.get('activeOccurrence') ? 'due' : null;
  // One schedule in a transaction of its own: it reads the document and creates it, mends it or
  // makes it due now, as it finds it then.
  const inTransaction = async ([id, s]: [string, { cron: string; timezone: string }]) => {
    // Stopped (SaveOptions.signal): the schedules under way finish, none after.
    if (opts.signal?.aborted) throw new SaveInterrupted();
    const ref = collection.doc(id);
    const { latest, nextRunAt } = firstRunAt(s);
    const done = await db.runTransaction(
      async (tx) => {
        // A save answered late makes no schedule either (SaveOptions.lateSignal).
        if (opts.lateSignal?.aborted) throw new SaveInterrupted();
        const snap = await tx.get(ref);
        if (!snap.exists) {
          tx.create(ref, newSchedule(s, nextRunAt, now));
          return 'created' as const;
        }
        const need = needs(snap, s);
        if (need === 'repair') {
          const repair = scheduleRepair(snap.data() ?? {}, s, latest ?? nextOccurrence(s, now));
          tx.update(ref, { ...repair, updatedAt: now });
          return 'repaired' as const;
        }
        if (need === 'due') tx.update(ref, { nextRunAt });
        return null;
        // As many attempts as a chunk's: a stopped import's transactions hold its schedules' locks too.
      },
      { maxAttempts: SAVE_TRANSACTION_ATTEMPTS },
    );
    if (done) counts[done]++;
    progressed(1);
  };
  // A page of schedules is read in one call. One that is sound, and not to be made due now, is
  // left as it is; those missing are made in one batch of creates (each fails if the document
  // exists, and the batch with it: then each goes the way of the rest); the rest, and any
  // whose batch failed, one transaction each. An import of per-tenant schedules has thousands,
  // nearly all missing the first time and sound after: a transaction each took about 3 ms on
  // the emulator, 16 at once (docs/PERFORMANCE.md, item 29).
  await mapLimit(chunksOf([...schedules], SCHEDULES_PER_READ), SCHEDULE_READS_PARALLEL, async (page) => {
    if (opts.signal?.aborted) throw new SaveInterrupted();
    const snaps = await db.getAll(...page.map(([id]) => collection.doc(id)));
    const missing: typeof page = [];
    const others: typeof page = [];
    let sound = 0;
    page.forEach((entry, i) => {
      const snap = snaps[i];
      if (!snap?.exists) missing.push(entry);
      else if (needs(snap, entry[1]) !== null) others.push(entry);
      else sound++;
    });
    if (sound > 0) progressed(sound);
    // Not with a late signal (an admin API save, of one notification): a batch's commit waits
    // on a lock another transaction holds, and lands when it is let go, after the caller was
    // answered 504; a transaction's next attempt sees the signal and does not begin.
    if (opts.lateSignal) others.push(...missing.splice(0));
    if (missing.length > 0) {
      if (opts.signal?.aborted) throw new SaveInterrupted();
      const batch = db.batch();
      for (const [id, s] of missing) batch.create(collection.doc(id), newSchedule(s, firstRunAt(s).nextRunAt, now));
      try {
        await batch.commit();
        counts.created += missing.length;
        progressed(missing.length);
      } catch {
        // One of them made meanwhile (by another save), a lock another transaction holds, or
        // Firestore not answering: each in a transaction, which finds it as it is.
        others.push(...missing);
      }
    }
    const { turn } = opts;
    await mapLimit(others, SCHEDULES_PARALLEL / SCHEDULE_READS_PARALLEL, (entry) =>
      turn ? turn(entry[0], () => inTransaction(entry)) : inTransaction(entry),
    );
  });
  return counts;
}

/** A schedule document as it is first made. */
function newSchedule(s: { cron: string; timezone: string }, nextRunAt: Date, now: Date): Record<string, unknown> {
  return { ...s, nextRunAt, activeOccurrence: null, skippedOccurrences: 0, createdAt: now };
}

/**
 * Adds every enabled notification to its schedule's dispatch index, where it is missing: for
 * data written before the index existed, restored from a backup without it, or indexed in the
 * buckets of an older layout. Reads the notifications a page at a time and writes each chunk's
 * entries in a transaction that reads those notifications again, so a change made meanwhile is
 * not undone. Once every notification is scanned, creates the schedule documents that are
 * missing (a tick finds a schedule's audience through its document), deletes the buckets of
 * an older layout and rewrites a bucket that is not a plain list of ids (its older `ids` map
 * folded into its array, a repeat dropped) in one pass (tidyBuckets); an interrupted reindex
 * does none of these. Safe to repeat.
 */
export async function reindexNotifications(
  db: Firestore,
  opts: {
    onProgress?: (scanned: number) => void;
    /** After the scan: the schedules the notifications name, checked (and made or mended). */
    onSchedules?: (done: number, total: number) => void;
    /** Then every schedule's index buckets, read for those of an older layout or shape. */
    onBuckets?: (done: number, total: number) => void;
    /** Then, where there are any, the older layout's buckets deleted and buckets rewritten as lists. */
    onRewrites?: (done: number, total: number) => void;
  } = {},
): Promise<{
  scanned: number;
  indexed: number;
  staleBuckets: number;
  foldedBuckets: number;
  schedulesCreated: number;
  schedulesRepaired: number;
}> {
  const collection = db.collection(COLLECTIONS.notifications);
  // The schedules the enabled notifications name, with the cron and time zone they give.
  const named = new Map<string, { cron: string; timezone: string }>();
  let scanned = 0;
  let indexed = 0;
  let after: string | null = null;
  for (;;) {
    let q = collection.select('scheduleId', 'enabled').orderBy(FieldPath.documentId()).limit(1000);
    if (after) q = q.startAfter(after);
    const page = await q.get();
    if (page.empty) break;
    const refs = page.docs.map((d) => d.ref);
    const counts = await mapLimit(chunksOf(refs, SAVE_CHUNK), SAVE_PARALLEL, (chunk) =>
      db.runTransaction(async (tx) => {
        const current = await tx.getAll(...chunk);
        const changes = current.flatMap((snap) => {
          const to = indexedSchedule(snap.data());
          if (to && !named.has(to)) {
            const s = snap.get('schedule') as { cron?: unknown; timezone?: unknown } | undefined;
            if (typeof s?.cron === 'string' && typeof s.timezone === 'string') {
              named.set(to, { cron: s.cron, timezone: s.timezone });
            }
          }
          return to ? [{ id: snap.id, from: to, to }] : [];
        });
        writeIndexChanges(tx, db, changes);
        return changes.length;
      }),
    );
    indexed += counts.reduce((a, b) => a + b, 0);
    scanned += page.size;
    opts.onProgress?.(scanned);
    after = page.docs[page.docs.length - 1]?.id ?? null;
    if (page.size < 1000) break;
  }
  // A schedule whose cron no longer parses is left out: its notifications are refused when sent.
  // Each in its checked spelling: a zone stored with blanks around it, by hand, is read without them.
  const valid = new Map(
    [...named].flatMap(([id, s]) => {
      const checked = checkedSchedule(s.cron.trim(), s.timezone);
      return 'problem' in checked ? [] : [[id, checked] as const];
    }),
  );
  const schedules = await ensureSchedules(db, valid, new Date(), {
    dueNow: false,
    grace: false,
    ...(opts.onSchedules ? { onProgress: opts.onSchedules } : {}),
  });
  const buckets = await tidyBuckets(db, {
    ...(opts.onBuckets ? { onProgress: opts.onBuckets } : {}),
    ...(opts.onRewrites ? { onRewrites: opts.onRewrites } : {}),
  });
  return {
    scanned,
    indexed,
    staleBuckets: buckets.deleted,
    foldedBuckets: buckets.rewritten,
    schedulesCreated: schedules.created,
    schedulesRepaired: schedules.repaired,
  };
}
