import { join } from 'node:path';
import { createFirestore } from '../shared/firestore';
import { createPubSub } from '../shared/pubsub';
import type { BenchContext } from './context';
import { busyCoresSince, emulatorsCpu, machineCpu, resetPeakRss } from './proc';
import { benchNotifications, resetSchedules, schedulesOf, seed, spreadNotifications } from './seed';
import { type BenchService, startBenchService, warmUp } from './services';

/**
 * Dispatch alone: N due notifications seeded before timing, the dispatcher as its own process
 * (the command its container runs) publishing to a topic with one subscription nothing pulls from, one tick timed
 * from the request to the answer. A fresh dispatcher process per run. Its first tick is timed
 * too, and reported as the cold tick; the measured tick is the second, as in a service that
 * Cloud Scheduler calls every minute, and the peak RSS (VmHWM) is started over before it.
 */

export interface DispatchRun {
  n: number;
  /** Schedules the timed tick found due (its summary's `dueSchedules`). */
  dueSchedules: number;
  /** From sending POST /tick to its answer. */
  wallSeconds: number;
  /** The tick's own durationMs, from its summary. */
  tickSeconds: number;
  messagesPerSec: number;
  peakRssMiB: number;
  cpuSeconds: number;
  cpuSecondsPer1k: number;
  reads: number;
  writes: number;
  readsPerNotification: number;
  writesPerNotification: number;
  /** Peak V8 heap in use during the tick (sampled in-process), beside the kernel's peak RSS. */
  heapUsedPeakMiB: number;
  /** Peak memory outside the V8 heap (Buffers, native) during the tick. */
  externalPeakMiB: number;
  /** The first tick of the fresh process, while V8 still compiles the hot code: request to answer. */
  coldWallSeconds: number;
  /** Cores the whole machine kept busy during the timed tick: the dispatcher, both emulators, the rest. */
  busyCores: number;
  /** CPU seconds each emulator (its launcher and Java child) used during the timed tick. */
  pubsubEmulatorCpuSeconds: number;
  firestoreEmulatorCpuSeconds: number;
}

export const DISPATCH_TOPIC = 'bench-dispatch';

export interface DispatchFixture {
  n: number;
  /** What the logs and projects are named after: `${n}`, or `${n}-over-${schedules}`. */
  label: string;
  projectId: string;
  schedules: Map<string, { cron: string; timezone: string }>;
  close(): Promise<void>;
}

/**
 * Seeds one project with N notifications, on the few BENCH_SCHEDULES or, with `spread`, on that
 * many schedules of N / spread each (spreadNotifications); reused by every run of it (and the profile).
 */
export async function dispatchFixture(ctx: BenchContext, n: number, spread?: number): Promise<DispatchFixture> {
  const label = spread ? `${n}-over-${spread}` : `${n}`;
  const projectId = ctx.projectId(`dispatch-${label}`);
  const db = createFirestore(projectId);
  const pubsub = createPubSub(projectId);
  const [topic] = await pubsub.createTopic(DISPATCH_TOPIC);
  // The dispatcher is not ready with a topic no subscription reads: one that nothing pulls from,
  // as the raw publish ceiling's topic has (bench/ceilings.ts).
  await topic.createSubscription(`${DISPATCH_TOPIC}-kept`);
  await pubsub.close();
  const items = spread ? spreadNotifications(spread, Math.ceil(n / spread)).slice(0, n) : benchNotifications(n, 0);
  const bar = ctx.bar(
    `seeding ${n.toLocaleString('en-US')} notifications${spread ? ` over ${spread.toLocaleString('en-US')} schedules` : ''}`,
    n,
  );
  const t0 = performance.now();
  try {
    await seed(db, items, 0, new Date(), (written) => bar.update(written));
  } finally {
    bar.stop();
  }
  const secs = (performance.now() - t0) / 1000;
  ctx.say(`  seeded ${n} notifications in ${secs.toFixed(1)} s (${Math.round(n / secs)} writes/s)`);
  const schedules = schedulesOf(items);
  return {
    n,
    label,
    projectId,
    schedules,
    close: () => db.terminate(),
  };
}

