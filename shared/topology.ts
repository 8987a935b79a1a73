/**
 * The messaging topology, defined once: the Pulumi program in infra/ and the local
 * runner in dev/ both read it, so names, deadlines and retry settings cannot drift.
 */
export interface RetryPolicy {
  minimumBackoffSeconds: number;
  maximumBackoffSeconds: number;
}

export interface Topology {
  dispatchTopic: string;
  dispatchSubscription: string;
  deadLetterTopic: string;
  deadLetterSubscription: string;
  /** Push ack deadline; it is also the HTTP timeout Pub/Sub gives the notifier. */
  ackDeadlineSeconds: number;
  retryPolicy: RetryPolicy;
  /**
   * Pub/Sub allows 5..100; after this many attempts a message goes to the dead-letter topic.
   * Ten, not five: at a 30% transient failure rate (Slack rate limits under load) five attempts
   * would dead-letter about 1 delivery in 400; ten, about 1 in 170,000.
   */
  maxDeliveryAttempts: number;
  /** How long Pub/Sub keeps an unacked message. */
  messageRetentionSeconds: number;
  /** Routes on the notifier that the two push subscriptions call. */
  pushPath: string;
  deadLetterPath: string;
  /** Route on the dispatcher that Cloud Scheduler calls. */
  tickPath: string;
}

export const TOPOLOGY: Readonly<Topology> = Object.freeze({
  dispatchTopic: 'slack-fanout-dispatch',
  dispatchSubscription: 'slack-fanout-dispatch-push',
  deadLetterTopic: 'slack-fanout-dead-letter',
  deadLetterSubscription: 'slack-fanout-dead-letter-push',
  ackDeadlineSeconds: 60,
  retryPolicy: Object.freeze({ minimumBackoffSeconds: 10, maximumBackoffSeconds: 600 }),
  maxDeliveryAttempts: 10,
  messageRetentionSeconds: 7 * 24 * 3600,
  pushPath: '/push',
  deadLetterPath: '/dead-letter',
  tickPath: '/tick',
});

/**
 * The topology on the Pub/Sub emulator. Under load the emulator loses nacked messages that
 * wait out a retry-policy backoff (seen here: 180 of 2,000 never redelivered), so locally a
 * nacked message is redelivered at once and the notifier holds each nack for `nackDelayMs`
 * (longer when it knows a retry cannot succeed sooner: a live claim, a post that may still
 * land), which paces retries the way the retry policy does in production.
 */
export interface LocalTopology extends Topology {
  nackDelayMs: number;
}

export function localTopology(overrides: Partial<LocalTopology> = {}): LocalTopology {
  return { ...TOPOLOGY, nackDelayMs: 100, ...overrides };
}

export function isLocalTopology(t: Topology): t is LocalTopology {
  return typeof (t as Partial<LocalTopology>).nackDelayMs === 'number';
}

/** Firestore collection names, in one place. */
/**
 * How long a delivery or run document is kept after its last defining write (its creation, and
 * for a delivery its final outcome; for a run its finish): the TTL field `expireAt`, which
 * Firestore's TTL policy (infra/firestore.ts) deletes within a day of. Far beyond Pub/Sub's
 * 7-day retention, so no message can come back for a delivery whose record is gone.
 */
export const RETENTION = Object.freeze({ days: 90, field: 'expireAt' });

/** When a document written at `now` expires. */
export function expiryFrom(now: Date): Date {
  return new Date(now.getTime() + RETENTION.days * 86_400_000);
}

export const COLLECTIONS = Object.freeze({
  notifications: 'notifications',
  schedules: 'schedules',
  /** `schedules/{id}/members/{bucket}`: the dispatch index (shared/members.ts). */
  members: 'members',
  runs: 'runs',
  deliveries: 'deliveries',
  accounts: 'accounts',
  installations: 'installations',
});

/**
 * A dispatch-index bucket's fields (shared/members.ts): `list`, the array of its ids, and `ids`,
 * the map (keys set to true) that buckets written before kept them in, read until reindex folds it.
 */
export const BUCKET_FIELDS = Object.freeze({ list: 'list', map: 'ids' });
