import { type Emulators, startEmulators } from '../../dev/emulators';
import { SlackStandIn } from '../../dev/slack-standin';
import { type Stack, startStack, uniqueProjectId } from '../../dev/stack';
import { deliveryStatuses, notification, seed, waitFor } from '../helpers';
import { deliveryIds, minuteOf, size, verdict } from './harness';

const TOKEN = 'xoxb-outage-test';
const OUTAGE_MS = 15_000;
const ADMIN_DEADLINE_MS = 3000;

/** Freezes a whole emulator (launcher and Java) the way a dead network would. */
function freeze(e: Emulators['firestore'], signal: 'SIGSTOP' | 'SIGCONT'): void {
  process.kill(-(e.child.pid as number), signal);
}

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return res.status;
  } catch {
    return 0;
  }
}

describe('Firestore, then Pub/Sub, unreachable for 15 s mid-run', () => {
  // Emulators of its own: freezing the shared ones would stall every other test.
  let emulators: Emulators;
  const saved = { ps: process.env.PUBSUB_EMULATOR_HOST, fs: process.env.FIRESTORE_EMULATOR_HOST };
  const slack = new SlackStandIn({ token: TOKEN });
  let stack: Stack;

  beforeAll(async () => {
    emulators = await startEmulators({ logDir: '.local/emulators' });
    Object.assign(process.env, emulators.env);
    await slack.start();
    stack = await startStack({
      projectId: uniqueProjectId('faults-outage'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      claimTtlSeconds: 10,
      slackTimeoutMs: 1000,
      pushDeadlineMs: 8000,
      // The admin API open to this test alone, with a deadline that fits in the outage.
      auth: { admin: (_req, _res, next) => next() },
      adminDeadlines: { oneMs: ADMIN_DEADLINE_MS, bulkMs: ADMIN_DEADLINE_MS },
    });
  }, 120_000);
  afterAll(async () => {
    freeze(emulators.firestore, 'SIGCONT');
    freeze(emulators.pubsub, 'SIGCONT');
    await stack.stop();
    await slack.stop();
    await emulators.stop();
    process.env.PUBSUB_EMULATOR_HOST = saved.ps;
    process.env.FIRESTORE_EMULATOR_HOST = saved.fs;
  }, 60_000);

  test('unhealthy and nacking while down, never crashing or acking; afterwards every notification delivered once', async () => {
    const n = size(400, 3000);
    // A minute back, so that the second occurrence's schedule time is not in the future either.
    const t0 = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
    const notifications = Array.from({ length: n }, (_, i) => notification(i));
    await seed(stack.db, notifications, 10, t0);
    // Slower posts keep the first occurrence in flight when Firestore stops.
    slack.setFaults([{ respond: { kind: 'delay', ms: 15 } }]);
    expect((await stack.tick(t0)).status).toBe(200);
    await waitFor('deliveries under way', () => slack.posts.length >= n / 10, 120_000, 50);

    // Firestore down.
    freeze(emulators.firestore, 'SIGSTOP');
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await status(`${stack.notifierUrl}/readyz`)).toBe(503);
    expect(await status(`${stack.dispatcherUrl}/readyz`)).toBe(503);
    expect(await status(`${stack.notifierUrl}/healthz`)).toBe(200);
    // The next occurrence's tick fails cleanly instead of hanging.
    const t1 = new Date(t0.getTime() + 60_000);
    const refused = await stack.tick(t1);
    expect(refused.status).toBe(503);
    expect(refused.body.error).toBe('dependency_unavailable');
    // An admin read answers 504 at its deadline, not when Firestore comes back.
    const asked = Date.now();
    const read = await fetch(`${stack.dispatcherUrl}/admin/notifications/${notifications[0]?.id}`, {
      signal: AbortSignal.timeout(OUTAGE_MS),
    });
    expect({ status: read.status, retryAfter: read.headers.get('retry-after') }).toEqual({
      status: 504,
      retryAfter: '5',
    });
    expect(((await read.json()) as { error: string }).error).toBe('firestore_timeout');
    expect(Date.now() - asked).toBeLessThan(ADMIN_DEADLINE_MS + 2000);
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
    freeze(emulators.firestore, 'SIGCONT');

    // Pub/Sub down.
    await waitFor('ready again', async () => (await status(`${stack.dispatcherUrl}/readyz`)) === 200, 60_000, 500);
    freeze(emulators.pubsub, 'SIGSTOP');
    const psDownAt = Date.now();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await status(`${stack.dispatcherUrl}/readyz`)).toBe(503);
    expect((await stack.tick(t1)).status).toBe(503);
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - psDownAt))));
    freeze(emulators.pubsub, 'SIGCONT');

    // Back: the repeated tick dispatches the occurrence the refused ticks could not.
    await waitFor('ready again', async () => (await status(`${stack.dispatcherUrl}/readyz`)) === 200, 60_000, 500);
    const again = await stack.tick(t1);
    expect(again.status).toBe(200);
    expect(again.body.published).toBe(n);

    const db = stack.db;
    await waitFor('both occurrences sent', async () => (await deliveryStatuses(db)).sent === 2 * n, 600_000, 1000);
    const ids = notifications.map((x) => x.id);
    const v = await verdict('emulators-sigstop', slack, db, [
      ...deliveryIds(ids, minuteOf(t0)),
      ...deliveryIds(ids, minuteOf(t1)),
    ]);
    expect(v).toMatchObject({ sent: 2 * n, failed: 0, dead: 0, duplicates: 0, lost: 0, stuck: 0 });
  }, 900_000);
});
