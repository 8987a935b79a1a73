import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { freePort, hasExited, howExited, isListening, killGroup } from './emulators';

/** The repository root, from both `dev/` (ts-jest) and `dist/dev/` (built). */
export const ROOT = resolve(__dirname, '..', __dirname.includes(`${join('dist', 'dev')}`) ? '..' : '');

export interface ServiceProcess {
  name: 'dispatcher' | 'notifier';
  child: ChildProcess;
  port: number;
  url: string;
}

/** The command a service's Dockerfile runs (its runtime stage's last CMD), as an argv array. */
export function containerCommand(service: 'dispatcher' | 'notifier'): string[] {
  const dockerfile = readFileSync(join(ROOT, service, 'Dockerfile'), 'utf8');
  const cmd = dockerfile
    .split('\n')
    .filter((l) => l.startsWith('CMD '))
    .pop();
  if (!cmd) throw new Error(`${service}/Dockerfile has no CMD`);
  const argv = JSON.parse(cmd.slice(4)) as unknown;
  if (!Array.isArray(argv) || argv[0] !== 'node' || !argv.every((a) => typeof a === 'string')) {
    throw new Error(`${service}/Dockerfile: CMD must be a JSON array that starts with "node", got ${cmd.slice(4)}`);
  }
  return argv as string[];
}

/** The Node flags of a service's container (its Dockerfile's CMD between `node` and the script). */
export function containerNodeFlags(service: 'dispatcher' | 'notifier'): string[] {
  return containerCommand(service).slice(1, -1);
}

/**
 * Starts a service from `dist/` with the command its container runs (the Node flags and entry
 * of its Dockerfile's CMD), in its own process group, and waits until it listens.
 */
