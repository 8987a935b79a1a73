import * as gcp from '@pulumi/gcp';
import { compositeIndexes, INDEX_EXEMPTIONS, TTL_FIELDS } from '../shared/queries';
import { COLLECTIONS } from '../shared/topology';
import type { Apis } from './apis';

/** The services use the default database (no database id in their clients). */
export const DATABASE_NAME = '(default)';

export interface FirestoreArgs {
  project: string;
  locationId: string;
  apis: Apis;
}

export interface Firestore {
  database: gcp.firestore.Database;
  indexes: gcp.firestore.Index[];
  /** The exemptions of the dispatch index's buckets: a large bucket cannot be written without them. */
  bucketExemptions: gcp.firestore.Field[];
}

type IndexSpec = ReturnType<typeof compositeIndexes>[number];

/** Two queries may need the same index; Firestore rejects a duplicate, so each is declared once. */
export function uniqueIndexes(specs: IndexSpec[] = compositeIndexes()): IndexSpec[] {
  const seen = new Map<string, IndexSpec>();
  for (const spec of specs) seen.set(indexKey(spec), spec);
  return [...seen.values()];
}

export function indexKey(spec: IndexSpec): string {
  return [spec.collection, ...spec.fields.map((f) => `${f.fieldPath}:${f.order}`)].join('|');
}

/** Stable resource names: a renamed resource would be deleted and rebuilt, and index builds take minutes. */
export function indexResourceName(spec: IndexSpec): string {
  const fields = spec.fields
    .filter((f) => f.fieldPath !== '__name__')
    .map((f) => (f.order === 'DESCENDING' ? `${f.fieldPath}.desc` : f.fieldPath));
  return ['index', spec.collection, ...fields].join('-');
}

export function createFirestore(args: FirestoreArgs): Firestore {
  const database = new gcp.firestore.Database(
    'database',
    {
      project: args.project,
      name: DATABASE_NAME,
      locationId: args.locationId,
      type: 'FIRESTORE_NATIVE',
      // `pulumi destroy` leaves the data behind; deleting it is a deliberate, separate act.
      deletionPolicy: 'ABANDON',
    },
    { dependsOn: [args.apis.firestore] },
  );
  const indexes = uniqueIndexes().map(
    (spec) =>
      new gcp.firestore.Index(indexResourceName(spec), {
        project: args.project,
        database: database.name,
        collection: spec.collection,
        queryScope: 'COLLECTION',
        // `__name__` stays in the list: Firestore stores it as the last field, and leaving it out shows as a diff.
        fields: spec.fields.map((f) => ({ fieldPath: f.fieldPath, order: f.order })),
      }),
  );
  // Every exemption and retention policy is made here; the buckets' exemptions are handed on.
  const bucketExemptions: gcp.firestore.Field[] = [];
  for (const e of INDEX_EXEMPTIONS) {
    const exemption = new gcp.firestore.Field(`no-index-${e.collectionGroup}-${e.field}`, {
      project: args.project,
      database: database.name,
      collection: e.collectionGroup,
      field: e.field,
      // An empty index configuration turns every single-field index of the field off.
      indexConfig: {},
    });
    if (e.collectionGroup === COLLECTIONS.members) bucketExemptions.push(exemption);
  }
  for (const f of TTL_FIELDS) {
    new gcp.firestore.Field(`ttl-${f.collectionGroup}-${f.field}`, {
      project: args.project,
      database: database.name,
      collection: f.collectionGroup,
      field: f.field,
      ttlConfig: {},
      // No query reads it: its single-field indexes would only cost writes.
      indexConfig: {},
    });
  }
  return { database, indexes, bucketExemptions };
}
