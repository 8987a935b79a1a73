import { join } from 'node:path';
import { type CapacityFixture, drive, startNotifier, WARM_UP_REQUESTS } from './capacity';
import type { BenchContext } from './context';
import { type ProfileSummary, summariseFile } from './cpuprofile';
import { coldTick, type DispatchFixture, rearm, startDispatcher, tick } from './dispatch';

/**
 * One CPU profile of each hot path: the dispatcher's tick, and the notifier under 64 pushes
 * in flight. The V8 sampling profiler (the one `node --cpu-prof` runs; Node refuses that flag in
 * NODE_OPTIONS, and startService passes no argv) is started through node:inspector inside the
 * service (bench/instrument.ts) just before the load and stopped just after, so start-up and
 * shutdown stay out of the profile. The .cpuprofile files open in Chrome DevTools.
 */

export async function profileDispatcher(ctx: BenchContext, fixture: DispatchFixture): Promise<ProfileSummary> {
  const dir = join(ctx.tmpDir, `profile-dispatch-${fixture.n}`);
  const svc = await startDispatcher(ctx, fixture.projectId, dir);
  const file = join(ctx.tmpDir, `dispatcher-tick-${fixture.n}.cpuprofile`);
  try {
    // The profiled tick is the second, as the timed one is (bench/dispatch.ts).
    await coldTick(svc, fixture);
    const at = new Date();
    await rearm(fixture, at);
    await svc.profileStart();
    const res = await tick(svc.url, at);
    await svc.profileStop(file);
    if (res.status !== 200) throw new Error(`profiled tick: HTTP ${res.status}`);
  } finally {
    await svc.stop();
  }
  return summariseFile(file);
}

export async function profileNotifier(
  ctx: BenchContext,
  fixture: CapacityFixture,
  inFlight: number,
  amount: number,
): Promise<ProfileSummary> {
  const svc = await startNotifier(ctx, fixture, join(ctx.tmpDir, 'profile-notifier'));
  const file = join(ctx.tmpDir, `notifier-push-${inFlight}-in-flight.cpuprofile`);
  try {
    await drive(svc.url, inFlight, WARM_UP_REQUESTS);
    fixture.standIn.reset();
    await svc.profileStart();
    await drive(svc.url, inFlight, amount);
    await svc.profileStop(file);
  } finally {
    await svc.stop();
  }
  return summariseFile(file);
}
