import { statSync } from 'node:fs';
import { join } from 'node:path';
import { SlackStandIn } from '../dev/slack-standin';
import { createTopology, deleteSubscriptions } from '../dev/topology';
import { createFirestore } from '../shared/firestore';
import { createPubSub } from '../shared/pubsub';
import { COLLECTIONS, localTopology } from '../shared/topology';
import { onCleanup } from './cleanup';
import type { BenchContext } from './context';
import { startDispatcher, tick } from './dispatch';
import { watchPosts } from './posts';
import { benchNotifications, seed } from './seed';
import { type BenchService, startBenchService } from './services';
import { percentiles, sleep } from './stats';

/**
 * End to end through the emulators: N notifications, the dispatcher and the notifier as their
 * own processes, the emulator's push subscription to the notifier, the Slack stand-in. Timed
 * from the tick to the last post the stand-in receives.
 */

export const STANDIN_TOKEN = 'xoxb-bench-standin';
export const BENCH_ACCOUNTS = 100;

export interface E2eRun {
  n: number;
  /** From sending the tick to the last post the stand-in received. */
  seconds: number;
  deliveriesPerSec: number;
  /** Stand-in receivedAt minus the message's publish time (from the ledger's publishedAt). */
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
  /** The ledger's own latencyMs (publish time to Slack's answer), median. */
  ledgerLatencyP50Ms: number;
  /** The notifier's time per POST /push, as its own HTTP server sees it. */
  pushP50Ms: number;
  pushP95Ms: number;
  pushP99Ms: number;
  notifierReadsPerDelivery: number;
  notifierWritesPerDelivery: number;
  dispatchReadsPerNotification: number;
  dispatchWritesPerNotification: number;
  notifierCpuMsPerDelivery: number;
  duplicates: number;
  /** Bytes of notifier log per delivery (what Cloud Logging would ingest). */
  logBytesPerDelivery: number;
}

export async function e2eRun(ctx: BenchContext, n: number, run: number): Promise<E2eRun> {
  const projectId = ctx.projectId(`e2e-${n}`);
  const logDir = join(ctx.tmpDir, `e2e-${n}-${run}`);
  const db = createFirestore(projectId);
  const pubsub = createPubSub(projectId);
  const standIn = new SlackStandIn({ token: STANDIN_TOKEN });
  const { url: slackUrl } = await standIn.start();
  const stopStandIn = onCleanup('Slack stand-in', () => standIn.stop());
  const topology = localTopology();
  try {
    const items = benchNotifications(n, BENCH_ACCOUNTS);
    const bar = ctx.bar(`seeding ${n.toLocaleString('en-US')} notifications`, n);
    const at = new Date();
    try {
      await seed(db, items, BENCH_ACCOUNTS, at, (w) => bar.update(w));
    } finally {
      bar.stop();
    }

    const notifier = await startBenchService(
      'notifier',
      ctx.serviceEnv(projectId, { SLACK_API_URL: slackUrl, SLACK_BOT_TOKEN: STANDIN_TOKEN }),
      logDir,
    );
    let dispatcherLive: BenchService | undefined;
    try {
      await createTopology(pubsub, topology, notifier.url);
      // This dispatcher publishes to the dispatch topic, whose push subscription calls the notifier.
      dispatcherLive = await startDispatcher(ctx, projectId, logDir, topology.dispatchTopic);
      await Promise.all([notifier.resetStats(), dispatcherLive.resetStats()]);

      const posts = watchPosts(ctx, standIn, n, 'deliveries to the stand-in', 'e2e');

      const cpu0 = notifier.cpu();
      const t0 = Date.now();
      const res = await tick(dispatcherLive.url, at);
      if (res.status !== 200 || Number(res.body.published) !== n) {
        posts.stop();
        throw new Error(`e2e tick: HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
      }
      // A notifier that dies mid-run ends the wait at once, saying so, rather than at --timeout.
      await Promise.race([posts.wait(), notifier.exited()]).finally(() => posts.stop());
      const seconds = (posts.lastAt() - t0) / 1000;
      // Let the last acks and ledger writes land before reading the counters.
      await sleep(1000);
      const cpu = notifier.cpu() - cpu0;
      const [nStats, dStats] = await Promise.all([notifier.stats(), dispatcherLive.stats()]);

      // Publish time per delivery from the ledger, joined with when the stand-in got the post.
      const snap = await db.collection(COLLECTIONS.deliveries).select('publishedAt', 'latencyMs').get();
      const publishedAt = new Map<string, number>();
      const ledgerLatency: number[] = [];
      for (const d of snap.docs) {
        const t = d.get('publishedAt') as { toMillis?: () => number } | null;
        if (t?.toMillis) publishedAt.set(d.id, t.toMillis());
        const l = d.get('latencyMs');
        if (typeof l === 'number') ledgerLatency.push(l);
      }
      const latencies: number[] = [];
      for (const p of standIn.posts) {
        const id = p.metadata?.event_payload.deliveryId;
        const pub = typeof id === 'string' ? publishedAt.get(id) : undefined;
        if (pub !== undefined) latencies.push(p.receivedAt - pub);
      }
      const lat = percentiles(latencies);
      const push = nStats.http['/push'];
      let logBytes = 0;
      try {
        logBytes = statSync(join(logDir, 'notifier.log')).size;
      } catch {
        // No log file: counted as none.
      }
      return {
        n,
        seconds,
        deliveriesPerSec: n / seconds,
        latencyP50Ms: lat.p50,
        latencyP95Ms: lat.p95,
        latencyP99Ms: lat.p99,
        ledgerLatencyP50Ms: percentiles(ledgerLatency).p50,
        pushP50Ms: push?.p50 ?? Number.NaN,
        pushP95Ms: push?.p95 ?? Number.NaN,
        pushP99Ms: push?.p99 ?? Number.NaN,
        notifierReadsPerDelivery: nStats.firestore.reads / n,
        notifierWritesPerDelivery: nStats.firestore.writes / n,
        dispatchReadsPerNotification: dStats.firestore.reads / n,
        dispatchWritesPerNotification: dStats.firestore.writes / n,
        notifierCpuMsPerDelivery: (cpu / n) * 1000,
        duplicates: standIn.duplicates().length,
        logBytesPerDelivery: logBytes / n,
      };
    } finally {
      // The subscriptions go first, so the emulator stops pushing to a notifier that is stopping.
      await deleteSubscriptions(pubsub, topology);
      await dispatcherLive?.stop();
      await notifier.stop();
    }
  } finally {
    await stopStandIn();
    await pubsub.close();
    await db.terminate();
  }
}
