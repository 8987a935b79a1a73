import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkRealToken } from './slack-token';

/** A Slack Web API on loopback answering auth.test with `body`, and `scopes` in X-OAuth-Scopes. */
async function slackAnswering(body: object, scopes?: string): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', ...(scopes ? { 'x-oauth-scopes': scopes } : {}) });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`, server };
}

describe("npm start's check of a real token", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  test('a token Slack refuses stops the run before it starts, naming the variable and the error', async () => {
    const { url, server } = await slackAnswering({ ok: false, error: 'invalid_auth' });
    servers.push(server);
    expect(await checkRealToken(url, 'xoxb-wrong')).toEqual({
      refused: `SLACK_BOT_TOKEN: Slack at ${url} refused it (invalid_auth), so every post would fail; nothing was started`,
      warnings: [],
    });
  });

  test('a token without a history scope goes on, warned', async () => {
    const { url, server } = await slackAnswering({ ok: true, team: 'T', user_id: 'U' }, 'chat:write');
    servers.push(server);
    const verdict = await checkRealToken(url, 'xoxb-ok');
    expect(verdict.refused).toBeUndefined();
    expect(verdict.warnings).toEqual([expect.stringMatching(/lacks channels:history and groups:history/)]);
  });

  test('a token with what it needs goes on, with nothing to say', async () => {
    const { url, server } = await slackAnswering({ ok: true, team: 'T' }, 'chat:write,channels:history');
    servers.push(server);
    expect(await checkRealToken(url, 'xoxb-ok')).toEqual({ warnings: [] });
  });

  test.each([
    ['rate limited', { ok: false, error: 'ratelimited' }, 200],
    ['an answer about the request, not the token', { ok: false, error: 'invalid_arguments' }, 200],
    ["a proxy's 413", {}, 413],
    ['a gateway error', {}, 502],
  ])('%s goes on, warned', async (_what, body, status) => {
    const server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
    const verdict = await checkRealToken(url, 'xoxb-ok');
    expect(verdict.refused).toBeUndefined();
    expect(verdict.warnings).toEqual([expect.stringMatching(/did not confirm SLACK_BOT_TOKEN .*; going on$/)]);
  });

  test('a Slack out of reach goes on, warned', async () => {
    const { url, server } = await slackAnswering({});
    await new Promise((r) => server.close(r));
    const verdict = await checkRealToken(url, 'xoxb-ok');
    expect(verdict.refused).toBeUndefined();
    expect(verdict.warnings).toEqual([
      expect.stringMatching(/^Slack at .* did not confirm SLACK_BOT_TOKEN \(.*\); going on$/),
    ]);
  });
});
