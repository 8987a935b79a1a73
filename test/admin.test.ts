import { type AddressInfo, connect } from 'node:net';
import type { RequestHandler } from 'express';
import request from 'supertest';
import { demoAccounts } from '../dev/demo';
import { type Stack, startStack, uniqueProjectId } from '../dev/stack';
import {
  ADMIN_DEADLINES,
  type AdminPorts,
  adminDeadlines,
  adminRouter,
  failedNotRedriven,
  firestoreAdminPorts,
  pausedLeft,
  waitingOnAnother,
} from '../dispatcher/admin';
import { requireInvoker } from '../shared/auth';
import { deferred } from '../shared/concurrency';
import { loadConfig } from '../shared/config';
import { CODES } from '../shared/grpc';
import { NotReady } from '../shared/http';
import { createLogger } from '../shared/logger';
import { bucketIds, membersOf } from '../shared/members';
import type { DispatchMessage } from '../shared/messages';
import type { RunDoc } from '../shared/model';
import { noneResumed, notificationDoc, SaveInterrupted, saveAccounts } from '../shared/notifications';
import { firestoreRedriveLedger, REDRIVE_STRANDED_AFTER_MS, redriveRun } from '../shared/redrive';
import { scheduleIdOf } from '../shared/schedule';
import { createLifecycle } from '../shared/service';
import { BUCKET_FIELDS, COLLECTIONS, localTopology } from '../shared/topology';
import { deliveryCounts, dispatcherForAdmin, fakeAdminPorts, redriveResult } from './admin-ports';
import { answerBeforeClose, deliveryStatuses, listening, notification, seed, standInForFile, waitFor } from './helpers';
import { TestIssuer } from './id-tokens';

const AUDIENCE = 'https://dispatcher.example.run.app';
const ADMIN = 'ops@proj.iam.gserviceaccount.com';
const TICK_SA = 'scheduler@proj.iam.gserviceaccount.com';
const google = new TestIssuer('google-admin-key');
const adminGuard = () =>
  requireInvoker({ role: 'admin', verifier: google.verifier(), audience: [AUDIENCE], allowedEmails: [ADMIN] });
const bearer = (email = ADMIN) => `Bearer ${google.sign({ aud: AUDIENCE, email })}`;
const silent = createLogger({ service: 'test', level: 'silent' });

/** What a fake pause or resume answers: a notification that was enabled. */
const changed = { wasEnabled: true, wasPaused: false, pausedReason: 'x' };

/**
 * A JSON body sent as the text written, not as an object serialised: an object could not hold a
 * key twice, and JSON.stringify would not write a lone surrogate's escape.
 */
function sendText(app: ReturnType<typeof appWith>, method: 'put' | 'post', path: string, text: string) {
  return request(app)[method](path).set('authorization', bearer()).set('content-type', 'application/json').send(text);
}

function appWith(
  ports: AdminPorts,
  log = silent,
  deadlines?: { oneMs: number; bulkMs: number },
  more: { track?: RequestHandler; auth?: RequestHandler } = {},
) {
  return dispatcherForAdmin(
    { auth: more.auth ?? adminGuard(), ...ports, ...(deadlines ? { deadlines } : {}) },
    { log, ...(more.track ? { track: more.track } : {}) },
  );
}

const run: RunDoc = {
  scheduleId: 's_1',
  occurrence: '2030-01-01T00:00:00.000Z',
  status: 'done',
  leaseOwner: null,
  leaseExpiresAt: null,
  cursor: 'n-1',
  published: 3,
  pages: 1,
  resumes: 0,
  startedAt: new Date('2030-01-01T00:00:01Z'),
  updatedAt: new Date('2030-01-01T00:00:02Z'),
  finishedAt: new Date('2030-01-01T00:00:02Z'),
};

const ROUTES: [method: 'get' | 'post' | 'put' | 'delete', path: string][] = [
  ['get', '/status'],
  ['get', '/admin/runs/s_1:2030-01-01T00:00:00.000Z'],
  ['post', '/admin/runs/s_1:2030-01-01T00:00:00.000Z/redrive'],
  ['get', '/admin/notifications/n-1'],
  ['post', '/admin/notifications/n-1/pause'],
  ['post', '/admin/notifications/n-1/resume'],
  ['put', '/admin/notifications/n-1'],
  ['delete', '/admin/notifications/n-1'],
  ['post', '/admin/paused/resume'],
  ['get', '/admin/no-such-route'],
];

