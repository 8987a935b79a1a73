import { COLLECTIONS } from './topology';

/**
 * Every Firestore query that needs a composite index, described once. The stores
 * build their queries from these specs and infra/ declares one index per spec, so a
 * query cannot exist without its index (the emulator does not enforce indexes; production
 * fails with FAILED_PRECONDITION).
 */
export interface QueryField {
  fieldPath: string;
  /** `==` fields come first, then the range or order field. */
  op: '==' | '<=' | 'orderBy';
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
  /** The dispatcher's page query: a schedule's enabled notifications, by document id. */
  notificationsOfSchedule: {
    name: 'notificationsOfSchedule',
    collection: COLLECTIONS.notifications,
    fields: [
      { fieldPath: 'scheduleId', op: '==', order: 'ASCENDING' },
      { fieldPath: 'enabled', op: '==', order: 'ASCENDING' },
      { fieldPath: '__name__', op: 'orderBy', order: 'ASCENDING' },
    ],
    needsCompositeIndex: true,
  },
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
  /** The due schedules at a tick. */
  dueSchedules: {
    name: 'dueSchedules',
    collection: COLLECTIONS.schedules,
    fields: [{ fieldPath: 'nextRunAt', op: '<=', order: 'ASCENDING' }],
    needsCompositeIndex: false,
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
