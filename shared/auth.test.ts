import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express, RequestHandler } from 'express';
import request from 'supertest';
import { createApp as createNotifier } from '../notifier/app';
import type { SlackPort } from '../notifier/slack';
import { dispatcherForAdmin, fakeAdminPorts } from '../test/admin-ports';
import { TestIssuer } from '../test/id-tokens';
import {
  AUTH_OFF_WARNING,
  authSettingsFor,
  classifyVerifyError,
  crossSiteProblem,
  loadServiceConfig,
  refuseAll,
  requireInvoker,
  SIGNATURE_REMOVED,
  serviceGuards,
  type TokenVerifier,
} from './auth';
import { ConfigError, loadConfig } from './config';
import { createLogger, type Logger } from './logger';
import type { DeliveryLedger } from './ports';

const AUDIENCE = 'https://dispatcher-abc-ew.a.run.app';
const TICK_SA = 'scheduler@proj.iam.gserviceaccount.com';
const PUSH_SA = 'push@proj.iam.gserviceaccount.com';

function captureLog() {
  const lines: string[] = [];
  const log = createLogger({ service: 'test', level: 'debug', destination: { write: (l: string) => lines.push(l) } });
  return { log, lines };
}

function dispatcher(verifier: TokenVerifier, log = captureLog().log, trustCloudRunIam = false): Express {
  return dispatcherForAdmin(undefined, {
    log,
    tickAuth: requireInvoker({
      role: 'tick',
      verifier,
      audience: [AUDIENCE],
      allowedEmails: [TICK_SA],
      trustCloudRunIam,
    }),
  });
}

const unusedSlack: SlackPort = {
  post: async () => {
    throw new Error('no post expected');
  },
  findDelivery: async () => null,
  checkToken: async () => ({ team: null, scopes: null }),
};
/** A dispatcher whose admin API answers from empty fakes, behind `auth` (and `/tick` behind `tickAuth`). */
function dispatcherWithAdmin(auth: RequestHandler, log: Logger, tickAuth?: RequestHandler) {
  return dispatcherForAdmin({ auth, ...fakeAdminPorts() }, { log, ...(tickAuth ? { tickAuth } : {}) });
}

function notifier(verifier: TokenVerifier, log = captureLog().log): Express {
  return createNotifier({
    log,
    projectId: 'p',
    ledger: { markDead: async () => 'dead' } as unknown as DeliveryLedger,
    notifications: {
      getRaw: async () => null,
      recordPermanentFailure: async () => false,
      resetFailures: async () => {},
      leaveIndex: async () => false,
    },
    accounts: { getRaw: async () => null },
    runs: { getRun: async () => null },
    slack: unusedSlack,
    claimTtlMs: 60_000,
    pauseAfterFailures: 3,
    pushAuth: requireInvoker({ role: 'push', verifier, audience: [AUDIENCE], allowedEmails: [PUSH_SA] }),
  });
}

const google = new TestIssuer('google-key-1');
const stranger = new TestIssuer('stranger-key');
// Same key id as Google's, different key: only the signature check can tell.
const impostor = new TestIssuer('google-key-1');
const verifier = google.verifier();
const now = () => Math.floor(Date.now() / 1000);

type Case = { name: string; header: () => string | undefined; status: number; reason: string };

