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
