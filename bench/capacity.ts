import { join } from 'node:path';
import autocannon from 'autocannon';
import { SlackStandIn } from '../dev/slack-standin';
import { createFirestore } from '../shared/firestore';
import { scheduleIdOf } from '../shared/schedule';
import { onCleanup } from './cleanup';
import type { BenchContext } from './context';
import { BENCH_ACCOUNTS, STANDIN_TOKEN } from './e2e';
import { pushEnvelope } from './envelope';
import { busyCoresSince, emulatorsCpu, machineCpu } from './proc';
import { benchNotifications, seed } from './seed';
import { type BenchService, startBenchService } from './services';
import { percentiles } from './stats';

/**
 * The notifier's own capacity, with production-like concurrency the emulator's push cannot
 * give (it pushes at most 2 at a time): autocannon drives POST /push on loopback with
 * production-shaped envelopes, each for a delivery never seen before, at a fixed number in
 * flight. The notifier runs as its own process against the Firestore emulator and the stand-in.
 */

export interface CapacityRun {
  inFlight: number;
  requests: number;
  seconds: number;
  deliveriesPerSec: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  cpuMsPerDelivery: number;
  readsPerDelivery: number;
  writesPerDelivery: number;
  /** Firestore RPCs per delivery: how well concurrent pushes share round trips. */
  rpcsPerDelivery: number;
  /**
   * Requests that failed (an answer other than 204, a transport error or timeout) or were not
   * posted, each counted once: should be 0.
   */
  failures: number;
  /** CPU the Firestore emulator (its Java process tree) spent a delivery, ms; NaN when not measured. */
  emulatorCpuMsPerDelivery: number;
  /** Cores the whole machine kept busy during the level (the notifier, the emulator, the load generator). */
  busyCores: number;
}

export const CAPACITY_NOTIFICATIONS = 1000;
const BASE = Date.UTC(2021, 0, 1);
/** The seeded notifications, by index: each push names its notification's own schedule, as the dispatcher's do. */
const CAPACITY_ITEMS = benchNotifications(CAPACITY_NOTIFICATIONS, BENCH_ACCOUNTS, 'cap').map((n) => ({
  notificationId: n.id,
  scheduleId: scheduleIdOf({ cron: n.cron, timezone: n.timezone }),
}));

/**
 * Each request is a delivery never seen before, made as runs make them: the seeded notifications
 * in turn, each round of them at the next occurrence, so that, as in a run, the messages that
 * arrive together share their occurrence and their schedule's run id. (Until the notifier began
 * to check that an occurrence is one of its schedule's, each request had an occurrence of its
 * own; that check is worked out once a schedule and occurrence, which a new occurrence on every
 * request, never seen in production, would pay on every push: docs/PERFORMANCE.md, item 19.)
 */
let sequence = 0;
export function nextEnvelope(): string {
  const i = sequence++;
  const { notificationId, scheduleId } = CAPACITY_ITEMS[i % CAPACITY_NOTIFICATIONS] as (typeof CAPACITY_ITEMS)[number];
  const occurrence = new Date(BASE + Math.floor(i / CAPACITY_NOTIFICATIONS) * 60_000).toISOString();
  const runId = `${scheduleId}:${occurrence}`;
  return JSON.stringify(pushEnvelope({ v: 1, notificationId, occurrence, scheduleId, runId }, String(1e12 + i)));
}

export interface CapacityFixture {
  projectId: string;
  standIn: SlackStandIn;
  slackUrl: string;
  close(): Promise<void>;
}

export async function capacityFixture(ctx: BenchContext): Promise<CapacityFixture> {
  const projectId = ctx.projectId('capacity');
  const db = createFirestore(projectId);
  await seed(db, benchNotifications(CAPACITY_NOTIFICATIONS, BENCH_ACCOUNTS, 'cap'), BENCH_ACCOUNTS, new Date());
  await db.terminate();
  const standIn = new SlackStandIn({ token: STANDIN_TOKEN });
  const { url } = await standIn.start();
  const stop = onCleanup('Slack stand-in', () => standIn.stop());
  return { projectId, standIn, slackUrl: url, close: stop };
}