function cases(email: string): Case[] {
  const bearer = (t: string) => `Bearer ${t}`;
  return [
    { name: 'no Authorization header', header: () => undefined, status: 401, reason: 'missing_token' },
    { name: 'a Basic header', header: () => 'Basic dXNlcjpwYXNz', status: 401, reason: 'malformed_authorization' },
    { name: 'a token that is not a JWT', header: () => bearer('not-a-jwt'), status: 401, reason: 'malformed_token' },
    {
      name: 'a JWT-shaped token whose header is not JSON',
      header: () => bearer('aGVsbG8.d29ybGQ.c2ln'),
      status: 401,
      reason: 'malformed_token',
    },
    {
      name: 'the wrong audience',
      header: () => bearer(google.sign({ aud: 'https://someone-else.example', email })),
      status: 401,
      reason: 'wrong_audience',
    },
    {
      name: 'an expired token',
      header: () => bearer(google.sign({ aud: AUDIENCE, email, iat: now() - 7200, exp: now() - 3600 })),
      status: 401,
      reason: 'expired',
    },
    {
      name: 'a token signed by another key with Google key id',
      header: () => bearer(impostor.sign({ aud: AUDIENCE, email })),
      status: 401,
      reason: 'bad_signature',
    },
    {
      name: 'a token signed by an unknown key',
      header: () => bearer(stranger.sign({ aud: AUDIENCE, email })),
      status: 401,
      reason: 'unknown_key',
    },
    {
      name: 'alg: none',
      header: () => bearer(google.unsigned({ aud: AUDIENCE, email })),
      status: 401,
      reason: 'unsupported_alg',
    },
    {
      name: 'alg: HS256',
      header: () => bearer(google.sign({ aud: AUDIENCE, email }, { alg: 'HS256' })),
      status: 401,
      reason: 'unsupported_alg',
    },
    {
      name: 'another issuer',
      header: () => bearer(google.sign({ aud: AUDIENCE, email, iss: 'https://evil.example' })),
      status: 401,
      reason: 'wrong_issuer',
    },
    {
      name: 'a token valid for days',
      header: () => bearer(google.sign({ aud: AUDIENCE, email, exp: now() + 3 * 86400 })),
      status: 401,
      reason: 'lifetime_too_long',
    },
    {
      name: 'a token issued a year ago that expires in a minute',
      header: () => bearer(google.sign({ aud: AUDIENCE, email, iat: now() - 365 * 86400, exp: now() + 60 })),
      status: 401,
      reason: 'lifetime_too_long',
    },
    {
      name: 'a token not valid for another two hours (nbf)',
      header: () => bearer(google.sign({ aud: AUDIENCE, email, nbf: now() + 7200 })),
      status: 401,
      reason: 'not_yet_valid',
    },
    {
      name: 'the wrong email',
      header: () => bearer(google.sign({ aud: AUDIENCE, email: 'someone@proj.iam.gserviceaccount.com' })),
      status: 403,
      reason: 'wrong_caller',
    },
    {
      name: 'email_verified false',
      header: () => bearer(google.sign({ aud: AUDIENCE, email, email_verified: false })),
      status: 403,
      reason: 'email_not_verified',
    },
    {
      name: 'email_verified absent',
      header: () => {
        const token = google.sign({ aud: AUDIENCE, email, email_verified: undefined });
        return bearer(token);
      },
      status: 403,
      reason: 'email_not_verified',
    },
  ];
}

const routes = [
  { path: '/tick', email: TICK_SA, app: dispatcher, otherEmail: PUSH_SA },
  { path: '/push', email: PUSH_SA, app: notifier, otherEmail: TICK_SA },
  { path: '/dead-letter', email: PUSH_SA, app: notifier, otherEmail: TICK_SA },
] as const;

describe.each(routes)('POST $path', ({ path, email, app, otherEmail }) => {
  test.each(cases(email))('refuses $name with $status', async ({ header, status, reason }) => {
    const { log, lines } = captureLog();
    const auth = header();
    const req = request(app(verifier, log)).post(path).set('content-type', 'application/json');
    if (auth !== undefined) req.set('authorization', auth);
    const res = await req.send('{}');

    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: status === 401 ? 'unauthenticated' : 'forbidden' });
    const refusals = lines.map((l) => JSON.parse(l)).filter((l) => l.auth?.reason);
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ severity: 'WARNING', path, auth: { reason, status } });
    if (auth) {
      const token = auth.replace(/^\S+\s+/, '');
      for (const line of lines) expect(line).not.toContain(token);
      // Not even the signature or the claims part.
      for (const part of token.split('.').filter((p) => p.length > 8)) {
        for (const line of lines) expect(line).not.toContain(part);
      }
    }
  });

  test('accepts a Google-signed token from its invoker', async () => {
    const { log, lines } = captureLog();
    const token = google.sign({ aud: AUDIENCE, email });
    const res = await request(app(verifier, log))
      .post(path)
      .set('authorization', `Bearer ${token}`)
      .set('content-type', 'application/json')
      .send('{}');
    // /tick answers its summary; /push acks the empty body as invalid; /dead-letter records nothing.
    expect([200, 204]).toContain(res.status);
    for (const line of lines) expect(line).not.toContain(token);
  });

  test('accepts the email in another case and the scheme in lower case', async () => {
    const token = google.sign({ aud: AUDIENCE, email: email.toUpperCase() });
    const res = await request(app(verifier)).post(path).set('authorization', `bearer ${token}`).send({});
    expect([200, 204]).toContain(res.status);
  });

  test("refuses the other service's invoker with 403", async () => {
    const token = google.sign({ aud: AUDIENCE, email: otherEmail });
    const res = await request(app(verifier)).post(path).set('authorization', `Bearer ${token}`).send({});
    expect(res.status).toBe(403);
  });

  test('answers 503 when Google certificates cannot be fetched, and logs it as an error', async () => {
    const down: TokenVerifier = {
      verify: async () => {
        throw Object.assign(new Error('Failed to retrieve verification certificates: ECONNRESET'), {
          name: 'GaxiosError',
        });
      },
    };
    const { log, lines } = captureLog();
    const res = await request(app(down, log))
      .post(path)
      .set('authorization', `Bearer ${google.sign({ aud: AUDIENCE, email })}`)
      .send({});
    expect(res.status).toBe(503);
    // Every request fails while it lasts: an alert on errors must see it.
    const refusals = lines.map((l) => JSON.parse(l)).filter((l) => l.auth?.reason);
    expect(refusals).toEqual([
      expect.objectContaining({ severity: 'ERROR', auth: expect.objectContaining({ reason: 'certs_unavailable' }) }),
    ]);
  });
});

