import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Request } from 'express';
import { ROOT } from '../../dev/processes';
import { type Stack, startStack, uniqueProjectId } from '../../dev/stack';
import { deliveryIdOf, runIdOf } from '../../shared/model';
import { setNotificationEnabled } from '../../shared/notifications';
import { scheduleIdOf } from '../../shared/schedule';
import { COLLECTIONS, localTopology } from '../../shared/topology';
import { allSent, deliveryStatuses, notification, pushEnvelope, seed, standInForFile, waitFor } from '../helpers';
import { deliveryIds, minuteOf, size, verdict } from './harness';

const TOKEN = 'xoxb-dispatch-fault-test';
const run = promisify(execFile);
type TickBody = { published: number; occurrences: { status: string; published: number }[] };

describe('faults around dispatch and bad input', () => {
  const slack = standInForFile({ token: TOKEN });
  let stack: Stack | undefined;

  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
    slack.reset();
  });

  test('two ticks for the same occurrence at once: one dispatches, no duplicate posts', async () => {
    const n = size(500, 5000);
    stack = await startStack({
      projectId: uniqueProjectId('faults-concurrent'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      pageSize: 50,
    });
    const now = new Date();
    const notifications = Array.from({ length: n }, (_, i) => notification(i));
    await seed(stack.db, notifications, 10, now);
    const [a, b] = await Promise.all([stack.tick(now), stack.tick(now)]);
    const bodies = [a.body, b.body] as unknown as TickBody[];
    const statuses = bodies.flatMap((x) => x.occurrences.map((o) => o.status)).sort();
    // The loser saw a live lease, found the run done, or came late and found nothing due.
    expect(statuses.filter((s) => s === 'dispatched')).toHaveLength(1);
    expect(statuses.every((s) => ['dispatched', 'leased-elsewhere', 'already-done'].includes(s))).toBe(true);
    expect(bodies[0]!.published + bodies[1]!.published).toBe(n);
    const db = stack.db;
    await waitFor('every delivery sent', allSent(db, n), 300_000, 500);
    const v = await verdict(
      'concurrent-ticks',
      slack,
      db,
      deliveryIds(
        notifications.map((x) => x.id),
        minuteOf(now),
      ),
    );
    expect(v).toMatchObject({ sent: n, duplicates: 0, lost: 0 });
  }, 600_000);

  test('poison input: random, truncated, oversized and mistyped bodies are answered and never loop', async () => {
    const pushes = new Map<string, number>();
    stack = await startStack({
      projectId: uniqueProjectId('faults-poison'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      observeNotifier: (req: Request) => {
        if (req.path === '/push' && !req.header('x-direct')) pushes.set('pubsub', (pushes.get('pubsub') ?? 0) + 1);
      },
    });
    const now = new Date();
    await seed(stack.db, [notification(1)], 10, now);
    const url = `${stack.notifierUrl}/push`;
    const occurrence = minuteOf(now);
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'Europe/Paris' });
    const good = pushEnvelope({
      v: 1,
      notificationId: 'n-00001',
      occurrence,
      scheduleId,
      runId: runIdOf(scheduleId, occurrence),
    });
    const goodText = JSON.stringify(good);

    // A fixed-seed generator keeps the 200 bodies the same from run to run.
    let seedState = 1234;
    const rnd = () => {
      seedState = (seedState * 1103515245 + 12345) % 2 ** 31;
      return seedState / 2 ** 31;
    };
    const bodies: { body: string; type: string }[] = [];
    for (let i = 0; i < 200; i++) {
      const kind = i % 4;
      if (kind === 0)
        bodies.push({ body: goodText.slice(0, Math.floor(rnd() * goodText.length)), type: 'application/json' });
      else if (kind === 1)
        bodies.push({
          body: Array.from({ length: Math.floor(rnd() * 300) }, () =>
            String.fromCharCode(Math.floor(rnd() * 128)),
          ).join(''),
          type: 'application/json',
        });
      else if (kind === 2) {
        const data = Buffer.from(
          JSON.stringify({ v: 1, notificationId: rnd() > 0.5 ? 42 : 'x', occurrence: 'soon' }),
        ).toString('base64');
        bodies.push({
          body: JSON.stringify({ message: { data, attributes: { deliveryId: `poison-${i}` } } }),
          type: 'application/json',
        });
      } else
        bodies.push({
          body: goodText,
          type: ['text/plain', 'application/x-www-form-urlencoded', 'application/xml'][i % 3] as string,
        });
    }
    bodies.push({ body: JSON.stringify({ message: { data: 'A'.repeat(2 * 1024 * 1024) } }), type: 'application/json' });
    // Ids Firestore cannot take as a document id: answered and recorded at once, not retried.
    const badIds = ['a/b', '..', '__x__'];
    for (const [i, notificationId] of badIds.entries()) {
      const envelope = pushEnvelope({
        v: 1,
        notificationId,
        occurrence,
        scheduleId,
        runId: runIdOf(scheduleId, occurrence),
      });
      envelope.message.attributes = { deliveryId: `poison-id-${i}` };
      bodies.push({ body: JSON.stringify(envelope), type: 'application/json' });
    }
    // A delivery id that cannot be a document: answered, and nothing to record it against.
    bodies.push({
      body: JSON.stringify({ message: { data: 'e30=', attributes: { deliveryId: 'x'.repeat(2000) } } }),
      type: 'application/json',
    });

    const statuses: number[] = [];
    for (const b of bodies) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': b.type, 'x-direct': '1' },
        body: b.body,
      });
      statuses.push(res.status);
    }
    // Every one answered with an ack: a redelivery could not make any of them valid.
    expect(statuses.every((s) => s === 204)).toBe(true);
    // But the good envelope, relabelled 50 times over (text/plain, a form, XML), is still JSON:
    // read as such, it posts, once for the 50.
    expect(slack.posts.map((p) => p.metadata?.event_payload.deliveryId)).toEqual([deliveryIdOf('n-00001', occurrence)]);
    const recorded = await stack.db.collection(COLLECTIONS.deliveries).where('status', '==', 'failed').get();
    expect(recorded.docs.filter((d) => d.id.startsWith('poison-'))).toHaveLength(50 + badIds.length);
    expect(recorded.docs.every((d) => d.get('lastError.code') === 'invalid_message')).toBe(true);
    // The dead-letter endpoint acks what it cannot record instead of having it pushed again.
    const dead = await fetch(`${stack.notifierUrl}/dead-letter`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-direct': '1' },
      body: JSON.stringify({ message: { data: 'e30=', attributes: { deliveryId: 'a/b' } }, deliveryAttempt: '5' }),
    });
    expect(dead.status).toBe(200);
    expect(await dead.json()).toMatchObject({ deliveryId: null, status: 'unrecorded' });

    // Through Pub/Sub: messages for notifications that do not exist, and undecodable ones.
    const poison = 20;
    for (let i = 0; i < poison; i++) {
      await stack.topic.publishMessage({
        json: { v: 1, notificationId: `gone-${i}`, occurrence, scheduleId, runId: runIdOf(scheduleId, occurrence) },
        attributes: { deliveryId: `gone-${i}:${occurrence}` },
      });
      await stack.topic.publishMessage({
        data: Buffer.from(`not json ${i}`),
        attributes: { deliveryId: `garbage-${i}` },
      });
    }
    await stack.topic.flush();
    const db = stack.db;
    await waitFor(
      'the poison recorded',
      async () => (await deliveryStatuses(db)).failed === 50 + badIds.length + 2 * poison,
      60_000,
    );
    // Longer than the retry backoff: a nacked message would have come back by now.
    await new Promise((r) => setTimeout(r, 6000));
    expect(pushes.get('pubsub')).toBe(2 * poison);
    const gone = await stack.store.get(`gone-3:${occurrence}`);
    expect(gone?.lastError?.code).toBe('notification_not_found');
    // And the service still serves.
    const health = await fetch(`${stack.notifierUrl}/healthz`);
    expect(health.status).toBe(200);
    const v = await verdict('poison-input', slack, db, []);
    expect(v).toMatchObject({ sent: 1, failed: 50 + badIds.length + 2 * poison, duplicates: 0 });
  }, 300_000);

  test('a channel failing permanently 3 occurrences in a row is paused, not dispatched, and resumes', async () => {
    stack = await startStack({ projectId: uniqueProjectId('faults-pause'), slackApiUrl: slack.url, slackToken: TOKEN });
    // Five minutes back, so that the five ticks' schedule times are all past (a future one is refused).
    const t0 = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 5 * 60_000);
    await seed(stack.db, [notification(1), notification(2)], 10, t0);
    slack.addFault({ channel: 'C000000001', respond: { kind: 'slack_error', error: 'not_in_channel' } });
    const db = stack.db;
    const tickAt = async (minute: number, expectPublished: number) => {
      const at = new Date(t0.getTime() + minute * 60_000);
      const res = await stack!.tick(at);
      expect((res.body as unknown as TickBody).published).toBe(expectPublished);
      return at;
    };
    for (let m = 0; m < 3; m++) {
      await tickAt(m, 2);
      await waitFor(`occurrence ${m} settled`, async () => {
        const s = await deliveryStatuses(db);
        return (s.sent ?? 0) === m + 1 && (s.failed ?? 0) === m + 1;
      });
    }
    // The pause is written just after the third failure is recorded: wait for it, not the failure.
    const paused = await waitFor('n-00001 paused', async () => {
      const snap = await db.collection(COLLECTIONS.notifications).doc('n-00001').get();
      return snap.get('enabled') === false ? snap : null;
    });
    expect(paused.get('enabled')).toBe(false);
    expect(paused.get('pausedReason')).toBe('not_in_channel');
    // Paused: the next occurrence dispatches only the healthy one.
    await tickAt(3, 1);
    await waitFor('occurrence 3 settled', async () => (await deliveryStatuses(db)).sent === 4);
    slack.clearFaults();
    expect(await setNotificationEnabled(db, 'n-00001', true)).toEqual({
      wasEnabled: false,
      wasPaused: true,
      pausedReason: null,
    });
    await tickAt(4, 2);
    await waitFor('occurrence 4 settled', async () => (await deliveryStatuses(db)).sent === 6);
    const resumed = await db.collection(COLLECTIONS.notifications).doc('n-00001').get();
    expect(resumed.get('consecutiveFailures')).toBe(0);
    expect(slack.faults).toHaveLength(0);
    const minutes = [0, 1, 2, 3, 4].map((m) => minuteOf(new Date(t0.getTime() + m * 60_000)));
    const expected = [...minutes.map((m) => `n-00002:${m}`), `n-00001:${minutes[4]}`];
    const v = await verdict('pause-after-failures', slack, db, expected);
    expect(v).toMatchObject({ sent: 6, failed: 3, duplicates: 0, lost: 0 });
  }, 300_000);

  test('dead-lettered deliveries are recorded dead; redrive (the CLI) delivers them once', async () => {
    const n = 10;
    stack = await startStack({
      projectId: uniqueProjectId('faults-dlq'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      // A 503 may be a gateway's while the post is still on its way: each retry waits out the
      // Slack timeout, kept short here so that five attempts of ten deliveries end soon.
      slackTimeoutMs: 1000,
      topology: localTopology({ maxDeliveryAttempts: 5 }),
    });
    const now = new Date();
    const notifications = Array.from({ length: n }, (_, i) => notification(i));
    await seed(stack.db, notifications, 10, now);
    slack.addFault({ channelPrefix: 'C00000000', respond: { kind: 'http', status: 503 } });
    const tick = (await stack.tick(now)).body as unknown as TickBody & { occurrences: { runId: string }[] };
    const runId = tick.occurrences[0]!.runId;
    const db = stack.db;
    await waitFor('all dead', async () => (await deliveryStatuses(db)).dead === n, 120_000, 500);
    const dead = await stack.store.get(`n-00001:${minuteOf(now)}`);
    expect(dead?.attempts).toBe(5);
    expect(slack.posts).toHaveLength(0);

    slack.clearFaults();
    const env = { ...process.env, GOOGLE_CLOUD_PROJECT: stack.projectId };
    const cli = join(ROOT, 'dist', 'bin', 'slack-fanout.js');
    const out = await run(process.execPath, [cli, 'redrive', runId], { env });
    expect(JSON.parse(out.stdout)).toMatchObject({ runId, redriven: n, failed: 0 });
    await waitFor('all sent after the redrive', async () => (await deliveryStatuses(db)).sent === n, 60_000);
    // A second redrive finds nothing dead.
    const again = await run(process.execPath, [cli, 'redrive', runId], { env });
    expect(JSON.parse(again.stdout)).toMatchObject({ redriven: 0 });
    await new Promise((r) => setTimeout(r, 2000));
    const v = await verdict(
      'dead-letter-redrive',
      slack,
      db,
      deliveryIds(
        notifications.map((x) => x.id),
        minuteOf(now),
      ),
    );
    expect(v).toMatchObject({ sent: n, dead: 0, duplicates: 0, lost: 0 });
  }, 300_000);
});
