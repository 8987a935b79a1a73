import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebAPIHTTPError, WebAPIPlatformError, WebAPIRateLimitedError, WebAPIRequestError } from '@slack/web-api';
import { SlackStandIn, STANDIN_SCOPES } from '../dev/slack-standin';
import {
  classifySlackErrorCode,
  FanoutError,
  outcomeOf,
  PermanentError,
  postMayStillLand,
  RetryableError,
  SLACK_ERROR_GROUPS,
} from '../shared/errors';
import { capturedLog } from '../test/helpers';
import { checkSlackToken } from './service';
import { classifySlackFailure, retryAfterOf, SlackClient, scopeProblems } from './slack';

/** What @slack/web-api throws for an `ok: false` answer. */
const platformError = (error: string) => new WebAPIPlatformError({ ok: false, error });

describe('classifySlackFailure with the real @slack/web-api errors', () => {
  it('channel_not_found (a platform error) is a permanent channel failure', () => {
    const err = classifySlackFailure(platformError('channel_not_found'));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.code).toBe('slack_permanent_channel');
    expect(err.slackError).toBe('channel_not_found');
    expect(outcomeOf(err).kind).toBe('ack');
  });

  it('invalid_auth is a permanent workspace failure', () => {
    const err = classifySlackFailure(platformError('invalid_auth'));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.code).toBe('slack_permanent_workspace');
  });

  it('internal_error leaves the outcome unknown, and is retried', () => {
    const err = classifySlackFailure(platformError('internal_error'));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('slack_outcome_unknown');
  });

  it('classifies every known platform error as classifySlackErrorCode does', () => {
    for (const code of Object.values(SLACK_ERROR_GROUPS).flat()) {
      const viaClient = classifySlackFailure(platformError(code));
      const direct = classifySlackErrorCode(code);
      expect([code, viaClient.code, viaClient.retryable]).toEqual([code, direct.code, direct.retryable]);
    }
  });

  it('a rate limit (WebAPIRateLimitedError) is retryable and carries Retry-After', () => {
    const err = classifySlackFailure(new WebAPIRateLimitedError(7));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('slack_retryable');
    expect(err.retryAfterSeconds).toBe(7);
    expect(outcomeOf(err)).toMatchObject({ kind: 'retry', retryAfterSeconds: 7 });
  });

  it('a 502 (WebAPIHTTPError) is retried as an outcome unknown: a gateway may answer after the post went through', () => {
    const err = classifySlackFailure(new WebAPIHTTPError(502, 'Bad Gateway', {}, '<html>bad gateway</html>'));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('slack_outcome_unknown');
  });

  it('a 413 (WebAPIHTTPError) is permanent; a 400 from a proxy is retried', () => {
    const big = classifySlackFailure(new WebAPIHTTPError(413, 'Payload Too Large', {}, ''));
    expect(big).toBeInstanceOf(PermanentError);
    expect(big.code).toBe('slack_permanent_payload');
    const proxy = classifySlackFailure(new WebAPIHTTPError(400, 'Bad Request', {}, ''));
    expect([proxy.code, proxy.retryable]).toEqual(['slack_retryable', true]);
  });

  it.each([
    ['a cut-off JSON body', '{"ok":tru'],
    ['an HTML page', '<html><body>502 Bad Gateway</body></html>'],
    ['an empty body', ''],
  ])('%s (the client reports it as ok:false) leaves the outcome unknown', (_what, body) => {
    const err = classifySlackFailure(new WebAPIPlatformError({ ok: false, error: body }));
    expect([err.code, err.retryable, err.slackError]).toEqual(['slack_outcome_unknown', true, 'unreadable_response']);
    expect(err.message.length).toBeLessThan(300);
  });

  it('an answer with no error field leaves the outcome unknown', () => {
    const err = classifySlackFailure(new WebAPIPlatformError({ ok: false } as never));
    expect([err.code, err.slackError]).toEqual(['slack_outcome_unknown', 'unreadable_response']);
  });

  it('a timeout (WebAPIRequestError) may have posted: slack_outcome_unknown', () => {
    const err = classifySlackFailure(new WebAPIRequestError(new Error('timeout of 10000ms exceeded')));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('slack_outcome_unknown');
  });

  it('a reset connection may have posted: slack_outcome_unknown', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(classifySlackFailure(new WebAPIRequestError(reset)).code).toBe('slack_outcome_unknown');
  });

  it('a refused connection sent nothing: slack_retryable', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' });
    const err = classifySlackFailure(new WebAPIRequestError(refused));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('slack_retryable');
  });

  it('ECONNREFUSED given only as a code (Node 20 AggregateError, empty message) is still refused', () => {
    const refused = Object.assign(new Error(''), { code: 'ECONNREFUSED' });
    expect(classifySlackFailure(new WebAPIRequestError(refused)).code).toBe('slack_retryable');
  });

  it('fetch() reports a refused connection as "fetch failed" with the socket error as its cause', () => {
    // The shape Node 20's fetch gives @slack/web-api outside jest (jest's realm loses the cause).
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:45999'), { code: 'ECONNREFUSED' });
    const fetchFailed = Object.assign(new TypeError('fetch failed'), { cause });
    expect(classifySlackFailure(new WebAPIRequestError(fetchFailed)).code).toBe('slack_retryable');
    // A timeout, by contrast, may have reached Slack.
    const timeout = Object.assign(new Error('The operation was aborted due to timeout'), {
      name: 'TimeoutError',
      code: 23,
    });
    expect(classifySlackFailure(new WebAPIRequestError(timeout)).code).toBe('slack_outcome_unknown');
  });

  it('a TCP reset (ECONNRESET) is named a reset', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const err = classifySlackFailure(new WebAPIRequestError(reset));
    expect([err.code, err.slackError]).toEqual(['slack_outcome_unknown', 'connection_reset']);
  });

  it('retryAfterOf reads an HTTP date as seconds from now, and nothing else', () => {
    const now = Date.parse('2026-12-01T12:00:00Z');
    expect(retryAfterOf('Tue, 01 Dec 2026 12:00:30 GMT', now)).toBe(30);
    expect(retryAfterOf('Tue, 01 Dec 2026 11:59:00 GMT', now)).toBe(0);
    for (const header of ['null', '', 'soon', '1.5', '-1']) expect(retryAfterOf(header, now)).toBeUndefined();
    // Date.parse would take these (2001, December 2099); only the HTTP date form is read.
    for (const header of ['x 1', 'Dec 2099', '2026-12-01T12:00:30Z']) expect(retryAfterOf(header, now)).toBeUndefined();
    // A date years off is held for a day at most.
    expect(retryAfterOf('Tue, 01 Dec 2099 12:00:00 GMT', now)).toBe(86_400);
  });

  it('retryAfterOf rounds a part of a second up: a date half a second ahead is a wait of 1, not 0', () => {
    // An IMF-fixdate names whole seconds; the clock is half a second short of it.
    const now = Date.parse('2026-12-01T12:00:29.500Z');
    expect(retryAfterOf('Tue, 01 Dec 2026 12:00:30 GMT', now)).toBe(1);
    expect(retryAfterOf('Tue, 01 Dec 2026 12:00:31 GMT', now)).toBe(2);
    // Half a second past it: nothing left to wait.
    expect(retryAfterOf('Tue, 01 Dec 2026 12:00:29 GMT', now)).toBe(0);
    // Any part of a second counts as a whole one, a fifth as much as a half.
    const later = Date.parse('2026-12-01T12:00:29.800Z');
    expect(retryAfterOf('Tue, 01 Dec 2026 12:00:30 GMT', later)).toBe(1);
    expect(retryAfterOf('Tue, 01 Dec 2026 12:00:31 GMT', later)).toBe(2);
  });

  it('a FanoutError passes through unchanged', () => {
    const original = new PermanentError('slack_permanent_payload', 'too long', { slackError: 'msg_too_long' });
    expect(classifySlackFailure(original)).toBe(original);
  });

  it.each<[string, unknown]>([
    ['a plain Error', new Error('something odd')],
    ['a string', 'odd'],
    ['null', null],
  ])('anything else (%s) is retried with the outcome unknown', (_what, thrown) => {
    const err = classifySlackFailure(thrown);
    expect(err).toBeInstanceOf(FanoutError);
    expect(err.code).toBe('slack_outcome_unknown');
    expect(err.retryable).toBe(true);
  });
});