describe('a token whose signature Cloud Run’s IAM check removed', () => {
  /** The token as Cloud Run hands it on once its invoker check has verified it. */
  const stripped = (claims: Parameters<TestIssuer['sign']>[0], header: Record<string, unknown> = {}) =>
    google.sign(claims, header).replace(/[^.]+$/, SIGNATURE_REMOVED);
  /** Stripped tokens are never the library's to verify. */
  const untouched: TokenVerifier = {
    verify: async () => {
      throw new Error('the verifier was called');
    },
  };
  const tick = async (token: string, trust: boolean) => {
    const { log, lines } = captureLog();
    const res = await request(dispatcher(untouched, log, trust))
      .post('/tick')
      .set('authorization', `Bearer ${token}`)
      .set('content-type', 'application/json')
      .send('{}');
    const refusal = lines.map((l) => JSON.parse(l)).find((l) => l.auth?.reason);
    return { status: res.status, reason: refusal?.auth?.reason as string | undefined, refusal };
  };

  test('is refused, with a hint, when the service is not told it runs behind that check', async () => {
    const { status, reason, refusal } = await tick(stripped({ aud: AUDIENCE, email: TICK_SA }), false);
    expect(status).toBe(401);
    expect(reason).toBe('signature_removed');
    expect(refusal.hint).toMatch(/AUTH_TRUST_CLOUD_RUN_IAM=true/);
  });

  test('is admitted on its claims behind that check', async () => {
    expect(await tick(stripped({ aud: AUDIENCE, email: TICK_SA }), true)).toMatchObject({ status: 200 });
  });

  const t = now();
  test.each([
    ['another caller', { aud: AUDIENCE, email: PUSH_SA }, 403, 'wrong_caller'],
    ['an unverified email', { aud: AUDIENCE, email: TICK_SA, email_verified: false }, 403, 'email_not_verified'],
    ['another audience', { aud: 'https://elsewhere.example.com', email: TICK_SA }, 401, 'wrong_audience'],
    ['another issuer', { aud: AUDIENCE, email: TICK_SA, iss: 'https://evil.example.com' }, 401, 'wrong_issuer'],
    ['an expired token', { aud: AUDIENCE, email: TICK_SA, iat: t - 4000, exp: t - 400 }, 401, 'expired'],
    ['a token from the future', { aud: AUDIENCE, email: TICK_SA, iat: t + 400, exp: t + 4000 }, 401, 'not_yet_valid'],
    ['a lifetime over a day', { aud: AUDIENCE, email: TICK_SA, iat: t, exp: t + 200_000 }, 401, 'lifetime_too_long'],
    [
      'times written as strings',
      { aud: AUDIENCE, email: TICK_SA, iat: String(t), exp: String(t + 3600) },
      401,
      'malformed_token',
    ],
    ['no expiry', { aud: AUDIENCE, email: TICK_SA, exp: undefined }, 401, 'malformed_token'],
  ] as const)('%s is refused behind that check too (%i %s)', async (_name, claims, status, reason) => {
    expect(await tick(stripped(claims as never), true)).toMatchObject({ status, reason });
  });

  test('with X-Serverless-Authorization present, a stripped token in Authorization is not the one Cloud Run checked: refused', async () => {
    // A caller with the invoker role puts its own token where Cloud Run checks it, and a token
    // it wrote itself, claiming another caller, in Authorization, which Cloud Run passes on as it is.
    const own = stripped({ aud: AUDIENCE, email: PUSH_SA });
    const forged = stripped({ aud: AUDIENCE, email: TICK_SA });
    const { log, lines } = captureLog();
    const res = await request(dispatcher(untouched, log, true))
      .post('/tick')
      .set('x-serverless-authorization', `Bearer ${own}`)
      .set('authorization', `Bearer ${forged}`)
      .send({});
    expect(res.status).toBe(403);
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.auth)?.auth).toMatchObject({
      reason: 'wrong_caller',
      email: PUSH_SA,
    });
    // The checked header's own caller is admitted, whatever Authorization says.
    const ok = await request(dispatcher(untouched, captureLog().log, true))
      .post('/tick')
      .set('x-serverless-authorization', `Bearer ${stripped({ aud: AUDIENCE, email: TICK_SA })}`)
      .set('authorization', 'Bearer something-else')
      .send({});
    expect(ok.status).toBe(200);
    // Not behind Cloud Run's check: the header is not read at all.
    const off = await request(dispatcher(untouched, captureLog().log, false))
      .post('/tick')
      .set('x-serverless-authorization', `Bearer ${stripped({ aud: AUDIENCE, email: TICK_SA })}`)
      .send({});
    expect(off.status).toBe(401);
  });

  test('a header other than RS256, or claims that are not JSON, are refused', async () => {
    expect(await tick(stripped({ aud: AUDIENCE, email: TICK_SA }, { alg: 'none' }), true)).toMatchObject({
      status: 401,
      reason: 'unsupported_alg',
    });
    const header = Buffer.from('{"alg":"RS256"}').toString('base64url');
    const notJson = `${header}.${Buffer.from('not json').toString('base64url')}.${SIGNATURE_REMOVED}`;
    expect(await tick(notJson, true)).toMatchObject({ status: 401, reason: 'malformed_token' });
  });

  test('a signed token is still verified by its signature behind that check', async () => {
    const { log } = captureLog();
    const res = await request(dispatcher(verifier, log, true))
      .post('/tick')
      .set('authorization', `Bearer ${stranger.sign({ aud: AUDIENCE, email: TICK_SA })}`)
      .send({});
    expect(res.status).toBe(401);
  });
});

