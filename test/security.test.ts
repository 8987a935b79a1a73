import type { DocumentReference, Firestore } from '@google-cloud/firestore';
import request from 'supertest';
import { SlackStandIn } from '../dev/slack-standin';
import { type Stack, startStack, uniqueProjectId } from '../dev/stack';
import { createApp as createNotifier } from '../notifier/app';
import type { SlackPort } from '../notifier/slack';
import { describeConfig, loadConfig } from '../shared/config';
import { baseApp, errorHandler, jsonBody } from '../shared/http';
import { createLogger } from '../shared/logger';
import type { DeliveryLedger } from '../shared/ports';
import { dispatcherForAdmin } from './admin-ports';
import { deliveryStatuses, notification, postJson, pushEnvelope, seed, waitFor } from './helpers';

const CANARY = 'xoxb-SECRET-canary-123';

/** Every document in the database, subcollections included, as JSON. */
async function dumpFirestore(db: Firestore): Promise<string[]> {
  const out: string[] = [];
  const walk = async (refs: DocumentReference[]) => {
    for (const ref of refs) {
      const snap = await ref.get();
      if (snap.exists) out.push(`${ref.path} ${JSON.stringify(snap.data())}`);
      for (const sub of await ref.listCollections()) await walk(await sub.listDocuments());
    }
  };
  for (const col of await db.listCollections()) await walk(await col.listDocuments());
  return out;
}

describe('the Slack bot token stays secret (emulators)', () => {
  const slack = new SlackStandIn({ token: CANARY });
  const lines: string[] = [];
  let stack: Stack;

  beforeAll(async () => {
    await slack.start();
    stack = await startStack({
      projectId: uniqueProjectId('security'),
      slackApiUrl: slack.url,
      slackToken: CANARY,
      // Debug, so that even the quietest line is searched.
      log: createLogger({ service: 'stack', level: 'debug', destination: { write: (l: string) => lines.push(l) } }),
    });
  });
  afterAll(async () => {
    await stack.stop();
    await slack.stop();
  });

  test('no log line, stored document or response body carries it', async () => {
    const now = new Date();
    // One delivered, one retried then delivered, one refused for good, one unknown outcome: every log path.
    await seed(stack.db, [notification(1), notification(2), notification(3), notification(4)], 10, now);
    slack.addFault({ channel: 'C000000002', times: 1, respond: { kind: 'http', status: 500 } });
    slack.addFault({ channel: 'C000000003', respond: { kind: 'slack_error', error: 'invalid_auth' } });
    slack.addFault({ channel: 'C000000004', times: 1, respond: { kind: 'slack_error', error: 'internal_error' } });

    const bodies: string[] = [];
    const tick = await stack.tick(now);
    bodies.push(JSON.stringify(tick.body));
    await waitFor('3 sent and 1 failed', async () => {
      const s = await deliveryStatuses(stack.db);
      return s.sent === 3 && s.failed === 1;
    });

    // Direct pushes: a duplicate, a malformed one, a bad body; and the health routes.
    const occurrence = (tick.body.occurrences as { occurrence: string }[])[0]?.occurrence as string;
    const runId = (tick.body.occurrences as { runId: string }[])[0]?.runId as string;
    const message = {
      v: 1 as const,
      notificationId: 'n-00001',
      occurrence,
      scheduleId: runId.split(':')[0] as string,
      runId,
    };
    for (const body of [pushEnvelope(message), { message: { data: '!!' } }, 'nope']) {
      const res = await postJson(`${stack.notifierUrl}/push`, body);
      bodies.push(JSON.stringify(res.body));
    }
    for (const url of [
      `${stack.notifierUrl}/healthz`,
      `${stack.notifierUrl}/readyz`,
      `${stack.dispatcherUrl}/healthz`,
      `${stack.dispatcherUrl}/readyz`,
      `${stack.notifierUrl}/nope`,
    ]) {
      const res = await fetch(url);
      bodies.push(await res.text());
    }

    // The token did reach Slack, so the search below is not vacuous.
    expect(slack.posts.length).toBeGreaterThanOrEqual(3);
    expect(slack.posts.every((p) => p.token === CANARY)).toBe(true);
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.some((l) => l.includes('invalid_auth'))).toBe(true);

    const documents = await dumpFirestore(stack.db);
    expect(documents.some((d) => d.startsWith('deliveries/'))).toBe(true);
    const leaks = [
      ...lines.filter((l) => l.includes(CANARY)).map((l) => `log: ${l}`),
      ...documents.filter((d) => d.includes(CANARY)).map((d) => `firestore: ${d}`),
      ...bodies.filter((b) => b.includes(CANARY)).map((b) => `response: ${b}`),
    ];
    expect(leaks).toEqual([]);
    // Nor a recognisable part of it.
    expect([...lines, ...documents, ...bodies].filter((x) => x.includes('SECRET-canary'))).toEqual([]);
  });
});

