import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../dev/emulators';
import { startFrontend } from '../../dev/frontend';
import { killService, type ServiceProcess, startService, stopService } from '../../dev/processes';
import { type Stack, startStack, uniqueProjectId } from '../../dev/stack';
import { runIdOf } from '../../shared/model';
import { scheduleIdOf } from '../../shared/schedule';
import { CONNECTIONS_CHECKED_EVERY_MS, REQUEST_RECEIVED_WITHIN_MS, SHUTDOWN_GRACE_MS } from '../../shared/service';
import { COLLECTIONS, localTopology } from '../../shared/topology';
import {
  allSent,
  emulatorServiceEnv,
  notification,
  postJson,
  pushEnvelope,
  seed,
  standInForFile,
  waitFor,
} from '../helpers';
import { deliveryIds, minuteOf, size, verdict } from './harness';

/** The dispatcher-kill test's run lease (RUN_LEASE_SECONDS). */
const LEASE_SECONDS = 15;

const TOKEN = 'xoxb-process-fault-test';

type TickBody = { published: number; occurrences: { status: string }[] };

function serviceEnv(projectId: string, slackUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return emulatorServiceEnv(projectId, {
    SLACK_API_URL: slackUrl,
    SLACK_BOT_TOKEN: TOKEN,
    LOG_LEVEL: 'warn',
    AUTH_MODE: 'none',
    NACK_DELAY_MS: String(localTopology().nackDelayMs),
    ...extra,
  });
}

