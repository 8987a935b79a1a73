import type { Server } from 'node:http';
import fc from 'fast-check';
import request from 'supertest';
import { createLogger } from '../shared/logger';
import { type DispatchMessage, dispatchMessageSchema, parsePushBody } from '../shared/messages';
import { documentIdProblem, runIdOf } from '../shared/model';
import type { AccountStore, DeliveryLedger, NotificationStore } from '../shared/ports';
import { createApp } from './app';
import type { SlackPort } from './slack';

/** The one schedule every notification of the fake store is on. */
const SCHEDULE_ID = 's_1';

/**
 * Whatever arrives on /push, the notifier answers (no crash, no hang), acks or nacks with a
 * status Pub/Sub understands, and posts to Slack only for a valid dispatch message.
 */

const RUNS = Number(process.env.FC_RUNS ?? 150);

function fakes() {
  const post = jest.fn<ReturnType<SlackPort['post']>, Parameters<SlackPort['post']>>(async (req) => ({
    ts: '1700000000.000100',
    channel: req.channel,
  }));
  const slack: SlackPort = {
    post,
    findDelivery: async () => null,
    checkToken: async () => ({ team: null, scopes: null }),
  };
  const ledger: DeliveryLedger = {
    claim: async (req) => ({
      kind: 'claimed',
      attempts: 1,
      outcomeUnknown: false,
      firstAttemptAt: req.now,
      claimExpiresAt: new Date(req.now.getTime() + req.ttlMs),
      earlierTargets: [],
      failedBefore: false,
    }),
    markSent: async () => undefined,
    renewClaim: async () => true,
    markRetry: async () => undefined,
    markFinal: async () => undefined,
    recordInvalid: async () => undefined,
    markDead: async () => 'dead',
    get: async () => null,
    countByStatus: async () => ({ sending: 0, retrying: 0, sent: 0, failed: 0, skipped: 0, dead: 0 }),
  };
  // Every notification exists and is deliverable, so a body that slipped through would post.
  const notifications: NotificationStore = {
    getRaw: async () => ({
      accountId: 'acct-1',
      slack: { channelId: 'C0123' },
      schedule: { cron: '* * * * *', timezone: 'UTC' },
      scheduleId: SCHEDULE_ID,
      enabled: true,
    }),
    recordPermanentFailure: async () => false,
    resetFailures: async () => undefined,
    leaveIndex: async () => false,
  };
  const accounts: AccountStore = { getRaw: async () => ({ name: 'Acme', metrics: [], highlights: [] }) };
  return { post, slack, ledger, notifications, accounts };
}

const f = fakes();
const app = createApp({
  log: createLogger({ service: 'test', level: 'silent' }),
  projectId: 'p',
  ledger: f.ledger,
  notifications: f.notifications,
  accounts: f.accounts,
  runs: { getRun: async () => null },
  slack: f.slack,
  claimTtlMs: 60_000,
  pauseAfterFailures: 3,
  // Past every instant the messages name (up to 2100): a push for an occurrence not yet due is
  // refused before anything else is checked (notifier/deliver.test.ts tests that on its own).
  clock: () => new Date('2100-01-02T00:00:00.000Z'),
});
let server: Server;
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  await new Promise<void>((resolve) => {
    server = app.listen(0, '127.0.0.1', () => resolve());
  });
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => f.post.mockClear());
afterEach(() => expect(unhandled).toEqual([]));

/** Pub/Sub acks 204; 503 is the nack the handler uses; a 4xx would be a nack too, and is allowed. */
const acceptable = (status: number) => status === 204 || status === 503 || (status >= 400 && status < 500);

function isValidMessageBody(body: unknown): boolean {
  const data = (body as { message?: { data?: unknown } } | null)?.message?.data;
  if (typeof data !== 'string') return false;
  try {
    return dispatchMessageSchema.safeParse(JSON.parse(Buffer.from(data, 'base64').toString('utf8'))).success;
  } catch {
    return false;
  }
}