describe('a header sent twice', () => {
  /** POST /tick over a real socket, with `headers` set as given (an array sends a header twice). */
  const postTick = async (app: Express, headers: Record<string, string | string[]>) => {
    const server = createServer(app).listen(0, '127.0.0.1');
    try {
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      return await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/tick', method: 'POST' }, (res) => {
          res.resume().on('end', () => resolve(res.statusCode ?? 0));
        });
        for (const [name, value] of Object.entries(headers)) req.setHeader(name, value);
        req.on('error', reject).end();
      });
    } finally {
      server.close();
    }
  };
  const reasonIn = (lines: string[]) => lines.map((l) => JSON.parse(l)).find((l) => l.auth)?.auth?.reason;

  test('Authorization sent twice is refused, even when the first is a good token', async () => {
    const good = `Bearer ${google.sign({ aud: AUDIENCE, email: TICK_SA })}`;
    const { log, lines } = captureLog();
    expect(await postTick(dispatcher(verifier, log, false), { authorization: [good, 'Bearer other'] })).toBe(401);
    expect(reasonIn(lines)).toBe('malformed_authorization');
    // Sent once, the same token is admitted.
    expect(await postTick(dispatcher(verifier, captureLog().log, false), { authorization: good })).toBe(200);
  });

  test('X-Serverless-Authorization sent twice is refused behind Cloud Run’s check', async () => {
    const token = `Bearer ${google.sign({ aud: AUDIENCE, email: TICK_SA })}`;
    const { log, lines } = captureLog();
    const status = await postTick(dispatcher(verifier, log, true), {
      'x-serverless-authorization': [token, token],
    });
    expect(status).toBe(401);
    expect(reasonIn(lines)).toBe('malformed_authorization');
  });
});

test('serviceGuards hands the trust to both guards: a stripped token reaches /tick and the admin API', async () => {
  const guards = serviceGuards(
    {
      mode: 'oidc',
      audience: [AUDIENCE],
      invokerEmail: TICK_SA,
      adminEmails: ['ops@acme.example'],
      trustCloudRunIam: true,
    },
    'tick',
    () => ({
      verify: async () => {
        throw new Error('the verifier was called');
      },
    }),
  );
  const app = dispatcherWithAdmin(guards.admin, captureLog().log, guards.invoker);
  const strip = (email: string) =>
    `Bearer ${google.sign({ aud: AUDIENCE, email }).replace(/[^.]+$/, SIGNATURE_REMOVED)}`;
  expect((await request(app).post('/tick').set('authorization', strip(TICK_SA)).send({})).status).toBe(200);
  expect((await request(app).post('/tick').set('authorization', strip('ops@acme.example')).send({})).status).toBe(403);
  expect(
    (await request(app).get('/admin/runs/s_1:2030-01-01T00:00:00Z').set('authorization', strip('ops@acme.example')))
      .status,
  ).toBe(404);
  expect(
    (await request(app).get('/admin/runs/s_1:2030-01-01T00:00:00Z').set('authorization', strip(TICK_SA))).status,
  ).toBe(403);
});

describe('a verified token’s times', () => {
  test('iat and exp written as strings are refused even when the library took them', async () => {
    const lax: TokenVerifier = {
      verify: async () => ({
        iss: 'https://accounts.google.com',
        aud: AUDIENCE,
        sub: '1',
        email: TICK_SA,
        email_verified: true,
        iat: String(now()) as unknown as number,
        exp: String(now() + 2 * 86_400) as unknown as number,
      }),
    };
    const { log, lines } = captureLog();
    const res = await request(dispatcher(lax, log))
      .post('/tick')
      .set('authorization', `Bearer ${google.sign({ aud: AUDIENCE, email: TICK_SA })}`)
      .send({});
    expect(res.status).toBe(401);
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.auth)?.auth?.reason).toBe('malformed_token');
  });
});

