import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { connectProblem } from '../shared/net';

/**
 * Starts the gcloud CLI's Pub/Sub and Firestore emulators on free loopback ports.
 * Each runs in its own process group, and stop() ends the whole group: the emulators
 * are Java children of a launcher script, and killing only the launcher leaves Java
 * holding the port.
 */

export interface Emulator {
  name: 'pubsub' | 'firestore';
  host: string;
  child: ChildProcess;
  logFile: string;
  /** Where this launch's output starts in the log (a log of the same port is appended to). */
  logStart: number;
}

export interface Emulators {
  pubsub: Emulator;
  firestore: Emulator;
  env: { PUBSUB_EMULATOR_HOST: string; FIRESTORE_EMULATOR_HOST: string };
  stop(): Promise<void>;
  /**
   * Tells `listener` once, with why (`the Pub/Sub emulator exited (SIGKILL)`), when an emulator
   * exits before stop() is called: a crash, its Java killed. It keeps nothing on disk, so what
   * was sent to it is gone, and a restart cannot resume it.
   */
  onExit(listener: (why: string) => void): void;
}

/** Each emulator as a person names it. */
export const EMULATOR_TITLES: Record<Emulator['name'], string> = {
  pubsub: 'the Pub/Sub emulator',
  firestore: 'the Firestore emulator',
};

/**
 * How an emulator ended, in words. The Firestore emulator's launcher is a shell that runs Java
 * as its child, and exits 128 + n when Java is ended by signal n: that signal is named too.
 */
export function emulatorExit(name: Emulator['name'], code: number | null, signal: NodeJS.Signals | null): string {
  const bySignal =
    signal === null && code !== null && code > 128
      ? Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0]
      : undefined;
  return `${EMULATOR_TITLES[name]} exited (${howExited(code, signal)}${bySignal ? `, its Java ended by ${bySignal}` : ''})`;
}

/**
 * Calls `listener` once, with emulatorExit's words, for the first of `emulators` to exit while
 * `expected()` is false (one already gone is told at once); exits once it is true go unsaid.
 */
export function watchExits(
  emulators: readonly Emulator[],
  expected: () => boolean,
  listener: (why: string) => void,
): void {
  let told = false;
  const tell = (e: Emulator) => {
    if (told || expected()) return;
    told = true;
    listener(emulatorExit(e.name, e.child.exitCode, e.child.signalCode));
  };
  for (const e of emulators) {
    if (hasExited(e.child)) queueMicrotask(() => tell(e));
    else e.child.once('exit', () => tell(e));
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Why nothing can listen on 127.0.0.1:`port` now (in use, not allowed), or null when something can. */
export async function portProblem(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'EADDRINUSE' ? `127.0.0.1:${port} is in use` : `127.0.0.1:${port}: ${err.message}`),
    );
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(null)));
  });
}

/** The SDK's platform folder, where the emulators' own launchers live. */
export function sdkPlatformDir(): string {
  const fromEnv = process.env.CLOUDSDK_ROOT_DIR;
  const candidates = fromEnv ? [join(fromEnv, 'platform')] : [];
  try {
    const gcloud = execFileSync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 20_000,
    }).trim();
    if (gcloud) candidates.push(join(gcloud, 'platform'));
  } catch {
    // gcloud missing or slow: fall back to the usual install places.
  }
  candidates.push(
    '/usr/lib/google-cloud-sdk/platform',
    '/usr/share/google-cloud-sdk/platform',
    '/opt/google-cloud-sdk/platform',
  );
  const found = candidates.find(
    (dir) => existsSync(join(dir, 'pubsub-emulator')) && existsSync(join(dir, 'cloud-firestore-emulator')),
  );
  if (!found) {
    throw new Error(
      `the Pub/Sub and Firestore emulators were not found (looked in ${candidates.join(', ')}); install the gcloud CLI with its pubsub-emulator and cloud-firestore-emulator components and Java 17`,
    );
  }
  return found;
}

