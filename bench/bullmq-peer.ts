import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { demoAccounts } from '../dev/demo';
import { killGroup } from '../dev/emulators';
import { containerNodeFlags } from '../dev/processes';
import type { SlackStandIn } from '../dev/slack-standin';
import { notificationDoc } from '../shared/notifications';
import { WARM_UP_REQUESTS } from './capacity';
import { onCleanup, stoppingOnSignal } from './cleanup';
import type { BenchContext } from './context';
import { BENCH_ACCOUNTS } from './e2e';
import { watchPosts } from './posts';
import { cpuSeconds, peakRssMiB } from './proc';
import { benchNotifications } from './seed';
import { sleep } from './stats';

/**
 * The peer design, cron + BullMQ on a local Redis: the "cron" enqueues one job per due
 * notification with addBulk (attempts and backoff set, as retries are the queue's job), and a
 * Worker process (bench/bullmq-worker.ts) delivers each to the same Slack stand-in.
 */

export interface PeerRun {
  jobs: number;
  enqueueSeconds: number;
  enqueuePerSec: number;
  /** From the start of addBulk to the last post the stand-in received. */
  e2eSeconds: number;
  e2ePerSec: number;
  workerCpuMsPerJob: number;
  workerPeakRssMiB: number;
  duplicates: number;
}

export const PEER_NOTIFICATIONS = 1000;

/** Jobs the worker delivers before its CPU is counted: as many as the notifier's warm-up, at most one run's jobs. */
export function peerWarmUpJobs(jobs: number): number {
  return Math.max(100, Math.min(jobs, WARM_UP_REQUESTS));
}
const BASE = Date.UTC(2032, 0, 1);

/** The notifications and accounts as JSON in Redis: what the worker reads, as the notifier reads Firestore. */
export async function seedRedis(port: number): Promise<void> {
  const redis = new Redis({ host: '127.0.0.1', port });
  try {
    const pairs: string[] = [];
    for (const n of benchNotifications(PEER_NOTIFICATIONS, BENCH_ACCOUNTS, 'peer')) {
      pairs.push(`notification:${n.id}`, JSON.stringify(notificationDoc(n)));
    }
    for (const { id, account } of demoAccounts(BENCH_ACCOUNTS)) pairs.push(`account:${id}`, JSON.stringify(account));
    await redis.mset(...pairs);
  } finally {
    redis.disconnect();
  }
}

async function startWorker(
  ctx: BenchContext,
  redisPort: number,
  queue: string,
  slackUrl: string,
  token: string,
  logDir: string,
  concurrency: number,
): Promise<{ child: ChildProcess; pid: number; stop: () => Promise<void> }> {
  mkdirSync(logDir, { recursive: true });
  const out = openSync(join(logDir, 'bullmq-worker.log'), 'a');
  // Under the notifier's Node flags (its container's heap cap), so both sides' CPU is measured
  // under the same heap, and so the same collector's work.
  const child = spawn(process.execPath, [...containerNodeFlags('notifier'), join(__dirname, 'bullmq-worker.js')], {
    env: {
      ...process.env,
      REDIS_PORT: String(redisPort),
      QUEUE: queue,
      CONCURRENCY: String(concurrency),
      SLACK_API_URL: slackUrl,
      SLACK_BOT_TOKEN: token,
      LOG_LEVEL: ctx.opts.logLevel,
    },
    stdio: ['ignore', out, out, 'ipc'],
    detached: true,
  });
  const stopNow = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const stop = onCleanup('bullmq worker', stopNow, child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the BullMQ worker did not get ready within 30 s')), 30_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the BullMQ worker exited with code ${code}; see ${logDir}/bullmq-worker.log`));
    });
  });
  if (child.pid === undefined) throw new Error('the BullMQ worker has no pid');
  return { child, pid: child.pid, stop };
}