const envelope = (data: string, attributes: Record<string, string> = {}) => ({
  message: { data, attributes, messageId: '1', publishTime: '2030-01-01T00:00:00Z' },
  subscription: 'projects/p/subscriptions/s',
});
const b64 = (v: unknown) =>
  Buffer.from(typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined')).toString('base64');

const anyDate = fc.date({
  min: new Date('2000-01-01T00:00:00Z'),
  max: new Date('2100-01-01T00:00:00Z'),
  noInvalidDate: true,
});
/** Any instant, or as often a whole minute: an occurrence of the notification's schedule. */
const isoDate = fc.oneof(
  anyDate.map((d) => d.toISOString()),
  anyDate.map((d) => new Date(Math.floor(d.getTime() / 60_000) * 60_000).toISOString()),
);

const validMessage: fc.Arbitrary<DispatchMessage> = fc
  .record({
    v: fc.constant(1 as const),
    notificationId: fc.string({ minLength: 1, maxLength: 40 }).filter((id) => documentIdProblem(id) === null),
    occurrence: isoDate,
    // Often the notification's own schedule (it posts), sometimes another (it is skipped).
    scheduleId: fc.oneof(
      fc.constant(SCHEDULE_ID),
      fc.string({ minLength: 1, maxLength: 40 }).filter((id) => documentIdProblem(id) === null),
    ),
  })
  // The run a message is published under: its schedule's at its occurrence.
  .map((m) => ({ ...m, runId: runIdOf(m.scheduleId, m.occurrence) }));

/** A valid message with some fields replaced by anything at all, or dropped. */
const mutatedMessage = fc
  .tuple(
    validMessage,
    fc.dictionary(
      fc.constantFrom('v', 'notificationId', 'occurrence', 'scheduleId', 'runId', 'redrive', 'extra'),
      fc.oneof(fc.anything(), fc.constant(undefined)),
      { minKeys: 1 },
    ),
  )
  .map(([m, over]) => ({ ...m, ...over }));

async function push(body: string | object, contentType = 'application/json') {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return request(server).post('/push').set('content-type', contentType).send(payload);
}

describe('POST /push with arbitrary bodies', () => {
  test('any JSON value is answered and never posts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), async (body) => {
        f.post.mockClear();
        const res = await push(JSON.stringify(body) ?? 'null');
        expect(acceptable(res.status)).toBe(true);
        expect(f.post).not.toHaveBeenCalled();
      }),
      { numRuns: RUNS },
    );
  });

  test('any bytes under any content type are answered and never post', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.uint8Array().map((a) => Buffer.from(a).toString('latin1')),
        ),
        fc.constantFrom(
          'application/json',
          'text/plain',
          'application/x-www-form-urlencoded',
          'application/octet-stream',
        ),
        async (body, contentType) => {
          f.post.mockClear();
          const res = await push(body, contentType);
          expect(acceptable(res.status)).toBe(true);
          expect(f.post).not.toHaveBeenCalled();
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('envelopes with arbitrary data and attributes post only for a valid dispatch message', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.anything().map(b64), fc.string(), fc.base64String(), mutatedMessage.map(b64)),
        fc.dictionary(fc.string(), fc.string()),
        async (data, attributes) => {
          f.post.mockClear();
          const body = envelope(data, attributes);
          const res = await push(body);
          expect(acceptable(res.status)).toBe(true);
          if (!isValidMessageBody(body)) expect(f.post).not.toHaveBeenCalled();
        },
      ),
      { numRuns: RUNS },
    );
  });

  test('a mutated message posts exactly when it still satisfies the schema', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedMessage, async (message) => {
        f.post.mockClear();
        const res = await push(envelope(b64(message)));
        expect(acceptable(res.status)).toBe(true);
        const parsed = dispatchMessageSchema.safeParse(JSON.parse(JSON.stringify(message)));
        // A valid message posts when the notification's schedule (every whole minute) falls due at
        // its instant, whichever schedule it came from (one the notification left, due then too,
        // still sends); at any other instant it posts nothing.
        const posts = parsed.success && Date.parse(parsed.data.occurrence) % 60_000 === 0;
        expect(f.post).toHaveBeenCalledTimes(posts ? 1 : 0);
      }),
      { numRuns: RUNS },
    );
  });

  test('a valid message posts once (the harness can see a post)', async () => {
    await fc.assert(
      fc.asyncProperty(validMessage, async (message) => {
        f.post.mockClear();
        // An occurrence of the notification's schedule: every whole minute.
        const occurrence = new Date(Math.floor(Date.parse(message.occurrence) / 60_000) * 60_000).toISOString();
        const runId = runIdOf(SCHEDULE_ID, occurrence);
        const res = await push(envelope(b64({ ...message, scheduleId: SCHEDULE_ID, occurrence, runId })));
        expect(res.status).toBe(204);
        expect(f.post).toHaveBeenCalledTimes(1);
      }),
      { numRuns: 30 },
    );
  });

  test('a valid message for the notification’s own schedule at an instant it does not fall due is acked without posting', async () => {
    await fc.assert(
      fc.asyncProperty(
        validMessage.filter((m) => Date.parse(m.occurrence) % 60_000 !== 0),
        async (message) => {
          f.post.mockClear();
          const runId = runIdOf(SCHEDULE_ID, message.occurrence);
          const res = await push(envelope(b64({ ...message, scheduleId: SCHEDULE_ID, runId })));
          expect(res.status).toBe(204);
          expect(f.post).not.toHaveBeenCalled();
        },
      ),
      { numRuns: 30 },
    );
  });

  test('a valid message for a schedule the notification has left, at an instant its own schedule does not fall due, is acked without posting', async () => {
    await fc.assert(
      fc.asyncProperty(
        // The notification's schedule falls due at every whole minute.
        validMessage.filter((m) => m.scheduleId !== SCHEDULE_ID && Date.parse(m.occurrence) % 60_000 !== 0),
        async (message) => {
          f.post.mockClear();
          const res = await push(envelope(b64(message)));
          expect(res.status).toBe(204);
          expect(f.post).not.toHaveBeenCalled();
        },
      ),
      { numRuns: 30 },
    );
  });

  test('a body over the size limit is acked without posting', async () => {
    const res = await push(envelope('A'.repeat(300_000)));
    expect(res.status).toBe(204);
    expect(f.post).not.toHaveBeenCalled();
  });
});

describe('the message schema', () => {
  test('parsePushBody never throws and accepts only schema-valid messages', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.anything().map((v) => envelope(b64(v))),
          mutatedMessage.map((m) => envelope(b64(m))),
        ),
        (body) => {
          const parsed = parsePushBody(body);
          if (parsed.ok) expect(dispatchMessageSchema.safeParse(parsed.push.message).success).toBe(true);
          expect(parsed.ok).toBe(isValidMessageBody(body));
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('a valid message survives the envelope unchanged', () => {
    fc.assert(
      fc.property(validMessage, fc.boolean(), (message, redrive) => {
        const m = redrive ? { ...message, redrive } : message;
        const parsed = parsePushBody(envelope(b64(m)));
        expect(parsed.ok && parsed.push.message).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });
});
