import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import { type AddressInfo, createServer as createTcpServer, type Server } from 'node:net';
import { http2Problem } from './net';

async function listening<T extends Server>(server: T): Promise<{ server: T; port: number }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, port: (server.address() as AddressInfo).port };
}

async function closed(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('http2Problem', () => {
  it('names an HTTP/1 server by its answer to the preface', async () => {
    const { server, port } = await listening(createHttpServer((_req, res) => res.end('ok')));
    try {
      expect(await http2Problem('127.0.0.1', port, 2000)).toBe(
        'it answered HTTP/1 ("HTTP/1.1 400 Bad Request"), not HTTP/2 as gRPC needs',
      );
    } finally {
      server.closeAllConnections();
      await closed(server);
    }
  });

  it('takes a server that answers with HTTP/2 settings', async () => {
    const h2 = createHttp2Server();
    const sessions = new Set<{ destroy: () => void }>();
    h2.on('session', (s) => sessions.add(s));
    const { server, port } = await listening(h2);
    try {
      expect(await http2Problem('127.0.0.1', port, 2000)).toBeNull();
    } finally {
      for (const s of sessions) s.destroy();
      await closed(server);
    }
  });

  it('says nothing of a server that is silent, or closes at once: those it cannot tell apart', async () => {
    const sockets = new Set<{ destroy: () => void }>();
    const silent = await listening(createTcpServer((s) => sockets.add(s)));
    const closing = await listening(createTcpServer((s) => s.destroy()));
    try {
      const started = Date.now();
      expect(await http2Problem('127.0.0.1', silent.port, 300)).toBeNull();
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(await http2Problem('127.0.0.1', closing.port, 2000)).toBeNull();
    } finally {
      for (const s of sockets) s.destroy();
      await Promise.all([closed(silent.server), closed(closing.server)]);
    }
  });
});
