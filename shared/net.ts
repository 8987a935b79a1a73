import { connect } from 'node:net';

/**
 * Why host:port takes no TCP connection within `timeoutMs` (the socket's error, or no answer in
 * time), or null once one is taken. The one probe behind waiting for an emulator's port
 * (dev/emulators.ts) and the CLI's check that a service is there before its first call.
 */
export function connectProblem(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (why: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(`no answer in ${timeoutMs / 1000} s`), timeoutMs);
    socket.once('connect', () => done(null));
    socket.once('error', (err) => done(err.message));
  });
}

/** HTTP/2's client preface and an empty SETTINGS frame: what a gRPC client sends first. */
const HTTP2_PREFACE = Buffer.concat([
  Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
  Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
]);

/**
 * Why the server at host:port is not one a gRPC client can talk to, when its first answer to
 * HTTP/2's preface says so (an HTTP/1 server's `HTTP/1.1 400 Bad Request`, say: another service
 * at an emulator's address); null when it answers as HTTP/2 does (a SETTINGS frame), and when
 * it says nothing within `timeoutMs` or closes without a word, which this cannot tell apart.
 */
export function http2Problem(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let got = Buffer.alloc(0);
    const done = (why: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.once('connect', () => socket.write(HTTP2_PREFACE));
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.subarray(0, 5).toString('latin1') === 'HTTP/') {
        const line = got.toString('latin1').split('\r\n')[0] ?? '';
        if (got.includes('\r\n') || got.length >= 200)
          done(`it answered HTTP/1 (${JSON.stringify(line.slice(0, 80))}), not HTTP/2 as gRPC needs`);
        return;
      }
      // A frame header: 3 bytes of length, then its type, SETTINGS being 4.
      if (got.length >= 9) done(got[3] === 4 ? null : 'its first answer is neither HTTP/2 nor HTTP/1');
    });
    socket.once('error', () => done(null));
    socket.once('close', () => done(null));
  });
}
