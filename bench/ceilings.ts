import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { deferred } from '../shared/concurrency';
import { createFirestore } from '../shared/firestore';
import { withTimeout } from '../shared/http';
import { createPubSub, dispatchTopic, pagePublisher } from '../shared/pubsub';
import { scheduleIdOf } from '../shared/schedule';
import type { BenchContext } from './context';
import { dispatchMessage } from './envelope';
import { busyCoresSince, emulatorsCpu, machineCpu } from './proc';
import { runPool } from './stats';

/**
 * The emulators' own limits, measured first in the same run, so every other figure can be
 * read against them: batched publish, push to an endpoint that does nothing, and Firestore
 * create(), update() and get() with 64 in flight.
 */

export interface CeilingRun {
  /**
   * Messages a second, all published at once as the dispatcher publishes (requests of 1,000 on
   * the generated client, shared/pubsub.ts), after an untimed round.
   */
  publishPerSec: number;
  /**
   * The same messages through the topic's own batching publisher, a promise a message: the
   * ceiling of the records before the dispatcher published on the generated client.
   */
  topicPublishPerSec: number;
  /** CPU the publishing client (this process) spent per message of the timed round, in µs. */
  publishClientCpuUsPerMessage: number;
  /** CPU the Pub/Sub emulator (launcher and Java child) spent per message of the same round, in µs. */
  publishEmulatorCpuUsPerMessage: number;
  /** Cores the whole machine kept busy during the timed round (the emulator's included). */
  publishBusyCores: number;
  /** Messages a second the emulator pushes to a server that answers 204 at once. */
  pushPerSec: number;
  createPerSec: number;
  updatePerSec: number;
  getPerSec: number;
  /**
   * CPU the Firestore client (this process, doing nothing else meanwhile) spent per call of the
   * timed create(), update() and get() rounds, in ms: what one single-document call costs the
   * caller, whatever the service behind it does.
   */
  createClientCpuMs: number;
  updateClientCpuMs: number;
  getClientCpuMs: number;
}

export interface CeilingSizes {
  publish: number;
  push: number;
  firestore: number;
  inFlight: number;
}

export function ceilingSizes(quick: boolean): CeilingSizes {
  return quick
    ? { publish: 10_000, push: 1_000, firestore: 1_000, inFlight: 64 }
    : { publish: 50_000, push: 5_000, firestore: 3_000, inFlight: 64 };
}

const OCCURRENCE = '2030-01-01T09:00:00.000Z';
const SCHEDULE = scheduleIdOf({ cron: '* * * * *', timezone: 'UTC' });

export async function publishCeiling(
  ctx: BenchContext,
  count: number,
): Promise<
  Pick<
    CeilingRun,
    | 'publishPerSec'
    | 'publishClientCpuUsPerMessage'
    | 'publishEmulatorCpuUsPerMessage'
    | 'publishBusyCores'
    | 'topicPublishPerSec'
  >
> {
  const pubsub = createPubSub(ctx.projectId('publish'));
  const pages = pagePublisher(pubsub, 'bench-publish');
  try {
    const [topic] = await pubsub.createTopic('bench-publish');
    // With a subscription, as the dispatch topic has one (the dispatcher is not ready without
    // it): the emulator keeps each message for it, in the ceiling as in the tick it is set beside.
    await topic.createSubscription('bench-publish-kept');
    const batched = dispatchTopic(pubsub, topic.name);
    const messages = Array.from({ length: count }, (_, i) => dispatchMessage(i, OCCURRENCE, SCHEDULE));
    // One page of them all: the publisher splits it into requests of 1,000 and sends every one at once.
    const raw = () => pages.publishPage(messages);
    // The topic's own batching publisher, a promise a message: the previous records' ceiling.
    const viaTopic = () =>
      Promise.all(messages.map((m) => batched.publishMessage({ json: m.message, attributes: m.attributes })));
    // Each once untimed first: the channel is up and V8 has compiled the client's hot code, as
    // the dispatcher's timed tick follows a tick of its own (bench/dispatch.ts).
    await raw();
    await viaTopic();
    const t1 = performance.now();
    await viaTopic();
    const topicSeconds = (performance.now() - t1) / 1000;
    const machine0 = machineCpu();
    const emulator0 = emulatorsCpu(ctx.emulators).pubsub;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await raw();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const emulator = emulatorsCpu(ctx.emulators).pubsub - emulator0;
    return {
      publishPerSec: count / seconds,
      publishClientCpuUsPerMessage: (cpu.user + cpu.system) / count,
      publishEmulatorCpuUsPerMessage: (emulator / count) * 1e6,
      publishBusyCores: busyCoresSince(machine0).busyCores,
      topicPublishPerSec: count / topicSeconds,
    };
  } finally {
    await pages.close();
    await pubsub.close();
  }
}

