import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniqueProjectId } from '../dev/stack';

/**
 * A service started on a port picked for it: when the port is taken between being picked and
 * being bound (by anything, an outgoing connection included), startService picks another.
 */

const real = jest.requireActual<typeof import('../dev/emulators')>('../dev/emulators');
const picks: number[] = [];
let next: (() => Promise<number>)[] = [];
jest.mock('../dev/emulators', () => ({
  ...jest.requireActual('../dev/emulators'),
  freePort: async () => {
    const port = await (next.shift() ?? real.freePort)();
    picks.push(port);
    return port;
  },
}));

import { listensOn, type ServiceProcess, startService, stopService } from '../dev/processes';
import { emulatorServiceEnv } from './helpers';

const env = (): NodeJS.ProcessEnv =>
  emulatorServiceEnv(uniqueProjectId('service-ports'), { AUTH_MODE: 'none', LOG_LEVEL: 'info' });

/**
 * A free port taken by a listener of this process, as another process's server or a service's
 * own instrumentation could take a picked port: it answers on it, so answering proves nothing.
 */
async function holdPort(): Promise<{ port: number; close(): void }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : 0, close: () => server.close() };
}

describe('startService and a picked port taken before it is bound', () => {
  const held: { close(): void }[] = [];
  const started: ServiceProcess[] = [];
  afterEach(async () => {
    for (const s of started.splice(0)) await stopService(s);
    for (const h of held.splice(0)) h.close();
    next = [];
    picks.length = 0;
  });

  test('picks another port, and the service listens there', async () => {
    const taken = await holdPort();
    held.push(taken);
    next = [async () => taken.port];
    const logFile = join(mkdtempSync(join(tmpdir(), 'service-ports-')), 'dispatcher.log');
    const svc = await startService('dispatcher', env(), { logFile });
    started.push(svc);
    expect(picks[0]).toBe(taken.port);
    expect(svc.port).toBe(picks[1]);
    expect(svc.port).not.toBe(taken.port);
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    expect(listensOn(svc.child.pid as number, svc.port)).toBe(true);
    expect(listensOn(svc.child.pid as number, taken.port)).toBe(false);
    // The lost race is in the log, as the service said it.
    expect(readFileSync(logFile, 'utf8')).toMatch(
      new RegExp(`dispatcher: cannot listen on every interface port ${taken.port} \\(HOST, PORT\\): listen EADDRINUSE`),
    );
  });

  test('picks another port without a log file too: it exited before listening, and the port answers', async () => {
    const taken = await holdPort();
    held.push(taken);
    next = [async () => taken.port];
    const svc = await startService('dispatcher', env());
    started.push(svc);
    expect(picks).toEqual([taken.port, svc.port]);
    expect(svc.port).not.toBe(taken.port);
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    expect(listensOn(svc.child.pid as number, svc.port)).toBe(true);
  });

  test('gives up after three ports taken, naming the last', async () => {
    const taken = [await holdPort(), await holdPort(), await holdPort()];
    held.push(...taken);
    next = taken.map((t) => async () => t.port);
    const logFile = join(mkdtempSync(join(tmpdir(), 'service-ports-')), 'dispatcher.log');
    await expect(startService('dispatcher', env(), { logFile })).rejects.toThrow(
      `the dispatcher did not start from ${join(__dirname, '..', 'dist', 'dispatcher', 'index.js')}: process exited (code 1) before listening on ${taken[2]?.port}`,
    );
    expect(picks).toEqual(taken.map((t) => t.port));
  });

  test('a port the caller chose is not swapped for another: its failure is the caller’s', async () => {
    const taken = await holdPort();
    held.push(taken);
    const logFile = join(mkdtempSync(join(tmpdir(), 'service-ports-')), 'dispatcher.log');
    await expect(startService('dispatcher', env(), { logFile, port: taken.port })).rejects.toThrow(
      `before listening on ${taken.port}`,
    );
    expect(picks).toEqual([]);
  });
});
