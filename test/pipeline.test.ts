import { type Stack, startStack, uniqueProjectId } from '../dev/stack';
import { scheduleIdOf } from '../shared/schedule';
import { COLLECTIONS, localTopology } from '../shared/topology';

import { deliveryStatuses, notification, postJson, pushEnvelope, seed, standInForFile, waitFor } from './helpers';

const TOKEN = 'xoxb-pipeline-test';

describe('the pipeline on the emulators', () => {
  const slack = standInForFile({ token: TOKEN });
  let stack: Stack;

  beforeEach(async () => {
    slack.reset();
    stack = await startStack({
      projectId: uniqueProjectId('pipeline'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      topology: localTopology({ maxDeliveryAttempts: 5 }),
    });
  });
  afterEach(async () => {
    await stack.stop();
  });

  test('one tick posts 500 notifications across 3 time zones exactly once; a repeated tick posts nothing more', async () => {
    const zones = ['Europe/Paris', 'America/New_York', 'Asia/Tokyo'];
    const now = new Date();
    await seed(
      stack.db,
      Array.from({ length: 500 }, (_, i) => notification(i, { timezone: zones[i % 3] as string })),
      10,
      now,
    );
    const first = await stack.tick(now);
    expect(first.status).toBe(200);
    expect(first.body.published).toBe(500);
    expect(first.body.dueSchedules).toBe(3);

    await waitFor('500 posts', () => slack.posts.length >= 500, 120_000);
    await waitFor('500 sent in the ledger', async () => (await deliveryStatuses(stack.db)).sent === 500);
    expect(slack.duplicates()).toEqual([]);
    expect(new Set(slack.posts.map((p) => p.channel)).size).toBe(500);

    // The same tick again: nothing is due any more.
    const again = await stack.tick(now);
    expect(again.status).toBe(200);
    expect(again.body.published).toBe(0);

    // The same occurrence forced due again: its run is done, so nothing is published.
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'Europe/Paris' });
    const before = (await stack.db.collection(COLLECTIONS.schedules).doc(scheduleId).get()).get('nextRunAt');
    await stack.db
      .collection(COLLECTIONS.schedules)
      .doc(scheduleId)
      .update({ nextRunAt: new Date(now.getTime() - 60_000) });
    const forced = await stack.tick(now);
    expect(forced.body.published).toBe(0);
    expect((forced.body.occurrences as { status: string }[])[0]?.status).toBe('already-done');
    expect(before).toBeDefined();

    await new Promise((r) => setTimeout(r, 1500));
    expect(slack.posts.length).toBe(500);
  });

  test('the same push delivered twice posts once', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1)], 10, now);
    const occurrence = new Date(Math.floor(now.getTime() / 60_000) * 60_000).toISOString();
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'Europe/Paris' });
    const message = {
      v: 1 as const,
      notificationId: 'n-00001',
      occurrence,
      scheduleId,
      runId: `${scheduleId}:${occurrence}`,
    };
    const url = `${stack.notifierUrl}/push`;
    const [a, b] = [await postJson(url, pushEnvelope(message)), await postJson(url, pushEnvelope(message))];
    expect(a.status).toBe(204);
    expect(b.status).toBe(204);
    expect(slack.posts).toHaveLength(1);
    const ledger = await stack.store.get(`n-00001:${occurrence}`);
    expect(ledger?.status).toBe('sent');
    expect(ledger?.slackTs).toBe(slack.posts[0]?.ts);
  });

  test('a channel answering 500 twice then OK ends sent after retries', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1), notification(2)], 10, now);
    slack.addFault({ channel: 'C000000001', times: 2, respond: { kind: 'http', status: 500 } });
    await stack.tick(now);
    await waitFor('both sent', async () => (await deliveryStatuses(stack.db)).sent === 2, 60_000);
    const snap = await stack.db.collection(COLLECTIONS.deliveries).where('notificationId', '==', 'n-00001').get();
    expect(snap.docs[0]?.get('attempts')).toBe(3);
    expect(slack.posts.filter((p) => p.channel === 'C000000001')).toHaveLength(1);
    expect(slack.duplicates()).toEqual([]);
  });

  test('a permanent error ends failed and is not retried', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1), notification(2)], 10, now);
    slack.addFault({ channel: 'C000000001', respond: { kind: 'slack_error', error: 'channel_not_found' } });
    await stack.tick(now);
    await waitFor('one sent, one failed', async () => {
      const s = await deliveryStatuses(stack.db);
      return s.sent === 1 && s.failed === 1;
    });
    // Longer than the retry backoff: a retry would have come by now.
    await new Promise((r) => setTimeout(r, 3000));
    expect(slack.faults[0]?.hits).toBe(1);
    const snap = await stack.db.collection(COLLECTIONS.deliveries).where('notificationId', '==', 'n-00001').get();
    expect(snap.docs[0]?.get('status')).toBe('failed');
    expect(snap.docs[0]?.get('lastError.slackError')).toBe('channel_not_found');
    const n = await stack.db.collection(COLLECTIONS.notifications).doc('n-00001').get();
    expect(n.get('consecutiveFailures')).toBe(1);
  });

  test('a push or a dead letter for an occurrence not yet due, and a dead letter of a run never dispatched, are refused without ending the delivery', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1)], 10, now);
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'Europe/Paris' });
    const message = (occurrence: string) => ({
      v: 1 as const,
      notificationId: 'n-00001',
      occurrence,
      scheduleId,
      runId: `${scheduleId}:${occurrence}`,
    });
    // An hour ahead: an occurrence of the schedule, but no dispatch can have made it yet.
    const ahead = new Date(Math.floor(now.getTime() / 60_000) * 60_000 + 3_600_000).toISOString();
    const refused = await postJson(`${stack.notifierUrl}/dead-letter`, pushEnvelope(message(ahead)));
    expect(refused).toEqual({
      status: 200,
      body: { deliveryId: `n-00001:${ahead}`, status: 'refused', reason: 'future_occurrence' },
    });
    expect(await stack.store.get(`n-00001:${ahead}`)).toMatchObject({
      status: 'failed',
      attempts: 0,
      lastError: { code: 'invalid_message' },
    });
    // Pushed, it is answered retry (a nack), and posts nothing: a dispatcher ahead of the
    // notifier's clock, or a made-up message, which its attempts then end on the dead-letter topic.
    const early = await postJson(`${stack.notifierUrl}/push`, pushEnvelope(message(ahead)));
    expect(early).toMatchObject({ status: 503, body: { kind: 'retry', reason: 'future_occurrence' } });
    expect(slack.posts).toHaveLength(0);
    // The minute just past, which no tick has dispatched: no run of it exists.
    const past = new Date(Math.floor(now.getTime() / 60_000) * 60_000 - 60_000).toISOString();
    const off = await postJson(`${stack.notifierUrl}/dead-letter`, pushEnvelope(message(past)));
    expect(off.body).toMatchObject({ status: 'refused', reason: 'no_such_run' });
    expect((await stack.store.get(`n-00001:${past}`))?.status).toBe('failed');
    // That occurrence's real message still posts.
    expect((await postJson(`${stack.notifierUrl}/push`, pushEnvelope(message(past)))).status).toBe(204);
    expect(slack.posts).toHaveLength(1);
    expect((await stack.store.get(`n-00001:${past}`))?.status).toBe('sent');
  });

  test('a message that exhausts its attempts ends dead via the dead-letter topic', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1)], 10, now);
    slack.addFault({ channel: 'C000000001', respond: { kind: 'http', status: 500 } });
    await stack.tick(now);
    const doc = await waitFor(
      'the delivery dead',
      async () => {
        const snap = await stack.db.collection(COLLECTIONS.deliveries).where('notificationId', '==', 'n-00001').get();
        const d = snap.docs[0];
        return d?.get('status') === 'dead' ? d : undefined;
      },
      90_000,
    );
    expect(doc.get('attempts')).toBe(stack.topology.maxDeliveryAttempts);
    expect(slack.faults[0]?.hits).toBe(stack.topology.maxDeliveryAttempts);
    expect(slack.posts).toHaveLength(0);
  });
});