describe('processes killed mid-run', () => {
  const slack = standInForFile({ token: TOKEN });
  let stack: Stack | undefined;
  const services: ServiceProcess[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const s of services.splice(0)) await killService(s);
    for (const c of cleanups.splice(0)) await c();
    await stack?.stop();
    stack = undefined;
    slack.reset();
  });

  test('the notifier killed with SIGKILL mid-run and restarted: every one sent once, none stuck', async () => {
    const n = size(600, 2000);
    const projectId = uniqueProjectId('faults-notifier-kill');
    const port = await freePort();
    const env = serviceEnv(projectId, slack.url, { CLAIM_TTL_SECONDS: '5', SLACK_TIMEOUT_MS: '1000' });
    const first = await startService('notifier', env, { port });
    services.push(first);
    const frontend = await startFrontend(() => first.url);
    cleanups.push(() => frontend.stop());
    stack = await startStack({
      projectId,
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      externalNotifierUrl: frontend.url,
    });
    const now = new Date();
    const notifications = Array.from({ length: n }, (_, i) => notification(i));
    await seed(stack.db, notifications, 10, now);
    // Slow posts widen the window in which a kill lands mid-call.
    slack.setFaults([{ probability: 0.3, respond: { kind: 'delay', ms: 20 } }]);
    await stack.tick(now);

    await waitFor('a quarter posted', () => slack.posts.length >= n / 4, 300_000, 20);
    await killService(first);
    services.splice(services.indexOf(first), 1);
    const postedAtKill = slack.posts.length;
    await new Promise((r) => setTimeout(r, 1000));
    services.push(await startService('notifier', env, { port }));

    const db = stack.db;
    await waitFor('every delivery sent', allSent(db, n), 600_000, 1000);
    const v = await verdict(
      'notifier-sigkill',
      slack,
      db,
      deliveryIds(
        notifications.map((x) => x.id),
        minuteOf(now),
      ),
    );
    expect(postedAtKill).toBeLessThan(n);
    // Pushes did arrive while no instance was up, and were answered 503 (a nack).
    expect(frontend.unavailable).toBeGreaterThan(0);
    expect(v).toMatchObject({ sent: n, failed: 0, dead: 0, duplicates: 0, lost: 0, stuck: 0 });
  }, 900_000);

  test('the dispatcher killed with SIGKILL mid-publish: the next tick resumes from the checkpoint', async () => {
    const n = size(2000, 20_000);
    const projectId = uniqueProjectId('faults-dispatcher-kill');
    stack = await startStack({ projectId, slackApiUrl: slack.url, slackToken: TOKEN });
    // A lease long enough that a dispatcher started in the dead one's place still ticks inside
    // it on a loaded machine (two test files at a time): 5 s was not, once in CI.
    const env = serviceEnv(projectId, slack.url, {
      DISPATCH_PAGE_SIZE: String(size(25, 100)),
      RUN_LEASE_SECONDS: String(LEASE_SECONDS),
      // A checkpoint a page, so that the run is seen under way (and killed) well before its end.
      DISPATCH_CHECKPOINT_INTERVAL_MS: '0',
    });
    const dispatcher = await startService('dispatcher', env);
    services.push(dispatcher);
    const now = new Date();
    const notifications = Array.from({ length: n }, (_, i) => notification(i));
    await seed(stack.db, notifications, 10, now);
    const occurrence = minuteOf(now);
    const runRef = stack.db
      .collection(COLLECTIONS.runs)
      .doc(runIdOf(scheduleIdOf({ cron: '* * * * *', timezone: 'Europe/Paris' }), occurrence));

    const tick = (url: string) =>
      fetch(`${url}/tick`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cloudscheduler-scheduletime': now.toISOString() },
        body: '{}',
      });
    const firstTick = tick(dispatcher.url).catch((err: Error) => err);
    const publishedAtKill = await waitFor(
      'the run under way',
      async () => {
        const p = Number((await runRef.get()).get('published') ?? 0);
        return p >= n / 10 ? p : undefined;
      },
      120_000,
      10,
    );
    await killService(dispatcher);
    services.splice(services.indexOf(dispatcher), 1);
    // The killed tick never answered (a fetch error, not a Response).
    expect(await firstTick).not.toHaveProperty('status');
    expect(publishedAtKill).toBeLessThan(n);
    expect((await runRef.get()).get('status')).toBe('running');

    const second = await startService('dispatcher', env);
    services.push(second);
    // A tick inside the dead owner's lease leaves the run alone.
    const early = (await (await tick(second.url)).json()) as TickBody;
    expect(early.occurrences[0]?.status).toBe('leased-elsewhere');
    await new Promise((r) => setTimeout(r, LEASE_SECONDS * 1000 + 500));
    // A tick that answers 503 is sent again, as Cloud Scheduler does: a checkpoint transaction the
    // killed dispatcher left open can hold its lock on the run until the emulator times it out
    // ("10 ABORTED: Transaction lock timeout"), and the tick then fails without touching the run:
    // the whole tick (`tick_failed`), or that schedule's claim alone (an occurrence `failed`).
    const resumed = await waitFor(
      'a tick that reaches the run',
      async () => {
        const res = await tick(second.url);
        const body = (await res.json()) as TickBody & { error?: string };
        return res.status === 503 ? undefined : body;
      },
      60_000,
      1000,
    );
    expect(resumed.occurrences[0]?.status).toBe('resumed');
    expect(resumed.published).toBeLessThanOrEqual(n - publishedAtKill);

    const db = stack.db;
    await waitFor('every delivery sent', allSent(db, n), 900_000, 1000);
    const v = await verdict(
      'dispatcher-sigkill',
      slack,
      db,
      deliveryIds(
        notifications.map((x) => x.id),
        occurrence,
      ),
    );
    expect(v).toMatchObject({ sent: n, duplicates: 0, lost: 0, stuck: 0 });
    expect((await runRef.get()).get('status')).toBe('done');
  }, 1_200_000);

  test('a client that sends its request a byte at a time is answered 408 and cut off within a minute and a check, while an idle keep-alive connection stays', async () => {
    const service = await startService('notifier', serviceEnv(uniqueProjectId('faults-slow'), slack.url));
    services.push(service);
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(service.port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
        cleanups.push(async () => void socket.destroy());
      });
    // An idle keep-alive connection, after one request answered.
    const idle = await open();
    let idleText = '';
    idle.on('data', (d: Buffer) => {
      idleText += d.toString('latin1');
    });
    idle.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor('the first answer', () => idleText.includes('HTTP/1.1 200'), 5_000, 20);
    // A request whose headers come a byte every 2 s, for at most 90 s.
    const slow = await open();
    let slowText = '';
    slow.on('data', (d: Buffer) => {
      slowText += d.toString('latin1');
    });
    const closed = new Promise<number>((r) => slow.once('close', () => r(Date.now())));
    const started = Date.now();
    slow.write('POST /push HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const drip = setInterval(() => {
      if (!slow.destroyed && Date.now() - started < 90_000) slow.write('X');
    }, 2_000);
    cleanups.push(async () => clearInterval(drip));
    const closedAt = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 95_000))]);
    clearInterval(drip);
    expect(closedAt).toBeGreaterThan(0);
    expect(closedAt - started).toBeGreaterThanOrEqual(REQUEST_RECEIVED_WITHIN_MS - 1_000);
    expect(closedAt - started).toBeLessThan(REQUEST_RECEIVED_WITHIN_MS + CONNECTIONS_CHECKED_EVERY_MS + 2_000);
    expect(slowText).toMatch(/^HTTP\/1\.1 408 /);
    // The idle connection, older than that, still serves.
    idle.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await waitFor(
      'the second answer on the idle connection',
      () => idleText.split('HTTP/1.1 200').length === 3,
      5_000,
      20,
    );
  }, 120_000);

  test.each([
    ['notifier', '/push'],
    ['dispatcher', '/tick'],
  ] as const)(
    "SIGTERM: the %s, with a request stuck mid-body, abandons it at the grace and exits within 9 s, a second inside Cloud Run's kill, its last line written",
    async (name, path) => {
      const projectId = uniqueProjectId(`faults-stop-${name}`);
      const dir = mkdtempSync(join(tmpdir(), 'fanout-stop-'));
      cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
      const logFile = join(dir, `${name}.log`);
      const service = await startService(name, serviceEnv(projectId, slack.url, { LOG_LEVEL: 'info' }), { logFile });
      services.push(service);
      // A body that never ends: in flight until the grace runs out.
      const socket = connect(service.port, '127.0.0.1');
      cleanups.push(async () => void socket.destroy());
      socket.on('error', () => undefined);
      await new Promise((r) => socket.once('connect', r));
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`,
      );
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise<{ at: number; code: number | null }>((r) =>
        service.child.once('exit', (code) => r({ at: Date.now(), code })),
      );
      const termAt = Date.now();
      process.kill(service.child.pid as number, 'SIGTERM');
      const { at, code } = await exited;
      services.splice(services.indexOf(service), 1);
      expect(code).toBe(0);
      expect(at - termAt).toBeGreaterThanOrEqual(SHUTDOWN_GRACE_MS - 100);
      // The grace, the clients' close and the logs' flush: 9 s at the most, Cloud Run kills at 10.
      expect(at - termAt).toBeLessThan(9500);
      const messages = readFileSync(logFile, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => (JSON.parse(l) as { message?: string }).message);
      expect(messages).toContain('abandoning in-flight requests at the shutdown deadline');
      expect(messages.at(-1)).toBe('shut down');
    },
    60_000,
  );

  test('SIGTERM: the notifier finishes its in-flight push, refuses new work, and exits within 8 s', async () => {
    const projectId = uniqueProjectId('faults-sigterm');
    const env = serviceEnv(projectId, slack.url);
    const notifier = await startService('notifier', env);
    services.push(notifier);
    stack = await startStack({
      projectId,
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      externalNotifierUrl: notifier.url,
    });
    const now = new Date();
    await seed(stack.db, [notification(1)], 10, now);
    slack.setFaults([{ channel: 'C000000001', respond: { kind: 'delay', ms: 2000 } }]);
    const occurrence = minuteOf(now);
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'Europe/Paris' });
    const message = {
      v: 1 as const,
      notificationId: 'n-00001',
      occurrence,
      scheduleId,
      runId: runIdOf(scheduleId, occurrence),
    };
    const inFlight = postJson(`${notifier.url}/push`, pushEnvelope(message));
    await waitFor('the Slack call under way', () => (slack.callCount['chat.postMessage'] ?? 0) >= 1, 10_000, 20);
    const exited = new Promise<number>((r) => notifier.child.once('exit', () => r(Date.now())));
    const termAt = Date.now();
    process.kill(notifier.child.pid as number, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    // New work is refused while draining (or the port is already closed).
    const late = await postJson(`${notifier.url}/push`, pushEnvelope(message)).catch(() => ({ status: 0 }));
    expect([0, 503]).toContain(late.status);
    const done = await inFlight;
    expect(done.status).toBe(204);
    const exitAt = await exited;
    expect(exitAt - termAt).toBeLessThan(8000);
    expect((await stack.store.get(`n-00001:${occurrence}`))?.status).toBe('sent');
    services.splice(services.indexOf(notifier), 1);
    await stopService(notifier);
  }, 120_000);
});
