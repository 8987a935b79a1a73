import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { WebClient } from '@slack/web-api';
import { FanoutError, postMayStillLand } from '../shared/errors';
import { SlackClient } from './slack';
import { MAX_ANSWER_BYTES, undiciFetch } from './slack-fetch';

/**
 * The Slack client's transport (undiciFetch) against a real HTTP server on loopback, through
 * the real @slack/web-api client: what each kind of answer, and each kind of failure, becomes.
 */

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler;
const received: { path: string; body: string; headers: IncomingMessage['headers'] }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      received.push({ path: req.url ?? '', body, headers: req.headers });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  received.length = 0;
});

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
};

const client = (timeoutMs = 2000) => new SlackClient({ apiUrl: url, timeoutMs, tokenFor: () => 'xoxb-test' });

const post = (c = client()) =>
  c.post({
    channel: 'C1',
    text: 'hello',
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'hi' } }],
    deliveryId: 'd1',
  });

async function failure(p: Promise<unknown>): Promise<FanoutError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FanoutError);
  return err as FanoutError;
}

describe('undiciFetch under the Slack client', () => {
  it('posts the form the client builds, with its headers, and reads the answer', async () => {
    handler = (_req, _body, res) => json(res, 200, { ok: true, ts: '1700000000.000100', channel: 'C1' });
    await expect(post()).resolves.toEqual({ ts: '1700000000.000100', channel: 'C1' });
    const [req] = received;
    expect(req?.path).toBe('/api/chat.postMessage');
    expect(req?.headers.authorization).toBe('Bearer xoxb-test');
    expect(req?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = new URLSearchParams(req?.body);
    expect(form.get('channel')).toBe('C1');
    expect(JSON.parse(form.get('metadata') ?? '{}')).toMatchObject({ event_payload: { deliveryId: 'd1' } });
  });

  it('an ok: false answer is the platform error it names', async () => {
    handler = (_req, _body, res) => json(res, 200, { ok: false, error: 'channel_not_found' });
    const err = await failure(post());
    expect([err.code, err.slackError, err.retryable]).toEqual(['slack_permanent_channel', 'channel_not_found', false]);
  });

  it('a 429 carries its Retry-After, read whatever the header case', async () => {
    handler = (_req, _body, res) => json(res, 429, { ok: false, error: 'ratelimited' }, { 'Retry-After': '7' });
    const err = await failure(post());
    expect([err.code, err.retryable, err.retryAfterSeconds]).toEqual(['slack_retryable', true, 7]);
  });

  it('a 429 with no Retry-After, or one in date form, is a rate limit: retried, not looked for', async () => {
    handler = (_req, _body, res) => json(res, 429, { ok: false, error: 'ratelimited' });
    const none = await failure(post());
    expect([none.code, none.retryable, none.slackError, none.retryAfterSeconds]).toEqual([
      'slack_retryable',
      true,
      'http_429',
      undefined,
    ]);
    expect(postMayStillLand(none)).toBe(false);
    const at = new Date(Date.now() + 30_000).toUTCString();
    handler = (_req, _body, res) => json(res, 429, { ok: false, error: 'ratelimited' }, { 'Retry-After': at });
    const dated = await failure(post());
    expect([dated.code, dated.slackError]).toEqual(['slack_retryable', 'http_429']);
    // An HTTP date has whole seconds: 29 to 30 s from now.
    expect(dated.retryAfterSeconds).toBeGreaterThanOrEqual(28);
    expect(dated.retryAfterSeconds).toBeLessThanOrEqual(30);
  });

  it('a 503 and a 400 are retried, a 413 is not', async () => {
    handler = (_req, _body, res) => json(res, 503, { error: 'unavailable' });
    expect((await failure(post())).retryable).toBe(true);
    handler = (_req, _body, res) => json(res, 400, { error: 'bad' });
    const proxy = await failure(post());
    expect([proxy.retryable, proxy.slackError]).toEqual([true, 'http_400']);
    handler = (_req, _body, res) => json(res, 413, { error: 'too big' });
    const err = await failure(post());
    expect([err.retryable, err.slackError]).toEqual([false, 'http_413']);
  });

  it('a 200 whose body is not JSON leaves the outcome unknown, its body not kept whole', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<html>${'x'.repeat(100_000)}</html>`);
    };
    const err = await failure(post());
    expect([err.code, err.slackError]).toEqual(['slack_outcome_unknown', 'unreadable_response']);
    expect(err.message.length).toBeLessThan(300);
  });

  // The client reads a body that is not JSON as `ok: false` with the body as its error code: one
  // word, such as `timeout` or `not_authed`, would pass for Slack's own answer.
  it.each(['timeout', 'not_authed', 'ok', 'null', '[{"ok":true}]', ''])(
    'a 200 whose body is %j, not a JSON object, leaves the outcome unknown, not read as a Slack error code',
    async (body) => {
      handler = (_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(body);
      };
      const err = await failure(post());
      expect([err.code, err.retryable, err.slackError]).toEqual(['slack_outcome_unknown', true, 'unreadable_response']);
      expect(err.message).toBe(
        `Slack's answer could not be read: the answer is not a JSON object: ${JSON.stringify(body)}`,
      );
    },
  );

  it('a 2xx other than 200 leaves the outcome unknown: something took the post', async () => {
    for (const status of [201, 202]) {
      handler = (_req, _body, res) => json(res, status, { ok: true, ts: '1.2' });
      const err = await failure(post());
      expect([err.code, err.retryable, err.slackError]).toEqual(['slack_outcome_unknown', true, `http_${status}`]);
    }
  });

  it('an answer past MAX_ANSWER_BYTES, as sent or decompressed, is not read whole: the outcome unknown', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"ok":true,"x":"${'x'.repeat(MAX_ANSWER_BYTES)}"}`);
    };
    const long = await failure(post());
    expect([long.code, long.slackError]).toEqual(['slack_outcome_unknown', 'unreadable_response']);
    expect(long.message).toBe(`Slack's answer could not be read: the answer is longer than ${MAX_ANSWER_BYTES} bytes`);
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(Buffer.from(`{"ok":true,"x":"${' '.repeat(4 * MAX_ANSWER_BYTES)}"}`)));
    };
    const bomb = await failure(post());
    expect(bomb.message).toBe(
      `Slack's answer could not be read: the answer is longer than ${MAX_ANSWER_BYTES} bytes, decompressed`,
    );
  });

  it('a redirect is refused, never followed: the outcome is unknown', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
      res.end();
    };
    const err = await failure(post());
    expect([err.code, err.retryable, err.slackError]).toEqual(['slack_outcome_unknown', true, 'http_302']);
    // Named as what it is, with the setting to check, and not held as a post that may still land.
    expect(err.message).toBe(
      "Slack's API answered HTTP 302, a redirect to http://127.0.0.1:1/elsewhere, refused: check SLACK_API_URL (Slack's is https://slack.com/api/)",
    );
    expect(postMayStillLand(err)).toBe(false);
    expect(received).toHaveLength(1);
  });

  it('a body that is not in its Content-Encoding is an answer that cannot be read, not a timeout', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end('{"ok":true}');
    };
    const err = await failure(post());
    expect([err.code, err.slackError]).toEqual(['slack_outcome_unknown', 'unreadable_response']);
    expect(err.message).toBe(
      "Slack's answer could not be read: the answer's body is not gzip as its Content-Encoding says",
    );
    expect(postMayStillLand(err)).toBe(false);
  });

  it('a server that does not answer within the timeout leaves the outcome unknown', async () => {
    handler = () => undefined;
    const started = Date.now();
    const err = await failure(post(client(300)));
    expect([err.code, err.slackError]).toEqual(['slack_outcome_unknown', 'request_timeout']);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a connection that cannot be made is retried as nothing sent', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const c = new SlackClient({ apiUrl: `http://127.0.0.1:${port}/api/`, timeoutMs: 2000, tokenFor: () => 'x' });
    const err = await failure(post(c));
    expect([err.code, err.slackError]).toEqual(['slack_retryable', 'connection_refused']);
  });

  it('a connection cut before the answer leaves the outcome unknown, named as a reset, not a timeout', async () => {
    handler = (req) => req.socket.destroy();
    const err = await failure(post());
    expect([err.code, err.slackError]).toEqual(['slack_outcome_unknown', 'connection_reset']);
    expect(err.message).toMatch(/^the connection to Slack was closed before its answer \(.+\)$/);
    // Slack may still be working on the post: held as a timeout is.
    expect(postMayStillLand(err)).toBe(true);
  });

  it('asks for no compression, and decompresses an answer compressed anyway', async () => {
    const encoders: Record<string, (b: Buffer) => Buffer> = {
      gzip: gzipSync,
      deflate: deflateSync,
      br: brotliCompressSync,
    };
    for (const [encoding, encode] of Object.entries(encoders)) {
      handler = (_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding });
        res.end(encode(Buffer.from(JSON.stringify({ ok: true, ts: `1.${encoding}`, channel: 'C1' }))));
      };
      await expect(post()).resolves.toEqual({ ts: `1.${encoding}`, channel: 'C1' });
    }
    expect(received.every((r) => r.headers['accept-encoding'] === undefined)).toBe(true);
  });

  it('gives the client the response shape it reads: headers, text, json, bytes', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'X-OAuth-Scopes': 'chat:write',
        'set-cookie': ['a=1', 'b=2'],
      });
      res.end('{"ok":true,"note":"é"}');
    };
    const fetchFn = undiciFetch();
    const res = await fetchFn(`${url}auth.test`, { method: 'POST', body: 'token=x', redirect: 'error' });
    expect([res.ok, res.status, res.statusText, res.url]).toEqual([true, 200, 'OK', `${url}auth.test`]);
    expect(res.headers.get('x-oauth-scopes')).toBe('chat:write');
    expect(res.headers.get('X-OAUTH-SCOPES')).toBe('chat:write');
    expect(res.headers.get('set-cookie')).toBe('a=1, b=2');
    expect(res.headers.get('missing')).toBeNull();
    expect(Object.fromEntries(res.headers.entries())['content-type']).toBe('application/json');
    expect(await res.json()).toEqual({ ok: true, note: 'é' });
    expect(await res.text()).toBe('{"ok":true,"note":"é"}');
    expect(Buffer.from(await res.arrayBuffer()).toString('utf8')).toBe('{"ok":true,"note":"é"}');
    // The same through the client, with the scopes it reports.
    const web = new WebClient('xoxb-test', { slackApiUrl: url, fetch: fetchFn, retryConfig: { retries: 0 } });
    const answer = await web.auth.test();
    expect(answer.ok).toBe(true);
    expect(answer.response_metadata?.scopes).toEqual(['chat:write']);
  });
});

