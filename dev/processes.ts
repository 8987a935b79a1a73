import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort, killGroup, waitForPort } from './emulators';

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
  const port = opts.port ?? (await freePort());
  const args = containerCommand(name).slice(1);
  const entry = opts.entry ?? join(ROOT, args.at(-1) ?? '');
  const out = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [...args.slice(0, -1), ...(opts.nodeArgs ?? []), entry], {
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', out, out],
    detached: true,
  });
  // Known to the caller before it listens, so a stop during start-up can end it too.
  opts.onSpawn?.(child);
  try {
    await waitForPort('127.0.0.1', port, 30_000, child);
  } catch (err) {
    killGroup(child, 'SIGKILL');
    throw new Error(
      `the ${name} did not start from ${entry}: ${(err as Error).message}${opts.logFile ? `; see ${opts.logFile}` : ''} (run npm run build first)`,
    );
  }
  return { name, child, port, url: `http://127.0.0.1:${port}` };
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