export async function peerRun(
  ctx: BenchContext,
  redisPort: number,
  standIn: SlackStandIn,
  slackUrl: string,
  token: string,
  /** Unique across the whole benchmark: it keeps each run's jobs and idempotency records apart. */
  run: number,
  concurrency: number,
): Promise<PeerRun> {
  const n = ctx.opts.peerJobs;
  const queueName = `bench-deliveries-${run}`;
  const connection = { host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: null };
  const worker = await startWorker(
    ctx,
    redisPort,
    queueName,
    slackUrl,
    token,
    join(ctx.tmpDir, `peer-${run}`),
    concurrency,
  );
  const queue = new Queue(queueName, { connection });
  // Said once, in a line: BullMQ would print each with a stack, and with Redis gone its calls
  // wait rather than fail. A stop's own (Redis reset as a Ctrl-C stops it) is not said.
  let said = false;
  queue.on('error', (err) => {
    if (said || stoppingOnSignal()) return;
    said = true;
    ctx.say(`  BullMQ queue: ${err.message} (Redis on 127.0.0.1:${redisPort}); its calls wait for Redis`);
  });
  // Closed before Redis stops, on a Ctrl-C too (cleanup runs in reverse order).
  const closeQueue = onCleanup('BullMQ queue', () => queue.close().catch(() => undefined));
  // Jobs of one batch: each one notification at one occurrence, as a dispatch message is.
  const jobsOf = (count: number, batch: number) =>
    Array.from({ length: count }, (_, i) => {
      const notificationId = `peer-${String((i % PEER_NOTIFICATIONS) + 1).padStart(7, '0')}`;
      const minute = Math.floor(i / PEER_NOTIFICATIONS) + batch * 1000;
      const occurrence = new Date(BASE + minute * 60_000 + run * 86_400_000).toISOString();
      return {
        name: 'deliver',
        data: { notificationId, occurrence, runId: `peer:${occurrence}` },
        opts: {
          attempts: 10,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: true,
          removeOnFail: 1000,
        },
      };
    });
  /** Enqueues the jobs with addBulk and waits for every post; then for the worker to be idle. */
  const deliverAll = async (jobs: ReturnType<typeof jobsOf>, label: string) => {
    standIn.reset();
    const posts = watchPosts(ctx, standIn, jobs.length, label, 'BullMQ peer');
    const t0 = Date.now();
    try {
      await queue.addBulk(jobs);
    } catch (err) {
      posts.stop();
      throw err;
    }
    const enqueueSeconds = (Date.now() - t0) / 1000;
    await posts.wait();
    // The last jobs' completion bookkeeping, then the worker is idle.
    for (let i = 0; i < 50; i++) {
      const counts = await queue.getJobCounts('active', 'waiting', 'delayed');
      if ((counts.active ?? 0) + (counts.waiting ?? 0) + (counts.delayed ?? 0) === 0) break;
      await sleep(100);
    }
    return { enqueueSeconds, e2eSeconds: (posts.lastAt() - t0) / 1000 };
  };
  try {
    await queue.waitUntilReady();
    // Warm-up, as the notifier gets before its levels (bench/capacity.ts): the JIT, the
    // Redis connections and the Slack client's sockets. Its CPU is not counted.
    await deliverAll(jobsOf(peerWarmUpJobs(n), 1), 'BullMQ warm-up');
    const cpu0 = cpuSeconds(worker.pid);
    const { enqueueSeconds, e2eSeconds } = await deliverAll(jobsOf(n, 0), 'BullMQ jobs delivered');
    const cpu = cpuSeconds(worker.pid) - cpu0;
    return {
      jobs: n,
      enqueueSeconds,
      enqueuePerSec: n / enqueueSeconds,
      e2eSeconds,
      e2ePerSec: n / e2eSeconds,
      workerCpuMsPerJob: (cpu / n) * 1000,
      workerPeakRssMiB: peakRssMiB(worker.pid),
      duplicates: standIn.duplicates().length,
    };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await closeQueue();
    await worker.stop();
  }
}