describe('the Slack client under load', () => {
  it('sends every call at once, so each reaches Slack within its timeout of being made', async () => {
    // More calls than @slack/web-api's own queue lets out at once by default (100). Nothing is
    // answered until all 150 have arrived: a call queued behind the first 100 would arrive only
    // after an answer, which comes, then, from the safety timer alone. No clock is compared, so
    // a loaded machine cannot fail it.
    const calls = 150;
    const held: (() => void)[] = [];
    let answeredBeforeAllArrived = false;
    const answerAll = () => {
      for (const answer of held.splice(0)) answer();
    };
    const safety = setTimeout(() => {
      answeredBeforeAllArrived = true;
      answerAll();
    }, 10_000);
    handler = (_req, _body, res) => {
      held.push(() => json(res, 200, { ok: true, channel: 'C1', ts: '1.000001' }));
      if (held.length === calls) answerAll();
    };
    const c = client(20_000);
    try {
      const results = await Promise.allSettled(
        Array.from({ length: calls }, (_, i) =>
          c.post({ channel: 'C1', text: `t${i}`, blocks: [], deliveryId: `n-${i}:x` }),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(calls);
      expect(answeredBeforeAllArrived).toBe(false);
    } finally {
      clearTimeout(safety);
    }
  }, 30_000);
});