describe('SlackClient.post against a server that drops the connection', () => {
  let server: Server;
  let apiUrl = '';
  let answer: 'reset' | 'reset-mid-body' | { retryAfter: string } | { body: string } = 'reset';
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (answer === 'reset') req.socket.resetAndDestroy();
        else if (answer === 'reset-mid-body') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
          res.write('{"ok":');
          setTimeout(() => req.socket.resetAndDestroy(), 20);
        } else if ('body' in answer) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(answer.body);
        } else {
          res.writeHead(429, { 'retry-after': answer.retryAfter });
          res.end('{}');
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const postOnce = () =>
    new SlackClient({ apiUrl, timeoutMs: 5_000, tokenFor: () => 'xoxb-test' })
      .post({ channel: 'C0123456789', text: 'report', blocks: [], deliveryId: 'n-1:2026-12-01T09:00:00.000Z' })
      .then(
        () => {
          throw new Error('the post was taken');
        },
        (err: unknown) => err as FanoutError,
      );

  it.each(['reset', 'reset-mid-body'] as const)(
    'a TCP reset (%s) is a reset, looked for before posting again',
    async (how) => {
      answer = how;
      const err = await postOnce();
      expect([err.code, err.slackError, postMayStillLand(err)]).toEqual([
        'slack_outcome_unknown',
        'connection_reset',
        true,
      ]);
    },
  );

  it.each([
    ['{"ok":"false"}', 'Slack answered with ok "false" but without a ts'],
    ['{"ok":true}', 'Slack answered ok but without a ts'],
    ['{"ok":1}', 'Slack answered with ok 1 but without a ts'],
  ])('an answer %s, not an error to the client and naming no message, is said as it came', async (body, message) => {
    answer = { body };
    const err = await postOnce();
    expect([err.code, err.message]).toEqual(['slack_outcome_unknown', message]);
  });

  it.each([
    ['Dec 2099', undefined],
    ['-1', 0],
    ['99999999', 86_400],
    ['30', 30],
  ])(
    'a 429 with Retry-After %s is a rate limit with a wait of %s s (none below 0 or above a day)',
    async (header, wait) => {
      answer = { retryAfter: header };
      const err = await postOnce();
      expect([err.code, err.slackError, err.retryAfterSeconds]).toEqual(['slack_retryable', 'http_429', wait]);
    },
  );
});

