import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../dev/emulators';
import { uniqueProjectId } from '../dev/stack';

/**
 * A service whose standard output has lost its reader (`node dist/dispatcher/index.js | head -3`,
 * or a log collector that went away) still stops on SIGTERM: it logs as it stops, and a log
 * line that cannot be written must not keep it from exiting.
 */

const ROOT = join(__dirname, '..');

async function stopWithStdoutClosed(service: 'dispatcher' | 'notifier'): Promise<{ code: number | null; ms: number }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', service, 'index.js')], {
    env: {
      PATH: process.env.PATH,
      GOOGLE_CLOUD_PROJECT: uniqueProjectId('stdout-closed'),
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST,
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST,
      AUTH_MODE: 'none',
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      SLACK_BOT_TOKEN: 'xoxb-stdout-closed',
      METADATA_SERVER_DETECTION: 'none',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    // Read until it listens, then stop reading: every later write meets a pipe with no reader.
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      child.stdout.on('data', (chunk: Buffer) => {
        seen += chunk.toString('utf8');
        if (seen.includes('"message":"listening"')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`the ${service} exited (${code}) before listening: ${seen}`)));
    });
    child.stdout.destroy();
    const started = Date.now();
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000).unref())]);
    if (code === 'hung') throw new Error(`the ${service} did not exit within 15 s of SIGTERM with its stdout closed`);
    return { code, ms: Date.now() - started };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

describe('a service whose stdout has no reader any more', () => {
  test.each(['dispatcher', 'notifier'] as const)(
    'the %s exits 0 on SIGTERM, promptly',
    async (service) => {
      const { code, ms } = await stopWithStdoutClosed(service);
      expect(code).toBe(0);
      // Well inside the shutdown grace (8 s) and Cloud Run's 10 s: nothing to drain here.
      expect(ms).toBeLessThan(5_000);
    },
    60_000,
  );
});
