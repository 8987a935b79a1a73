import { type Stack, startStack, uniqueProjectId } from '../../dev/stack';
import { saveNotifications } from '../../shared/notifications';
import { localTopology } from '../../shared/topology';
import { allSent, deliveryStatuses, notification, seed, standInForFile, waitFor } from '../helpers';
import { deliveryIds, minuteOf, size, verdict } from './harness';

const TOKEN = 'xoxb-fault-test';

describe('faults at Slack', () => {
  const slack = standInForFile({ token: TOKEN, seed: 7 });
  let stack: Stack | undefined;

  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
    slack.reset();
  });

  test('random 429 (20%) and 500 (10%): every notification ends sent, none posted twice', async () => {
    const n = size(600, 2000);
    stack = await startStack({
      projectId: uniqueProjectId('faults-random'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
    });
    const now = new Date();
    const notifications = Array.from({ length: n }, (_, i) => notification(i));
    await seed(stack.db, notifications, 10, now);
    // 10% of all calls: 0.125 of the 80% the first rule leaves.
    slack.setFaults(
      [
        // Retry-After 0: the load, not the pacing, is under test here (a longer Retry-After holds
        // each nack that long: notifier/app.test.ts), and 1 s a 429 would triple the run.
        { probability: 0.2, respond: { kind: 'http', status: 429, retryAfterSeconds: 0 } },
        { probability: 0.125, respond: { kind: 'http', status: 500 } },
      ],
      { seed: 11 },
    );
    const tick = await stack.tick(now);
    expect(tick.body.published).toBe(n);
    const db = stack.db;
    // A 500 may come from a proxy that still passes the post on: each is held for the Slack
    // timeout before its retry looks, and the emulator pushes two at a time, so the 500s alone
    // take about 10 s × 60 / 2 of the run (300 s in all on this machine, CI 101).
    await waitFor('every delivery sent', allSent(db, n), 800_000, 1000);
    const v = await verdict(
      'slack-429-500',
      slack,
      db,
      deliveryIds(
        notifications.map((x) => x.id),
        minuteOf(now),
      ),
    );
    expect(v).toMatchObject({ sent: n, failed: 0, dead: 0, duplicates: 0, lost: 0, stuck: 0 });
    // The faults really happened.
    expect(slack.faults[0]?.hits).toBeGreaterThan(n * 0.15);
    expect(slack.faults[1]?.hits).toBeGreaterThan(n * 0.05);
  }, 900_000);

  test('a Slack call that hangs past the client timeout, or fails after posting, is retried and posted once', async () => {
    stack = await startStack({
      projectId: uniqueProjectId('faults-hang'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      slackTimeoutMs: 1000,
    });
    const now = new Date();
    const notifications = [notification(1), notification(2), notification(3)];
    await seed(stack.db, notifications, 10, now);
    // Slack posts after 1.5 s, after the client gave up at 1 s: the outcome is unknown.
    slack.setFaults([
      { channel: 'C000000001', times: 1, respond: { kind: 'delay', ms: 1500 } },
      // Slack posts, then says internal_error: the outcome is unknown too.
      { channel: 'C000000002', times: 1, respond: { kind: 'post_then_error', error: 'internal_error' } },
      // A gateway in front of Slack answers 502 after the post went through.
      { channel: 'C000000003', times: 1, respond: { kind: 'post_then_http', status: 502 } },
    ]);
    const started = Date.now();
    await stack.tick(now);
    const db = stack.db;
    await waitFor('three sent', async () => (await deliveryStatuses(db)).sent === 3, 60_000);
    const v = await verdict(
      'slack-hang-unknown-outcome',
      slack,
      db,
      deliveryIds(
        notifications.map((x) => x.id),
        minuteOf(now),
      ),
    );
    expect(v).toMatchObject({ sent: 3, duplicates: 0, lost: 0 });
    for (const id of ['n-00001', 'n-00002', 'n-00003']) {
      const d = await stack.store.get(`${id}:${minuteOf(now)}`);
      expect(d?.attempts).toBe(2);
      expect(d?.lastError?.code).toBe('slack_outcome_unknown');
    }
    // Well inside the ack deadline: the timeout ended the attempt, not Pub/Sub.
    expect(Date.now() - started).toBeLessThan(localTopology().ackDeadlineSeconds * 1000);
  });

  test('a gateway that answers 502 or 503 and passes the post on seconds later: the retry waits for it, and posts once', async () => {
    stack = await startStack({
      projectId: uniqueProjectId('faults-gateway-late'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
    });
    const now = new Date();
    const notifications = [notification(1), notification(2)];
    await seed(stack.db, notifications, 10, now);
    // The gateway gives up on Slack at once; the request reaches Slack 3 s later, inside the
    // notifier's Slack timeout (5 s here), as a post that timed out may.
    slack.setFaults([
      { channel: 'C000000001', times: 1, respond: { kind: 'http_then_post', status: 502, afterMs: 3000 } },
      { channel: 'C000000002', times: 1, respond: { kind: 'http_then_post', status: 503, afterMs: 3000 } },
    ]);
    await stack.tick(now);
    const db = stack.db;
    await waitFor('two sent', async () => (await deliveryStatuses(db)).sent === 2, 60_000);
    // The late posts land (a retry that did not wait for them has posted beside them by then).
    await waitFor('no call held', async () => slack.heldCount === 0, 10_000, 100);
    const v = await verdict(
      'slack-gateway-late-post',
      slack,
      db,
      deliveryIds(
        notifications.map((x) => x.id),
        minuteOf(now),
      ),
    );
    expect(v).toMatchObject({ sent: 2, duplicates: 0, lost: 0 });
    expect(slack.faults.map((f) => f.hits)).toEqual([1, 1]);
    expect(slack.posts.map((p) => p.channel).sort()).toEqual(['C000000001', 'C000000002']);
    for (const n of notifications) {
      // The second attempt found the late post in the channel instead of posting again.
      expect(await stack.store.get(`${n.id}:${minuteOf(now)}`)).toMatchObject({ status: 'sent', attempts: 2 });
    }
  });

  test('a post whose outcome was unknown is found in the channel it went to after the notification moved to another', async () => {
    stack = await startStack({
      projectId: uniqueProjectId('faults-moved-channel'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
    });
    const now = new Date();
    const n = notification(1);
    await seed(stack.db, [n], 10, now);
    // Slack takes the post; a gateway in front of it answers 502: the outcome is unknown.
    slack.setFaults([{ channel: n.channelId, times: 1, respond: { kind: 'post_then_http', status: 502 } }]);
    await stack.tick(now);
    const id = `${n.id}:${minuteOf(now)}`;
    const store = stack.store;
    await waitFor(
      'the first attempt’s outcome unknown',
      async () => (await store.get(id))?.outcomeUnknown === true,
      60_000,
    );
    // The notification moves to another channel before the retry.
    await saveNotifications(stack.db, [{ ...n, channelId: 'C0MOVED001' }], { now });
    await waitFor('sent', async () => (await store.get(id))?.status === 'sent', 60_000);
    expect(slack.posts.map((p) => p.channel)).toEqual([n.channelId]);
    expect(await store.get(id)).toMatchObject({ status: 'sent', channelId: n.channelId, attempts: 2 });
  });
});