describe('SlackClient.findDelivery against the stand-in', () => {
  const token = 'xoxb-find-test';
  let standIn: SlackStandIn;
  let apiUrl: string;
  beforeAll(async () => {
    standIn = new SlackStandIn({ token });
    apiUrl = (await standIn.start()).url;
  });
  afterAll(() => standIn.stop());

  const client = (historyPages?: number) =>
    new SlackClient({
      apiUrl,
      timeoutMs: 5000,
      tokenFor: () => token,
      ...(historyPages ? { historyPages } : {}),
    });
  const post = (c: SlackClient, channel: string, deliveryId: string) =>
    c.post({ channel, text: deliveryId, blocks: [], deliveryId });

  it('finds a post under hundreds of later ones in the same channel, page by page', async () => {
    const c = client();
    const since = new Date(Date.now() - 1000);
    const { ts } = await post(c, 'C_BUSY', 'n-x:occ');
    for (let i = 0; i < 450; i++) await post(c, 'C_BUSY', `n-${i}:occ`);
    expect(await c.findDelivery('C_BUSY', 'n-x:occ', since)).toBe(ts);
    expect(await c.findDelivery('C_BUSY', 'n-missing:occ', since)).toBeNull();
  });

  it('says it cannot tell, rather than posting again, past the pages it may read', async () => {
    const c = client(2);
    const since = new Date(Date.now() - 1000);
    await post(c, 'C_FLOOD', 'n-y:occ');
    for (let i = 0; i < 450; i++) await post(c, 'C_FLOOD', `n-${i}:occ`);
    const err = await c.findDelivery('C_FLOOD', 'n-y:occ', since).then(
      () => null,
      (e: unknown) => e as FanoutError,
    );
    expect([err?.code, err?.slackError]).toEqual(['slack_outcome_unknown', 'history_too_long']);
  });
});

describe('the bot token, checked at start', () => {
  const token = 'xoxb-check-test';
  const started: SlackStandIn[] = [];
  afterAll(async () => {
    for (const s of started) await s.stop();
  });
  async function standInWith(scopes?: string[]): Promise<string> {
    const s = new SlackStandIn({ token, ...(scopes ? { scopes } : {}) });
    started.push(s);
    return (await s.start()).url;
  }
  const client = (apiUrl: string, t = token) => new SlackClient({ apiUrl, timeoutMs: 2000, tokenFor: () => t });

  it('reads the workspace and the scopes Slack names in X-OAuth-Scopes', async () => {
    const check = await client(await standInWith()).checkToken();
    expect(check).toEqual({ team: 'Fanout Stand-in', scopes: [...STANDIN_SCOPES] });
  });

  it('names what missing scopes leave undone', () => {
    expect(scopeProblems(['chat:write', 'channels:history'])).toEqual([]);
    expect(scopeProblems(['chat:write', 'groups:history'])).toEqual([]);
    expect(scopeProblems(['chat:write'])).toEqual([
      expect.stringMatching(
        /lacks channels:history.*does not post again and records the delivery failed \(slack_outcome_unverifiable\)/,
      ),
    ]);
    expect(scopeProblems(['channels:history'])).toEqual([expect.stringMatching(/lacks chat:write/)]);
  });

  it('logs a warning for a token without a history scope, and serves on', async () => {
    const { log, lines } = capturedLog();
    await checkSlackToken(client(await standInWith(['chat:write'])), log);
    expect(lines.map((l) => [l.severity, l.message])).toEqual([
      ['INFO', 'Slack accepted the bot token'],
      ['WARNING', expect.stringMatching(/lacks channels:history and groups:history/)],
    ]);
  });

  it('logs an error naming Slack’s refusal for a token Slack refuses', async () => {
    const { log, lines } = capturedLog();
    await checkSlackToken(client(await standInWith(), 'xoxb-wrong'), log);
    expect(lines).toEqual([
      expect.objectContaining({
        severity: 'ERROR',
        message: expect.stringMatching(/refused the bot token at start \(invalid_auth\).*SLACK_BOT_TOKEN/),
      }),
    ]);
    expect(JSON.stringify(lines)).not.toContain('xoxb-wrong');
  });

  it('logs a warning, and does not throw, when Slack cannot be reached', async () => {
    const { log, lines } = capturedLog();
    await checkSlackToken(client('http://127.0.0.1:9/api/'), log);
    expect(lines).toEqual([
      expect.objectContaining({
        severity: 'WARNING',
        message: 'could not reach Slack to check the bot token at start',
      }),
    ]);
  });
});
