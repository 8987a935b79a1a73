import { Firestore } from '@google-cloud/firestore';

/**
 * The Firestore client's OpenTelemetry spans: on by default in the client, which then opens a
 * span (and an OpenTelemetry context) around every call, even with no tracer registered, where
 * each goes nowhere. slack-fanout registers none, so the spans are off unless
 * FIRESTORE_ENABLE_TRACING is `on` (where a deployment registers a tracer provider). Off, the
 * notifier spends about a tenth less CPU a delivery at 64 pushes in flight (docs/PERFORMANCE.md,
 * item 20).
 */
export const FIRESTORE_TRACING_ENV = 'FIRESTORE_ENABLE_TRACING';

/**
 * The switch as the client is to read it: `on` for `on` or `true` (any case, as the client reads
 * them), `off` for anything else, unset or empty included (the client itself would trace on a
 * value it does not know, `1` or `yes`).
 */
export function firestoreTracing(value: string | undefined): 'on' | 'off' {
  const v = value?.trim().toLowerCase();
  return v === 'on' || v === 'true' ? 'on' : 'off';
}

export function createFirestore(projectId: string): Firestore {
  // The client reads its switch from the environment when it is made; it takes no setting.
  process.env[FIRESTORE_TRACING_ENV] = firestoreTracing(process.env[FIRESTORE_TRACING_ENV]);
  return new Firestore({ projectId, ignoreUndefinedProperties: true });
}

/** A readiness check: one tiny read that fails when Firestore does not answer. */
export function firestoreReady(db: Firestore): () => Promise<void> {
  return async () => {
    await db.collection('schedules').limit(1).get();
  };
}

/** Whether an error is that of a call the Firestore client ended as it was terminated. */
export function abandonedAtTerminate(err: unknown): boolean {
  return err instanceof Error && err.message === 'The client has already been terminated';
}
