import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for Cloud Run's front end: a loopback proxy that stays up while the instance
 * behind it is killed and restarted, and answers 503 while nothing listens, as Cloud Run
 * does. Pub/Sub's push never sees "connection refused" in production; the emulator, given
 * a burst of them, stops pushing to the endpoint altogether.
 */
export interface Frontend {
  url: string;
  /** Requests answered 503 because the instance was down. */
  unavailable: number;
  stop(): Promise<void>;
}

export async function startFrontend(target: () => string): Promise<Frontend> {
  const state = { unavailable: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', target());
    const upstream = http.request(url, { method: req.method, headers: { ...req.headers, host: url.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => {
      state.unavailable++;
      if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"instance_unavailable"}');
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get unavailable() {
      return state.unavailable;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
