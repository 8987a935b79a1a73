import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('the built command, off the emulators', () => {
  it('without Google credentials says so in one line and exits 2, before touching anything', async () => {
    const cli = join(__dirname, '..', 'dist', 'bin', 'slack-fanout.js');
    const home = mkdtempSync(join(tmpdir(), 'no-adc-'));
    // No emulator variables, no credentials file, no metadata server to ask.
    const env = { PATH: process.env.PATH ?? '', HOME: home, METADATA_SERVER_DETECTION: 'none' };
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [cli, '-p', 'demo-x', 'show', 'n-1'], { env, timeout: 30_000 }, (err, _out, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
      );
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^slack-fanout: no Google credentials .*gcloud auth application-default login/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('with only the Firestore emulator set, a Firestore command needs no credentials', async () => {
    const cli = join(__dirname, '..', 'dist', 'bin', 'slack-fanout.js');
    const home = mkdtempSync(join(tmpdir(), 'no-adc-'));
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
    };
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [cli, '-p', 'demo-cli-fs', ...args],
          { env, timeout: 30_000 },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
    const show = await run(['show', 'n-1']);
    expect(show.stderr).toBe('slack-fanout: notification n-1 does not exist\n');
    // redrive publishes too: without the Pub/Sub emulator it needs credentials.
    const redrive = await run(['redrive', 'r-1']);
    expect(redrive.stderr).toMatch(/^slack-fanout: no Google credentials/);
  });
});
