import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
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
}

export interface Emulators {
  pubsub: Emulator;
  firestore: Emulator;
  env: { PUBSUB_EMULATOR_HOST: string; FIRESTORE_EMULATOR_HOST: string };
  stop(): Promise<void>;
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
    if (child && child.exitCode !== null)
      throw new Error(`process exited with code ${child.exitCode} before listening on ${port}`);
    if (await isListening(host, port)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
}

/**
 * Waits for an emulator's port; a failure names the emulator, quotes the end of its log (where
 * a missing Java or a taken port says itself) and gives the log's path.
 */
async function waitForEmulator(e: Emulator, timeoutMs: number): Promise<void> {
  const port = Number(e.host.split(':')[1]);
  try {
    await waitForPort('127.0.0.1', port, timeoutMs, e.child);
  } catch (err) {
    const tail = logTail(e.logFile);
    const java = /java/i.test(tail) ? ' (the emulators need Java 17 on PATH or in JAVA_HOME)' : '';
    throw new Error(
      `the ${e.name} emulator: ${(err as Error).message}${tail ? `; its log ends: ${tail}` : ''}${java} (log: ${e.logFile})`,
    );
  }
}

/** The last few lines of a log that say something, on one line; empty when there is none. */
export function logTail(file: string, count = 3): string {
  return tailOf(readLog(file), count);
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
  const out = openSync(logFile, 'a');
  const [cmd, args] =
    name === 'pubsub'
      ? [join(platform, 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator'), [`--host=127.0.0.1`, `--port=${port}`]]
      : [
          join(platform, 'cloud-firestore-emulator', 'cloud_firestore_emulator'),
          ['start', '--host=127.0.0.1', `--port=${port}`],
        ];
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out] });
  return { name, host: `127.0.0.1:${port}`, child, logFile };
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

async function stopEmulator(e: Emulator): Promise<void> {
  if (exited(e.child)) return;
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
}

export async function startEmulators(opts: StartOptions = {}): Promise<Emulators> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEmulatorsOnce(opts, attempt === 1 ? opts.ports : undefined);
    } catch (err) {
      // A port picked free can be taken before the emulator binds it (another process, or the
      // other emulator's own extra port): new ports, up to three tries.
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
      opts.onProgress?.(`${err.message}; starting again on other ports`);
    }
  }
}

class PortTaken extends Error {}

/** How long an emulator must stay up once its port answers: a failed bind exits at once. */
const SETTLE_MS = 1000;
/** How long an emulator whose log shows a failed bind is given to exit. */
const BIND_EXIT_WAIT_MS = 10_000;
/** What an emulator's log says when its port was taken. */
const BIND_FAILED = /address already in use|BindException/i;

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves once `child` has exited, or after `ms`, whichever comes first. */
async function exitWithin(child: ChildProcess, ms: number): Promise<void> {
  if (exited(child)) return;
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    child.once('exit', () => resolve());
  });
  clearTimeout(timer);
}

async function startEmulatorsOnce(opts: StartOptions, ports?: [number, number]): Promise<Emulators> {
  const platform = sdkPlatformDir();
  const logDir = opts.logDir ?? join(process.cwd(), '.emulators');
  const [psPort, fsPort] = ports ?? [await freePort(), await freePort()];
  opts.onProgress?.(
    `starting the Pub/Sub emulator on 127.0.0.1:${psPort} and the Firestore emulator on 127.0.0.1:${fsPort}`,
  );
  const pubsub = launch('pubsub', platform, psPort, logDir);
  const firestore = launch('firestore', platform, fsPort, logDir);
  const all = [pubsub, firestore];
  for (const e of all) opts.onSpawn?.(e.child);
  const stop = async () => {
    await Promise.all(all.map(stopEmulator));
  };
  try {
    const timeout = opts.timeoutMs ?? 60_000;
    await Promise.all(all.map((e) => waitForEmulator(e, timeout)));
    // Something else may be what answers on the port: an emulator that could not bind it has
    // exited, or exits now. Only one still running after a moment is taken as started.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    for (const e of all) {
      // One whose log already says it could not bind is on its way out (a JVM can take longer
      // than the moment above to exit on a busy machine): it is waited for, not taken as started.
      if (!exited(e.child) && BIND_FAILED.test(readLog(e.logFile))) await exitWithin(e.child, BIND_EXIT_WAIT_MS);
      if (exited(e.child)) {
        const log = readLog(e.logFile);
        const tail = tailOf(log);
        const taken = BIND_FAILED.test(log);
        const why = `the ${e.name} emulator exited just after ${e.host} answered${taken ? ' (its port was taken)' : ''}${tail ? `; its log ends: ${tail}` : ''} (log: ${e.logFile})`;
        throw taken ? new PortTaken(why) : new Error(why);
      }
    }
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
  };
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Deletes every document of a project on the Firestore emulator (its own REST endpoint). */
export async function clearFirestore(host: string, projectId: string): Promise<void> {
  const res = await fetch(`http://${host}/emulator/v1/projects/${projectId}/databases/(default)/documents`, {
    method: 'DELETE',
  });
  if (!res.ok) throw new Error(`clearing the Firestore emulator failed: HTTP ${res.status}`);
}
