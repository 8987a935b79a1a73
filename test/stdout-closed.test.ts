import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../dev/emulators';
import { uniqueProjectId } from '../dev/stack';
import { emulatorServiceEnv } from './helpers';

/**
 * A service whose standard output has lost its reader (`node dist/dispatcher/index.js | head -3`,
 * or a log collector that went away) still stops on SIGTERM: it logs as it stops, and a log
 * line that cannot be written must not keep it from exiting.
 */

const ROOT = join(__dirname, '..');

async function startWithPipedStdout(service: 'dispatcher' | 'notifier') {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist', service, 'index.js')], {
    env: emulatorServiceEnv(uniqueProjectId('stdout-closed'), {
      AUTH_MODE: 'none',
      HOST: '127.0.0.1',
      PORT: String(port),
      SLACK_BOT_TOKEN: 'xoxb-stdout-closed',
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let out = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  // Reads until it listens.
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (out.includes('"message":"listening"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the ${service} exited (${code}) before listening: ${out}`)));
  });
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stderr: () => stderr,
    /** SIGTERM, then the exit code and how long it took; a kill after 15 s counts as hung. */
    async stop(): Promise<{ code: number | null; ms: number }> {
      const started = Date.now();
      child.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000).unref()),
      ]);
      if (code === 'hung') {
        child.kill('SIGKILL');
        throw new Error(`the ${service} did not exit within 15 s of SIGTERM`);
      }
      return { code, ms: Date.now() - started };
    },
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

describe('a service whose stdout has no reader any more', () => {
  test.each(['dispatcher', 'notifier'] as const)(
    'the %s exits 0 on SIGTERM, promptly',
    async (service) => {
      const svc = await startWithPipedStdout(service);
      try {
        // Every write from now on meets a pipe with no reader.
        svc.child.stdout.destroy();
        const { code, ms } = await svc.stop();
        expect(code).toBe(0);
        // Well inside the shutdown grace (7 s) and Cloud Run's 10 s: nothing to drain here.
        expect(ms).toBeLessThan(5_000);
      } finally {
        svc.kill();
      }
    },
    60_000,
  );
});

describe('a service whose stdout is not being read', () => {
  test('keeps answering while its log lines wait, and still exits 0 on SIGTERM', async () => {
    const svc = await startWithPipedStdout('dispatcher');
    try {
      svc.child.stdout.pause();
      // Each refused tick logs the header it got: 40 of them are about 4 times a pipe's buffer.
      const header = 'x'.repeat(6_000);
      for (let i = 0; i < 40; i++) {
        const res = await fetch(`${svc.url}/tick`, {
          method: 'POST',
          headers: { 'X-CloudScheduler-ScheduleTime': header },
          signal: AbortSignal.timeout(2_000),
        });
        expect(res.status).toBe(400);
      }
      const started = Date.now();
      const health = await fetch(`${svc.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      expect(health.status).toBe(200);
      expect(Date.now() - started).toBeLessThan(1_000);
      const { code, ms } = await svc.stop();
      expect(code).toBe(0);
      // The lines still waiting get half a second at most (flushStdoutLogs), then are dropped.
      expect(ms).toBeLessThan(5_000);
    } finally {
      svc.kill();
    }
  }, 60_000);

  test('read as usual, every line reaches stdout, the last one logged at shutdown included', async () => {
    const svc = await startWithPipedStdout('notifier');
    try {
      const { code } = await svc.stop();
      expect(code).toBe(0);
      const lines = svc
        .output()
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { message: string }).message);
      expect(lines.at(-1)).toBe('shut down');
      expect(lines).toContain('shutting down: no new work');
      expect(svc.stderr()).toBe('');
    } finally {
      svc.kill();
    }
  }, 60_000);
});