/** Whether something accepts a connection on host:port within `timeoutMs`. */
export async function isListening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return (await connectProblem(host, port, timeoutMs)) === null;
}

export async function waitForPort(host: string, port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && hasExited(child)) {
      throw new Error(`process exited (${howExited(child.exitCode, child.signalCode)}) before listening on ${port}`);
    }
    if (await isListening(host, port)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
}

/** What each emulator writes once it serves on its port (both bind it before they say so). */
const READY: Record<Emulator['name'], RegExp> = {
  pubsub: /Server started, listening on \d+/,
  firestore: /Dev App Server is now running/,
};

/**
 * Waits until the emulator says in its log that it serves, and its port answers. Its own log,
 * not the port alone: whatever else took the port would answer too. A failed bind (the port
 * taken since it was picked) is PortTaken; the Pub/Sub emulator does not exit on one, so it is
 * read in the log, not from an exit. Any other failure names the emulator, quotes the end of
 * its log (where a missing Java says itself) and gives the log's path.
 */
async function waitForEmulator(e: Emulator, timeoutMs: number): Promise<void> {
  const port = Number(e.host.split(':')[1]);
  const fail = (what: string): Error => {
    const tail = tailOf(launchLog(e));
    const java = /java/i.test(tail) ? ' (the emulators need Java 17 on PATH or in JAVA_HOME)' : '';
    return new Error(
      `the ${e.name} emulator: ${what}${tail ? `; its log ends: ${tail}` : ''}${java} (log: ${e.logFile})`,
    );
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = launchLog(e);
    if (BIND_FAILED.test(log)) {
      throw new PortTaken(
        `the ${e.name} emulator could not bind ${e.host} (its port was taken) (log: ${e.logFile})`,
        e.name,
      );
    }
    if (hasExited(e.child)) {
      throw fail(`process exited with code ${e.child.exitCode ?? e.child.signalCode} before serving on ${port}`);
    }
    if (READY[e.name].test(log) && (await isListening('127.0.0.1', port))) return;
    if (Date.now() >= deadline) throw fail(`it did not serve on ${e.host} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The last `count` non-blank lines of a log, joined, at most 600 characters. */
function tailOf(text: string, count = 3): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return lines.slice(-count).join(' | ').slice(-600);
}

function launch(name: Emulator['name'], platform: string, port: number, logDir: string): Emulator {
  const logFile = join(logDir, `${name}-${port}.log`);
  mkdirSync(dirname(logFile), { recursive: true });
  const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
  const out = openSync(logFile, 'a');
  const [cmd, args] =
    name === 'pubsub'
      ? [join(platform, 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator'), [`--host=127.0.0.1`, `--port=${port}`]]
      : [
          join(platform, 'cloud-firestore-emulator', 'cloud_firestore_emulator'),
          ['start', '--host=127.0.0.1', `--port=${port}`],
        ];
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out] });
  return { name, host: `127.0.0.1:${port}`, child, logFile, logStart };
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Whether a process of `child`'s process group is still running. A zombie (exited, waiting for
 * its parent or init to reap it) is not: on Linux the group's members are read from /proc, so
 * one is passed over; elsewhere any member counts.
 */
export function groupAlive(child: ChildProcess): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, 0);
  } catch (err) {
    // EPERM: there, but not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return true;
  }
  return pids.some((pid) => {
    try {
      // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so read after its last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return pgrp === String(child.pid) && state !== 'Z' && state !== 'X';
    } catch {
      return false; // gone meanwhile
    }
  });
}

/**
 * Waits up to `ms` for every process group of `children` to be empty, and returns the ones
 * that are not: what a stop can truthfully say is left running.
 */
export async function groupsLeft(children: readonly ChildProcess[], ms: number): Promise<ChildProcess[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = children.filter(groupAlive);
    if (left.length === 0 || Date.now() >= deadline) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stopEmulator(e: Emulator): Promise<void> {
  if (hasExited(e.child)) return;
  const gone = new Promise<void>((resolve) => e.child.once('exit', () => resolve()));
  killGroup(e.child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(e.child, 'SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
  // The Java child may outlive the launcher by a moment.
  killGroup(e.child, 'SIGKILL');
}

export interface StartOptions {
  logDir?: string;
  /** Told of each emulator process as it is spawned, so a stop during start-up can end it. */
  onSpawn?: (child: ChildProcess) => void;
  timeoutMs?: number;
  onProgress?: (line: string) => void;
  /** The Pub/Sub and Firestore ports of the first try (free ones otherwise), for tests. */
  ports?: [number, number];
  /**
   * Ports a user chose, kept on every try: one taken is an error that names it, not a reason to
   * pick another (the variables they set for the CLI would point nowhere).
   */
  chosen?: { pubsub?: number; firestore?: number };
}

export async function startEmulators(opts: StartOptions = {}): Promise<Emulators> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEmulatorsOnce(opts, attempt === 1 ? opts.ports : undefined);
    } catch (err) {
      // A port picked free can be taken before the emulator binds it (another process, or the
      // other emulator's own extra port): new ports, up to three tries.
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
      const chosen = opts.chosen?.[err.emulator];
      if (chosen !== undefined) {
        throw new Error(
          `the ${err.emulator} emulator could not listen on 127.0.0.1:${chosen}, the port chosen for it: it was taken`,
        );
      }
      opts.onProgress?.(`${err.message}; starting again on other ports`);
    }
  }
}

class PortTaken extends Error {
  constructor(
    message: string,
    readonly emulator: Emulator['name'],
  ) {
    super(message);
  }
}

/** What an emulator's log says when its port was taken. */
const BIND_FAILED = /address already in use|BindException/i;

/** Whether a child has exited: by a signal, it has no exit code, only its signal. */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** How an exited child ended, in words: `code 1`, `SIGKILL`. */
export function howExited(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? signal : `code ${code ?? '?'}`;
}

async function startEmulatorsOnce(opts: StartOptions, ports?: [number, number]): Promise<Emulators> {
  const platform = sdkPlatformDir();
  const logDir = opts.logDir ?? join(process.cwd(), '.emulators');
  const [psPort, fsPort] = ports ?? [
    opts.chosen?.pubsub ?? (await freePort()),
    opts.chosen?.firestore ?? (await freePort()),
  ];
  opts.onProgress?.(
    `starting the Pub/Sub emulator on 127.0.0.1:${psPort} and the Firestore emulator on 127.0.0.1:${fsPort}`,
  );
  const pubsub = launch('pubsub', platform, psPort, logDir);
  const firestore = launch('firestore', platform, fsPort, logDir);
  const all = [pubsub, firestore];
  for (const e of all) opts.onSpawn?.(e.child);
  let stopping = false;
  const stop = async () => {
    stopping = true;
    await Promise.all(all.map(stopEmulator));
  };
  try {
    const timeout = opts.timeoutMs ?? 60_000;
    await Promise.all(all.map((e) => waitForEmulator(e, timeout)));
  } catch (err) {
    await stop();
    if (err instanceof PortTaken) throw err;
    throw new Error(`the emulators did not start: ${(err as Error).message}`);
  }
  return {
    pubsub,
    firestore,
    env: { PUBSUB_EMULATOR_HOST: pubsub.host, FIRESTORE_EMULATOR_HOST: firestore.host },
    stop,
    onExit: (listener) => watchExits(all, () => stopping, listener),
  };
}

function readLog(file: string, from = 0): string {
  try {
    return readFileSync(file).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

/** What the emulator has written to its log since this launch. */
function launchLog(e: Emulator): string {
  return readLog(e.logFile, e.logStart);
}

/** Deletes every document of a project on the Firestore emulator (its own REST endpoint). */
export async function clearFirestore(host: string, projectId: string): Promise<void> {
  const res = await fetch(`http://${host}/emulator/v1/projects/${projectId}/databases/(default)/documents`, {
    method: 'DELETE',
  });
  if (!res.ok) throw new Error(`clearing the Firestore emulator failed: HTTP ${res.status}`);
}