describe('configuration never echoes the token', () => {
  test('a configuration error names SLACK_BOT_TOKEN problems without its value', () => {
    let message = '';
    try {
      loadConfig({ SLACK_BOT_TOKEN: CANARY, SLACK_TIMEOUT_MS: 'soon', AUTH_MODE: CANARY });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/GOOGLE_CLOUD_PROJECT/);
    expect(message).toMatch(/SLACK_TIMEOUT_MS/);
    // AUTH_MODE's bad value is echoed, so the canary is put there only to prove the search works.
    expect(message.split(CANARY)).toHaveLength(2);
    let tokenOnly = '';
    try {
      loadConfig({ SLACK_BOT_TOKEN: CANARY, SLACK_TIMEOUT_MS: 'soon' });
    } catch (err) {
      tokenOnly = (err as Error).message;
    }
    expect(tokenOnly).not.toContain(CANARY);
  });

  test('the start-up description hides it', () => {
    const config = loadConfig({ GOOGLE_CLOUD_PROJECT: 'my-project', SLACK_BOT_TOKEN: CANARY });
    expect(config.slackBotToken).toBe(CANARY);
    expect(JSON.stringify(describeConfig(config))).not.toContain(CANARY);
    expect(describeConfig(config).slackBotToken).toBe('[set]');
  });

  test('a logger redacts token and authorization fields', () => {
    const lines: string[] = [];
    const log = createLogger({ service: 't', destination: { write: (l: string) => lines.push(l) } });
    log.info({ token: CANARY, headers: { authorization: `Bearer ${CANARY}` }, slack: { token: CANARY } }, 'x');
    expect(lines.join('')).not.toContain(CANARY);
  });
});

describe('request hardening', () => {
  const silent = createLogger({ service: 't', level: 'silent' });
  const dispatcher = () =>
    dispatcherForAdmin(undefined, {
      log: silent,
      mount: (app) => {
        app.get('/boom', () => {
          throw new Error('kaboom with a secret path /srv/app/dispatcher.ts:1');
        });
        app.get('/boom-async', async () => {
          await Promise.resolve();
          throw Object.assign(new Error('async kaboom'), { status: 502, type: 'leaky_type' });
        });
      },
    });

  test('a route that throws answers {error} without a stack or its message', async () => {
    const res = await request(dispatcher()).get('/boom');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'internal_error' });
    expect(res.text).not.toMatch(/kaboom|\.ts:|at /);
    const asyncRes = await request(dispatcher()).get('/boom-async');
    expect(asyncRes.status).toBe(502);
    expect(asyncRes.body).toEqual({ error: 'internal_error' });
  });

  test('no x-powered-by on either service', async () => {
    const notifier = createNotifier({
      log: silent,
      projectId: 'p',
      ledger: {} as DeliveryLedger,
      notifications: {
        getRaw: async () => null,
        recordPermanentFailure: async () => false,
        resetFailures: async () => {},
        leaveIndex: async () => false,
      },
      accounts: { getRaw: async () => null },
      runs: { getRun: async () => null },
      slack: {} as SlackPort,
      claimTtlMs: 1000,
      pauseAfterFailures: 3,
    });
    for (const app of [dispatcher(), notifier]) {
      const res = await request(app).get('/healthz');
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  test('/tick refuses a body over its limit', async () => {
    const res = await request(dispatcher())
      .post('/tick')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ pad: 'x'.repeat(20_000) }));
    expect(res.status).toBe(413);
    expect(res.body).toEqual({
      error: 'entity_too_large',
      message: 'the body is larger than this endpoint takes (at most 16,384 bytes; this one is 20,010)',
    });
  });

  test('a JSON route answers malformed JSON with a 400 that says so in its own words, no parser detail', async () => {
    const app = baseApp(silent, 'p');
    app.post('/json', jsonBody('16kb'), (_req, res) => {
      res.json({});
    });
    app.use(errorHandler());
    const res = await request(app).post('/json').set('content-type', 'application/json').send('{"a":');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'entity_parse_failed', message: 'the body is not JSON: it does not parse' });
    // /tick reads its headers alone: a body, even one that does not parse, is passed over.
    const tick = await request(dispatcher()).post('/tick').set('content-type', 'application/json').send('{"a":');
    expect(tick.status).toBe(200);
  });
});
