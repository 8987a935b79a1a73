import { Firestore } from '@google-cloud/firestore';

export function createFirestore(projectId: string): Firestore {
  return new Firestore({ projectId, ignoreUndefinedProperties: true });
}

/** A readiness check: one tiny read that fails when Firestore does not answer. */
export function firestoreReady(db: Firestore): () => Promise<void> {
  return async () => {
    await db.collection('schedules').limit(1).get();
  };
}
