import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { transpileModule } from 'typescript';
import { freePort, isListening, waitForPort } from './emulators';
import { startReaper } from './processes';

/**
 * The reaper: process groups spawned `detached` (the services, the emulators' launcher and its
 * Java) are killed when the process that started them dies without stopping them. Each test
 * runs a starter of its own (this file's processes.ts and emulators.ts, transpiled) that starts
 * a reaper and a small tree like an emulator's: a shell with a child listening on a port.
 */

let dir: string;
const started: number[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'reaper-test-'));
  // As laid out in the project: dev/ beside shared/, so the relative imports resolve.
  for (const name of ['dev/processes', 'dev/emulators', 'shared/net']) {
    const source = readFileSync(join(__dirname, '..', `${name}.ts`), 'utf8');
    const { outputText } = transpileModule(source, {
      compilerOptions: { module: 1 /* CommonJS */, target: 9 /* ES2022 */, esModuleInterop: true },
    });
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, `${name}.js`), outputText);
  }
});

/** Like the Firestore emulator's launcher: a shell whose child holds the port; `ignoreTerm`, as a stuck Java might. */
function writeTree(ignoreTerm = false) {
  writeFileSync(
    join(dir, 'tree.sh'),
    `${ignoreTerm ? "trap '' TERM\n" : ''}"$NODE" -e 'require("net").createServer().listen(Number(process.argv[1]), "127.0.0.1")' "$PORT" &\nwait\n`,
  );
}

afterEach(() => {
  // Whatever a failed test left: only the groups these tests started.
  for (const pg of started.splice(0)) signalGroup(pg, 'SIGKILL');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function signalGroup(pg: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pg, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const listening = (port: number) => isListening('127.0.0.1', port);

/** Polls until every group is gone; the time it took, or null past `withinMs`. */
async function goneWithin(groups: number[], withinMs: number): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start < withinMs) {
    if (groups.every((pg) => !signalGroup(pg, 0))) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

interface Starter {
  child: ChildProcess;
  /** The watched tree's process group, the unwatched one's, the reaper's pid. */
  info: { watched: number; unwatched: number; reaper: number };
}

/**
 * Runs a starter that starts a reaper (grace `graceMs`), a watched tree listening on `port`, and
 * an unwatched one on `port2`, then runs `then` (JS, in the starter).
 */
async function runStarter(port: number, port2: number, graceMs: number, then: string): Promise<Starter> {
  const script = `
const { spawn } = require('node:child_process');
const { startReaper } = require(${JSON.stringify(join(dir, 'dev', 'processes.js'))});
const reaper = startReaper(${graceMs});
const tree = (port) => spawn('/bin/sh', [${JSON.stringify(join(dir, 'tree.sh'))}], {
  detached: true, stdio: 'ignore', env: { ...process.env, NODE: process.execPath, PORT: String(port) },
});
const watched = tree(${port});
reaper.watch(watched);
const unwatched = tree(${port2});
unwatched.unref();
watched.unref();
console.log(JSON.stringify({ watched: watched.pid, unwatched: unwatched.pid, reaper: reaper.pid }));
${then}
`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the starter printed nothing')), 10_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
  });
  const info = JSON.parse(line) as Starter['info'];
  started.push(info.watched, info.unwatched);
  await waitForPort('127.0.0.1', port, 10_000);
  await waitForPort('127.0.0.1', port2, 10_000);
  return { child, info };
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>((r) => c.once('exit', () => r()));

describe('startReaper', () => {
  beforeEach(() => writeTree());

  test('its starter SIGKILLed: the watched group (shell and listener) is gone at once, the port free; an unwatched one is left', async () => {
    const [port, port2] = [await freePort(), await freePort()];
    const { child, info } = await runStarter(port, port2, 5000, 'setInterval(() => {}, 1000);');
    child.kill('SIGKILL');
    // SIGTERM reaches it well before the 5 s grace.
    expect(await goneWithin([info.watched], 4000)).not.toBeNull();
    expect(await listening(port)).toBe(false);
    expect(signalGroup(info.unwatched, 0)).toBe(true);
    expect(await listening(port2)).toBe(true);
    // The reaper itself is gone too.
    expect(await goneWithin([info.reaper], 3000)).not.toBeNull();
  }, 30_000);

  test('a group that ignores SIGTERM is SIGKILLed after the grace', async () => {
    writeTree(true);
    const [port, port2] = [await freePort(), await freePort()];
    const { child, info } = await runStarter(port, port2, 1500, 'setInterval(() => {}, 1000);');
    child.kill('SIGKILL');
    const tookMs = await goneWithin([info.watched], 8000);
    expect(tookMs).not.toBeNull();
    expect(tookMs).toBeGreaterThanOrEqual(1000);
    expect(await listening(port)).toBe(false);
  }, 30_000);

  test('a starter that ends without stopping its children: exits by itself, and they are killed', async () => {
    const [port, port2] = [await freePort(), await freePort()];
    // Once told, the starter has nothing left to do; the reaper would keep it alive if it were not unref'd.
    const { child, info } = await runStarter(
      port,
      port2,
      5000,
      "process.stdin.once('data', () => process.stdin.destroy());",
    );
    child.stdin?.write('end\n');
    await exited(child);
    expect(child.exitCode).toBe(0);
    expect(await goneWithin([info.watched], 4000)).not.toBeNull();
    expect(await listening(port)).toBe(false);
    expect(signalGroup(info.unwatched, 0)).toBe(true);
  }, 30_000);

  test('released: the reaper exits and kills nothing', async () => {
    const [port, port2] = [await freePort(), await freePort()];
    const { child, info } = await runStarter(port, port2, 5000, 'reaper.release();');
    await exited(child);
    expect(await goneWithin([info.reaper], 3000)).not.toBeNull();
    expect(signalGroup(info.watched, 0)).toBe(true);
    expect(await listening(port)).toBe(true);
  }, 30_000);

  test('in this process: release ends the watchdog', async () => {
    const reaper = startReaper();
    const pid = reaper.pid as number;
    expect(pid).toEqual(expect.any(Number));
    reaper.release();
    const start = Date.now();
    while (signalGroup(pid, 0) && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 50));
    expect(signalGroup(pid, 0)).toBe(false);
  });
});