/**
 * Where the notifier keeps its state: Firestore (the service itself), or the in-memory store
 * (bench/notifier-memory.ts, a diagnostic of what Firestore costs per delivery).
 */
export type NotifierStore = 'firestore' | 'memory';

export async function startNotifier(
  ctx: BenchContext,
  fixture: CapacityFixture,
  logDir: string,
  store: NotifierStore = 'firestore',
): Promise<BenchService> {
  const env = ctx.serviceEnv(fixture.projectId, { SLACK_API_URL: fixture.slackUrl, SLACK_BOT_TOKEN: STANDIN_TOKEN });
  if (store === 'firestore') return startBenchService('notifier', env, logDir);
  return startBenchService(
    'notifier',
    {
      ...env,
      BENCH_NOTIFICATIONS: String(CAPACITY_NOTIFICATIONS),
      BENCH_ACCOUNTS: String(BENCH_ACCOUNTS),
      BENCH_ID_PREFIX: 'cap',
    },
    logDir,
    [],
    join(__dirname, 'notifier-memory.js'),
  );
}

/** What one drive of the notifier measured. */
export interface Drive {
  /** autocannon's response time of each answered request, ms. */
  times: number[];
  non2xx: number;
  /** Transport errors and timeouts. */
  errors: number;
  /** From the start to the last answer (or error), s. */
  seconds: number;
}

/**
 * Sends `amount` pushes with `inFlight` connections. The level ends at its last answer:
 * autocannon reports its own result only on its next one-second sample tick, so its end (and
 * its `duration`) can be up to a second of idle later than the work. `onLastAnswer` runs at
 * that moment, for readings (CPU) that must cover the work and not the idle tail after it.
 */
export function drive(url: string, inFlight: number, amount: number, onLastAnswer?: () => void): Promise<Drive> {
  return new Promise((resolve, reject) => {
    const times: number[] = [];
    let non2xx = 0;
    let errors = 0;
    let lastAt = Number.NaN;
    const t0 = performance.now();
    const answered = () => {
      lastAt = performance.now();
      if (times.length + errors === amount) onLastAnswer?.();
    };
    const instance = autocannon(
      {
        url,
        connections: inFlight,
        pipelining: 1,
        amount,
        timeout: 60,
        requests: [
          {
            method: 'POST',
            path: '/push',
            headers: { 'content-type': 'application/json' },
            setupRequest: (req) => ({ ...req, body: nextEnvelope() }),
          },
        ],
      },
      (err) => {
        if (err) {
          reject(err);
          return;
        }
        const end = Number.isNaN(lastAt) ? performance.now() : lastAt;
        resolve({
          times,
          non2xx,
          // Counted here, one a `reqError` (autocannon's own count, timeouts included, is the same).
          errors,
          seconds: (end - t0) / 1000,
        });
      },
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      times.push(ms);
      if (status !== 204) non2xx++;
      answered();
    });
    instance.on('reqError', () => {
      errors++;
      answered();
    });
  });
}

