import { Firestore } from '@google-cloud/firestore';

/**
 * The Firestore client's OpenTelemetry spans: on by default in the client, which then opens a
 * span (and an OpenTelemetry context) around every call, even with no tracer registered, where
 * each goes nowhere. slack-fanout registers none, so the spans are off unless
 * FIRESTORE_ENABLE_TRACING says otherwise (`on` where a deployment registers a tracer
 * provider). Off, the notifier spends about a tenth less CPU a delivery at 64 pushes in flight
 * (docs/PERFORMANCE.md, item 20).
 */
export const FIRESTORE_TRACING_ENV = 'FIRESTORE_ENABLE_TRACING';

export function createFirestore(projectId: string): Firestore {
  // The client reads its switch from the environment when it is made; it takes no setting.
  process.env[FIRESTORE_TRACING_ENV] ??= 'off';
  return new Firestore({ projectId, ignoreUndefinedProperties: true });
}

/** A readiness check: one tiny read that fails when Firestore does not answer. */
export function firestoreReady(db: Firestore): () => Promise<void> {
  return async () => {
    await db.collection('schedules').limit(1).get();
  };
}
