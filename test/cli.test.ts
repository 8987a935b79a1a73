import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(__dirname, '..', 'dist', 'bin', 'slack-fanout.js');

/** Runs the built command with only `env` (and a HOME holding no credentials). */
function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const home = mkdtempSync(join(tmpdir(), 'no-adc-'));
  const fullEnv = { PATH: process.env.PATH ?? '', HOME: home, ...env };
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: fullEnv, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

describe('the built command, off the emulators', () => {
  it('without Google credentials says so in one line and exits 2, before touching anything', async () => {
    // No emulator variables, no credentials file, no metadata server to ask.
    const result = await runCli(['-p', 'demo-x', 'show', 'n-1'], { METADATA_SERVER_DETECTION: 'none' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^slack-fanout: no Google credentials .*gcloud auth application-default login/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('with only the Firestore emulator set, a Firestore command needs no credentials', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const show = await runCli(['-p', 'demo-cli-fs', 'show', 'n-1'], env);
    expect(show.stderr).toBe('slack-fanout: notification n-1 does not exist\n');
    // redrive publishes too: without the Pub/Sub emulator it needs credentials.
    const redrive = await runCli(['-p', 'demo-cli-fs', 'redrive', 'r-1'], env);
    expect(redrive.stderr).toMatch(/^slack-fanout: no Google credentials/);
  });
});