export async function capacityLevel(
  notifier: BenchService,
  fixture: CapacityFixture,
  inFlight: number,
  amount: number,
  /** The Firestore emulator's CPU seconds so far (its process tree), to split the machine's work. */
  emulatorCpu: () => number = () => Number.NaN,
): Promise<CapacityRun> {
  fixture.standIn.reset();
  await notifier.resetStats();
  const machine0 = machineCpu();
  const emulator0 = emulatorCpu();
  const cpu0 = notifier.cpu();
  const take = () => ({
    cpu: notifier.cpu() - cpu0,
    emulator: emulatorCpu() - emulator0,
    busyCores: busyCoresSince(machine0).busyCores,
  });
  // Read when the last answer comes in, not when autocannon reports up to a second later.
  let atLastAnswer: ReturnType<typeof take> | undefined;
  const r = await drive(notifier.url, inFlight, amount, () => {
    atLastAnswer = take();
  });
  // Every request answered or failed is counted; should one not be, the end will do.
  const { cpu, emulator, busyCores } = atLastAnswer ?? take();
  const stats = await notifier.stats();
  const lat = percentiles(r.times);
  const posted = fixture.standIn.posts.length;
  if (posted === 0) {
    // A level that delivered nothing measured nothing: stop rather than report its figures.
    throw new Error(
      `notifier capacity at ${inFlight} in flight: none of ${amount} pushes was posted (${r.non2xx} answers other than 204, ${r.errors} errors); see the notifier's log`,
    );
  }
  return {
    inFlight,
    requests: r.times.length,
    seconds: r.seconds,
    deliveriesPerSec: posted / r.seconds,
    p50Ms: lat.p50,
    p95Ms: lat.p95,
    p99Ms: lat.p99,
    cpuMsPerDelivery: (cpu / Math.max(1, posted)) * 1000,
    readsPerDelivery: stats.firestore.reads / Math.max(1, posted),
    writesPerDelivery: stats.firestore.writes / Math.max(1, posted),
    rpcsPerDelivery: Object.values(stats.firestore.rpcs).reduce((a, b) => a + b, 0) / Math.max(1, posted),
    // A request that failed was not posted either: counted once, whichever way it is seen.
    failures: Math.max(r.non2xx + r.errors, amount - posted),
    emulatorCpuMsPerDelivery: (emulator / Math.max(1, posted)) * 1000,
    busyCores,
  };
}

/**
 * Requests per level: fewer at 1 in flight, where each waits for the one before. autocannon
 * refuses a level with fewer requests than connections; `levelProblem` finds one before
 * anything starts.
 */
export function levelAmount(inFlight: number, atMax: number): number {
  if (inFlight <= 1) return Math.max(100, Math.round(atMax / 8));
  if (inFlight <= 8) return Math.max(200, Math.round(atMax / 2));
  return atMax;
}

/** Why `inFlight` cannot be driven with `atMax` requests at the highest levels, or null. */
export function levelProblem(inFlight: number, atMax: number): string | null {
  const amount = levelAmount(inFlight, atMax);
  return amount < inFlight
    ? `${inFlight} in flight needs at least ${inFlight} requests, and --capacity-requests ${atMax} gives that level ${amount}`
    : null;
}

/**
 * Requests a fresh notifier serves before any level is measured, at the highest level: enough
 * for V8 to optimise the hot code, as in a service that has been up a while. A level measured
 * on a cold process counts the JIT's warm-up as CPU per delivery (about 1.5× at 8 in flight).
 */
export const WARM_UP_REQUESTS = 2000;

/** One run: a fresh notifier, warmed up, then each in-flight level in turn. */
export async function capacityRun(
  ctx: BenchContext,
  fixture: CapacityFixture,
  run: number | string,
  store: NotifierStore = 'firestore',
  /** Told of each level once it is measured: progress on a run that takes a while. */
  onLevel: (level: CapacityRun) => void = () => undefined,
): Promise<CapacityRun[]> {
  const notifier = await startNotifier(ctx, fixture, join(ctx.tmpDir, `capacity-${run}`), store);
  try {
    // Warm-up: JIT, the Firestore channel and the Slack client's keep-alive sockets.
    const warm = await drive(notifier.url, Math.max(...ctx.opts.inFlight), WARM_UP_REQUESTS);
    if (warm.non2xx + warm.errors > 0) {
      ctx.say(`    warm-up: ${warm.non2xx} answers other than 204 and ${warm.errors} errors; see the notifier's log`);
    }
    const out: CapacityRun[] = [];
    for (const c of ctx.opts.inFlight) {
      const emulator = () => emulatorsCpu(ctx.emulators).firestore;
      const level = await capacityLevel(notifier, fixture, c, levelAmount(c, ctx.opts.capacityRequests), emulator);
      onLevel(level);
      out.push(level);
    }
    return out;
  } finally {
    await notifier.stop();
  }
}
