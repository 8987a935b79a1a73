/**
 * Google Cloud list prices in USD, as published on the pricing pages below (Tier 1 / US
 * regions, beyond the free tiers). They change: check the pages before relying on a figure.
 */

export const PRICES = {
  firestore: {
    // https://cloud.google.com/firestore/pricing (Standard edition, us-central1 and other US
    // regional locations; the nam5/nam7 multi-regions cost twice as much)
    readsPer100k: 0.03,
    // https://cloud.google.com/firestore/pricing
    writesPer100k: 0.09,
    // https://cloud.google.com/firestore/pricing
    deletesPer100k: 0.01,
  },
  pubsub: {
    // https://cloud.google.com/pubsub/pricing — "Message Delivery Basic": publish and delivery
    // throughput both count, $40 per TiB after the first 10 GiB a month.
    perTiB: 40,
    // https://cloud.google.com/pubsub/pricing — "A minimum of 1000 bytes per publish, push or
    // pull request is assessed regardless of message size": a push carries one message, so each
    // delivery is billed 1,000 bytes; a batched publish of 500 messages is billed their real size.
    minBytesPerRequest: 1000,
    // https://cloud.google.com/pubsub/pricing — a message's size is its data, its attribute keys
    // and values, 20 bytes for the timestamp, and its message_id.
    timestampBytes: 20,
  },
  cloudRun: {
    // https://cloud.google.com/run/pricing — Tier 1, request-based billing (CPU allocated only
    // while a request is processed), per vCPU-second beyond the free tier.
    vcpuSecond: 0.000024,
    // https://cloud.google.com/run/pricing — per GiB-second of memory, same billing.
    gibSecond: 0.0000025,
    // https://cloud.google.com/run/pricing — per million requests beyond 2 million a month.
    perMillionRequests: 0.4,
  },
  logging: {
    // https://cloud.google.com/stackdriver/pricing — Cloud Logging ingestion beyond the free
    // 50 GiB per project a month.
    perGiB: 0.5,
  },
} as const;

/** The notifier's and dispatcher's Cloud Run shape assumed for memory: 1 vCPU with 512 MiB. */
export const MEMORY_GIB_PER_VCPU = 0.5;

export interface UsagePerNotification {
  /** Firestore document reads, dispatch and delivery together. */
  reads: number;
  writes: number;
  /** Billable Pub/Sub bytes: the publish (batched) and the push (one message per request). */
  pubsubBytes: number;
  /** Cloud Run requests: one push per delivery (ticks are negligible). */
  requests: number;
  /** CPU seconds, dispatcher and notifier together. */
  cpuSeconds: number;
  /** Bytes of structured log per notification. */
  logBytes: number;
}

export interface CostLine {
  item: string;
  usagePerMillion: string;
  usd: number;
}

const TIB = 2 ** 40;
const GIB = 2 ** 30;

/** Cost per million notifications, line by line, from measured usage per notification. */
export function costPerMillion(u: UsagePerNotification): { lines: CostLine[]; total: number } {
  const m = 1_000_000;
  const vcpuSeconds = u.cpuSeconds * m;
  const lines: CostLine[] = [
    {
      item: 'Firestore reads',
      usagePerMillion: `${Math.round(u.reads * m).toLocaleString('en-US')} reads`,
      usd: ((u.reads * m) / 100_000) * PRICES.firestore.readsPer100k,
    },
    {
      item: 'Firestore writes',
      usagePerMillion: `${Math.round(u.writes * m).toLocaleString('en-US')} writes`,
      usd: ((u.writes * m) / 100_000) * PRICES.firestore.writesPer100k,
    },
    {
      item: 'Pub/Sub throughput (publish + push)',
      usagePerMillion: `${((u.pubsubBytes * m) / GIB).toFixed(2)} GiB`,
      usd: ((u.pubsubBytes * m) / TIB) * PRICES.pubsub.perTiB,
    },
    {
      item: 'Cloud Run requests',
      usagePerMillion: `${Math.round(u.requests * m).toLocaleString('en-US')} requests`,
      usd: u.requests * PRICES.cloudRun.perMillionRequests,
    },
    {
      item: 'Cloud Run vCPU',
      usagePerMillion: `${Math.round(vcpuSeconds).toLocaleString('en-US')} vCPU-s`,
      usd: vcpuSeconds * PRICES.cloudRun.vcpuSecond,
    },
    {
      item: 'Cloud Run memory',
      usagePerMillion: `${Math.round(vcpuSeconds * MEMORY_GIB_PER_VCPU).toLocaleString('en-US')} GiB-s`,
      usd: vcpuSeconds * MEMORY_GIB_PER_VCPU * PRICES.cloudRun.gibSecond,
    },
    {
      item: 'Cloud Logging',
      usagePerMillion: `${((u.logBytes * m) / GIB).toFixed(2)} GiB`,
      usd: ((u.logBytes * m) / GIB) * PRICES.logging.perGiB,
    },
  ];
  return { lines, total: lines.reduce((n, l) => n + l.usd, 0) };
}

/** Billable Pub/Sub bytes per notification: the batched publish plus the one-message push. */
export function pubsubBytesPerNotification(messageBytes: number, messagesPerPublish: number): number {
  const publish = Math.max(PRICES.pubsub.minBytesPerRequest, messageBytes * messagesPerPublish) / messagesPerPublish;
  const push = Math.max(PRICES.pubsub.minBytesPerRequest, messageBytes);
  return publish + push;
}