export async function startService(
  name: 'dispatcher' | 'notifier',
  env: NodeJS.ProcessEnv,
  opts: {
    port?: number;
    logFile?: string;
    onSpawn?: (child: ChildProcess) => void;
    /** Node flags after the container's own (a later V8 flag wins): for diagnostics only. */
    nodeArgs?: string[];
    /** A script run in place of the service's entry, with the container's flags: for diagnostics only. */
    entry?: string;
  } = {},
): Promise<ServiceProcess> {
  // A port picked here can be taken before the service binds it (by any process's outgoing
  // connection: free ports and ephemeral ones are the same range), so a lost race picks again.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServiceOn(name, env, opts, opts.port ?? (await freePort()));
    } catch (err) {
      if (!(err instanceof PortLost) || opts.port !== undefined || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}

/** Tries at a picked port before a service's start fails for its port alone. */
const PORT_ATTEMPTS = 3;

/** A service that exited because its port was taken between being picked and being bound. */
class PortLost extends Error {}

async function startServiceOn(
  name: 'dispatcher' | 'notifier',
  env: NodeJS.ProcessEnv,
  opts: Parameters<typeof startService>[2] & object,
  port: number,
): Promise<ServiceProcess> {
  const entry = opts.entry ?? join(ROOT, containerCommand(name).at(-1) ?? '');
  const out = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
  const logStart = opts.logFile ? statSync(opts.logFile).size : 0;
  const child = spawn(process.execPath, [...containerNodeFlags(name), ...(opts.nodeArgs ?? []), entry], {
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', out, out],
    detached: true,
  });
  // Known to the caller before it listens, so a stop during start-up can end it too.
  opts.onSpawn?.(child);
  try {
    await waitUntilItListens(child, port, 30_000);
  } catch (err) {
    killGroup(child, 'SIGKILL');
    // A missing build is the usual cause on a fresh clone; said only when it is the cause.
    const hint = existsSync(entry) ? '' : ' (run npm run build first)';
    const Failure = (await portLost(child, port, opts.logFile, logStart)) ? PortLost : Error;
    throw new Failure(
      `the ${name} did not start from ${entry}: ${(err as Error).message}${opts.logFile ? `; see ${opts.logFile}` : ''}${hint}`,
    );
  }
  return { name, child, port, url: `http://127.0.0.1:${port}` };
}

/**
 * Waits until `child` itself listens on `port`, or fails once it has exited. The port answering
 * is not enough: whatever took it would answer too (and the service then exits). Where /proc
 * cannot tell whose socket it is, an answer is taken.
 */
async function waitUntilItListens(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hasExited(child)) {
      throw new Error(`process exited (${howExited(child.exitCode, child.signalCode)}) before listening on ${port}`);
    }
    const own = child.pid === undefined ? null : listensOn(child.pid, port);
    if (own === true || (own === null && (await isListening('127.0.0.1', port)))) return;
    if (Date.now() >= deadline) throw new Error(`it did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Whether process `pid` has a socket listening on TCP `port`, from Linux's /proc (the listening
 * sockets of /proc/net/tcp and tcp6, and the process's descriptors), or null where /proc cannot tell.
 */
export function listensOn(pid: number, port: number): boolean | null {
  const inodes = new Set<string>();
  let readable = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    readable = true;
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      const localPort = Number.parseInt(local?.split(':')[1] ?? '', 16);
      if (state === '0A' && localPort === port && inode) inodes.add(inode);
    }
  }
  if (!readable) return null;
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return null;
  }
  for (const fd of fds) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (socket && inodes.has(socket)) return true;
    } catch {
      // Closed meanwhile.
    }
  }
  return false;
}

/**
 * Whether a service that did not start lost its port: its log says so, or, with no log to read,
 * it exited before listening and something else listens on the port.
 */
async function portLost(
  child: ChildProcess,
  port: number,
  logFile: string | undefined,
  from: number,
): Promise<boolean> {
  if (logFile) return portLostIn(logFile, from, port);
  return hasExited(child) && (await isListening('127.0.0.1', port));
}

/** Whether what a service logged from byte `from` on says it could not listen on `port` as it was in use. */
function portLostIn(logFile: string, from: number, port: number): boolean {
  const log = readFileSync(logFile).subarray(from).toString('utf8');
  return log.includes(` port ${port} (HOST, PORT): listen EADDRINUSE`);
}

/** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stopService(s: ServiceProcess, graceMs = 10_000): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
  killGroup(s.child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(s.child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function killService(s: ServiceProcess): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
  killGroup(s.child, 'SIGKILL');
  await exited;
}

/**
 * The watchdog's program (run with `node -e`). It reads lines on stdin: `+<pgid>` to watch a
 * process group, `-<pgid>` to forget one, `done` once its starter has stopped them all. When
 * stdin ends without `done` (its starter died, however it died: SIGKILL, a crash, an exit that
 * skipped the stop), it sends SIGTERM to every group still watched, SIGKILL after `graceMs` to
 * any still alive, and exits.
 */
export function reaperScript(graceMs: number): string {
  return `'use strict';
const groups = new Set();
let buf = '';
const signal = (pg, sig) => { try { process.kill(-pg, sig); } catch {} };
const alive = (pg) => { try { process.kill(-pg, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
let reaping = false;
const reap = () => {
  if (reaping) return;
  reaping = true;
  for (const pg of groups) signal(pg, 'SIGTERM');
  const deadline = Date.now() + ${Number(graceMs)};
  const check = () => {
    const left = [...groups].filter(alive);
    if (left.length === 0) process.exit(0);
    if (Date.now() >= deadline) { for (const pg of left) signal(pg, 'SIGKILL'); process.exit(0); }
    setTimeout(check, 100);
  };
  check();
};
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line === 'done') process.exit(0);
    if (/^[+-][0-9]+$/.test(line)) (line[0] === '+' ? groups.add(Number(line.slice(1))) : groups.delete(Number(line.slice(1))));
  }
});
process.stdin.on('end', reap);
process.stdin.on('error', reap);
`;
}

export interface Reaper {
  /** The watchdog's pid. */
  pid: number | undefined;
  /** Watch a child spawned `detached` (its own process group). */
  watch(child: ChildProcess): void;
  /** Everything was stopped: the watchdog exits without killing anything. */
  release(): void;
}

/**
 * Starts a watchdog that kills the watched process groups if this process dies without stopping
 * them. Children spawned `detached` are in process groups of their own, out of reach of a
 * terminal's Ctrl-C or hang-up; without this, a runner killed before its cleanup (SIGKILL, a
 * second Ctrl-C mid-stop, a crash) would leave them running. The watchdog is in a session of
 * its own and holds the read end of a pipe only this process writes to: the kernel closes it
 * however this process ends. It never keeps this process alive.
 */
export function startReaper(graceMs = 5000): Reaper {
  const child = spawn(process.execPath, ['-e', reaperScript(graceMs)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => undefined);
  const stdin = child.stdin as Writable & { unref?: () => void };
  stdin.on('error', () => undefined);
  stdin.unref?.();
  child.unref();
  const send = (line: string) => {
    if (stdin.writable) stdin.write(`${line}\n`);
  };
  return {
    pid: child.pid,
    watch: (c) => {
      if (c.pid !== undefined) send(`+${c.pid}`);
    },
    release: () => {
      send('done');
      stdin.end();
    },
  };
}