export async function pushCeiling(ctx: BenchContext, count: number): Promise<number> {
  let received = 0;
  const all = deferred();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(204).end();
      received++;
      if (received === count) all.resolve();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  const pubsub = createPubSub(ctx.projectId('push'));
  try {
    const [topic] = await pubsub.createTopic('bench-push');
    await topic.createSubscription('bench-push-noop', {
      pushConfig: { pushEndpoint: `http://127.0.0.1:${port}/push` },
      ackDeadlineSeconds: 60,
    });
    const batched = dispatchTopic(pubsub, topic.name);
    const messages = Array.from({ length: count }, (_, i) => dispatchMessage(i, OCCURRENCE, SCHEDULE));
    const t0 = performance.now();
    await Promise.all(messages.map((m) => batched.publishMessage({ json: m.message, attributes: m.attributes })));
    const timeoutMs = Math.max(60_000, count * 10);
    await withTimeout(all.promise, timeoutMs, () => `push ceiling: ${received}/${count} pushed within ${timeoutMs} ms`);
    const perSec = count / ((performance.now() - t0) / 1000);
    await pubsub
      .subscription('bench-push-noop')
      .delete()
      .catch(() => undefined);
    return perSec;
  } finally {
    await pubsub.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

export async function firestoreCeilings(
  ctx: BenchContext,
  count: number,
  inFlight: number,
): Promise<
  Pick<
    CeilingRun,
    'createPerSec' | 'updatePerSec' | 'getPerSec' | 'createClientCpuMs' | 'updateClientCpuMs' | 'getClientCpuMs'
  >
> {
  const db = createFirestore(ctx.projectId('firestore'));
  try {
    const col = db.collection('deliveries');
    await col.doc('warm-up').set({ warm: true });
    const now = new Date();
    // Documents shaped like a delivery record: the notifier's create() and update().
    const timed = async (fn: (i: number) => Promise<unknown>) => {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await runPool(count, inFlight, fn);
      const perSec = count / ((performance.now() - t0) / 1000);
      const cpu = process.cpuUsage(cpu0);
      return { perSec, cpuMs: (cpu.user + cpu.system) / 1000 / count };
    };
    const create = await timed((i) =>
      col.doc(`n-${String(i).padStart(7, '0')}:${OCCURRENCE}`).create({
        notificationId: `n-${String(i).padStart(7, '0')}`,
        occurrence: OCCURRENCE,
        runId: `${SCHEDULE}:${OCCURRENCE}`,
        status: 'sending',
        attempts: 1,
        claimedBy: 'bench',
        claimExpiresAt: new Date(now.getTime() + 60_000),
        outcomeUnknown: false,
        publishedAt: now,
        firstAttemptAt: now,
        updatedAt: now,
      }),
    );
    const update = await timed((i) =>
      col.doc(`n-${String(i).padStart(7, '0')}:${OCCURRENCE}`).update({
        status: 'sent',
        slackTs: '1700000000.000100',
        channelId: 'C000000001',
        accountId: 'acct-0001',
        latencyMs: 12,
        sentAt: now,
        claimExpiresAt: null,
        outcomeUnknown: false,
        updatedAt: now,
      }),
    );
    const get = await timed((i) => col.doc(`n-${String(i).padStart(7, '0')}:${OCCURRENCE}`).get());
    return {
      createPerSec: create.perSec,
      updatePerSec: update.perSec,
      getPerSec: get.perSec,
      createClientCpuMs: create.cpuMs,
      updateClientCpuMs: update.cpuMs,
      getClientCpuMs: get.cpuMs,
    };
  } finally {
    await db.terminate();
  }
}

export async function measureCeilings(ctx: BenchContext, sizes: CeilingSizes): Promise<CeilingRun> {
  const publish = await publishCeiling(ctx, sizes.publish);
  const pushPerSec = await pushCeiling(ctx, sizes.push);
  const fs = await firestoreCeilings(ctx, sizes.firestore, sizes.inFlight);
  return { ...publish, pushPerSec, ...fs };
}