export async function tick(url: string, at: Date): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/tick`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-cloudscheduler-scheduletime': at.toISOString() },
    body: '{}',
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function startDispatcher(
  ctx: BenchContext,
  projectId: string,
  logDir: string,
  topic = DISPATCH_TOPIC,
  nodeArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<BenchService> {
  const svc = await startBenchService(
    'dispatcher',
    ctx.serviceEnv(projectId, { DISPATCH_TOPIC: topic, ...env }),
    logDir,
    nodeArgs,
  );
  await warmUp(svc.url);
  return svc;
}

/** Makes the fixture's schedules due again, so that one tick dispatches all N. */
export async function rearm(fixture: DispatchFixture, at: Date): Promise<void> {
  const db = createFirestore(fixture.projectId);
  try {
    await resetSchedules(db, fixture.schedules, at);
  } finally {
    await db.terminate();
  }
}

/**
 * The first tick of a fresh dispatcher, which runs while V8 compiles the hot code: the same N,
 * made due again first. Returns its wall time; throws unless it published all N.
 */
export async function coldTick(svc: BenchService, fixture: DispatchFixture): Promise<number> {
  const at = new Date();
  await rearm(fixture, at);
  const t0 = performance.now();
  const res = await tick(svc.url, at);
  const seconds = (performance.now() - t0) / 1000;
  checkTick(fixture, res);
  return seconds;
}

function checkTick(fixture: DispatchFixture, res: { status: number; body: Record<string, unknown> }): void {
  const published = Number(res.body.published ?? 0);
  if (res.status !== 200 || published !== fixture.n) {
    throw new Error(
      `dispatch of ${fixture.n}: HTTP ${res.status}, ${published} published: ${JSON.stringify(res.body).slice(0, 500)}`,
    );
  }
}

/**
 * One run: a fresh dispatcher, its cold first tick, then the timed tick. `nodeArgs` adds Node
 * flags after the container's (the uncapped-heap diagnostic), `env` settings to the dispatcher's.
 */
export async function dispatchRun(
  ctx: BenchContext,
  fixture: DispatchFixture,
  run: number | string,
  nodeArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<DispatchRun> {
  const logDir = join(ctx.tmpDir, `dispatch-${fixture.label}-${run}`);
  const svc = await startDispatcher(ctx, fixture.projectId, logDir, DISPATCH_TOPIC, nodeArgs, env);
  try {
    const coldWallSeconds = await coldTick(svc, fixture);
    const at = new Date();
    await rearm(fixture, at);
    if (!resetPeakRss(svc.pid)) {
      ctx.say(`    peak RSS not started over (/proc/${svc.pid}/clear_refs is not writable): it includes the cold tick`);
    }
    await svc.resetStats();
    const cpu0 = svc.cpu();
    const emulators0 = emulatorsCpu(ctx.emulators);
    const machine0 = machineCpu();
    const t0 = performance.now();
    const res = await tick(svc.url, at);
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu = svc.cpu() - cpu0;
    const { busyCores } = busyCoresSince(machine0);
    const emulators = emulatorsCpu(ctx.emulators);
    const peak = svc.peakRssMiB();
    const stats = await svc.stats();
    checkTick(fixture, res);
    return {
      n: fixture.n,
      dueSchedules: Number(res.body.dueSchedules ?? Number.NaN),
      wallSeconds,
      tickSeconds: Number(res.body.durationMs ?? Number.NaN) / 1000,
      messagesPerSec: fixture.n / wallSeconds,
      peakRssMiB: peak,
      cpuSeconds: cpu,
      cpuSecondsPer1k: (cpu / fixture.n) * 1000,
      reads: stats.firestore.reads,
      writes: stats.firestore.writes,
      readsPerNotification: stats.firestore.reads / fixture.n,
      writesPerNotification: stats.firestore.writes / fixture.n,
      heapUsedPeakMiB: stats.memoryPeakMiB.heapUsed ?? Number.NaN,
      externalPeakMiB: stats.memoryPeakMiB.external ?? Number.NaN,
      coldWallSeconds,
      busyCores,
      pubsubEmulatorCpuSeconds: emulators.pubsub - emulators0.pubsub,
      firestoreEmulatorCpuSeconds: emulators.firestore - emulators0.firestore,
    };
  } finally {
    await svc.stop();
  }
}