describe('the verifier itself (google-auth-library)', () => {
  test('rejects alg none even with a known key id, without our precheck', async () => {
    const token = google.unsigned({ aud: AUDIENCE, email: TICK_SA });
    await expect(verifier.verify(token, [AUDIENCE])).rejects.toThrow();
    await verifier.verify(token, [AUDIENCE]).catch((err) => expect(classifyVerifyError(err)).toBe('bad_signature'));
  });

  test('accepts one of several audiences', async () => {
    const token = google.sign({ aud: AUDIENCE, email: TICK_SA });
    const payload = await verifier.verify(token, ['https://other.example', AUDIENCE]);
    expect(payload.email).toBe(TICK_SA);
  });

  test('trusts a second key during a key rotation', async () => {
    const rotated = new TestIssuer('google-key-2');
    const token = rotated.sign({ aud: AUDIENCE, email: TICK_SA });
    await expect(google.verifier(rotated).verify(token, [AUDIENCE])).resolves.toMatchObject({ email: TICK_SA });
  });

  test('classifies an unknown failure as invalid_token, never echoing it', () => {
    expect(classifyVerifyError(new Error('something new'))).toBe('invalid_token');
    expect(classifyVerifyError('not even an error')).toBe('invalid_token');
  });
});

describe('auth configuration', () => {
  const base = { GOOGLE_CLOUD_PROJECT: 'my-project' };

  test('parses the lists and lower-cases emails', () => {
    const c = loadConfig({
      ...base,
      AUTH_AUDIENCE: `${AUDIENCE}, https://custom.example.com ,`,
      ADMIN_EMAILS: 'Alice@Example.com,ops@proj.iam.gserviceaccount.com',
      TICK_INVOKER_EMAIL: 'Scheduler@proj.iam.gserviceaccount.com',
    });
    expect(c.authMode).toBe('oidc');
    expect(c.authAudience).toEqual([AUDIENCE, 'https://custom.example.com']);
    expect(c.adminEmails).toEqual(['alice@example.com', 'ops@proj.iam.gserviceaccount.com']);
    expect(c.tickInvokerEmail).toBe(TICK_SA);
    expect(c.allowInsecureAuthOnCloudRun).toBe(false);
  });

  test('refuses a bad mode, a bad email and a bad boolean, naming each variable', () => {
    expect(() =>
      loadConfig({ ...base, AUTH_MODE: 'off', ADMIN_EMAILS: 'a@b.com,nope', ALLOW_INSECURE_AUTH_ON_CLOUD_RUN: 'yes' }),
    ).toThrow(/AUTH_MODE.*ADMIN_EMAILS.*ALLOW_INSECURE_AUTH_ON_CLOUD_RUN/);
  });

  test('oidc needs the audience and the invoker of each service, named', () => {
    const c = loadConfig(base);
    expect(() => authSettingsFor(c, 'dispatcher')).toThrow(ConfigError);
    expect(() => authSettingsFor(c, 'dispatcher')).toThrow(/AUTH_AUDIENCE.*TICK_INVOKER_EMAIL/);
    expect(() => authSettingsFor(c, 'notifier')).toThrow(/AUTH_AUDIENCE.*PUSH_INVOKER_EMAIL/);
    const tickOnly = loadConfig({ ...base, AUTH_AUDIENCE: AUDIENCE, TICK_INVOKER_EMAIL: TICK_SA });
    expect(authSettingsFor(tickOnly, 'dispatcher')).toEqual({
      mode: 'oidc',
      audience: [AUDIENCE],
      invokerEmail: TICK_SA,
      adminEmails: [],
      trustCloudRunIam: false,
    });
    expect(() => authSettingsFor(tickOnly, 'notifier')).toThrow(/PUSH_INVOKER_EMAIL/);
  });

  test('AUTH_TRUST_CLOUD_RUN_IAM=true is taken on Cloud Run only, and a bad value is named', () => {
    const oidc = { ...base, AUTH_AUDIENCE: AUDIENCE, TICK_INVOKER_EMAIL: TICK_SA, AUTH_TRUST_CLOUD_RUN_IAM: 'true' };
    expect(() => authSettingsFor(loadConfig(oidc), 'dispatcher')).toThrow(
      /AUTH_TRUST_CLOUD_RUN_IAM=true is refused off Cloud Run \(K_SERVICE is not set\)/,
    );
    const onRun = loadConfig({ ...oidc, K_SERVICE: 'slack-fanout-dispatcher' });
    expect(authSettingsFor(onRun, 'dispatcher')).toMatchObject({ mode: 'oidc', trustCloudRunIam: true });
    expect(() => loadConfig({ ...oidc, AUTH_TRUST_CLOUD_RUN_IAM: 'yes' })).toThrow(/AUTH_TRUST_CLOUD_RUN_IAM/);
  });

  test('AUTH_MODE=none is refused on Cloud Run unless explicitly allowed', () => {
    const onRun = { ...base, AUTH_MODE: 'none', K_SERVICE: 'slack-fanout-dispatcher' };
    expect(() => authSettingsFor(loadConfig(onRun), 'dispatcher')).toThrow(/AUTH_MODE=none is refused on Cloud Run/);
    expect(() => authSettingsFor(loadConfig(onRun), 'notifier')).toThrow(/ALLOW_INSECURE_AUTH_ON_CLOUD_RUN=true/);
    const allowed = loadConfig({ ...onRun, ALLOW_INSECURE_AUTH_ON_CLOUD_RUN: 'true' });
    expect(authSettingsFor(allowed, 'dispatcher')).toEqual({ mode: 'none' });
    expect(authSettingsFor(loadConfig({ ...base, AUTH_MODE: 'none' }), 'notifier')).toEqual({ mode: 'none' });
  });

  test('ADMIN_OPEN_ON_LOOPBACK=true opens the admin API with auth off, on a loopback address alone, off Cloud Run', () => {
    const local = { ...base, AUTH_MODE: 'none', ADMIN_OPEN_ON_LOOPBACK: 'true' };
    for (const host of ['127.0.0.1', '::1', 'localhost']) {
      expect(authSettingsFor(loadConfig({ ...local, HOST: host }), 'dispatcher')).toEqual({
        mode: 'none',
        adminOpen: true,
      });
    }
    // The notifier serves no admin API: the setting is not its.
    expect(authSettingsFor(loadConfig({ ...local, HOST: '127.0.0.1' }), 'notifier')).toEqual({ mode: 'none' });
    expect(() => authSettingsFor(loadConfig(local), 'dispatcher')).toThrow(
      /ADMIN_OPEN_ON_LOOPBACK=true needs HOST to be a loopback address .*HOST is not set \(every interface\)/,
    );
    expect(() => authSettingsFor(loadConfig({ ...local, HOST: '0.0.0.0' }), 'dispatcher')).toThrow(
      /HOST is "0\.0\.0\.0"/,
    );
    const onRun = {
      ...local,
      HOST: '127.0.0.1',
      K_SERVICE: 'slack-fanout-dispatcher',
      ALLOW_INSECURE_AUTH_ON_CLOUD_RUN: 'true',
    };
    expect(() => authSettingsFor(loadConfig(onRun), 'dispatcher')).toThrow(
      /ADMIN_OPEN_ON_LOOPBACK=true is refused on Cloud Run/,
    );
    const oidc = { ...base, AUTH_AUDIENCE: AUDIENCE, TICK_INVOKER_EMAIL: TICK_SA, ADMIN_OPEN_ON_LOOPBACK: 'true' };
    expect(() => authSettingsFor(loadConfig(oidc), 'dispatcher')).toThrow(
      /is for AUTH_MODE=none on this machine alone/,
    );
    expect(() => loadConfig({ ...local, ADMIN_OPEN_ON_LOOPBACK: 'yes' })).toThrow(/ADMIN_OPEN_ON_LOOPBACK/);
  });

  test('AUTH_TRUST_CLOUD_RUN_IAM=true off Cloud Run is refused with AUTH_MODE=none too', () => {
    expect(() =>
      authSettingsFor(loadConfig({ ...base, AUTH_MODE: 'none', AUTH_TRUST_CLOUD_RUN_IAM: 'true' }), 'notifier'),
    ).toThrow(/AUTH_TRUST_CLOUD_RUN_IAM=true is refused off Cloud Run/);
  });

  test('every problem of a service is named at once: its variables, then how they go together', () => {
    const TOKEN_PROBLEM = 'SLACK_BOT_TOKEN is required: the notifier needs a bot token to post';
    const problems = (service: 'dispatcher' | 'notifier', env: Record<string, string>) => {
      try {
        loadServiceConfig(service, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).problems;
      }
      throw new Error('accepted');
    };
    expect(problems('dispatcher', {})).toEqual([
      'GOOGLE_CLOUD_PROJECT is required',
      'AUTH_AUDIENCE is required when AUTH_MODE=oidc',
      'TICK_INVOKER_EMAIL is required when AUTH_MODE=oidc',
    ]);
    expect(problems('notifier', { ...base, PORT: 'abc', AUTH_TRUST_CLOUD_RUN_IAM: 'true' })).toEqual([
      'PORT: must be a whole number (got "abc")',
      'SLACK_BOT_TOKEN is required: the notifier needs a bot token to post',
      expect.stringMatching(/^AUTH_TRUST_CLOUD_RUN_IAM=true is refused off Cloud Run/),
      'AUTH_AUDIENCE is required when AUTH_MODE=oidc',
      'PUSH_INVOKER_EMAIL is required when AUTH_MODE=oidc',
    ]);
    // A refused value is named once, not again as missing.
    expect(problems('dispatcher', { ...base, AUTH_AUDIENCE: AUDIENCE, TICK_INVOKER_EMAIL: 'scheduler' })).toEqual([
      'TICK_INVOKER_EMAIL: Invalid email address (got "scheduler")',
    ]);
    // A refused AUTH_MODE leaves open which variables auth needs: only its own problem is said.
    expect(problems('dispatcher', { ...base, AUTH_MODE: 'off' })).toEqual([
      expect.stringMatching(/^AUTH_MODE: .*\(got "off"\)$/),
    ]);
    // A rule that reads a refused variable is left out: HOST was set, if badly.
    expect(
      problems('dispatcher', { ...base, AUTH_MODE: 'none', ADMIN_OPEN_ON_LOOPBACK: 'true', HOST: '[::1]' }),
    ).toEqual(['HOST: is not an IP address or a host name to listen on (got "[::1]")']);
    expect(
      problems('notifier', { ...base, AUTH_MODE: 'none', K_SERVICE: 'svc', ALLOW_INSECURE_AUTH_ON_CLOUD_RUN: 'TRUE' }),
    ).toEqual([expect.stringMatching(/^ALLOW_INSECURE_AUTH_ON_CLOUD_RUN: /), TOKEN_PROBLEM]);
    // A rule that does not depend on the mode still holds with AUTH_MODE refused.
    expect(problems('dispatcher', { ...base, AUTH_MODE: 'off', AUTH_TRUST_CLOUD_RUN_IAM: 'true' })).toEqual([
      expect.stringMatching(/^AUTH_MODE: /),
      expect.stringMatching(/^AUTH_TRUST_CLOUD_RUN_IAM=true is refused off Cloud Run/),
    ]);
    // The other service's variables are not read.
    expect(
      loadServiceConfig('dispatcher', { ...base, AUTH_MODE: 'none', PUSH_INVOKER_EMAIL: 'nope', NACK_DELAY_MS: '-1' })
        .auth,
    ).toEqual({ mode: 'none' });
    expect(
      loadServiceConfig('notifier', { ...base, AUTH_MODE: 'none', SLACK_BOT_TOKEN: 'x', DISPATCH_TOPIC: 'bad/topic' })
        .auth,
    ).toEqual({ mode: 'none' });
  });

  test('an admin guard opened on loopback lets the status page and the admin API answer', async () => {
    const guards = serviceGuards({ mode: 'none', adminOpen: true }, 'tick', () => {
      throw new Error('no verifier is built when auth is off');
    });
    const app = dispatcherWithAdmin(guards.admin, captureLog().log);
    const status = await request(app).get('/status');
    expect(status.status).toBe(200);
    expect(status.type).toBe('text/html');
    expect((await request(app).get('/admin/notifications/n-1')).status).toBe(404);
  });

  test('an admin guard opened on loopback refuses another host name and another site’s writes', async () => {
    const guards = serviceGuards({ mode: 'none', adminOpen: true }, 'tick', () => {
      throw new Error('no verifier is built when auth is off');
    });
    const { log, lines } = captureLog();
    const app = dispatcherWithAdmin(guards.admin, log);
    // A page that rebound its own name to 127.0.0.1 sends that name as Host.
    for (const host of [
      'evil.example',
      '127.0.0.1.evil.example',
      'localhost.evil.example:8080',
      '10.0.0.1',
      'evil.example@127.0.0.1',
      '127.0.0.1/x',
      '0.0.0.0',
    ]) {
      const res = await request(app).get('/status').set('host', host);
      expect({ host, status: res.status, error: res.body.error }).toEqual({ host, status: 403, error: 'cross_site' });
      expect(res.body.message).toContain(JSON.stringify(host));
    }
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.auth?.reason === 'cross_site')).toMatchObject({
      severity: 'WARNING',
      path: '/status',
    });
    for (const host of ['127.0.0.1:8080', 'localhost', 'LOCALHOST:80', '[::1]:8080', '127.1.2.3']) {
      expect({ host, status: (await request(app).get('/status').set('host', host)).status }).toEqual({
        host,
        status: 200,
      });
    }
    // A link followed from another site reads the page; that site reads nothing back.
    expect((await request(app).get('/status').set('sec-fetch-site', 'cross-site')).status).toBe(200);
    // A write sent by another site's page is refused; from this machine's own pages or tools it is taken.
    const resume = (headers: Record<string, string>) =>
      request(app).post('/admin/paused/resume').set(headers).set('content-type', 'application/json').send('{}');
    const crossSite: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example' },
      { origin: 'null' },
      // Another port of this machine is another site.
      { host: 'localhost:8080', origin: 'http://localhost:1' },
      { host: '127.0.0.1:8080', origin: 'http://localhost:8080' },
    ];
    for (const headers of crossSite) {
      const res = await resume(headers);
      expect({ headers, status: res.status, error: res.body.error }).toEqual({
        headers,
        status: 403,
        error: 'cross_site',
      });
    }
    const ownSite: Record<string, string>[] = [
      {},
      { host: '127.0.0.1:8080', 'sec-fetch-site': 'same-origin', origin: 'http://127.0.0.1:8080' },
      { 'sec-fetch-site': 'none' },
      { host: 'localhost:8080', origin: 'http://localhost:8080' },
      { host: 'LOCALHOST:80', origin: 'http://localhost' },
    ];
    for (const headers of ownSite) {
      // Past the guard, the body's own check answers.
      expect({ headers, status: (await resume(headers)).status }).toEqual({ headers, status: 400 });
    }
  });

  test('crossSiteProblem names the header it refuses', () => {
    const req = (method: string, headers: Record<string, string>, distinct: Record<string, string[]> = {}) => ({
      method,
      headers,
      headersDistinct: { ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])), ...distinct },
    });
    expect(crossSiteProblem(req('GET', {}))).toMatch(/Host is missing/);
    expect(crossSiteProblem(req('DELETE', { host: 'localhost', origin: 'file://' }))).toMatch(
      /no DELETE sent by another site's page \(Origin: "file:\/\/"\)/,
    );
    expect(crossSiteProblem(req('PUT', { host: '127.0.0.1', 'sec-fetch-site': 'cross-site' }))).toBe(
      "the admin API opened on loopback takes no PUT sent by another site's page (Sec-Fetch-Site: cross-site)",
    );
    expect(crossSiteProblem(req('PUT', { host: '127.0.0.1:1' }))).toBeNull();
    // Host sent twice, the first a loopback name: refused, whichever a proxy read.
    expect(crossSiteProblem(req('GET', { host: 'localhost' }, { host: ['localhost', 'evil.example'] }))).toMatch(
      /sends Host more than once/,
    );
  });

  test('with auth off there is no invoker guard and the admin guard refuses everyone', async () => {
    const guards = serviceGuards({ mode: 'none' }, 'tick', () => {
      throw new Error('no verifier is built when auth is off');
    });
    expect(guards.invoker).toBeUndefined();
    const { log, lines } = captureLog();
    const app = dispatcherWithAdmin(guards.admin, log);
    expect((await request(app).post('/tick').send({})).status).toBe(200);
    for (const path of ['/status', '/admin/runs/s_1:2030-01-01T00:00:00Z']) {
      const res = await request(app).get(path);
      // The answer says why, and no cache keeps it.
      expect({ path, status: res.status, body: res.body, cache: res.headers['cache-control'] }).toEqual({
        path,
        status: 403,
        body: { error: 'admin_requires_oidc' },
        cache: 'no-store',
      });
      // The log names the route as asked for, prefix and all.
      const line = lines
        .map((l) => JSON.parse(l))
        .find((l) => l.auth?.reason === 'admin_requires_oidc' && l.path === path);
      expect({ path, logged: line !== undefined }).toEqual({ path, logged: true });
    }
    expect(refuseAll('admin')).toBeInstanceOf(Function);
    // A route no handler takes answers JSON, like the rest.
    for (const path of ['/nope', '//status']) {
      const unknown = await request(app).get(path);
      expect({ status: unknown.status, body: unknown.body, cache: unknown.headers['cache-control'] }).toEqual({
        status: 404,
        body: { error: 'not_found', path },
        cache: 'no-store',
      });
    }
  });
});

