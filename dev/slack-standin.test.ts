import {
  ErrorCode,
  LogLevel,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
} from '@slack/web-api';
import { type RecordedPost, SlackStandIn } from './slack-standin';

const TOKEN = 'xoxb-test';

const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: '*Weekly report*' } }];
const metadataFor = (deliveryId: string) => ({
  event_type: 'fanout_report',
  event_payload: { deliveryId },
});

let slack: SlackStandIn;
let url: string;

/** `null` builds a client that sends no token of its own. */
function client(token: string | null = TOKEN): WebClient {
  return new WebClient(token ?? undefined, {
    slackApiUrl: url,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: 2000,
    // The client warns about each injected failure; the assertions cover them.
    logLevel: LogLevel.ERROR,
  });
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

function admin(path: string, init: { method: string; body?: unknown }): Promise<globalThis.Response> {
  return fetch(new URL(path, url), {
    method: init.method,
    headers: { 'Content-Type': 'application/json' },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
}

/** A POST of `body` as it is, declared JSON: a body that is not JSON reaches the server. */
function postJsonText(path: string, body: string): Promise<globalThis.Response> {
  return fetch(new URL(path, url), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

beforeEach(async () => {
  slack = new SlackStandIn({ token: TOKEN, seed: 7 });
  ({ url } = await slack.start());
});

afterEach(async () => {
  await slack.stop();
});

describe('SlackStandIn', () => {
  it('serves under a base URL ending in /api/', () => {
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
    expect(slack.url).toBe(url);
  });

  it('answers auth.test', async () => {
    const res = await client().auth.test();
    expect(res).toMatchObject({
      ok: true,
      team_id: 'T0STANDIN',
      user_id: 'U0STANDIN',
      bot_id: 'B0STANDIN',
    });
    expect(typeof res.url).toBe('string');
  });

  it('records a post with its blocks and metadata parsed from the form fields', async () => {
    const seen: RecordedPost[] = [];
    slack.on('post', (p) => seen.push(p));

    const res = await client().chat.postMessage({
      channel: 'C1',
      text: 'Weekly report',
      blocks,
      metadata: metadataFor('n1:2025-11-29T00:00'),
    });

    expect(res.ok).toBe(true);
    expect(res.channel).toBe('C1');
    expect(res.ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(res.message).toMatchObject({
      text: 'Weekly report',
      ts: res.ts,
      blocks,
    });
    expect(slack.posts).toHaveLength(1);
    expect(slack.posts[0]).toMatchObject({
      channel: 'C1',
      text: 'Weekly report',
      blocks,
      metadata: metadataFor('n1:2025-11-29T00:00'),
      ts: res.ts,
      token: TOKEN,
    });
    expect(typeof slack.posts[0]?.receivedAt).toBe('number');
    expect(seen).toEqual(slack.posts);
    expect(slack.callCount).toEqual({ 'chat.postMessage': 1 });
  });

  it('hands out unique increasing ts values even when the clock stands still', async () => {
    const frozen = new SlackStandIn({ now: () => 1_764_374_400_000 });
    const { url: frozenUrl } = await frozen.start();
    try {
      const web = new WebClient(TOKEN, {
        slackApiUrl: frozenUrl,
        retryConfig: { retries: 0 },
      });
      const a = await web.chat.postMessage({ channel: 'C1', text: 'a' });
      const b = await web.chat.postMessage({ channel: 'C1', text: 'b' });
      expect(a.ts).toBe('1764374400.000000');
      expect(b.ts).toBe('1764374400.000100');
    } finally {
      await frozen.stop();
    }
  });

  it('answers a 429 fault with Retry-After, which the client reports as rate limited', async () => {
    slack.setFaults([{ respond: { kind: 'http', status: 429, retryAfterSeconds: 7 } }]);

    const err = await caught(client().chat.postMessage({ channel: 'C1', text: 'x' }));

    expect(err).toBeInstanceOf(WebAPIRateLimitedError);
    expect((err as WebAPIRateLimitedError).code).toBe(ErrorCode.RateLimitedError);
    expect((err as WebAPIRateLimitedError).retryAfter).toBe(7);
    expect(slack.posts).toHaveLength(0);
  });

  it('answers a 500 fault with a plain HTTP error', async () => {
    slack.setFaults([{ respond: { kind: 'http', status: 500 } }]);

    const err = await caught(client().chat.postMessage({ channel: 'C1', text: 'x' }));

    expect(err).toBeInstanceOf(WebAPIHTTPError);
    expect((err as WebAPIHTTPError).statusCode).toBe(500);
    expect(slack.posts).toHaveLength(0);
  });

  it('applies a rule with times: 2 to the first two matching calls only', async () => {
    slack.setFaults([{ channel: 'C1', times: 2, respond: { kind: 'http', status: 503 } }]);
    const web = client();

    await expect(web.chat.postMessage({ channel: 'C2', text: 'other channel' })).resolves.toMatchObject({ ok: true });
    await expect(web.chat.postMessage({ channel: 'C1', text: 'x' })).rejects.toBeInstanceOf(WebAPIHTTPError);
    await expect(web.chat.postMessage({ channel: 'C1', text: 'x' })).rejects.toBeInstanceOf(WebAPIHTTPError);
    await expect(web.chat.postMessage({ channel: 'C1', text: 'x' })).resolves.toMatchObject({ ok: true });

    expect(slack.faults[0]?.hits).toBe(2);
    expect(slack.posts.map((p) => p.channel)).toEqual(['C2', 'C1']);
    expect(slack.callCount['chat.postMessage']).toBe(4);
  });

  it('matches channelPrefix rules and lets the first matching rule win', async () => {
    slack.setFaults([
      {
        channelPrefix: 'CBAD',
        respond: { kind: 'slack_error', error: 'is_archived' },
      },
      { respond: { kind: 'slack_error', error: 'not_in_channel' } },
    ]);
    const web = client();

    const first = await caught(web.chat.postMessage({ channel: 'CBAD42', text: 'x' }));
    const second = await caught(web.chat.postMessage({ channel: 'C1', text: 'x' }));

    expect((first as WebAPIPlatformError).data.error).toBe('is_archived');
    expect((second as WebAPIPlatformError).data.error).toBe('not_in_channel');
  });

  it('answers a slack_error fault with HTTP 200 and ok:false, a platform error to the client', async () => {
    slack.setFaults([
      {
        channel: 'C404',
        respond: { kind: 'slack_error', error: 'channel_not_found' },
      },
    ]);

    const err = await caught(client().chat.postMessage({ channel: 'C404', text: 'x' }));

    expect(err).toBeInstanceOf(WebAPIPlatformError);
    expect((err as WebAPIPlatformError).code).toBe(ErrorCode.PlatformError);
    expect((err as WebAPIPlatformError).data.error).toBe('channel_not_found');
  });

  it('tells a watcher which delivery a slack_error fault refused', async () => {
    slack.setFaults([{ channel: 'C404', respond: { kind: 'slack_error', error: 'is_archived' } }]);
    const refused: unknown[] = [];
    slack.on('refused', (r) => refused.push(r));
    await caught(
      client().chat.postMessage({
        channel: 'C404',
        text: 'x',
        metadata: { event_type: 'slack_fanout_delivery', event_payload: { deliveryId: 'n-1:occ' } },
      }),
    );
    expect(refused).toEqual([{ channel: 'C404', error: 'is_archived', deliveryId: 'n-1:occ' }]);
  });

  it('tells a watcher which delivery an http fault refused, and with which status', async () => {
    slack.setFaults([
      { channel: 'C503', times: 1, respond: { kind: 'http', status: 503 } },
      { channel: 'C429', times: 1, respond: { kind: 'http', status: 429, retryAfterSeconds: 0 } },
    ]);
    const refused: unknown[] = [];
    slack.on('refused', (r) => refused.push(r));
    await caught(client().chat.postMessage({ channel: 'C503', text: 'x', metadata: metadataFor('n-2:occ') }));
    await caught(client().chat.postMessage({ channel: 'C429', text: 'x' }));
    expect(refused).toEqual([
      { channel: 'C503', error: 'HTTP 503', deliveryId: 'n-2:occ' },
      { channel: 'C429', error: 'ratelimited (HTTP 429)', deliveryId: null },
    ]);
  });

  it('turns a delay beyond the client timeout into a request error, and stop() does not wait for it', async () => {
    slack.setFaults([{ respond: { kind: 'delay', ms: 10_000 } }]);

    const started = Date.now();
    const err = await caught(client().chat.postMessage({ channel: 'C1', text: 'x' }));

    expect(err).toBeInstanceOf(WebAPIRequestError);
    expect((err as WebAPIRequestError).code).toBe(ErrorCode.RequestError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(slack.posts).toHaveLength(0);
    // The call the client gave up on is still held: it may yet land.
    expect(slack.heldCount).toBe(1);
    slack.reset();
    expect(slack.heldCount).toBe(0);
  });

  it('refuses a delay longer than a timer can wait, which would fire at once', () => {
    expect(() => slack.setFaults([{ respond: { kind: 'delay', ms: 2 ** 31 } }])).toThrow(
      /longer than a timer can wait \(2147483647 ms/,
    );
    slack.setFaults([{ respond: { kind: 'delay', ms: 2 ** 31 - 1 } }]);
    expect(slack.faults).toHaveLength(1);
  });

  it('posts after a short delay', async () => {
    slack.setFaults([{ respond: { kind: 'delay', ms: 50 } }]);

    await expect(client().chat.postMessage({ channel: 'C1', text: 'x' })).resolves.toMatchObject({ ok: true });
    expect(slack.posts).toHaveLength(1);
  });

  it('records a post_then_error post, so history shows it and a retry shows up as a duplicate', async () => {
    slack.setFaults([
      {
        times: 1,
        respond: { kind: 'post_then_error', error: 'internal_error' },
      },
    ]);
    const web = client();
    const message = {
      channel: 'C1',
      text: 'x',
      metadata: metadataFor('n1:occ'),
    };

    const err = await caught(web.chat.postMessage(message));
    expect((err as WebAPIPlatformError).data.error).toBe('internal_error');
    await web.chat.postMessage(message);
    await web.chat.postMessage({
      channel: 'C1',
      text: 'y',
      metadata: metadataFor('n2:occ'),
    });

    const history = await web.conversations.history({
      channel: 'C1',
      include_all_metadata: true,
    });
    expect(history.messages).toHaveLength(3);
    expect(slack.duplicates()).toEqual([{ key: 'n1:occ', count: 2 }]);
  });

  it('records a post_then_http post and answers the HTTP status, as a gateway after Slack posted', async () => {
    slack.setFaults([{ times: 1, respond: { kind: 'post_then_http', status: 502 } }]);
    const web = client();

    const err = await caught(web.chat.postMessage({ channel: 'C1', text: 'x', metadata: metadataFor('n1:occ') }));
    expect((err as WebAPIHTTPError).statusCode).toBe(502);
    expect(slack.posts).toHaveLength(1);
    const history = await web.conversations.history({ channel: 'C1', include_all_metadata: true });
    expect(history.messages?.[0]?.metadata?.event_payload).toMatchObject({ deliveryId: 'n1:occ' });
  });

  it('answers an http_then_post call its HTTP status at once, and lands the post later, as a gateway that gave up can', async () => {
    slack.setFaults([{ times: 1, respond: { kind: 'http_then_post', status: 503, afterMs: 300 } }]);
    const web = client();

    const err = await caught(web.chat.postMessage({ channel: 'C1', text: 'x', metadata: metadataFor('n1:occ') }));
    expect((err as WebAPIHTTPError).statusCode).toBe(503);
    expect([slack.posts.length, slack.heldCount]).toEqual([0, 1]);
    await new Promise((r) => setTimeout(r, 600));
    expect([slack.posts.length, slack.heldCount]).toEqual([1, 0]);
    const history = await web.conversations.history({ channel: 'C1', include_all_metadata: true });
    expect(history.messages?.[0]?.metadata?.event_payload).toMatchObject({ deliveryId: 'n1:occ' });
  });

  it('drops an http_then_post call still held when it is reset', async () => {
    slack.setFaults([{ respond: { kind: 'http_then_post', status: 502, afterMs: 200 } }]);
    await caught(client().chat.postMessage({ channel: 'C1', text: 'x' }));
    slack.reset();
    await new Promise((r) => setTimeout(r, 400));
    expect([slack.posts.length, slack.heldCount]).toEqual([0, 0]);
  });

  it('returns posted metadata from conversations.history, newest first, after oldest', async () => {
    const web = client();
    const first = await web.chat.postMessage({
      channel: 'C1',
      text: 'one',
      metadata: metadataFor('d1'),
    });
    await web.chat.postMessage({
      channel: 'C2',
      text: 'elsewhere',
      metadata: metadataFor('d9'),
    });
    await web.chat.postMessage({
      channel: 'C1',
      text: 'two',
      metadata: metadataFor('d2'),
    });
    await web.chat.postMessage({
      channel: 'C1',
      text: 'three',
      metadata: metadataFor('d3'),
    });

    const all = await web.conversations.history({
      channel: 'C1',
      include_all_metadata: true,
    });
    expect(all.has_more).toBe(false);
    expect(all.messages?.map((m) => m.text)).toEqual(['three', 'two', 'one']);
    expect(all.messages?.map((m) => m.metadata?.event_payload)).toEqual([
      { deliveryId: 'd3' },
      { deliveryId: 'd2' },
      { deliveryId: 'd1' },
    ]);

    const after = await web.conversations.history({
      channel: 'C1',
      oldest: first.ts,
      include_all_metadata: true,
    });
    expect(after.messages?.map((m) => m.text)).toEqual(['three', 'two']);

    const page = await web.conversations.history({ channel: 'C1', limit: 2 });
    expect(page.has_more).toBe(true);
    expect(page.messages?.map((m) => m.text)).toEqual(['three', 'two']);
    expect(page.messages?.[0]?.metadata).toBeUndefined();
    const next = await web.conversations.history({
      channel: 'C1',
      limit: 2,
      cursor: page.response_metadata?.next_cursor ?? '',
    });
    expect(next.messages?.map((m) => m.text)).toEqual(['one']);
    expect(next.has_more).toBe(false);
  });

  it('refuses a wrong token with invalid_auth and a missing one with not_authed', async () => {
    const wrong = await caught(client('xoxb-wrong').chat.postMessage({ channel: 'C1', text: 'x' }));
    const missing = await caught(client(null).auth.test());

    expect((wrong as WebAPIPlatformError).data.error).toBe('invalid_auth');
    expect((missing as WebAPIPlatformError).data.error).toBe('not_authed');
    expect(slack.posts).toHaveLength(0);
  });

  it('accepts the token as a form field', async () => {
    const form = (token: string) =>
      fetch(new URL('chat.postMessage', url), {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token,
          channel: 'C1',
          text: 'x',
        }).toString(),
      }).then((r) => r.json());

    expect(await form(TOKEN)).toMatchObject({ ok: true, channel: 'C1' });
    expect(await form('xoxb-wrong')).toEqual({
      ok: false,
      error: 'invalid_auth',
    });
    expect(slack.posts).toHaveLength(1);
  });

  it('validates like Slack: channel_not_found, no_text, unknown_method', async () => {
    const web = client();
    const noChannel = await caught(web.apiCall('chat.postMessage', { text: 'x' }));
    const noText = await caught(web.chat.postMessage({ channel: 'C1', blocks: [] } as never));
    const unknown = await caught(web.apiCall('chat.scheduleMessage', { channel: 'C1' }));

    expect((noChannel as WebAPIPlatformError).data.error).toBe('channel_not_found');
    expect((noText as WebAPIPlatformError).data.error).toBe('no_text');
    expect((unknown as WebAPIPlatformError).data.error).toBe('unknown_method');
    expect(slack.callCount).toEqual({
      'chat.postMessage': 2,
      'chat.scheduleMessage': 1,
    });
  });

  it('refuses, as Slack does, more than 50 blocks (invalid_blocks) and more than 12,000 characters of block text (msg_blocks_too_long)', async () => {
    const web = client();
    const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });
    const many = await caught(web.chat.postMessage({ channel: 'C1', text: 'x', blocks: Array(51).fill(section('s')) }));
    expect((many as WebAPIPlatformError).data.error).toBe('invalid_blocks');
    // 5 sections of 2,400 and a field of 1: 12,001 characters, counted in texts and fields alike.
    const long = [
      ...Array(5).fill(section('t'.repeat(2400))),
      { type: 'section', fields: [{ type: 'mrkdwn', text: 'f' }] },
    ];
    const tooLong = await caught(web.chat.postMessage({ channel: 'C1', text: 'x', blocks: long }));
    expect((tooLong as WebAPIPlatformError).data.error).toBe('msg_blocks_too_long');
    await expect(web.chat.postMessage({ channel: 'C1', text: 'x', blocks: long.slice(0, 5) })).resolves.toMatchObject({
      ok: true,
    });
    expect(slack.posts).toHaveLength(1);
  });

  it('accepts a JSON body with a Bearer token, answering ok:false errors with HTTP 200', async () => {
    const post = (body: unknown, token = TOKEN) =>
      fetch(new URL('chat.postMessage', url), {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          Authorization: `Bearer ${token}`,
        },
        body: JSON.stringify(body),
      });

    const ok = await post({
      channel: 'C1',
      blocks,
      metadata: metadataFor('j1'),
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, channel: 'C1' });
    expect(slack.posts[0]).toMatchObject({
      blocks,
      metadata: metadataFor('j1'),
      text: null,
    });

    const bad = await post({ channel: 'C1', text: 'x' }, 'xoxb-nope');
    expect(bad.status).toBe(200);
    expect(await bad.json()).toEqual({ ok: false, error: 'invalid_auth' });
  });

  it('repeats a probability fault pattern for the same seed', async () => {
    const pattern = async (): Promise<boolean[]> => {
      slack.reset();
      slack.setFaults(
        [
          {
            probability: 0.5,
            respond: { kind: 'slack_error', error: 'ratelimited' },
          },
        ],
        { seed: 123 },
      );
      const web = client();
      const results: boolean[] = [];
      for (let i = 0; i < 12; i++) {
        results.push(
          await web.chat.postMessage({ channel: 'C1', text: `${i}` }).then(
            () => true,
            () => false,
          ),
        );
      }
      return results;
    };

    const first = await pattern();
    const second = await pattern();
    expect(second).toEqual(first);
    expect(first).toContain(true);
    expect(first).toContain(false);
  });

  it('takes faults, posts and resets over the HTTP admin endpoints', async () => {
    const set = await admin('/_admin/faults', {
      method: 'POST',
      body: {
        rules: [
          {
            channel: 'C1',
            respond: { kind: 'slack_error', error: 'is_archived' },
          },
        ],
        seed: 1,
      },
    });
    expect(set.status).toBe(200);
    const web = client();

    const err = await caught(web.chat.postMessage({ channel: 'C1', text: 'x' }));
    expect((err as WebAPIPlatformError).data.error).toBe('is_archived');
    await web.chat.postMessage({
      channel: 'C2',
      text: 'x',
      metadata: metadataFor('d1'),
    });

    const listed = (await (await admin('/_admin/posts', { method: 'GET' })).json()) as {
      posts: RecordedPost[];
      callCount: Record<string, number>;
    };
    expect(listed.posts.map((p) => p.channel)).toEqual(['C2']);
    expect(listed.callCount).toEqual({ 'chat.postMessage': 2 });

    expect((await admin('/_admin/faults', { method: 'DELETE' })).status).toBe(200);
    await expect(web.chat.postMessage({ channel: 'C1', text: 'x' })).resolves.toMatchObject({ ok: true });

    expect((await admin('/_admin/reset', { method: 'POST' })).status).toBe(200);
    expect(slack.posts).toHaveLength(0);
    expect(slack.callCount).toEqual({});
  });

  it.each([
    ['a delay that is not a whole number of ms', [{ respond: { kind: 'delay', ms: 1.5 } }], /^0\.respond\.ms: /],
    [
      'an http_then_post without its afterMs',
      [{ respond: { kind: 'http_then_post', status: 502 } }],
      /^0\.respond\.afterMs: /,
    ],
    [
      'times: 0, which would match no call',
      [{ times: 0, respond: { kind: 'http', status: 503 } }],
      /^0\.times: must be 1 or more/,
    ],
    ['an unknown kind', { rules: [{ respond: { kind: 'nope' } }] }, /^rules\.0\.respond\.kind: /],
    ['a seed that is not a whole number', { rules: [], seed: 0.5 }, /^seed: /],
  ])('refuses %s over HTTP, naming where it is in one message', async (_what, body, message) => {
    slack.setFaults([{ channel: 'CKEEP', respond: { kind: 'slack_error', error: 'x' } }]);
    const res = await admin('/_admin/faults', { method: 'POST', body });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as { ok: boolean; error: string; message: string; issues: unknown[] };
    expect([answer.ok, answer.error]).toEqual([false, 'invalid_faults']);
    expect(answer.message).toMatch(message);
    expect(answer.issues).toHaveLength(1);
    expect(slack.faults.map((f) => f.rule.channel)).toEqual(['CKEEP']);
  });

  it('refuses rules sent as a form (curl -d without a Content-Type) with 415, saying to send JSON', async () => {
    slack.setFaults([{ channel: 'CKEEP', respond: { kind: 'slack_error', error: 'x' } }]);
    const rules = JSON.stringify([{ respond: { kind: 'http', status: 503 } }]);
    for (const init of [
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: rules },
      { method: 'POST' },
    ]) {
      const res = await fetch(new URL('/_admin/faults', url), init);
      expect(res.status).toBe(415);
      const answer = (await res.json()) as { ok: boolean; error: string; message: string };
      expect([answer.ok, answer.error]).toEqual([false, 'invalid_faults']);
      expect(answer.message).toMatch(/^send the rules as JSON \(Content-Type: application\/json\): an array of rules/);
    }
    expect(slack.faults.map((f) => f.rule.channel)).toEqual(['CKEEP']);
  });

  it('refuses malformed fault rules over HTTP', async () => {
    const res = await admin('/_admin/faults', {
      method: 'POST',
      body: [{ chanel: 'C1', respond: { kind: 'slack_error', error: 'x' } }],
    });
    expect(res.status).toBe(400);
    expect(slack.faults).toEqual([]);
  });

  it('answers a body that is not JSON, a method a path does not take and an unknown path in JSON, with 4xx', async () => {
    const broken = await postJsonText(
      '/_admin/faults',
      '{"rules":[{"channel":"C1","respond":{"kind":"slack_error","error":"x"}}]',
    );
    expect(broken.status).toBe(400);
    expect(await broken.json()).toEqual({ ok: false, error: 'invalid_json' });
    expect(slack.faults).toEqual([]);
    const put = await admin('/_admin/faults', { method: 'PUT', body: [] });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST, DELETE, HEAD');
    expect(await put.json()).toMatchObject({ ok: false, error: 'method_not_allowed', method: 'PUT' });
    const unknown = await admin('/_admin/nope', { method: 'GET' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ ok: false, error: 'not_found', path: '/_admin/nope' });
    for (const path of ['/_admin', '/_admin/']) {
      const bare = await admin(path, { method: 'GET' });
      expect([path, bare.status, ((await bare.json()) as { error: string }).error]).toEqual([path, 404, 'not_found']);
    }
    // What the request itself gets wrong is its 4xx in JSON, not a 500 with a stack trace.
    const undecodable = await admin('/_admin/%ff', { method: 'GET' });
    expect(undecodable.status).toBe(400);
    expect(await undecodable.json()).toMatchObject({ ok: false });
    const latin1 = await fetch(new URL('/_admin/faults', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=latin1' },
      body: '[]',
    });
    expect(latin1.status).toBe(415);
    expect(await latin1.json()).toMatchObject({ ok: false, error: 'charset.unsupported' });
    const notGzip = await fetch(new URL('/_admin/faults', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: '[]',
    });
    expect(notGzip.status).toBe(400);
    expect(await notGzip.json()).toMatchObject({ ok: false });
    // A body over the limit: JSON on the admin routes, Slack's front end's text on its own.
    const huge = `[${' '.repeat(1_100_000)}]`;
    const tooLarge = await postJsonText('/_admin/faults', huge);
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ ok: false, error: 'too_large' });
    const apiTooLarge = await postJsonText('/api/chat.postMessage', huge);
    expect([apiTooLarge.status, await apiTooLarge.text()]).toEqual([413, 'Request Entity Too Large']);
    // Slack's own routes still answer a body that is not JSON as Slack does.
    const api = await postJsonText('/api/chat.postMessage', '{');
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ ok: false, error: 'invalid_json' });
  });
});