describe('admin API: authentication', () => {
  const app = appWith(fakeAdminPorts({ getRun: async () => run }));

  test.each(ROUTES)('%s %s refuses a request without a token (401)', async (method, path) => {
    const res = await request(app)[method](path);
    expect(res.status).toBe(401);
  });

  test.each(ROUTES)('%s %s refuses a caller not in ADMIN_EMAILS (403)', async (method, path) => {
    const res = await request(app)[method](path).set('authorization', bearer(TICK_SA));
    expect(res.status).toBe(403);
  });

  test('refuses a token for another audience (401)', async () => {
    const token = google.sign({ aud: 'https://notifier.example.run.app', email: ADMIN });
    const res = await request(app).get('/status').set('authorization', `Bearer ${token}`);
    expect(res.status).toBe(401);
  });

  test('an empty ADMIN_EMAILS admits nobody', async () => {
    const closed = dispatcherForAdmin({
      auth: requireInvoker({ role: 'admin', verifier: google.verifier(), audience: [AUDIENCE], allowedEmails: [] }),
      ...fakeAdminPorts(),
    });
    expect((await request(closed).get('/status').set('authorization', bearer())).status).toBe(403);
  });

  test('answers admins with no-store', async () => {
    const res = await request(app).get('/admin/runs/s_1:2030-01-01T00:00:00.000Z').set('authorization', bearer());
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('an unknown admin path is a JSON 404 once authenticated', async () => {
    const res = await request(app).get('/admin/nope?x=1').set('authorization', bearer());
    expect(res.status).toBe(404);
    // Like every other 404 of the services: the path asked for, without its query.
    expect(res.body).toEqual({ error: 'not_found', path: '/admin/nope' });
  });
});

describe('admin API: requests (fake ports)', () => {
  test.each([
    ['get', '/admin/notifications/__x__', 'id', 'reserved'],
    ['post', '/admin/notifications/..%2F/pause', 'id', "'/'"],
    ['put', '/admin/notifications/__x__', 'id', 'reserved'],
    ['get', `/admin/runs/${'r'.repeat(1600)}`, 'runId', 'longer than 1500 bytes'],
    ['post', '/admin/runs/__r__/redrive', 'runId', 'reserved'],
    ['get', '/admin/runs/s_1:2030-01-01T10:33Z', 'runId', 'has an occurrence that cannot be read'],
    ['post', '/admin/runs/r-1/redrive', 'runId', 'is not {scheduleId}:{occurrence}'],
  ] as const)(
    '%s %s: an id that cannot be a document is refused (400) before any port is called',
    async (method, path, field, why) => {
      const called = jest.fn(async () => null);
      const app = appWith(fakeAdminPorts({ getRun: called, getNotification: called }));
      const res = await request(app)
        [method](path)
        .set('authorization', bearer())
        .send(method === 'put' ? {} : undefined);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_request', field, message: expect.stringContaining(why) });
      expect(called).not.toHaveBeenCalled();
    },
  );

  test('PUT refuses a body that is not JSON with 415', async () => {
    const res = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'text/plain')
      .send('accountId=a');
    expect(res.status).toBe(415);
    const form = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .type('form')
      .send({ accountId: 'a' });
    expect(form.status).toBe(415);
    expect(form.body.message).toBe(
      'send the body as application/json (the header Content-Type: application/json; this request had Content-Type "application/x-www-form-urlencoded")',
    );
    const none = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer());
    expect(none.status).toBe(415);
    expect(none.body.message).toBe(
      'send the body as application/json (the header Content-Type: application/json; this request had no Content-Type and no body)',
    );
  });

  test.each(['application/merge-patch+json', 'application/json-patch+json; charset=utf-8'])(
    'PUT refuses a patch (%s) with 415, saying to send the whole body: it would be saved as the whole notification',
    async (type) => {
      const save = jest.fn(fakeAdminPorts().saveNotification);
      const res = await request(appWith(fakeAdminPorts({ saveNotification: save })))
        .put('/admin/notifications/n-1')
        .set('authorization', bearer())
        .set('content-type', type)
        .send(JSON.stringify({ title: 'only this' }));
      expect(res.status).toBe(415);
      expect(res.body).toEqual({
        error: 'unsupported_media_type',
        message: `a patch (${type.split(';')[0]}) is not taken: send the whole body as application/json`,
      });
      expect(save).not.toHaveBeenCalled();
      // Another JSON type is still JSON.
      const vendor = await request(appWith(fakeAdminPorts()))
        .put('/admin/notifications/n-1')
        .set('authorization', bearer())
        .set('content-type', 'application/vnd.api+json')
        .send(JSON.stringify({}));
      expect(vendor.status).not.toBe(415);
    },
  );

  test('PUT saves a notification whose account is missing, and its answer warns of it; one the save refuses is not read for', async () => {
    const save = jest.fn(fakeAdminPorts().saveNotification);
    const accountMissing = jest.fn(async (id: string) => id === 'acct-gone');
    const app = appWith(fakeAdminPorts({ saveNotification: save, accountMissing }));
    const put = (accountId: string) =>
      request(app)
        .put('/admin/notifications/n-1')
        .set('authorization', bearer())
        .send({ accountId, channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' });
    const missing = await put('acct-gone');
    expect(missing.status).toBe(201);
    expect(missing.body).toEqual({
      id: 'n-1',
      created: true,
      warning:
        'account "acct-gone" is not in Firestore: each delivery fails (invalid_notification) until it is imported, and after PAUSE_AFTER_FAILURES occurrences in a row the notification is paused (account_not_found)',
    });
    expect((await put('acct-1')).body).toEqual({ id: 'n-1', created: true });
    expect(save).toHaveBeenCalledTimes(2);
    // An account id no document can have: never read for (the real save refuses it with 400).
    accountMissing.mockClear();
    expect((await put('a/b')).body).toEqual({ id: 'n-1', created: true });
    expect(accountMissing).not.toHaveBeenCalled();
  });

  test('a JSON body that is not UTF-8 is refused with 400, not saved with U+FFFD in place of its bytes', async () => {
    const save = jest.fn(fakeAdminPorts().saveNotification);
    const app = appWith(fakeAdminPorts({ saveNotification: save }));
    const latin1 = Buffer.concat([
      Buffer.from('{"accountId":"acct'),
      Buffer.from([0xff]),
      Buffer.from('","channelId":"C1","cron":"0 9 * * *","timezone":"UTC"}'),
    ]);
    for (const type of ['application/json', 'application/json; charset=utf-8']) {
      const res = await request(app)
        .put('/admin/notifications/n-1')
        .set('authorization', bearer())
        .set('content-type', type)
        // Sent as the bytes they are, not as a Buffer written out in JSON.
        .serialize((bytes: Buffer) => bytes as unknown as string)
        .send(latin1);
      expect([type, res.status, res.body]).toEqual([
        type,
        400,
        {
          error: 'charset_invalid',
          message: 'the body is not UTF-8 text (a byte in it is not UTF-8: send the text in UTF-8)',
        },
      ]);
    }
    expect(save).not.toHaveBeenCalled();
    // The same body in UTF-8 is taken.
    const utf8 = await request(app)
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'application/json')
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(Buffer.from('{"accountId":"acctÿ","channelId":"C1","cron":"0 9 * * *","timezone":"UTC"}'));
    expect(utf8.status).toBe(201);
    expect(save).toHaveBeenCalledWith(
      expect.objectContaining({ accountId: 'acctÿ' }),
      expect.any(AbortSignal),
      expect.any(Function),
    );
  });

  test('an array for a body is named as such, not by its first index', async () => {
    const res = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'application/json')
      .send('[]');
    expect([res.status, res.body]).toEqual([
      400,
      { error: 'invalid_request', field: '(body)', message: 'the body must be a JSON object, got an array' },
    ]);
  });

  test('a notification sent back as GET answers it (the stored shape) is told the fields PUT takes, not that channelId is missing', async () => {
    const save = jest.fn(fakeAdminPorts().saveNotification);
    const stored = {
      accountId: 'acct-0001',
      slack: { channelId: 'C0123' },
      schedule: { cron: '0 9 * * *', timezone: 'UTC' },
      scheduleId: 's_1',
      enabled: true,
    };
    const res = await request(appWith(fakeAdminPorts({ saveNotification: save })))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send(stored);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field: 'slack' });
    expect(res.body.message).toContain('PUT takes the flat fields {accountId, channelId, cron, timezone');
    expect(save).not.toHaveBeenCalled();
  });

  test('a bulk resume with a JSON Content-Type and no body is told what to send, not that it is not JSON', async () => {
    const res = await request(appWith(fakeAdminPorts()))
      .post('/admin/paused/resume')
      .set('authorization', bearer())
      .set('content-type', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_request',
      field: 'pausedReason',
      message: 'give pausedReason or allPaused: true',
    });
    // Without a Content-Type it is still not JSON.
    const none = await request(appWith(fakeAdminPorts())).post('/admin/paused/resume').set('authorization', bearer());
    expect(none.status).toBe(415);
  });

  test('a Firestore error under a save that says how far it got is read by its cause', async () => {
    const cause = Object.assign(new Error('10 ABORTED: Transaction lock timeout.'), { code: 10 });
    const wrapped = new Error('saved 0 of 1 notifications before a write failed', { cause });
    const res = await request(
      appWith(
        fakeAdminPorts({
          saveNotification: async () => {
            throw wrapped;
          },
        }),
      ),
    )
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send({ accountId: 'a', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' });
    expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([409, 'conflict', '1']);
  });

  test.each([
    [10, 'ABORTED: Transaction lock timeout.', 409, 'conflict', '1'],
    [14, 'UNAVAILABLE: No connection established', 503, 'firestore_unavailable', '5'],
    [4, 'DEADLINE_EXCEEDED: Deadline exceeded', 504, 'firestore_timeout', '5'],
    [8, 'RESOURCE_EXHAUSTED: Quota exceeded.', 429, 'firestore_quota', '30'],
  ])(
    'a Firestore error %s (%s) answers %s %s with Retry-After, not a bare 500',
    async (code, said, status, error, retryAfter) => {
      const busy = Object.assign(new Error(`${code} ${said}`), { code });
      const app = appWith(
        fakeAdminPorts({
          saveNotification: async () => {
            throw busy;
          },
          deleteNotification: async () => {
            throw busy;
          },
          setNotificationEnabled: async () => {
            throw busy;
          },
        }),
      );
      const answers = [
        await request(app)
          .put('/admin/notifications/n-1')
          .set('authorization', bearer())
          .send({ accountId: 'a', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' }),
        await request(app).delete('/admin/notifications/n-1').set('authorization', bearer()),
        await request(app).post('/admin/notifications/n-1/pause').set('authorization', bearer()),
      ];
      for (const res of answers) {
        expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([status, error, retryAfter]);
        expect(res.body.message).toEqual(expect.any(String));
        expect(res.text).not.toContain(said);
      }
    },
  );

  test('POST pause takes an empty body or JSON, not a form', async () => {
    const ports = fakeAdminPorts({ setNotificationEnabled: async () => changed });
    const app = appWith(ports);
    expect((await request(app).post('/admin/notifications/n-1/pause').set('authorization', bearer())).status).toBe(200);
    const form = await request(app)
      .post('/admin/notifications/n-1/pause')
      .set('authorization', bearer())
      .type('form')
      .send({ reason: 'x' });
    expect(form.status).toBe(415);
  });

  test('a pause reason is 1 to 500 characters, counted as a reader counts them', async () => {
    const reasons: (string | undefined)[] = [];
    const app = appWith(
      fakeAdminPorts({
        setNotificationEnabled: async (_id, _enabled, reason) => {
          reasons.push(reason);
          return changed;
        },
      }),
    );
    const pause = (reason: string) =>
      request(app).post('/admin/notifications/n-1/pause').set('authorization', bearer()).send({ reason });
    // 500 emoji are 1,000 UTF-16 units: still 500 characters.
    expect((await pause('🙂'.repeat(500))).status).toBe(200);
    expect(reasons).toEqual(['🙂'.repeat(500)]);
    const long = await pause('🙂'.repeat(501));
    expect(long.status).toBe(400);
    expect(long.body).toEqual({
      error: 'invalid_request',
      field: 'reason',
      message: 'at most 500 characters, got 501',
    });
    for (const blank of ['', '   ', '\t\n', '\u200b', ' \u2060\u00ad ', '\u3164']) {
      expect((await pause(blank)).body).toEqual({
        error: 'invalid_request',
        field: 'reason',
        message: 'must not be empty or blank (only white space or invisible characters)',
      });
    }
    expect(reasons).toHaveLength(1);
    // Kept without the blanks around it, as `slack-fanout pause --reason` keeps it.
    expect((await pause('  customer asked \n')).status).toBe(200);
    expect(reasons).toEqual(['🙂'.repeat(500), 'customer asked']);
  });

  test.each([
    [{}, 'pausedReason', 'give pausedReason or allPaused: true'],
    [{ pausedReason: 'is_archived', allPaused: true }, 'allPaused', 'give pausedReason or allPaused, not both'],
    [{ pausedReason: '  ' }, 'pausedReason', 'must not be empty or blank'],
    [{ pausedReason: 'x'.repeat(501) }, 'pausedReason', 'at most 500 characters'],
    [{ allPaused: false }, 'allPaused', ''],
    [{ allPaused: true, dryRun: 'yes' }, 'dryRun', ''],
    [{ allPaused: true, limit: 3 }, 'limit', ''],
  ])('POST /admin/paused/resume refuses %j, naming %s', async (body, field, message) => {
    const calls: unknown[] = [];
    const app = appWith(
      fakeAdminPorts({
        resumePaused: async (...args) => {
          calls.push(args);
          throw new Error('not reached');
        },
      }),
    );
    const res = await request(app).post('/admin/paused/resume').set('authorization', bearer()).send(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field });
    expect(res.body.message).toContain(message);
    expect(calls).toEqual([]);
  });

  test('POST /admin/paused/resume takes JSON only, and answers the counts (the ids only for a dry run)', async () => {
    const asked: unknown[] = [];
    const app = appWith(
      fakeAdminPorts({
        resumePaused: async (selector, opts) => {
          asked.push([selector, opts]);
          return {
            dryRun: opts.dryRun,
            matched: 2,
            resumed: opts.dryRun ? 0 : 2,
            skipped: 0,
            failed: 0,
            byReason: { is_archived: 2 },
            ids: ['n-1', 'n-2'],
            unlisted: 0,
            firstError: null,
          };
        },
      }),
    );
    const post = (body: unknown) =>
      request(app)
        .post('/admin/paused/resume')
        .set('authorization', bearer())
        .send(body as object);
    const real = await post({ pausedReason: 'is_archived' });
    expect(real.status).toBe(200);
    expect(real.body).toEqual({
      pausedReason: 'is_archived',
      dryRun: false,
      matched: 2,
      resumed: 2,
      skipped: 0,
      failed: 0,
      byReason: { is_archived: 2 },
      firstError: null,
    });
    const dry = await post({ allPaused: true, dryRun: true });
    expect(dry.body).toMatchObject({ allPaused: true, dryRun: true, ids: ['n-1', 'n-2'], unlisted: 0 });
    expect(asked).toEqual([
      [{ pausedReason: 'is_archived' }, { dryRun: false }],
      [{ allPaused: true }, { dryRun: true }],
    ]);
    const form = await request(app)
      .post('/admin/paused/resume')
      .set('authorization', bearer())
      .type('form')
      .send({ allPaused: 'true' });
    expect(form.status).toBe(415);
  });

  test('a request it cannot read is named: JSON that is not an object, a path that is not UTF-8, a body not in its encoding', async () => {
    const app = appWith(fakeAdminPorts());
    const put = (body: string, headers: Record<string, string> = {}) =>
      request(app)
        .put('/admin/notifications/n-1')
        .set('authorization', bearer())
        .set('content-type', 'application/json')
        .set(headers)
        .send(body);
    expect((await put('null')).body).toEqual({
      error: 'invalid_request',
      field: '(body)',
      message: 'the body must be a JSON object, got null',
    });
    expect((await put('"text"')).body.message).toBe('the body must be a JSON object, got a string');
    expect((await put('{"a":')).body.message).toMatch(/^the body is not JSON: /);
    const path = await request(app).get('/admin/notifications/%FF').set('authorization', bearer());
    expect(path.status).toBe(400);
    expect(path.body).toEqual({
      error: 'bad_request',
      message: 'a part of the path is not valid percent-encoded UTF-8',
    });
    const gzip = await put('{"not":"gzip"}', { 'content-encoding': 'gzip' });
    expect(gzip.status).toBe(400);
    expect(gzip.body.message).toBe('the body is not in the Content-Encoding it names');
    for (const encoding of ['br', 'deflate']) {
      const bad = await put('{"not":"compressed"}', { 'content-encoding': encoding });
      expect({ encoding, status: bad.status, message: bad.body.message }).toEqual({
        encoding,
        status: 400,
        message: 'the body is not in the Content-Encoding it names',
      });
    }
  });

  test('a known path asked with a method it does not take: 405 with Allow, once authenticated', async () => {
    const app = appWith(fakeAdminPorts());
    const asked = async (method: 'get' | 'delete' | 'post' | 'patch', path: string) => {
      const res = await request(app)[method](path).set('authorization', bearer());
      return { status: res.status, allow: res.headers.allow };
    };
    expect(await asked('patch', '/admin/notifications/n-1')).toEqual({ status: 405, allow: 'GET, PUT, DELETE, HEAD' });
    expect(await asked('get', '/admin/notifications/n-1/pause')).toEqual({ status: 405, allow: 'POST' });
    expect(await asked('get', '/admin/runs/s_1:2030-01-01T00:00:00Z/redrive')).toEqual({ status: 405, allow: 'POST' });
    expect(await asked('post', '/admin/runs/s_1:2030-01-01T00:00:00Z')).toEqual({ status: 405, allow: 'GET, HEAD' });
    // The method first, whatever the id: one that cannot be read is not named for a method the path does not take.
    expect(await asked('delete', '/admin/runs/x:y')).toEqual({ status: 405, allow: 'GET, HEAD' });
    expect(await asked('patch', '/admin/notifications/__x__')).toEqual({
      status: 405,
      allow: 'GET, PUT, DELETE, HEAD',
    });

    expect(await asked('get', '/admin/paused/resume')).toEqual({ status: 405, allow: 'POST' });
    expect(await asked('patch', '/status')).toEqual({ status: 405, allow: 'GET, HEAD' });
    expect((await asked('get', '/admin/nope')).status).toBe(404);
    // Without a token, the guard answers first, as for every admin path.
    expect((await request(app).patch('/admin/notifications/n-1')).status).toBe(401);
  });

  test('a blank notification id is named with 400 on every :id route, before any read, as the CLI and a PUT name it', async () => {
    for (const [method, path] of [
      ['get', '/admin/notifications/%20'],
      ['delete', '/admin/notifications/%20'],
      ['post', '/admin/notifications/%09/pause'],
      ['post', '/admin/notifications/%20/resume'],
    ] as const) {
      const res = await request(appWith(fakeAdminPorts()))[method](path).set('authorization', bearer());
      expect({ method, path, status: res.status, body: res.body.message }).toEqual({
        method,
        path,
        status: 400,
        body: expect.stringContaining('is blank'),
      });
    }
  });

  test('a bulk resume whose reason, typed with blanks around it, matched nothing names the one a pause saves', async () => {
    const app = appWith(fakeAdminPorts());
    const padded = await request(app)
      .post('/admin/paused/resume')
      .set('authorization', bearer())
      .send({ pausedReason: ' maint ', dryRun: true });
    expect(padded.status).toBe(200);
    expect(padded.body.hint).toBe(
      'no notification is paused for " maint " exactly; a pause saves its reason without the blanks around it: try {"pausedReason": "maint"}',
    );
    const plain = await request(app)
      .post('/admin/paused/resume')
      .set('authorization', bearer())
      .send({ pausedReason: 'maint', dryRun: true });
    expect(plain.body).not.toHaveProperty('hint');
  });

  test('a notification not found is a 404 that says why when the id given looks like another', async () => {
    for (const [method, path] of [
      ['get', '/admin/notifications/n-1%E2%80%8B'],
      ['delete', '/admin/notifications/n-1%E2%80%8B'],
      ['post', '/admin/notifications/%20n-1/pause'],
      ['post', '/admin/notifications/n-1%E2%80%8B/resume'],
    ] as const) {
      const res = await request(appWith(fakeAdminPorts()))[method](path).set('authorization', bearer());
      expect({ method, path, status: res.status, error: res.body.error, message: res.body.message }).toEqual({
        method,
        path,
        status: 404,
        error: 'notification_not_found',
        message: expect.stringMatching(/^the id given (has an invisible character|has blanks around it)/),
      });
    }
    const plain = await request(appWith(fakeAdminPorts()))
      .get('/admin/notifications/n-1')
      .set('authorization', bearer());
    expect({ status: plain.status, body: plain.body }).toEqual({
      status: 404,
      body: { error: 'notification_not_found', id: 'n-1' },
    });
  });

  test('a run not found is a 404 that says why when the id given has an invisible character', async () => {
    const run = 's_1:2030-01-01T00:00:00.000Z';
    for (const [method, path] of [
      ['get', `/admin/runs/s_1%E2%80%8B:2030-01-01T00:00:00.000Z`],
      ['post', `/admin/runs/s_1%E2%80%8B:2030-01-01T00:00:00.000Z/redrive`],
    ] as const) {
      const res = await request(appWith(fakeAdminPorts()))[method](path).set('authorization', bearer());
      expect({ method, status: res.status, body: res.body }).toEqual({
        method,
        status: 404,
        body: {
          error: 'run_not_found',
          runId: 's_1\u200b:2030-01-01T00:00:00.000Z',
          message: expect.stringMatching(/^the id given has an invisible character/),
        },
      });
    }
    const plain = await request(appWith(fakeAdminPorts())).get(`/admin/runs/${run}`).set('authorization', bearer());
    expect({ status: plain.status, body: plain.body }).toEqual({
      status: 404,
      body: { error: 'run_not_found', runId: run },
    });
  });

  test('text Firestore cannot hold (a lone surrogate) is named with a 400 before any write', async () => {
    const writes: unknown[] = [];
    const app = appWith(
      fakeAdminPorts({
        saveNotification: async (n) => writes.push(n) > 0,
        setNotificationEnabled: async (...a) => (writes.push(a) > 0 ? changed : null),
      }),
    );
    const put = await sendText(
      app,
      'put',
      '/admin/notifications/n-1',
      '{"accountId":"a","channelId":"C1","cron":"* * * * *","timezone":"UTC","title":"\\ud800x"}',
    );
    expect(put.status).toBe(400);
    expect(put.body).toEqual({
      error: 'invalid_request',
      field: 'title',
      message: 'is not well-formed Unicode (a lone surrogate)',
    });
    expect((await sendText(app, 'post', '/admin/notifications/n-1/pause', '{"reason":"\\udc00"}')).body.field).toBe(
      'reason',
    );
    expect((await sendText(app, 'post', '/admin/paused/resume', '{"pausedReason":"x\\ud800"}')).body.field).toBe(
      'pausedReason',
    );
    // A pair is one character, and fine.
    expect((await sendText(app, 'post', '/admin/notifications/n-1/pause', '{"reason":"\\ud83d\\ude42"}')).status).toBe(
      200,
    );
    expect(writes).toHaveLength(1);
  });

  test('a new id with a control character (a line break) is refused with a 400 that names the field', async () => {
    const writes: unknown[] = [];
    // As the store saves it: notificationDoc checks it first.
    const app = appWith(
      fakeAdminPorts({ saveNotification: async (n) => notificationDoc(n) !== null && writes.push(n) > 0 }),
    );
    const body = { accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' };
    const put = (id: string, b: object) =>
      request(app).put(`/admin/notifications/${id}`).set('authorization', bearer()).send(b);
    const res = await put('nl%0Ax', body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: 'invalid_request',
      field: 'id',
      message: expect.stringContaining('control character'),
    });
    const account = await put('n-1', { ...body, accountId: 'a\u202eb' });
    expect(account.status).toBe(400);
    expect(account.body).toMatchObject({ field: 'accountId', message: expect.stringContaining('control character') });
    expect(writes).toHaveLength(0);
    expect((await put('n-1', body)).status).toBe(201);
    expect(writes).toHaveLength(1);
  });

  test('a PUT takes the lengths an import takes, and names the field past them', async () => {
    const writes: unknown[] = [];
    const app = appWith(
      fakeAdminPorts({ saveNotification: async (n) => notificationDoc(n) !== null && writes.push(n) > 0 }),
    );
    const put = (b: object) =>
      request(app)
        .put('/admin/notifications/n-1')
        .set('authorization', bearer())
        .send({ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC', ...b });
    const every = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i).join(',');
    // Every value of every field written out: 356 characters.
    const cron = `${every(0, 59)} ${every(0, 23)} ${every(1, 31)} ${every(1, 12)} ${every(0, 6)}`;
    expect((await put({ cron, channelId: 'C'.repeat(255) })).status).toBe(201);
    // Runs of blanks count as one, as the cron is kept: a long run of them is not a long cron.
    const spaced = await put({ cron: cron.replaceAll(' ', ' '.repeat(200)) });
    expect(spaced.status).toBe(201);
    expect(writes.at(-1)).toMatchObject({ cron: cron.replaceAll(' ', ' '.repeat(200)) });
    const long = await put({ cron: `${'0'.repeat(1001)} * * * *` });
    expect(long.status).toBe(400);
    expect(long.body).toMatchObject({ field: 'cron', message: expect.stringContaining('a cron has at most 1000') });
    const zone = await put({ timezone: `Europe/${'x'.repeat(100)}` });
    expect(zone.body).toMatchObject({
      field: 'timezone',
      message: expect.stringContaining('a time zone has at most 100'),
    });
    const channel = await put({ channelId: 'C'.repeat(256) });
    expect(channel.body).toMatchObject({ field: 'channelId', message: expect.stringContaining('longer than 255') });
    // An id is named by the tightest limit it is past: cut to it, it is taken.
    const putId = (id: string) =>
      request(app)
        .put(`/admin/notifications/${encodeURIComponent(id)}`)
        .set('authorization', bearer())
        .send({ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' });
    for (const [id, limit] of [
      ['a'.repeat(1600), 'is longer than 500 characters (1600)'],
      ['a'.repeat(501), 'is longer than 500 characters (501)'],
      ['€'.repeat(334), 'is longer than 999 bytes'],
    ] as const) {
      const res = await putId(id);
      expect([res.status, res.body.field, res.body.message]).toEqual([400, 'id', expect.stringContaining(limit)]);
    }
    expect((await putId('a'.repeat(500))).status).toBe(201);
    expect((await putId('€'.repeat(333))).status).toBe(201);
    expect(writes).toHaveLength(4);
  });

  test('a value nested thousands deep is refused with a 400 that names its field, not a 500', async () => {
    const writes: unknown[] = [];
    const app = appWith(fakeAdminPorts({ saveNotification: async (n) => writes.push(n) > 0 }));
    const deep = `${'['.repeat(5_000)}${']'.repeat(5_000)}`;
    const put = await sendText(app, 'put', '/admin/notifications/n-1', `{"accountId":${deep}}`);
    expect(put.status).toBe(400);
    expect(put.body).toMatchObject({ error: 'invalid_request', field: 'accountId' });
    expect((await sendText(app, 'post', '/admin/notifications/n-1/pause', `{"reason":${deep}}`)).body).toMatchObject({
      error: 'invalid_request',
      field: 'reason',
    });
    expect((await sendText(app, 'post', '/admin/paused/resume', `{"pausedReason":${deep}}`)).body).toMatchObject({
      error: 'invalid_request',
      field: 'pausedReason',
    });
    expect(writes).toHaveLength(0);
  });

  test('a charset the parser does not take is named in its 415; UTF8, a label of UTF-8, is taken', async () => {
    const utf8 = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'application/json; charset=UTF8')
      .send(JSON.stringify({ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' }));
    expect(utf8.status).toBe(201);
    const res = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'application/json; charset=latin1')
      .send(JSON.stringify({ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' }));
    expect(res.status).toBe(415);
    expect(res.body).toEqual({
      error: 'charset_unsupported',
      message: 'the body\'s charset "latin1" is not one this endpoint takes (send UTF-8: charset=utf-8)',
    });
    // One it reads, but not UTF-8: refused all the same, and nothing is saved.
    const writes: unknown[] = [];
    const utf16 = await request(appWith(fakeAdminPorts({ saveNotification: async (n) => writes.push(n) > 0 })))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'application/json; charset=utf-16')
      .serialize((bytes: Buffer) => bytes as unknown as string)
      .send(
        Buffer.from(
          `\ufeff${JSON.stringify({ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' })}`,
          'utf16le',
        ),
      );
    expect(utf16.status).toBe(415);
    expect(utf16.body).toEqual({
      error: 'charset_unsupported',
      message: 'the body\'s charset "utf-16" is not one this endpoint takes (send UTF-8: charset=utf-8)',
    });
    expect(writes).toHaveLength(0);
  });

  test('a key given twice in a body is named with 400, and nothing is saved or run', async () => {
    const writes: unknown[] = [];
    let redriven = 0;
    const app = appWith(
      fakeAdminPorts({
        saveNotification: async (n) => writes.push(n) > 0,
        redrivable: async () => true,
        redrive: async (runId) => {
          redriven++;
          return { runId, redriven: 0, skipped: 0, failed: 0, waiting: 0, waitingUntil: null };
        },
      }),
    );
    const put = await sendText(
      app,
      'put',
      '/admin/notifications/n-1',
      '{"accountId":"acct-1","channelId":"C1","cron":"* * * * *","timezone":"UTC","accountId":"acct-2"}',
    );
    expect(put.status).toBe(400);
    expect(put.body).toEqual({
      error: 'invalid_request',
      field: 'accountId',
      message: 'is given twice in the body, and JSON keeps the last: give it once',
    });
    const nested = await sendText(
      app,
      'put',
      '/admin/notifications/n-1',
      '{"accountId":"a","channelId":"C1","cron":"* * * * *","timezone":"UTC","metrics":[{"label":"x","label":"y"}]}',
    );
    expect(nested.body).toMatchObject({ error: 'invalid_request', field: 'metrics[0].label' });
    // Behind a byte-order mark, which the body parser passes over, all the same.
    const bom = await sendText(
      app,
      'put',
      '/admin/notifications/n-1',
      '\ufeff{"accountId":"a","channelId":"C1","cron":"* * * * *","timezone":"UTC","accountId":"b"}',
    );
    expect(bom.body).toMatchObject({ error: 'invalid_request', field: 'accountId' });
    expect(writes).toHaveLength(0);
    const redrive = await sendText(
      app,
      'post',
      '/admin/runs/s_1:2030-01-01T00:00:00.000Z/redrive',
      '{"dryRun":false,"dryRun":true}',
    );
    expect(redrive.body).toMatchObject({ error: 'invalid_request', field: 'dryRun' });
    expect(redriven).toBe(0);
    // The same key in two objects is no key given twice.
    const fine = await request(app)
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send({ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' });
    expect(fine.status).toBeLessThan(300);
    expect(writes).toHaveLength(1);
  });

  test('a body over the limit is refused with 413', async () => {
    const res = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send({ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC', title: 'x'.repeat(70_000) });
    expect(res.status).toBe(413);
    const length = Buffer.byteLength(
      JSON.stringify({
        accountId: 'a',
        channelId: 'C1',
        cron: '* * * * *',
        timezone: 'UTC',
        title: 'x'.repeat(70_000),
      }),
    ).toLocaleString('en-US');
    expect(res.body).toEqual({
      error: 'entity_too_large',
      message: `the body is larger than this endpoint takes (at most 65,536 bytes; this one is ${length})`,
    });
  });

  test.each([
    [{ channelId: 'C1', cron: '* * * * *', timezone: 'UTC' }, 'accountId'],
    [{ accountId: 'a', channelId: 'C1', cron: '* * *', timezone: 'UTC' }, 'cron'],
    [{ accountId: 'a', channelId: 'C1', cron: '61 * * * *', timezone: 'UTC' }, 'cron'],
    // A step longer than the minutes' cycle: hourly, where every 90 minutes was meant.
    [{ accountId: 'a', channelId: 'C1', cron: '*/90 * * * *', timezone: 'UTC' }, 'cron'],
    [{ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'Mars/Olympus' }, 'timezone'],
    [{ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC', extra: 1 }, 'extra'],
    [{ accountId: 'a', channelId: 'C1', cron: '* * * * *', timezone: 'UTC', enabled: 'yes' }, 'enabled'],
  ])('PUT %j answers 400 naming %s', async (body, field) => {
    const saved: unknown[] = [];
    const res = await request(appWith(fakeAdminPorts({ saveNotification: async (n) => saved.push(n) > 0 })))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field });
    expect(saved).toEqual([]);
  });

  test.each([
    [{ accountId: 'a/b', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' }, 'accountId'],
    [{ accountId: '   ', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' }, 'accountId'],
    [{ accountId: ' a ', channelId: 'C1', cron: '* * * * *', timezone: 'UTC' }, 'accountId'],
    [{ accountId: 'a', channelId: '  ', cron: '* * * * *', timezone: 'UTC' }, 'channelId'],
  ])('PUT %j, refused by the stored-notification checks, names %s', async (body, field) => {
    // As the Firestore port does: the document is built (and checked) before it is written.
    const ports = fakeAdminPorts({ saveNotification: async (n) => notificationDoc(n) !== null });
    const res = await request(appWith(ports)).put('/admin/notifications/n-1').set('authorization', bearer()).send(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field });
  });

  test('PUT takes an account id as long as an import does (1,500 bytes), and refuses one longer, naming it', async () => {
    const saved: unknown[] = [];
    const ports = fakeAdminPorts({ saveNotification: async (n) => notificationDoc(n) !== null && saved.push(n) > 0 });
    const body = (accountId: string) => ({ accountId, channelId: 'C1', cron: '* * * * *', timezone: 'UTC' });
    const ok = await request(appWith(ports))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send(body('a'.repeat(1500)));
    expect(ok.status).toBe(201);
    expect(saved).toHaveLength(1);
    const long = await request(appWith(ports))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send(body('é'.repeat(751)));
    expect(long.status).toBe(400);
    expect(long.body).toMatchObject({ error: 'invalid_request', field: 'accountId' });
  });

  test.each(['{bad', 'null', '"x"'])('PUT with the body %s answers invalid_request', async (text) => {
    const res = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'application/json')
      .send(text);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', field: '(body)' });
  });

  test('PUT with no body says the body is empty, not which field it lacks', async () => {
    const res = await request(appWith(fakeAdminPorts()))
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .set('content-type', 'application/json');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_request',
      field: '(body)',
      message: 'is empty: send the notification as a JSON object ({accountId, channelId, cron, timezone, …})',
    });
  });

  test('a route that throws answers {error} without a stack, and logs it', async () => {
    const lines: string[] = [];
    const log = createLogger({ service: 't', level: 'info', destination: { write: (l: string) => lines.push(l) } });
    const app = appWith(
      fakeAdminPorts({
        getRun: async () => {
          throw new Error('firestore exploded at /srv/app/secret/path.ts:12');
        },
      }),
      log,
    );
    const res = await request(app).get('/admin/runs/s_1:2030-01-01T00:00:00.000Z').set('authorization', bearer());
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'internal_error' });
    expect(res.text).not.toMatch(/exploded|at |\.ts:/);
    expect(lines.some((l) => l.includes('firestore exploded'))).toBe(true);
  });

  test('a request Firestore does not answer in time is answered 504 with Retry-After, and what it ends with is logged', async () => {
    const lines: string[] = [];
    const log = createLogger({ service: 't', level: 'info', destination: { write: (l: string) => lines.push(l) } });
    // Firestore that answers only when told to.
    const held: (() => void)[] = [];
    const hold = <T>(value: T) => new Promise<T>((resolve) => held.push(() => resolve(value)));
    let saved = 0;
    const app = appWith(
      fakeAdminPorts({
        getNotification: () => hold(null),
        saveNotification: async () => {
          await hold(null);
          saved++;
          return true;
        },
        getRun: () => hold(run),
        recentRuns: () => hold([]),
        redrivable: async () => true,
        redrive: (runId) => hold({ runId, redriven: 1, skipped: 0, failed: 0, waiting: 0, waitingUntil: null }),
      }),
      log,
      { oneMs: 300, bulkMs: 900 },
    );
    const started = Date.now();
    const get = await request(app).get('/admin/notifications/n-1').set('authorization', bearer());
    expect(get.status).toBe(504);
    expect(get.headers['retry-after']).toBe('5');
    expect(get.headers['cache-control']).toBe('no-store');
    expect(get.body).toEqual({
      error: 'firestore_timeout',
      message: 'Firestore did not answer within 300 ms: ask again shortly',
    });
    expect(Date.now() - started).toBeLessThan(5000);
    // A write past its deadline goes on: the 504 says it may have been applied, and it is.
    const put = await request(app)
      .put('/admin/notifications/n-1')
      .set('authorization', bearer())
      .send({ accountId: 'a-1', channelId: 'C0123456789', cron: '0 9 * * *', timezone: 'UTC' });
    expect(put.status).toBe(504);
    expect(put.body.message).toBe(
      'Firestore did not answer within 300 ms; the request may or may not have been applied: read it back, or send it again',
    );
    // A browser's status page gets a page; a script, JSON.
    const page = await request(app).get('/status').set('authorization', bearer()).set('accept', 'text/html');
    expect(page.status).toBe(504);
    expect(page.type).toBe('text/html');
    expect(page.text).toContain('Firestore did not answer within 300 ms');
    expect(page.text).toContain('<h1>slack-fanout status: timed out</h1>');
    const script = await request(app).get('/status').set('authorization', bearer()).set('accept', '*/*');
    expect(script).toMatchObject({ status: 504, body: { error: 'firestore_timeout' } });
    // A redrive has the longer deadline of a bulk route.
    const redriveStarted = Date.now();
    const redrive = await request(app)
      .post('/admin/runs/s_1:2030-01-01T00:00:00.000Z/redrive')
      .set('authorization', bearer());
    expect(redrive.status).toBe(504);
    expect(Date.now() - redriveStarted).toBeGreaterThanOrEqual(850);
    // Firestore answers: the routes end, nothing is thrown, and what they would have answered is logged.
    const before = lines.length;
    for (const release of held.splice(0)) release();
    await waitFor(
      'the late answers logged',
      () => lines.slice(before).filter((l) => l.includes('after its 504')).length === 5,
      5000,
      20,
    );
    expect(saved).toBe(1);
    const late = lines
      .slice(before)
      .filter((l) => l.includes('after its 504'))
      .map((l) => JSON.parse(l) as { status: number; severity: string });
    expect(late.map((l) => l.status).sort()).toEqual([200, 200, 200, 201, 404]);
    // Each line names its request: the PUT's late 201 can be told from the reads.
    expect(
      lines
        .filter((l) => l.includes('after its 504'))
        .map((l) => JSON.parse(l).method)
        .sort(),
    ).toEqual(['GET', 'GET', 'GET', 'POST', 'PUT']);
    expect(late.every((l) => l.severity === 'WARNING')).toBe(true);
    expect(lines.some((l) => l.includes('request failed'))).toBe(false);
    // A request answered in time is not touched by its deadline after.
    const quick = appWith(fakeAdminPorts({ getRun: async () => run }), log, { oneMs: 100, bulkMs: 100 });
    const ok = await request(quick).get('/admin/runs/s_1:2030-01-01T00:00:00.000Z').set('authorization', bearer());
    expect(ok.status).toBe(200);
    const count = lines.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(lines.length).toBe(count);
  });

  test('the status page links each run to its details, counts what it published that has no record, and marks failures', async () => {
    let asked = 0;
    const id = 's_1:2030-01-01T00:00:00.000Z';
    const app = appWith(
      fakeAdminPorts({
        recentRuns: async (limit) => {
          asked = limit;
          return [
            { id, run: { ...run, published: 10 } },
            { id: 's_2:2030-01-01T00:00:00.000Z', run: { ...run, published: 1 } },
          ];
        },
        countByStatus: async (runId) =>
          runId === id ? { ...deliveryCounts(), sent: 5, failed: 1 } : { ...deliveryCounts(), sent: 2 },
      }),
    );
    const res = await request(app).get('/status').set('authorization', bearer());
    expect(res.status).toBe(200);
    expect(asked).toBe(20);
    // Relative to /status, so it holds under a proxy's path prefix.
    expect(res.text).toContain(`<a href="admin/runs/${encodeURIComponent(id)}">${id}</a>`);
    // 10 published, 6 recorded: 4 still in Pub/Sub; never below 0 (2 recorded of 1 published).
    const rows = res.text.match(/<tr( class="\w+")?><td class="id"><span>.*<\/tr>/g) ?? [];
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^<tr class="failed">/);
    expect(rows[0]).toMatch(/<td>4<\/td><\/tr>$/);
    expect(rows[1]).toMatch(/^<tr><td/);
    expect(rows[1]).toMatch(/<td>0<\/td><\/tr>$/);
    expect(res.text).toContain('<meta name="viewport"');

    expect(res.text).toContain('<th>published, no record</th>');
  });

  test('the status page reads the counts of at most 10 runs at once, whatever ?limit= asks for', async () => {
    let inFlight = 0;
    let most = 0;
    let counted = 0;
    const app = appWith(
      fakeAdminPorts({
        recentRuns: async (limit) =>
          Array.from({ length: limit }, (_, i) => ({ id: `s_${i}:2030-01-01T00:00:00.000Z`, run })),
        countByStatus: async () => {
          inFlight++;
          most = Math.max(most, inFlight);
          await new Promise((resolve) => setTimeout(resolve, 2));
          inFlight--;
          counted++;
          return deliveryCounts();
        },
      }),
    );
    const res = await request(app).get('/status?limit=200').set('authorization', bearer());
    expect(res.status).toBe(200);
    expect(counted).toBe(200);
    expect(most).toBe(10);
    expect(res.text.match(/<tr><td class="id">/g)).toHaveLength(200);
  });

  test('the status page refuses a ?limit= that is not a whole number from 1 to 200', async () => {
    const app = appWith(fakeAdminPorts({}));
    for (const bad of ['0', '201', '1e2', 'ten', '5&limit=6']) {
      const r = await request(app).get(`/status?limit=${bad}`).set('authorization', bearer());
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid_request', field: 'limit' });
    }
  });

  test('the status page names a parameter it does not take (limit[]=5, a misspelling), rather than passing it over', async () => {
    const app = appWith(fakeAdminPorts({}));
    for (const [query, named] of [
      ['limit[]=5', '"limit[]"'],
      ['limt=5', '"limt"'],
      ['limit=5&x=1', '"x"'],
    ] as const) {
      const r = await request(app).get(`/status?${query}`).set('authorization', bearer());
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: 'invalid_request', field: 'limit' });
      expect(r.body.message).toContain(`takes one parameter, limit (a whole number from 1 to 200), got ${named}`);
    }
  });

  test("a browser's bad ?limit= gets a page naming the problem, a script's the JSON", async () => {
    const app = appWith(fakeAdminPorts({}));
    const browser = await request(app)
      .get('/status?limit=<b>ten</b>')
      .set('authorization', bearer())
      .set('accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8');
    expect(browser.status).toBe(400);
    expect(browser.type).toBe('text/html');
    expect(browser.text).toContain(
      'limit must be a whole number from 1 to 200, got &quot;&lt;b&gt;ten&lt;/b&gt;&quot;',
    );
    expect(browser.text).not.toContain('<b>ten');
    expect(browser.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'");
    expect(browser.headers.vary).toMatch(/Accept/);
    const script = await request(app).get('/status?limit=ten').set('authorization', bearer()).set('accept', '*/*');
    expect(script.type).toBe('application/json');
    expect(script.body).toMatchObject({ error: 'invalid_request', field: 'limit' });
  });

  test('a redrive without "failed" of a run with failed deliveries says how to send them; with it, or with none failed, it does not', async () => {
    let failed = 2;
    const asked: { failed?: boolean }[] = [];
    const app = appWith(
      fakeAdminPorts({
        redrivable: async () => true,
        countByStatus: async () => deliveryCounts({ failed, dead: 1 }),
        redrive: async (runId, opts) => {
          asked.push(opts ?? {});
          return redriveResult(runId, { redriven: 1 });
        },
      }),
    );
    const runId = 's_1:2030-01-01T00:00:00.000Z';
    const post = (body: object) =>
      request(app).post(`/admin/runs/${runId}/redrive`).set('authorization', bearer()).send(body);
    const plain = await post({});
    expect(plain.status).toBe(200);
    expect(plain.body).toEqual({
      ...redriveResult(runId, { redriven: 1 }),
      hint: failedNotRedriven(2),
    });
    expect((await post({ failed: true })).body.hint).toBeUndefined();
    expect(failedNotRedriven(2)).toBe(
      '2 deliveries of the run failed (a permanent error, not out of attempts) and are not redriven: a redrive sends dead deliveries alone; once the cause is fixed, the same call with {"failed": true} sends them again (one of a notification paused stays failed until it is resumed; one of a notification deleted since, and a broken message\'s record, stay failed)',
    );
    failed = 0;
    expect((await post({})).body.hint).toBeUndefined();
    expect(asked).toEqual([{ failed: false }, { failed: true }, { failed: false }]);
  });

  test('a redrive that finds deliveries another redrive reopened says a running one publishes them, beside the failed hint', async () => {
    let failed = 0;
    const until = '2030-01-01T00:31:00.000Z';
    const app = appWith(
      fakeAdminPorts({
        redrivable: async () => true,
        countByStatus: async () => deliveryCounts({ failed, retrying: 2 }),
        redrive: async (runId) => ({ ...redriveResult(runId), waiting: 2, waitingUntil: until }),
      }),
    );
    const runId = 's_1:2030-01-01T00:00:00.000Z';
    const post = () => request(app).post(`/admin/runs/${runId}/redrive`).set('authorization', bearer()).send({});
    const alone = await post();
    expect(alone.status).toBe(200);
    expect(alone.body).toEqual({
      ...redriveResult(runId),
      waiting: 2,
      waitingUntil: until,
      hint: waitingOnAnother(2, runId, until),
    });
    expect(waitingOnAnother(2, runId, until)).toBe(
      `2 deliveries reopened by another redrive were waiting for it to publish them when reached: a redrive still running publishes them itself (GET /admin/runs/s_1:2030-01-01T00:00:00.000Z counts what is still retrying); a redrive after ${until} takes over any that a redrive stopped midway left`,
    );
    failed = 1;
    expect((await post()).body.hint).toBe(`${waitingOnAnother(2, runId, until)}. ${failedNotRedriven(1)}`);
  });

  test('a redrive to a dispatch topic no subscription reads is refused before anything is reopened, naming why', async () => {
    let redriven = 0;
    const app = appWith(
      fakeAdminPorts({
        redrivable: async () => true,
        redriveTopicReady: async () => {
          throw new NotReady('topic projects/p/topics/t has no subscription', 'topic_has_no_subscription');
        },
        redrive: async (runId) => {
          redriven++;
          return redriveResult(runId, { redriven: 1 });
        },
      }),
    );
    const res = await request(app)
      .post('/admin/runs/s_1:2030-01-01T00:00:00.000Z/redrive')
      .set('authorization', bearer())
      .send({ failed: true });
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      error: 'dependency_unavailable',
      checks: { pubsub: 'topic_has_no_subscription' },
      message: 'the dispatch topic is not ready to publish to; nothing was redriven',
    });
    expect(redriven).toBe(0);
  });

  test("a redrive's answer does not wait on a count that does not come: it leaves the hint out", async () => {
    const app = appWith(
      fakeAdminPorts({
        redrivable: async () => true,
        countByStatus: () => new Promise(() => undefined),
        redrive: async (runId) => redriveResult(runId, { redriven: 1 }),
      }),
    );
    const runId = 's_1:2030-01-01T00:00:00.000Z';
    const started = Date.now();
    const res = await request(app).post(`/admin/runs/${runId}/redrive`).set('authorization', bearer()).send({});
    expect(res.status).toBe(200);
    expect(res.body).toEqual(redriveResult(runId, { redriven: 1 }));
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('a redrive or a resume refuses a field it does not take, rather than passing it over', async () => {
    let redriven = 0;
    const app = appWith(
      fakeAdminPorts({
        redrivable: async () => true,
        redrive: async (runId) => {
          redriven++;
          return { runId, redriven: 0, skipped: 0, failed: 0, waiting: 0, waitingUntil: null };
        },
        setNotificationEnabled: async () => changed,
      }),
    );
    const post = (path: string, body?: unknown) => {
      const r = request(app).post(path).set('authorization', bearer());
      return body === undefined ? r : r.send(body as object);
    };
    const runPath = '/admin/runs/s_1:2030-01-01T00:00:00.000Z/redrive';
    // {"dryRun": true} does not make a dry run of a redrive: it is refused, and nothing redrives.
    expect((await post(runPath, { dryRun: true })).body).toMatchObject({ error: 'invalid_request', field: 'dryRun' });
    expect(redriven).toBe(0);
    expect((await post(runPath)).status).toBe(200);
    expect((await post(runPath, {})).status).toBe(200);
    expect(redriven).toBe(2);
    const resume = await post('/admin/notifications/n-1/resume', { reason: 'x' });
    expect(resume).toMatchObject({ status: 400, body: { field: 'reason' } });
    expect((await post('/admin/notifications/n-1/resume')).status).toBe(200);
    // A pause reason with a control character is refused, naming it.
    const pause = await post('/admin/notifications/n-1/pause', { reason: 'evil\u202eTXET\nline2' });
    expect(pause.status).toBe(400);
    expect(pause.body).toMatchObject({ field: 'reason', message: expect.stringContaining('control character') });
  });

  test('the status page escapes what it shows', async () => {
    const evil = '<script>alert("x")</script>';
    const app = appWith(
      fakeAdminPorts({
        recentRuns: async () => [{ id: evil, run: { ...run, scheduleId: evil } }],
        countByStatus: async () => ({ ...deliveryCounts(), sent: 2, dead: 1 }),
      }),
    );
    const res = await request(app).get('/status').set('authorization', bearer());
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.text).not.toContain('<script>');
    expect(res.text).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
  });
});

describe('admin API: deadlines (fake ports)', () => {
  /** A log kept as lines, and ports that answer only when released. */
  function held() {
    const lines: string[] = [];
    const log = createLogger({ service: 't', level: 'info', destination: { write: (l: string) => lines.push(l) } });
    const waiting: (() => void)[] = [];
    const hold = () => new Promise<void>((resolve) => waiting.push(resolve));
    const release = () => {
      for (const r of waiting.splice(0)) r();
    };
    const said = (text: string) =>
      lines.filter((l) => l.includes(text)).map((l) => JSON.parse(l) as Record<string, unknown>);
    return { lines, log, hold, release, said };
  }

  test('a shutdown waits for work past its 504, and a failure past it is logged with its stack, then as what it would have answered', async () => {
    const h = held();
    const lifecycle = createLifecycle(h.log);
    const app = appWith(
      fakeAdminPorts({
        getNotification: async () => {
          await h.hold();
          throw Object.assign(new Error('4 DEADLINE_EXCEEDED: no answer'), { code: CODES.DEADLINE_EXCEEDED });
        },
        getRun: async () => {
          await h.hold();
          throw new TypeError('a bug in the route');
        },
      }),
      h.log,
      { oneMs: 200, bulkMs: 200 },
      { track: lifecycle.track },
    );
    const { server, url } = await listening(app);
    const headers = { authorization: bearer() };
    const [one, two] = await Promise.all([
      fetch(`${url}/admin/notifications/n-1`, { headers }),
      fetch(`${url}/admin/runs/s_1:2030-01-01T00:00:00.000Z`, { headers }),
    ]);
    expect([one.status, two.status]).toEqual([504, 504]);
    await Promise.all([one.text(), two.text()]);
    // Answered, but their work goes on: still in flight.
    await new Promise((r) => setTimeout(r, 100));
    expect(lifecycle.inFlight()).toBe(2);
    let closed = false;
    const started = Date.now();
    const stopped = lifecycle.shutdown(
      server,
      async () => {
        closed = true;
      },
      5000,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(closed).toBe(false);
    h.release();
    await stopped;
    expect(closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(h.said('abandoning')).toEqual([]);
    // Firestore's "not now" is what the route would have answered; the bug is an error with its stack.
    expect(
      h
        .said('it would have answered')
        .map((l) => l.status)
        .sort(),
    ).toEqual([500, 504]);
    const bug = h.said('request failed: a bug in the route');
    expect(bug).toHaveLength(1);
    expect(bug[0]).toMatchObject({ severity: 'ERROR', status: 500 });
    expect(String(bug[0]?.stack)).toContain('TypeError: a bug in the route');
  });

  test('a caller who leaves is not answered at the deadline, and a shutdown waits for its work too', async () => {
    const h = held();
    const lifecycle = createLifecycle(h.log);
    let slowAuth = false;
    const auth = adminGuard();
    const asked: string[] = [];
    const app = appWith(
      fakeAdminPorts({
        getNotification: async (id) => {
          asked.push(id);
          await h.hold();
          return null;
        },
      }),
      h.log,
      { oneMs: 300, bulkMs: 300 },
      {
        track: lifecycle.track,
        // A guard that takes its time, for a caller who leaves before it admits them.
        auth: (req, res, next) => {
          if (slowAuth) setTimeout(() => auth(req, res, next), 200);
          else auth(req, res, next);
        },
      },
    );
    const { server, url } = await listening(app);
    const headers = { authorization: bearer() };
    // Left while the route waits on Firestore.
    await expect(
      fetch(`${url}/admin/notifications/n-1`, { headers, signal: AbortSignal.timeout(100) }),
    ).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 500));
    expect(h.said('answered 504')).toEqual([]);
    expect(lifecycle.inFlight()).toBe(1);
    h.release();
    await waitFor('the route ended', () => lifecycle.inFlight() === 0, 2000, 10);
    expect(h.said('admin request ended after its client left').map((l) => l.status)).toEqual([404]);
    // Left while the guard ran: the route is not run, for nobody.
    slowAuth = true;
    await expect(
      fetch(`${url}/admin/notifications/n-2`, { headers, signal: AbortSignal.timeout(50) }),
    ).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 700));
    h.release();
    expect(asked).toEqual(['n-1']);
    expect(lifecycle.inFlight()).toBe(0);
    expect(h.said('its caller left before it was admitted').map((l) => l.path)).toEqual(['/admin/notifications/n-2']);
    expect(h.said('answered 504')).toEqual([]);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a body still being read at the deadline is answered 408 and its route never runs, even when the rest arrives after; a route that reads no body gets the 504', async () => {
    const h = held();
    const calls: string[] = [];
    const app = appWith(
      fakeAdminPorts({
        saveNotification: async () => {
          calls.push('save');
          return true;
        },
        deleteNotification: async () => {
          calls.push('delete');
          await h.hold();
          return true;
        },
        resumePaused: async (_selector, { dryRun }) => {
          await h.hold();
          return noneResumed(dryRun);
        },
      }),
      h.log,
      { oneMs: 300, bulkMs: 1000 },
    );
    const { server } = await listening(app);
    const { port } = server.address() as AddressInfo;
    /** A connection that keeps what it is answered, until it closes (at most 5 s). */
    const open = () => {
      const socket = connect(port, '127.0.0.1');
      const got = { text: '', closed: false };
      socket.on('data', (d) => {
        got.text += d.toString();
      });
      const closed = new Promise<void>((resolve) =>
        socket.on('close', () => {
          got.closed = true;
          resolve();
        }),
      );
      const timer = setTimeout(() => socket.destroy(), 5000);
      return { socket, got, closed: closed.then(() => clearTimeout(timer)) };
    };
    const head = (method: string, path: string, length: number) =>
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${bearer()}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    const put = JSON.stringify({ accountId: 'a-1', channelId: 'C0123456789', cron: '0 9 * * *', timezone: 'UTC' });
    const resume = JSON.stringify({ allPaused: true });
    // A bulk resume (answered at 1 s), and behind it on the same connection a PUT whose body
    // stops part way: its 408 is decided at 300 ms but written after the resume's answer, and
    // the rest of its body arrives meanwhile.
    const one = open();
    one.socket.write(
      `${head('POST', '/admin/paused/resume', resume.length)}${resume}${head('PUT', '/admin/notifications/n-1', put.length)}${put.slice(0, 10)}`,
    );
    await new Promise((r) => setTimeout(r, 600));
    expect(h.said('answered 408')).toHaveLength(1);
    one.socket.write(put.slice(10));
    await one.closed;
    expect([...one.got.text.matchAll(/HTTP\/1\.1 (\d+) /g)].map((m) => m[1])).toEqual(['504', '408']);
    expect(one.got.text).toContain(
      "the request's body did not all arrive within 300 ms; nothing was applied: send it again",
    );
    expect(one.got.text.toLowerCase()).toContain('connection: close');
    // A DELETE reads no body: it has begun without it, so it is answered as a write that may have landed.
    const two = open();
    two.socket.write(`${head('DELETE', '/admin/notifications/n-2', 20)}{"a"`);
    await waitFor('the DELETE answered', () => /\r\n\r\n\{/.test(two.got.text), 3000, 10);
    two.socket.destroy();
    await two.closed;
    expect(two.got.text).toMatch(/^HTTP\/1\.1 504 /);
    expect(two.got.text).toContain('the request may or may not have been applied');
    h.release();
    await waitFor('the late answers logged', () => h.said('it would have answered').length === 3, 2000, 10);
    expect(calls).toEqual(['delete']);
    expect(h.said('ended after its 408').map((l) => [l.method, l.status])).toEqual([['PUT', 408]]);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test.each([
    ['a PUT', 'replace-notification'],
    ['a pause', 'pause'],
    ['a resume', 'resume'],
    ['a DELETE', 'delete-notification'],
  ])(
    '%s answered 504 before its write began is not made after: the write is told its answer is gone',
    async (_what, action) => {
      const h = held();
      const seen: (boolean | undefined)[] = [];
      // As the Firestore port does: no attempt of the write begins once it is aborted.
      const write = async <T>(late: AbortSignal | undefined, result: T): Promise<T> => {
        await h.hold();
        seen.push(late?.aborted);
        if (late?.aborted) throw new SaveInterrupted();
        return result;
      };
      const app = appWith(
        fakeAdminPorts({
          saveNotification: (_n, late) => write(late, true),
          setNotificationEnabled: (_id, _enabled, _reason, _default, late) => write(late, changed),
          deleteNotification: (_id, late) => write(late, true),
        }),
        h.log,
        { oneMs: 300, bulkMs: 1000 },
      );
      const path = '/admin/notifications/n-1';
      const sent =
        action === 'replace-notification'
          ? request(app)
              .put(path)
              .send({ accountId: 'a-1', channelId: 'C0123456789', cron: '0 9 * * *', timezone: 'UTC' })
          : action === 'delete-notification'
            ? request(app).delete(path)
            : request(app).post(`${path}/${action}`);
      const res = await sent.set('authorization', bearer());
      expect(res.status).toBe(504);
      h.release();
      await waitFor('the write ended', () => seen.length === 1, 2000, 10);
      expect(seen).toEqual([true]);
      await waitFor(
        'the write said not made',
        () => h.said(`admin ${action} not made: answered 504`).length === 1,
        2000,
        10,
      );
      expect(h.said(`admin ${action}`).filter((l) => l.admin !== undefined)).toEqual([]);
    },
  );

  test('a request answered 408 whose body never arrives is out of flight once its connection closes: a shutdown does not wait for it', async () => {
    const h = held();
    const lifecycle = createLifecycle(h.log);
    const calls: string[] = [];
    const app = appWith(
      fakeAdminPorts({
        saveNotification: async () => {
          calls.push('save');
          return true;
        },
      }),
      h.log,
      { oneMs: 300, bulkMs: 300 },
      { track: lifecycle.track },
    );
    const { server } = await listening(app);
    const { port } = server.address() as AddressInfo;
    const put = JSON.stringify({ accountId: 'a-1', channelId: 'C0123456789', cron: '0 9 * * *', timezone: 'UTC' });
    // Ten bytes of its body, and no more: the rest never comes.
    const text = await answerBeforeClose(
      port,
      `PUT /admin/notifications/n-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${bearer()}\r\nContent-Type: application/json\r\nContent-Length: ${put.length}\r\n\r\n${put.slice(0, 10)}`,
    );
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    await waitFor('the 408 out of flight', () => lifecycle.inFlight() === 0, 2000, 10);
    const started = Date.now();
    await lifecycle.shutdown(server, async () => {}, 3000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(h.said('abandoning')).toEqual([]);
    expect(calls).toEqual([]);
    // Its route never ran: there is no answer it would have given to log.
    expect(h.said('ended after its 408')).toEqual([]);
    expect(h.said('it would have answered')).toEqual([]);
  });

  test('a bulk resume has the bulk deadline, and /STATUS in a browser gets the 504 as a page', async () => {
    const h = held();
    const app = appWith(
      fakeAdminPorts({
        recentRuns: async () => {
          await h.hold();
          return [];
        },
        resumePaused: async (_selector, { dryRun }) => {
          await h.hold();
          return noneResumed(dryRun);
        },
      }),
      h.log,
      { oneMs: 100, bulkMs: 700 },
    );
    const started = Date.now();
    const resume = await request(app)
      .post('/admin/paused/resume')
      .set('authorization', bearer())
      .send({ allPaused: true });
    expect(resume.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
    const page = await request(app).get('/STATUS').set('authorization', bearer()).set('accept', 'text/html');
    expect({ status: page.status, type: page.type }).toEqual({ status: 504, type: 'text/html' });
    h.release();
  });

  test("ADMIN_DEADLINE_SECONDS sets the bulk deadline, and one item's is never longer", () => {
    expect(adminDeadlines(240)).toEqual({ oneMs: 20_000, bulkMs: 240_000 });
    expect(adminDeadlines(5)).toEqual({ oneMs: 5000, bulkMs: 5000 });
    expect(ADMIN_DEADLINES.bulkMs).toBe(
      loadConfig({ GOOGLE_CLOUD_PROJECT: 'demo-project' }, 'dispatcher').adminDeadlineSeconds * 1000,
    );
  });
});

describe('admin API on the emulators', () => {
  const TOKEN = 'xoxb-admin-test';
  const slack = standInForFile({ token: TOKEN });
  let stack: Stack;

  beforeEach(async () => {
    slack.reset();
    stack = await startStack({
      projectId: uniqueProjectId('admin'),
      slackApiUrl: slack.url,
      slackToken: TOKEN,
      auth: { admin: adminGuard() },
      // Five attempts: a delivery made dead here waits out a nack hold that doubles each attempt.
      topology: localTopology({ maxDeliveryAttempts: 5 }),
    });
  });
  afterEach(async () => {
    await stack.stop();
  });

  // The admin ports over the stack's Firestore, with a publisher that publishes nothing.
  const storePorts = () =>
    firestoreAdminPorts(
      stack.db,
      stack.store,
      { publishPage: async () => undefined } as never,
      silent,
      async () => undefined,
    );

  // Each transaction's attempts after its first: one that met another's locks is aborted and tried again.
  const countRetries = () => {
    let retried = 0;
    const original = stack.db.runTransaction.bind(stack.db);
    const spy = jest.spyOn(stack.db, 'runTransaction').mockImplementation(((fn, opts) => {
      let attempts = 0;
      return original((tx) => {
        if (++attempts > 1) retried++;
        return fn(tx);
      }, opts);
    }) as typeof stack.db.runTransaction);
    return { count: () => retried, restore: () => spy.mockRestore() };
  };

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.dispatcherUrl}${path}`, {
      method,
      headers: { authorization: bearer(), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null,
    };
  };

  test('a dead delivery is redriven and posted once; the run shows its counts', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1), notification(2)], 10, now);
    slack.addFault({ channel: 'C000000001', respond: { kind: 'http', status: 500 } });
    const tick = await stack.tick(now);
    const runId = (tick.body.occurrences as { runId: string }[])[0]?.runId as string;
    await waitFor(
      'one sent, one dead',
      async () => {
        const s = await deliveryStatuses(stack.db);
        return s.sent === 1 && s.dead === 1;
      },
      90_000,
    );

    const before = await call('GET', `/admin/runs/${encodeURIComponent(runId)}`);
    expect(before.status).toBe(200);
    // The occurrence without its milliseconds names the same run.
    const typed = await call('GET', `/admin/runs/${encodeURIComponent(runId.replace('.000Z', 'Z'))}`);
    expect(typed).toMatchObject({ status: 200, body: { runId, run: { status: 'done' } } });
    expect(before.body).toMatchObject({
      runId,
      run: { status: 'done', published: 2 },
      deliveries: { sent: 1, dead: 1 },
    });

    const page = await call('GET', '/status');
    expect(page.status).toBe(200);
    expect(page.text).toContain(runId);

    slack.clearFaults();
    // The run's record expired since (90 days after it finished; its dead delivery keeps 90 days
    // of its own): the delivery still redrives.
    await stack.db.collection(COLLECTIONS.runs).doc(runId).delete();
    // Shown as what is left of it: its deliveries' counts, no record, and why.
    const gone = await call('GET', `/admin/runs/${encodeURIComponent(runId)}`);
    expect(gone).toMatchObject({ status: 200, body: { runId, run: null, deliveries: { sent: 1, dead: 1 } } });
    expect(gone.body.note).toMatch(/the run has no record: it expired/);
    const redrive = await call('POST', `/admin/runs/${encodeURIComponent(runId)}/redrive`);
    expect(redrive.status).toBe(200);
    expect(redrive.body).toEqual({ runId, redriven: 1, skipped: 0, failed: 0, waiting: 0, waitingUntil: null });

    await waitFor('both sent', async () => (await deliveryStatuses(stack.db)).sent === 2, 30_000);
    const doc = await stack.store.get(`n-00001:${runId.slice(runId.indexOf(':') + 1)}`);
    expect(doc?.status).toBe('sent');
    expect(doc?.attempts).toBe(stack.topology.maxDeliveryAttempts + 1);
    expect(slack.posts.filter((p) => p.channel === 'C000000001')).toHaveLength(1);
    expect(slack.duplicates()).toEqual([]);
    // Attempted before, so the channel was checked before posting again.
    expect(slack.callCount['conversations.history']).toBeGreaterThanOrEqual(1);

    // Nothing dead is left, and the run's record is gone: there is nothing to redrive.
    const again = await call('POST', `/admin/runs/${encodeURIComponent(runId)}/redrive`);
    expect(again).toMatchObject({ status: 404, body: { error: 'run_not_found', runId } });
    expect(await stack.store.countByStatus(runId)).toMatchObject({ sent: 2, dead: 0 });

    expect((await call('GET', '/admin/runs/s_nope:2030-01-01T00:00:00.000Z')).status).toBe(404);
    expect((await call('POST', '/admin/runs/s_nope:2030-01-01T00:00:00.000Z/redrive')).status).toBe(404);

    // A run no tick made, with a delivery only retrying (a message made by hand past push
    // auth): shown, but nothing a redrive takes.
    const madeUp = 's_madeup:2030-01-01T00:00:00.000Z';
    await stack.db.collection(COLLECTIONS.deliveries).doc('n-madeup:2030-01-01T00:00:00.000Z').set({
      notificationId: 'n-madeup',
      occurrence: '2030-01-01T00:00:00.000Z',
      runId: madeUp,
      status: 'retrying',
      attempts: 1,
    });
    expect(await call('GET', `/admin/runs/${encodeURIComponent(madeUp)}`)).toMatchObject({
      status: 200,
      body: { runId: madeUp, run: null, deliveries: { retrying: 1 } },
    });
    expect(await call('POST', `/admin/runs/${encodeURIComponent(madeUp)}/redrive`)).toMatchObject({
      status: 404,
      body: { error: 'run_not_found', runId: madeUp },
    });
  }, 150_000);

  test('a delivery that failed for good is redriven with {"failed": true} once its cause is fixed, and posted once', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1), notification(2)], 10, now);
    slack.addFault({ channel: 'C000000001', respond: { kind: 'slack_error', error: 'not_in_channel' } });
    const tick = await stack.tick(now);
    const runId = (tick.body.occurrences as { runId: string }[])[0]?.runId as string;
    await waitFor(
      'one sent, one failed',
      async () => {
        const s = await deliveryStatuses(stack.db);
        return s.sent === 1 && s.failed === 1;
      },
      60_000,
    );
    const path = `/admin/runs/${encodeURIComponent(runId)}/redrive`;
    // The app invited to the channel; a redrive of the dead alone leaves it failed.
    slack.clearFaults();
    // A plain redrive sends the dead alone, and says how to send the failed one.
    const dead = await call('POST', path);
    expect(dead.body).toEqual({ ...redriveResult(runId), hint: failedNotRedriven(1) });
    expect(await stack.store.countByStatus(runId)).toMatchObject({ sent: 1, failed: 1 });
    expect((await call('POST', path, { failed: 'yes' })).body).toMatchObject({
      error: 'invalid_request',
      field: 'failed',
    });
    const redrive = await call('POST', path, { failed: true });
    expect(redrive.status).toBe(200);
    expect(redrive.body).toEqual({
      runId,
      redriven: 1,
      skipped: 0,
      failed: 0,
      waiting: 0,
      waitingUntil: null,
      paused: 0,
      pausedNotifications: [],
      deleted: 0,
    });
    await waitFor('both sent', async () => (await deliveryStatuses(stack.db)).sent === 2, 30_000);
    const doc = await stack.store.get(`n-00001:${runId.slice(runId.indexOf(':') + 1)}`);
    expect(doc).toMatchObject({ status: 'sent', attempts: 2 });
    expect(slack.posts.filter((p) => p.channel === 'C000000001')).toHaveLength(1);
    expect(slack.duplicates()).toEqual([]);
    // Nothing left failed: a second redrive of the failed sends nothing more.
    expect((await call('POST', path, { failed: true })).body).toMatchObject({ redriven: 0, paused: 0 });
    expect(await stack.store.countByStatus(runId)).toMatchObject({ sent: 2, failed: 0 });
  });

  test('a dead delivery of a notification paused since is left dead, named, with a hint, until it is resumed', async () => {
    const now = new Date();
    await seed(stack.db, [notification(1), notification(2)], 10, now);
    const occurrence = '2030-01-01T00:00:00.000Z';
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'UTC' });
    const runId = `${scheduleId}:${occurrence}`;
    await stack.db.doc(`${COLLECTIONS.runs}/${runId}`).set({ scheduleId, occurrence, status: 'done' });
    for (const id of ['n-00001', 'n-00002']) {
      await stack.db
        .collection(COLLECTIONS.deliveries)
        .doc(`${id}:${occurrence}`)
        .set({ notificationId: id, occurrence, runId, status: 'dead', attempts: 10, updatedAt: now });
    }
    // Paused while its dead delivery waits: sent, the redriven message would be recorded skipped.
    expect((await call('POST', '/admin/notifications/n-00001/pause', { reason: 'checking' })).status).toBe(200);
    const path = `/admin/runs/${encodeURIComponent(runId)}/redrive`;
    const first = await call('POST', path);
    expect(first.body).toEqual({
      ...redriveResult(runId, { redriven: 1 }),
      paused: 1,
      pausedNotifications: ['n-00001'],
      hint: pausedLeft(1, false),
    });
    expect(pausedLeft(1, false)).toBe(
      '1 dead delivery left as it is, as its notification is paused (sent, it would be recorded skipped, and the report lost): resume the notifications pausedNotifications names (POST /admin/notifications/:id/resume), then redrive again',
    );
    expect(await stack.store.get(`n-00001:${occurrence}`)).toMatchObject({ status: 'dead', attempts: 10 });
    // The other is sent again (retrying, or past it by now).
    expect((await stack.store.get(`n-00002:${occurrence}`))?.status).not.toBe('dead');
    // Resumed, the next redrive sends it.
    expect((await call('POST', '/admin/notifications/n-00001/resume')).status).toBe(200);
    const second = await call('POST', path);
    expect(second.body).toEqual(redriveResult(runId, { redriven: 1 }));
    expect((await stack.store.get(`n-00001:${occurrence}`))?.status).not.toBe('dead');
  });

  test('a delivery a stopped redrive left reopened, whose notification was paused since, is put back to dead, not published', async () => {
    const t0 = new Date('2030-01-03T01:00:00.000Z');
    await seed(stack.db, [notification(3)], 10, new Date());
    const occurrence = '2030-01-03T00:00:00.000Z';
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'UTC' });
    const runId = `${scheduleId}:${occurrence}`;
    const id = `n-00003:${occurrence}`;
    await stack.db
      .collection(COLLECTIONS.deliveries)
      .doc(id)
      .set({ notificationId: 'n-00003', occurrence, runId, status: 'dead', attempts: 10, updatedAt: t0 });
    const ledger = firestoreRedriveLedger(stack.store);
    // Reopened by a redrive that stopped before publishing; then the notification is paused.
    expect((await ledger.reopenDead(id, t0, 'interrupted')).kind).toBe('reopened');
    expect((await call('POST', '/admin/notifications/n-00003/pause', {})).status).toBe(200);
    const published: DispatchMessage[] = [];
    const later = new Date(t0.getTime() + REDRIVE_STRANDED_AFTER_MS + 1000);
    const result = await redriveRun(runId, {
      ledger,
      log: silent,
      clock: () => later,
      publisher: {
        publishPage: async (msgs) => {
          published.push(...msgs.map((m) => m.message));
        },
      },
    });
    expect(result).toEqual({ ...redriveResult(runId), paused: 1, pausedNotifications: ['n-00003'] });
    expect(published).toEqual([]);
    const doc = (await stack.db.collection(COLLECTIONS.deliveries).doc(id).get()).data();
    expect(doc).toMatchObject({ status: 'dead', attempts: 10 });
    expect(doc?.redrivePending).toBeUndefined();
  });

  test('redrive pages through dead deliveries, skips what is not redrivable, and restores on publish failure', async () => {
    const occurrence = '2030-01-01T00:00:00.000Z';
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'UTC' });
    const runId = `${scheduleId}:${occurrence}`;
    const deliveries = stack.db.collection(COLLECTIONS.deliveries);
    const now = new Date();
    for (let i = 0; i < 5; i++) {
      await deliveries
        .doc(`n-${i}:${occurrence}`)
        .set({ notificationId: `n-${i}`, occurrence, runId, status: 'dead', attempts: 5, updatedAt: now });
    }
    await deliveries.doc(`n-sent:${occurrence}`).set({ notificationId: 'n-sent', occurrence, runId, status: 'sent' });
    // Dead-lettered from a message too broken to name its notification.
    await deliveries.doc(`broken:${occurrence}`).set({ runId, status: 'dead', attempts: 0, notificationId: null });

    const published: DispatchMessage[] = [];
    const ledger = firestoreRedriveLedger(stack.store);
    const ok = await redriveRun(runId, {
      ledger,
      log: silent,
      pageSize: 2,
      publisher: {
        publishPage: async (msgs) => {
          published.push(...msgs.map((m) => m.message));
        },
      },
    });
    expect(ok).toEqual({ runId, redriven: 5, skipped: 1, failed: 0, waiting: 0, waitingUntil: null });
    expect(published.map((m) => m.notificationId).sort()).toEqual(['n-0', 'n-1', 'n-2', 'n-3', 'n-4']);
    expect(published.every((m) => m.redrive === true && m.scheduleId === scheduleId && m.runId === runId)).toBe(true);
    const reopened = await stack.store.get(`n-0:${occurrence}`);
    expect(reopened).toMatchObject({ status: 'retrying', attempts: 5, outcomeUnknown: true });
    expect((await deliveries.doc(`n-0:${occurrence}`).get()).get('redrives')).toBe(1);

    // The ledger now lets the redriven message claim it.
    const claim = await stack.store.claim({
      deliveryId: `n-0:${occurrence}`,
      notificationId: 'n-0',
      occurrence,
      runId,
      owner: 'test',
      ttlMs: 60_000,
      now: new Date(),
      publishedAt: null,
    });
    expect(claim).toMatchObject({ kind: 'claimed', attempts: 6, outcomeUnknown: true });

    // Put them back to dead, then make publishing fail: they stay dead for a later redrive.
    for (let i = 0; i < 5; i++) await deliveries.doc(`n-${i}:${occurrence}`).update({ status: 'dead' });
    const failing = await redriveRun(runId, {
      ledger,
      log: silent,
      pageSize: 2,
      publisher: {
        publishPage: async () => {
          throw new Error('pubsub unavailable');
        },
      },
    });
    // It stops at the first page Pub/Sub refuses: what it had not reached is dead still, untouched.
    expect(failing).toMatchObject({
      runId,
      redriven: 0,
      failed: expect.any(Number),
      stopped: 'Pub/Sub refused a page: pubsub unavailable',
    });
    expect(failing.failed).toBeGreaterThanOrEqual(1);
    expect(failing.failed).toBeLessThanOrEqual(2);
    expect(await stack.store.countByStatus(runId)).toMatchObject({ dead: 6, retrying: 0, sent: 1 });
    // A reopen whose message never went out does not count as a redrive.
    expect((await deliveries.doc(`n-1:${occurrence}`).get()).data()).toMatchObject({ status: 'dead', redrives: 1 });
    expect((await deliveries.doc(`n-1:${occurrence}`).get()).get('redrivePending')).toBeUndefined();
  });

  test('a redrive interrupted between reopening and publishing strands nothing: a later redrive publishes what it left', async () => {
    const occurrence = '2030-01-02T00:00:00.000Z';
    const scheduleId = scheduleIdOf({ cron: '* * * * *', timezone: 'UTC' });
    const runId = `${scheduleId}:${occurrence}`;
    const deliveries = stack.db.collection(COLLECTIONS.deliveries);
    const t0 = new Date('2030-01-02T01:00:00.000Z');
    for (let i = 0; i < 3; i++) {
      await deliveries
        .doc(`s-${i}:${occurrence}`)
        .set({ notificationId: `s-${i}`, occurrence, runId, status: 'dead', attempts: 10, updatedAt: t0 });
    }
    // Retrying on Pub/Sub's own redelivery: never a redrive's to take.
    await deliveries
      .doc(`r-0:${occurrence}`)
      .set({ notificationId: 'r-0', occurrence, runId, status: 'retrying', attempts: 2, updatedAt: t0 });
    const ledger = firestoreRedriveLedger(stack.store);
    // The interrupted redrive: every delivery reopened, nothing published.
    for (let i = 0; i < 3; i++) await ledger.reopenDead(`s-${i}:${occurrence}`, t0, 'interrupted');
    expect(await stack.store.countByStatus(runId)).toMatchObject({ dead: 0, retrying: 4 });

    const published: DispatchMessage[] = [];
    const publisher = {
      publishPage: async (msgs: { message: DispatchMessage }[]) => {
        published.push(...msgs.map((m) => m.message));
      },
    };
    // Soon after, the first redrive may still be publishing: left alone.
    const soon = await redriveRun(runId, {
      ledger,
      log: silent,
      publisher,
      clock: () => new Date(t0.getTime() + 60_000),
    });
    // It says how many wait, and from when a redrive takes them over.
    expect(soon).toEqual({
      runId,
      redriven: 0,
      skipped: 0,
      failed: 0,
      waiting: 3,
      waitingUntil: new Date(t0.getTime() + REDRIVE_STRANDED_AFTER_MS).toISOString(),
    });
    expect(published).toHaveLength(0);
    // The interrupted redrive cannot put back what it no longer holds, once taken over (below).

    const later = new Date(t0.getTime() + REDRIVE_STRANDED_AFTER_MS + 1000);
    const progress: number[] = [];
    const rescued = await redriveRun(runId, {
      ledger,
      log: silent,
      publisher,
      pageSize: 2,
      clock: () => later,
      onProgress: (r) => progress.push(r.redriven),
    });
    expect(rescued).toEqual({ runId, redriven: 3, skipped: 0, failed: 0, waiting: 0, waitingUntil: null });
    expect(published.map((m) => m.notificationId).sort()).toEqual(['s-0', 's-1', 's-2']);
    expect(progress.at(-1)).toBe(3);
    const doc = (await deliveries.doc(`s-0:${occurrence}`).get()).data();
    expect(doc).toMatchObject({ status: 'retrying', redrives: 1 });
    expect(doc?.redrivePending).toBeUndefined();
    // The interrupted redrive, coming back late with a failed publish, leaves them alone.
    await ledger.restoreReopened(`s-0:${occurrence}`, later, 'interrupted');
    expect((await deliveries.doc(`s-0:${occurrence}`).get()).get('status')).toBe('retrying');
    // Published and recorded: a third redrive takes nothing, however late.
    const third = await redriveRun(runId, {
      ledger,
      log: silent,
      publisher,
      clock: () => new Date(later.getTime() + REDRIVE_STRANDED_AFTER_MS * 2),
    });
    expect(third).toEqual({ runId, redriven: 0, skipped: 0, failed: 0, waiting: 0, waitingUntil: null });
    expect(published).toHaveLength(3);

    // A claim by the redriven message clears the mark too, in case recording the publish was lost.
    await deliveries.doc(`s-2:${occurrence}`).update({ status: 'dead' });
    await ledger.reopenDead(`s-2:${occurrence}`, later, 'another');
    expect((await deliveries.doc(`s-2:${occurrence}`).get()).get('redrivePending')).toBe(true);
    // Still waiting, but for another redrive: not this one's to put back.
    await ledger.restoreReopened(`s-2:${occurrence}`, later, 'interrupted');
    expect((await deliveries.doc(`s-2:${occurrence}`).get()).get('status')).toBe('retrying');
    await stack.store.claim({
      deliveryId: `s-2:${occurrence}`,
      notificationId: 's-2',
      occurrence,
      runId,
      owner: 'test',
      ttlMs: 60_000,
      now: later,
      publishedAt: null,
    });
    expect((await deliveries.doc(`s-2:${occurrence}`).get()).get('redrivePending')).toBeUndefined();
  });

  test('writes to one notification sent at once are made one after another: none retried, none refused', async () => {
    const retries = countRetries();
    const bodies = [
      { accountId: 'acct-0001', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' },
      { accountId: 'acct-0001', channelId: 'C2', cron: '0 10 * * *', timezone: 'Europe/Paris' },
      { accountId: 'acct-0001', channelId: 'C3', cron: '*/5 * * * *', timezone: 'UTC' },
    ];
    const path = '/admin/notifications/n-contended';
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const body = bodies[i % 5];
        if (body) return call('PUT', path, body);
        return i % 5 === 3 ? call('POST', `${path}/pause`, { reason: 'contended' }) : call('DELETE', path);
      }),
    );
    retries.restore();
    for (const a of answers) expect([200, 201, 404]).toContain(a.status);
    expect(retries.count()).toBe(0);
    const stored = await stack.db.collection(COLLECTIONS.notifications).doc('n-contended').get();
    if (stored.exists) {
      expect(stored.get('updatedAt').toMillis()).toBeGreaterThanOrEqual(stored.get('createdAt').toMillis());
    }
  });

  test('saves of many notifications at once onto a schedule none has yet all land: one makes it, the rest find it made', async () => {
    const body = { accountId: 'acct-0001', channelId: 'C1', cron: '*/7 * * * *', timezone: 'America/Caracas' };
    const ids = Array.from({ length: 40 }, (_, i) => `n-burst-${String(i).padStart(2, '0')}`);
    const retries = countRetries();
    const answers = await Promise.all(ids.map((id) => call('PUT', `/admin/notifications/${id}`, body)));
    retries.restore();
    expect(retries.count()).toBe(0);
    expect(answers.map((a) => a.status)).toEqual(ids.map(() => 201));
    const scheduleId = (
      await stack.db
        .collection(COLLECTIONS.notifications)
        .doc(ids[0] as string)
        .get()
    ).get('scheduleId');
    const schedule = await stack.db.collection(COLLECTIONS.schedules).doc(scheduleId).get();
    expect(schedule.get('cron')).toBe(body.cron);
    const members = await membersOf(stack.db, scheduleId).get();
    expect(members.docs.flatMap((d) => d.get(BUCKET_FIELDS.list) as string[]).sort()).toEqual(ids);
  }, 60_000);

  test('a pause sent while a PUT of the same notification reads its account is made after that PUT, in the order they came', async () => {
    const ports = storePorts();
    const body = { accountId: 'acct-0001', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' };
    const path = '/admin/notifications/n-order';
    await ports.saveNotification({ id: 'n-order', ...body });
    // The PUT's account read is held until let go.
    const reading = deferred();
    const held = deferred();
    const app = appWith({
      ...ports,
      accountMissing: async (accountId) => {
        reading.resolve();
        await held.promise;
        return ports.accountMissing(accountId);
      },
    });
    const put = request(app)
      .put(path)
      .set('authorization', bearer())
      .send({ ...body, channelId: 'C2' })
      .then();
    await reading.promise;
    const pause = request(app).post(`${path}/pause`).set('authorization', bearer()).send({ reason: 'operator' }).then();
    // Long enough for a pause that did not wait its turn to be made.
    await new Promise((r) => setTimeout(r, 300));
    held.resolve();
    expect((await put).status).toBe(200);
    expect((await pause).status).toBe(200);
    const doc = await stack.db.collection(COLLECTIONS.notifications).doc('n-order').get();
    expect(doc.get('slack.channelId')).toBe('C2');
    expect(doc.get('enabled')).toBe(false);
    expect(doc.get('pausedReason')).toBe('operator');
  });

  test('a write to one notification answered 504 while it waits its turn is not made: it cannot land over a later one', async () => {
    const ports = storePorts();
    const n = { id: 'n-turn', accountId: 'acct-0001', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' };
    await ports.saveNotification(n);
    // The first write holds the notification's turn until let go.
    const held = deferred();
    const original = stack.db.runTransaction.bind(stack.db);
    const spy = jest.spyOn(stack.db, 'runTransaction').mockImplementationOnce((async (fn, opts) => {
      await held.promise;
      return original(fn, opts);
    }) as typeof stack.db.runTransaction);
    const first = ports.setNotificationEnabled(n.id, false, 'first');
    const late = new AbortController();
    const pause = ports.setNotificationEnabled(n.id, false, 'second', undefined, late.signal);
    const removed = ports.deleteNotification(n.id, late.signal);
    const replaced = ports.saveNotification({ ...n, channelId: 'C2' }, late.signal);
    // Their requests are answered 504 while they wait.
    late.abort();
    held.resolve();
    await expect(first).resolves.toMatchObject({ wasEnabled: true });
    for (const write of [pause, removed, replaced]) await expect(write).rejects.toBeInstanceOf(SaveInterrupted);
    spy.mockRestore();
    const doc = await stack.db.collection(COLLECTIONS.notifications).doc(n.id).get();
    expect(doc.get('pausedReason')).toBe('first');
    expect(doc.get('slack.channelId')).toBe('C1');
  });

  test('a notification in a zone that reads as what it is not is saved, with a warning that says what it is', async () => {
    // No account acct-0001 yet (the next test counts on it): both warnings, in one.
    const body = { accountId: 'acct-0001', channelId: 'C123', cron: '0 9 * * 1-5', timezone: 'EST' };
    const saved = await call('PUT', '/admin/notifications/n-admin-est', body);
    expect(saved.status).toBe(201);
    expect(saved.body).toEqual({
      id: 'n-admin-est',
      created: true,
      warning: expect.stringMatching(
        /^account "acct-0001" is not in Firestore: .*; time zone "EST" is UTC-5 all year, .*give America\/New_York$/,
      ),
    });
    const stored = await stack.db.collection(COLLECTIONS.notifications).doc('n-admin-est').get();
    expect(stored.get('schedule.timezone')).toBe('America/Panama');
    const plain = await call('PUT', '/admin/notifications/n-admin-est', { ...body, timezone: 'America/New_York' });
    expect(plain.body).toEqual({
      id: 'n-admin-est',
      created: false,
      warning: expect.not.stringMatching(/time zone/),
    });
  });

  test('notifications: create, replace, read, pause and resume', async () => {
    const body = { accountId: 'acct-0001', channelId: 'C123', cron: '0 9 * * 1-5', timezone: 'Europe/Paris' };
    const created = await call('PUT', '/admin/notifications/n-admin', body);
    expect(created.status).toBe(201);
    // No account acct-0001 yet: saved all the same, with a warning.
    expect(created.body).toEqual({
      id: 'n-admin',
      created: true,
      warning: expect.stringMatching(/^account "acct-0001" is not in Firestore: /),
    });
    await saveAccounts(stack.db, demoAccounts(1));

    const read = await call('GET', '/admin/notifications/n-admin');
    expect(read.status).toBe(200);
    expect(read.body.notification).toMatchObject({
      accountId: 'acct-0001',
      slack: { channelId: 'C123' },
      schedule: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' },
      enabled: true,
    });
    const scheduleId = read.body.notification.scheduleId as string;
    const scheduleDoc = await stack.db.collection(COLLECTIONS.schedules).doc(scheduleId).get();
    expect(scheduleDoc.exists).toBe(true);
    // When it is next sent: its schedule's next instant, a weekday at 09:00 in Paris.
    expect(read.body.nextRunAt).toBe(scheduleDoc.get('nextRunAt').toDate().toISOString());
    expect(new Date(read.body.nextRunAt).getTime()).toBeGreaterThan(Date.now());

    const createdAt = (await stack.db.collection(COLLECTIONS.notifications).doc('n-admin').get()).get('createdAt');
    const replaced = await call('PUT', '/admin/notifications/n-admin', { ...body, title: 'Weekly', enabled: false });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({ id: 'n-admin', created: false });
    const disabled = await call('GET', '/admin/notifications/n-admin');
    expect(disabled.body.notification).toMatchObject({ enabled: false, report: { title: 'Weekly' } });
    // Paused, it is not sent: no next time.
    expect(disabled.body.nextRunAt).toBeNull();
    // Replaced, it keeps the time it was made.
    const after = await stack.db.collection(COLLECTIONS.notifications).doc('n-admin').get();
    expect(after.get('createdAt').toMillis()).toBe(createdAt.toMillis());
    expect(after.get('updatedAt').toMillis()).toBeGreaterThanOrEqual(createdAt.toMillis());

    // Saved by several requests at once, it is new to one of them alone.
    const racers = await Promise.all(Array.from({ length: 4 }, () => call('PUT', '/admin/notifications/n-race', body)));
    const answered = racers.map((r) => r.status).sort();
    const made = racers.filter((r) => r.status === 201);
    // Each either saved it (201 or 200) or gave way to another (409, to send again).
    expect(answered.every((status) => [200, 201, 409].includes(status))).toBe(true);
    // Exactly one transaction found it missing and committed.
    expect(made).toHaveLength(1);
    expect((await call('GET', '/admin/notifications/n-race')).status).toBe(200);

    const resumed = await call('POST', '/admin/notifications/n-admin/resume');
    expect(resumed).toMatchObject({ status: 200, body: { id: 'n-admin', enabled: true } });
    expect((await call('POST', '/admin/notifications/n-admin/resume')).body).toEqual({
      id: 'n-admin',
      enabled: true,
      alreadyEnabled: true,
    });
    const pausedByDefault = await call('POST', '/admin/notifications/n-admin/pause');
    expect(pausedByDefault).toMatchObject({
      status: 200,
      body: { id: 'n-admin', enabled: false, pausedReason: `paused by ${ADMIN}` },
    });
    const pausedAt = (await call('GET', '/admin/notifications/n-admin')).body.notification.pausedAt;
    expect(pausedAt).toEqual(expect.anything());
    // Paused again with a reason: the reason replaced, the time it was paused kept.
    const paused = await call('POST', '/admin/notifications/n-admin/pause', { reason: 'customer asked' });
    expect(paused.body).toEqual({ id: 'n-admin', enabled: false, pausedReason: 'customer asked', alreadyPaused: true });
    expect((await call('GET', '/admin/notifications/n-admin')).body.notification).toMatchObject({
      enabled: false,
      pausedReason: 'customer asked',
      pausedAt,
    });
    // Paused again with none: left as it was, its reason not renamed to the default.
    const again = await call('POST', '/admin/notifications/n-admin/pause');
    expect(again.body).toEqual({ id: 'n-admin', enabled: false, pausedReason: 'customer asked', alreadyPaused: true });
    expect((await call('GET', '/admin/notifications/n-admin')).body.notification).toMatchObject({
      pausedReason: 'customer asked',
      pausedAt,
    });

    // In bulk: every notification paused for a reason, a dry run first.
    await call('PUT', '/admin/notifications/n-admin-2', body);
    await call('PUT', '/admin/notifications/n-admin-3', body);
    await call('POST', '/admin/notifications/n-admin/pause', { reason: 'channel_not_found' });
    await call('POST', '/admin/notifications/n-admin-2/pause', { reason: 'channel_not_found' });
    await call('POST', '/admin/notifications/n-admin-3/pause', { reason: 'customer asked' });
    const dry = await call('POST', '/admin/paused/resume', { pausedReason: 'channel_not_found', dryRun: true });
    expect(dry).toMatchObject({
      status: 200,
      body: { pausedReason: 'channel_not_found', dryRun: true, matched: 2, resumed: 0, ids: ['n-admin', 'n-admin-2'] },
    });
    expect((await call('GET', '/admin/notifications/n-admin')).body.notification.enabled).toBe(false);
    const bulk = await call('POST', '/admin/paused/resume', { pausedReason: 'channel_not_found' });
    expect(bulk).toMatchObject({ status: 200, body: { matched: 2, resumed: 2, failed: 0 } });
    expect(bulk.body.ids).toBeUndefined();
    for (const [id, enabled] of [
      ['n-admin', true],
      ['n-admin-2', true],
      ['n-admin-3', false],
    ] as const) {
      expect((await call('GET', `/admin/notifications/${id}`)).body.notification.enabled).toBe(enabled);
    }
    expect(await call('POST', '/admin/paused/resume', { allPaused: true })).toMatchObject({
      status: 200,
      body: { allPaused: true, resumed: 1 },
    });
    expect((await call('GET', '/admin/notifications/n-admin-3')).body.notification.enabled).toBe(true);

    // Deleted: gone, and out of its schedule's dispatch index in the same commit.
    const deleted = await call('DELETE', '/admin/notifications/n-admin-3');
    expect(deleted).toMatchObject({ status: 200, body: { id: 'n-admin-3', deleted: true } });
    expect((await call('GET', '/admin/notifications/n-admin-3')).status).toBe(404);
    const buckets = await stack.db.collection(COLLECTIONS.schedules).doc(scheduleId).collection('members').get();
    const indexed = buckets.docs.flatMap((d) => bucketIds(d));
    expect(indexed).toEqual(expect.arrayContaining(['n-admin', 'n-admin-2']));
    expect(indexed).not.toContain('n-admin-3');
    expect((await call('DELETE', '/admin/notifications/n-admin-3')).status).toBe(404);

    expect((await call('GET', '/admin/notifications/missing')).status).toBe(404);
    expect((await call('POST', '/admin/notifications/missing/pause')).status).toBe(404);
    expect((await call('POST', '/admin/notifications/missing/resume')).status).toBe(404);
    const badCron = await call('PUT', '/admin/notifications/n-bad', { ...body, cron: 'every day' });
    expect(badCron).toMatchObject({ status: 400, body: { field: 'cron' } });
    const badTz = await call('PUT', '/admin/notifications/n-bad', { ...body, timezone: 'Europe/Atlantis' });
    expect(badTz).toMatchObject({ status: 400, body: { field: 'timezone' } });
    expect((await call('GET', '/admin/notifications/n-bad')).status).toBe(404);

    // Blanks around a zone are dropped, as around a cron: the same schedule as without them.
    const padded = await call('PUT', '/admin/notifications/n-padded', { ...body, timezone: ' Europe/Paris ' });
    expect(padded.status).toBe(201);
    const stored = (await call('GET', '/admin/notifications/n-padded')).body.notification;
    expect(stored.schedule).toEqual({ cron: body.cron, timezone: 'Europe/Paris' });
    expect(stored.scheduleId).toBe(scheduleId);
    const blankTz = await call('PUT', '/admin/notifications/n-bad', { ...body, timezone: '   ' });
    expect(blankTz).toMatchObject({
      status: 400,
      body: { field: 'timezone', message: expect.stringContaining('is blank') },
    });
  });

  test('the status page lists the latest runs first', async () => {
    const runs = stack.db.collection(COLLECTIONS.runs);
    for (let i = 0; i < 25; i++) {
      const startedAt = new Date(Date.UTC(2030, 0, 1, 0, i));
      await runs.doc(`s_x:run-${String(i).padStart(2, '0')}`).set({ ...run, startedAt });
    }
    const page = await call('GET', '/status');
    expect(page.status).toBe(200);
    const ids = [...page.text.matchAll(/<a href="[^"]+">(s_x:run-\d+)<\/a>/g)].map((m) => m[1]);
    expect(ids).toHaveLength(20);
    expect(ids[0]).toBe('s_x:run-24');
    expect(ids[19]).toBe('s_x:run-05');

    // With a trailing slash, its relative links would point one level down: sent to /status.
    const slashed = await fetch(`${stack.dispatcherUrl}/status/?limit=3`, {
      headers: { authorization: bearer() },
      redirect: 'manual',
    });
    expect(slashed.status).toBe(301);
    expect(slashed.headers.get('location')).toBe('../status?limit=3');
    expect(new URL('../status?limit=3', 'https://ops.example/fanout/status/').pathname).toBe('/fanout/status');
    const followed = await call('GET', '/status/?limit=3');
    expect([...followed.text.matchAll(/<a href="([^"]+)">s_x:run-24<\/a>/g)].map((m) => m[1])).toEqual([
      `admin/runs/${encodeURIComponent('s_x:run-24')}`,
    ]);
  });
});

// The router is usable on its own, e.g. by a test harness or another app.
test('adminRouter needs its guard', () => {
  expect(() => adminRouter({ auth: adminGuard(), ...fakeAdminPorts() })).not.toThrow();
});
