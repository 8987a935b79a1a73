import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from './emulators';
import { startFrontend } from './frontend';

/** A loopback server answering 204, counting the bodies it received. */
async function instance(port = 0, answer?: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(body);
      if (answer) answer(req, res);
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { server, bodies, port: (server.address() as AddressInfo).port };
}

const post = (url: string, body: string) =>
  fetch(`${url}/push`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('the local front end', () => {
  it('passes a request to the instance, body and answer', async () => {
    const up = await instance();
    const front = await startFrontend(() => `http://127.0.0.1:${up.port}`);
    try {
      expect((await post(front.url, '{"a":1}')).status).toBe(204);
      expect(up.bodies).toEqual(['{"a":1}']);
      expect(front.unavailable).toBe(0);
    } finally {
      await front.stop();
      up.server.close();
    }
  });

  it('answers 503 at once while nothing listens, by default', async () => {
    const port = await freePort();
    const front = await startFrontend(() => `http://127.0.0.1:${port}`);
    try {
      const started = Date.now();
      expect((await post(front.url, '{}')).status).toBe(503);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(front.unavailable).toBe(1);
    } finally {
      await front.stop();
    }
  });

  it('holds a request while no instance is up, and hands it, body whole, to the one that comes up', async () => {
    const port = await freePort();
    const front = await startFrontend(() => `http://127.0.0.1:${port}`, {
      waitForInstanceMs: 10_000,
      retryEveryMs: 100,
    });
    let up: Awaited<ReturnType<typeof instance>> | undefined;
    try {
      const answer = post(front.url, '{"message":"held"}');
      await new Promise((r) => setTimeout(r, 700));
      up = await instance(port);
      expect((await answer).status).toBe(204);
      expect(up.bodies).toEqual(['{"message":"held"}']);
      expect(front.waited).toBe(1);
      expect(front.unavailable).toBe(0);
    } finally {
      await front.stop();
      up?.server.close();
    }
  });

  it('gives up waiting after waitForInstanceMs: 503', async () => {
    const port = await freePort();
    const front = await startFrontend(() => `http://127.0.0.1:${port}`, { waitForInstanceMs: 600, retryEveryMs: 100 });
    try {
      const started = Date.now();
      expect((await post(front.url, '{}')).status).toBe(503);
      expect(Date.now() - started).toBeGreaterThanOrEqual(400);
      expect(front.unavailable).toBe(1);
    } finally {
      await front.stop();
    }
  });

  it('answers 503 for an instance cut off mid-request, and does not send the request again', async () => {
    const up = await instance(0, (req) => req.socket.destroy());
    const front = await startFrontend(() => `http://127.0.0.1:${up.port}`, { waitForInstanceMs: 5_000 });
    try {
      expect((await post(front.url, '{"once":true}')).status).toBe(503);
      expect(up.bodies).toEqual(['{"once":true}']);
    } finally {
      await front.stop();
      up.server.close();
    }
  });
});
