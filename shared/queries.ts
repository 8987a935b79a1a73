import { BUCKET_FIELDS, COLLECTIONS, RETENTION } from './topology';

/**
 * Every Firestore query that needs a composite index, described once. The stores
 * build their queries from these specs and infra/ declares one index per spec, so a
 * query cannot exist without its index (the emulator does not enforce indexes; production
 * fails with FAILED_PRECONDITION).
 */
export interface QueryField {
  fieldPath: string;
  /** `==` fields come first, then the range or order field (`!=` is a range: it orders by its field). */
  op: '==' | '<=' | '!=' | 'orderBy';
  order: 'ASCENDING' | 'DESCENDING';
}

export interface QuerySpec {
  name: string;
  collection: string;
  fields: readonly QueryField[];
  /** False where Firestore's automatic single-field index serves the query. */
  needsCompositeIndex: boolean;
}

export const QUERIES = {
  /** Run counts and the redrive: a run's deliveries in one status. */
  deliveriesOfRunByStatus: {
    name: 'deliveriesOfRunByStatus',
    collection: COLLECTIONS.deliveries,
    fields: [
      { fieldPath: 'runId', op: '==', order: 'ASCENDING' },
      { fieldPath: 'status', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: true,
  },
  /**
   * `slack-fanout dead-runs`: the deliveries in one status (dead) across every run, a page at a
   * time by id. One equality and the id order: the automatic single-field index on `status` serves it.
   */
  deliveriesByStatus: {
    name: 'deliveriesByStatus',
    collection: COLLECTIONS.deliveries,
    fields: [
      { fieldPath: 'status', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: false,
  },
  /**
   * `slack-fanout redrive --all-runs`: the deliveries a redrive reopened and has not published
   * yet (`redrivePending`, set at the reopen and cleared at the publish or the claim), across
   * every run, a page at a time by id. The automatic single-field index on `redrivePending` serves it.
   */
  deliveriesRedrivePending: {
    name: 'deliveriesRedrivePending',
    collection: COLLECTIONS.deliveries,
    fields: [
      { fieldPath: 'redrivePending', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: false,
  },
  /**
   * The due schedules at a tick, a page at a time by nextRunAt then id: the automatic
   * single-field index on `nextRunAt` (which ends with the document name) serves it.
   */
  dueSchedules: {
    name: 'dueSchedules',
    collection: COLLECTIONS.schedules,
    fields: [
      { fieldPath: 'nextRunAt', op: '<=', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: false,
  },
  /**
   * The bulk resume (`slack-fanout resume --paused-reason …`): the notifications paused for one
   * reason, a page at a time by id. One equality and the id order: the automatic single-field
   * index on `pausedReason` serves it.
   */
  notificationsPausedFor: {
    name: 'notificationsPausedFor',
    collection: COLLECTIONS.notifications,
    fields: [
      { fieldPath: 'pausedReason', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: false,
  },
  /**
   * The bulk resume of every paused notification (`resume --all-paused`): `pausedReason != null`,
   * ordered by reason then id, all on the automatic single-field index on `pausedReason`.
   */
  pausedNotifications: {
    name: 'pausedNotifications',
    collection: COLLECTIONS.notifications,
    fields: [
      { fieldPath: 'pausedReason', op: '!=', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: false,
  },
  /** `slack-fanout list`: every notification, a page at a time by id. */
  notificationsById: {
    name: 'notificationsById',
    collection: COLLECTIONS.notifications,
    fields: [{ fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' }],
    needsCompositeIndex: false,
  },
  /** `slack-fanout list --paused`: the paused notifications (enabled false), a page at a time by id. */
  disabledNotifications: {
    name: 'disabledNotifications',
    collection: COLLECTIONS.notifications,
    fields: [
      { fieldPath: 'enabled', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: false,
  },
  /**
   * `slack-fanout list --schedule <id>`: one schedule's notifications (paused ones too), a page at
   * a time by id: those a skipped-missed warning's schedule holds. The automatic single-field
   * index on `scheduleId` serves it.
   */
  notificationsOfSchedule: {
    name: 'notificationsOfSchedule',
    collection: COLLECTIONS.notifications,
    fields: [
      { fieldPath: 'scheduleId', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: false,
  },
  /** `slack-fanout list --schedule <id> --paused`: one schedule's paused notifications, a page at a time by id. */
  disabledNotificationsOfSchedule: {
    name: 'disabledNotificationsOfSchedule',
    collection: COLLECTIONS.notifications,
    fields: [
      { fieldPath: 'scheduleId', op: '==', order: 'ASCENDING' },
      { fieldPath: 'enabled', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: true,
  },
  /** The status page: the latest runs first. */
  recentRuns: {
    name: 'recentRuns',
    collection: COLLECTIONS.runs,
    fields: [{ fieldPath: 'startedAt', op: 'orderBy', order: 'DESCENDING' }],
    needsCompositeIndex: false,
  },
} as const satisfies Record<string, QuerySpec>;

export type QueryName = keyof typeof QUERIES;

/** The composite indexes production needs, derived from QUERIES. */
export function compositeIndexes(): { collection: string; fields: { fieldPath: string; order: string }[] }[] {
  return Object.values(QUERIES as Record<string, QuerySpec>)
    .filter((q) => q.needsCompositeIndex)
    .map((q) => ({
      collection: q.collection,
      fields: q.fields.map((f) => ({ fieldPath: f.fieldPath, order: f.order })),
    }));
}

/**
 * The TTL fields: Firestore deletes a document within a day of the time in it (RETENTION).
 * infra/ declares the policy and turns the field's own indexes off (no query reads it).
 */
export const TTL_FIELDS: readonly { collectionGroup: string; field: string }[] = [
  { collectionGroup: COLLECTIONS.deliveries, field: RETENTION.field },
  { collectionGroup: COLLECTIONS.runs, field: RETENTION.field },
];

/**
 * The delivery ledger's times (and its occurrence, an ISO time): each is written as it happens,
 * so each new value is the highest yet. Firestore keeps an indexed field like that in one
 * ordered range, and holds a collection whose writes all land at its end to about 500 writes a
 * second (its "sequential indexed values" limit); the ledger takes two writes per delivery, from
 * every notifier instance at once. No query reads these fields (QUERIES), so none is indexed.
 */
export const DELIVERY_TIME_FIELDS = [
  'occurrence',
  'publishedAt',
  'firstAttemptAt',
  'claimExpiresAt',
  'sentAt',
  'updatedAt',
  'lastRedriveAt',
  'deadAt',
  'deadBeforeRedriveAt',
  'failedBeforeRedriveAt',
  // Slack's message ts, seconds since 1970: it grows as the times do.
  'slackTs',
  // A map: the exemption covers its `at`.
  'lastError',
] as const;

/**
 * Fields no query filters on, whose automatic single-field indexes would only cost: the
 * dispatch index's `list` array (shared/members.ts) has one element per notification, up to
 * 20,000 a document, and the `ids` map of buckets written before one key each; indexing each
 * would exceed Firestore's 40,000 index entries a document. And the delivery ledger's times
 * (DELIVERY_TIME_FIELDS). infra/ exempts each from indexing (the exemption covers a map's keys
 * and an array's elements).
 */
export const INDEX_EXEMPTIONS: readonly { collectionGroup: string; field: string }[] = [
  { collectionGroup: COLLECTIONS.members, field: BUCKET_FIELDS.list },
  { collectionGroup: COLLECTIONS.members, field: BUCKET_FIELDS.map },
  ...DELIVERY_TIME_FIELDS.map((field) => ({ collectionGroup: COLLECTIONS.deliveries, field })),
];
