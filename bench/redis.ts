import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, killGroup, waitForPort } from '../dev/emulators';
import { onCleanup } from './cleanup';

/**
 * A throwaway Redis for the BullMQ peer: on a free loopback port, nothing saved to disk
 * (`--save ''`, `--appendonly no`), in its own process group, stopped after the phase.
 */

function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', timeout: 5000 }).trim() || null;
  } catch {
    return null;
  }
}

/** The redis-server binary, installing Debian's package when it is missing and we may. */
export function ensureRedisServer(install: boolean, say: (line: string) => void): string | null {
  const found = which('redis-server');
  if (found) return found;
  if (!install) {
    say('  redis-server is not installed (and --no-install-redis): the BullMQ peer is skipped');
    return null;
  }
  if (process.getuid?.() !== 0 || !which('apt-get')) {
    say('  redis-server is not installed and apt-get is not usable as this user: the BullMQ peer is skipped');
    return null;
  }
  say('  installing redis-server with apt-get (Debian package)…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', timeout: 300_000, env });
    execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', timeout: 300_000, env });
  } catch (err) {
    say(`  apt-get install redis-server failed (${(err as Error).message}): the BullMQ peer is skipped`);
    return null;
  }
  return which('redis-server');
}

export interface RedisServer {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function startRedis(bin: string, logDir: string): Promise<RedisServer> {
  const port = await freePort();
  mkdirSync(logDir, { recursive: true });
  const out = openSync(join(logDir, `redis-${port}.log`), 'a');
  const child = spawn(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    { detached: true, stdio: ['ignore', out, out] },
  );
  const stopNow = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    killGroup(child, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const stop = onCleanup('redis-server', stopNow, child);
  try {
    await waitForPort('127.0.0.1', port, 15_000, child);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, child, stop };
}
