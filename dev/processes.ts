import { type ChildProcess, spawn } from 'node:child_process';
import { openSync } from 'node:fs';
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

/**
 * Starts a service from `dist/` with the command its container runs, in its own process
 * group, and waits until it listens.
 */
export async function startService(
  name: 'dispatcher' | 'notifier',
  env: NodeJS.ProcessEnv,
  opts: { port?: number; logFile?: string; onSpawn?: (child: ChildProcess) => void } = {},
): Promise<ServiceProcess> {
  const port = opts.port ?? (await freePort());
  const entry = join(ROOT, 'dist', name, 'index.js');
  const out = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [entry], {
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