describe('the services at start', () => {
  const run = (entry: string, env: Record<string, string>) => {
    const saved = process.env;
    process.env = { ...env };
    const exit = jest.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      jest.isolateModules(() => {
        require(entry);
      });
      return {
        code: exit.mock.calls[0]?.[0],
        message: stderr.mock.calls.map((c) => String(c[0])).join(''),
      };
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
      process.env = saved;
    }
  };

  test.each(['../dispatcher/index', '../notifier/index'])('%s refuses AUTH_MODE=none on Cloud Run', (entry) => {
    const r = run(entry, {
      GOOGLE_CLOUD_PROJECT: 'my-project',
      AUTH_MODE: 'none',
      K_SERVICE: 'svc',
      SLACK_BOT_TOKEN: 'x',
    });
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/AUTH_MODE=none is refused on Cloud Run/);
  });

  test.each([
    ['../dispatcher/index', /AUTH_AUDIENCE is required.*TICK_INVOKER_EMAIL is required/],
    ['../notifier/index', /AUTH_AUDIENCE is required.*PUSH_INVOKER_EMAIL is required/],
  ])('%s names the missing auth variables', (entry, pattern) => {
    const r = run(entry, { GOOGLE_CLOUD_PROJECT: 'my-project', SLACK_BOT_TOKEN: 'x' });
    expect(r.code).toBe(1);
    expect(r.message).toMatch(pattern);
  });

  test('the notifier names a missing token and the missing auth variables at once', () => {
    const r = run('../notifier/index', { GOOGLE_CLOUD_PROJECT: 'my-project' });
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/SLACK_BOT_TOKEN is required.*AUTH_AUDIENCE is required.*PUSH_INVOKER_EMAIL is required/);
  });

  test('the notifier names a missing token alone when nothing else is missing', () => {
    const r = run('../notifier/index', { GOOGLE_CLOUD_PROJECT: 'my-project', AUTH_MODE: 'none' });
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/SLACK_BOT_TOKEN is required: the notifier needs a bot token to post/);
  });

  test('the warning is loud', () => {
    expect(AUTH_OFF_WARNING).toMatch(/^WARNING: AUTH_MODE=none/);
  });
});
