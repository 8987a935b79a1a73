/**
 * What Google Cloud accepts for the settings this program makes, in one place: a value past one
 * of these fails `pulumi up` late, after the images are built, or is silently clamped. The
 * configuration check (config.ts) and the tests (infra.test.ts) both read them.
 */
export const GCP_LIMITS = Object.freeze({
  /** https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions */
  pubsub: Object.freeze({
    ackDeadlineSeconds: [10, 600] as const,
    maxDeliveryAttempts: [5, 100] as const,
    /** Both ends of a subscription's retry policy. */
    backoffSeconds: [0, 600] as const,
    /** A subscription keeps unacknowledged messages for 10 minutes to 7 days. */
    messageRetentionSeconds: [600, 7 * 24 * 3600] as const,
  }),
  /** https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs */
  scheduler: Object.freeze({
    retryCount: [0, 5] as const,
    /** An HTTP target's attempt deadline. */
    attemptDeadlineSeconds: [15, 1800] as const,
  }),
  /** https://cloud.google.com/resource-manager/docs/labels-overview#requirements */
  labelsPerResource: 64,
  /** https://cloud.google.com/run/quotas */
  run: Object.freeze({
    maxInstances: 1000,
    concurrency: 1000,
    requestTimeoutSeconds: [1, 3600] as const,
    /**
     * Memory for one CPU: at most 4 GiB, and at least 512 MiB, the floor of the second-generation
     * execution environment, which Cloud Run may pick for a service that names none
     * (https://cloud.google.com/run/docs/configuring/services/memory-limits).
     */
    memoryMiBPerCpu: [512, 4096] as const,
  }),
});
