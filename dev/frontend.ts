import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for Cloud Run's front end: a loopback proxy that stays up while the instance
 * behind it is killed and restarted. Pub/Sub's push never sees "connection refused" in
 * production; the emulator, given a burst of them, stops pushing to the endpoint altogether,
 * and with no retry policy locally (shared/topology.ts LocalTopology) every refusal would
 * spend one of a message's delivery attempts at once.
 *
 * While no instance answers, a request waits up to `waitForInstanceMs` for one, as Cloud Run
 * holds a request while it starts an instance, and is answered 503 after that (at once by
 * default). The body is read whole first (a push is a few kB; at most `maxBodyBytes`), so it
 * can be sent again to the instance that comes up.
 */
export interface Frontend {
  url: string;
  /** Requests answered 503 because no instance answered in time. */
  unavailable: number;
  /** Requests that waited for an instance and reached one. */
  waited: number;
  stop(): Promise<void>;
}

export interface FrontendOptions {
  /** How long a request waits for an instance before it is answered 503 (default 0). */
  waitForInstanceMs?: number;
  /** How often a waiting request tries the instance again. */
  retryEveryMs?: number;
  maxBodyBytes?: number;
  /** The port to listen on (default: a free one). */
  port?: number;
}

export async function startFrontend(target: () => string, opts: FrontendOptions = {}): Promise<Frontend> {
  const waitMs = opts.waitForInstanceMs ?? 0;
  const retryEveryMs = opts.retryEveryMs ?? 200;
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  const state = { unavailable: 0, waited: 0 };
  const sockets = new Set<import('node:net').Socket>();

  const unavailable = (res: http.ServerResponse) => {
    state.unavailable++;
    if (!res.headersSent) res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":"instance_unavailable"}');
  };

  /** One try at the instance: its answer piped back, or false when nothing took the connection. */
  const forward = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<boolean> =>
    new Promise((resolve) => {
      const url = new URL(req.url ?? '/', target());
      const upstream = http.request(url, { method: req.method, headers: { ...req.headers, host: url.host } }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        up.on('end', () => resolve(true));
        up.on('error', () => {
          res.destroy();
          resolve(true);
        });
      });
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        // Refused: no instance took it, and it can go again. Cut off once an instance had it
        // (killed mid-request): answered 503, as Cloud Run answers, never sent twice from here.
        if (err.code === 'ECONNREFUSED' && !res.headersSent) resolve(false);
        else {
          if (res.headersSent) res.destroy(err);
          else unavailable(res);
          resolve(true);
        }
      });
      upstream.end(body);
    });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBody) {
        res.writeHead(413, { 'content-type': 'application/json' }).end('{"error":"entity_too_large"}');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', async () => {
      if (res.writableEnded) return;
      const body = Buffer.concat(chunks);
      const deadline = Date.now() + waitMs;
      let tries = 0;
      for (;;) {
        tries++;
        if (await forward(req, body, res)) {
          if (tries > 1) state.waited++;
          return;
        }
        if (Date.now() + retryEveryMs > deadline || res.destroyed) return unavailable(res);
        await new Promise((r) => setTimeout(r, retryEveryMs));
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    // A chosen port taken since it was checked: an error of the run's start, not a crash.
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get unavailable() {
      return state.unavailable;
    },
    get waited() {
      return state.waited;
    },
    async stop() {
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
