import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFirestore } from '../shared/firestore';
import { accountSchema } from '../shared/model';

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

describe('import-accounts, on the emulator', () => {
  it('writes every account a report reads, and a second import replaces them', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const dir = mkdtempSync(join(tmpdir(), 'accounts-'));
    const file = join(dir, 'accounts.json');
    writeFileSync(
      file,
      JSON.stringify([
        { id: 'acct-1', name: 'Acme', metrics: [{ label: 'Signups', value: 12 }], highlights: ['New plan'] },
        { id: 'acct-2', name: 'Beta' },
      ]),
    );
    const first = await runCli(['-p', 'demo-cli-accounts', 'import-accounts', file], env);
    expect(first).toMatchObject({ code: 0, stdout: expect.stringContaining('imported 2 accounts') });
    writeFileSync(file, JSON.stringify([{ id: 'acct-2', name: 'Beta Inc.' }]));
    expect((await runCli(['-p', 'demo-cli-accounts', 'import-accounts', file], env)).code).toBe(0);

    const db = createFirestore('demo-cli-accounts');
    try {
      const [a1, a2] = await db.getAll(db.doc('accounts/acct-1'), db.doc('accounts/acct-2'));
      expect(accountSchema.parse(a1?.data())).toEqual({
        name: 'Acme',
        metrics: [{ label: 'Signups', value: 12 }],
        highlights: ['New plan'],
      });
      expect(a2?.data()).toEqual({ name: 'Beta Inc.', metrics: [], highlights: [] });
    } finally {
      await db.terminate();
    }

    const bad = await runCli(['-p', 'demo-cli-accounts', 'import-accounts', join(dir, 'missing.json')], env);
    expect(bad.stderr).toMatch(/^slack-fanout: cannot read .*missing\.json: ENOENT/);
    // Latin-1 is refused, not imported with a mangled id; a UTF-8 byte-order mark is fine.
    writeFileSync(file, Buffer.from('[{"id":"caf\xe9","name":"Caf\xe9"}]', 'latin1'));
    const latin1 = await runCli(['-p', 'demo-cli-accounts', 'import-accounts', file], env);
    expect(latin1.stderr).toMatch(/accounts\.json is not UTF-8 text/);
    writeFileSync(file, `\ufeff${JSON.stringify([{ id: 'acct-3', name: 'Gamma' }])}`);
    expect((await runCli(['-p', 'demo-cli-accounts', 'import-accounts', file], env)).stdout).toContain(
      'imported 1 accounts',
    );
  });
});

describe('redrive, on the emulators', () => {
  it('prints its result alone on stdout, and its logs and progress on stderr', async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    const occurrence = '2030-01-01T00:00:00.000Z';
    const runId = `s_cli:${occurrence}`;
    const db = createFirestore('demo-cli-redrive');
    try {
      await db.doc(`runs/${runId}`).set({ scheduleId: 's_cli', occurrence, status: 'done' });
      await db
        .doc(`deliveries/n-1:${occurrence}`)
        .set({ notificationId: 'n-1', occurrence, runId, status: 'dead', attempts: 10 });
    } finally {
      await db.terminate();
    }
    // A topic that does not exist: the publish fails, and says so.
    const res = await runCli(['-p', 'demo-cli-redrive', 'redrive', runId, '--topic', 'no-such-topic'], env);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout)).toEqual({
      runId,
      redriven: 0,
      skipped: 0,
      failed: 1,
      waiting: 0,
      waitingUntil: null,
    });
    expect(res.stderr).toContain('redrive publish failed');
    expect(res.stderr).toContain('redrive: 0 redriven, 0 skipped, 1 failed so far');
  });
});

describe('the command line names what is wrong, as typed', () => {
  it('an option of add by its flag, a blank id, an empty pause reason', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const add = await runCli(
      [
        '-p',
        'demo-cli-names',
        'add',
        '--id',
        'n-1',
        '--account',
        'a-1',
        '--channel',
        'C1',
        '--cron',
        '* * * * *',
        '--timezone',
        'UTC',
        '--team',
        '',
      ],
      env,
    );
    expect(add.stderr).toMatch(/^slack-fanout: add: --team: /);
    const show = await runCli(['-p', 'demo-cli-names', 'show', '  '], env);
    expect(show.stderr).toBe('slack-fanout: notification id "  ": is blank\n');
    const pause = await runCli(['-p', 'demo-cli-names', 'pause', 'n-1', '--reason', ''], env);
    expect(pause.code).not.toBe(0);
    expect(pause.stderr).toContain("option '--reason <text>' argument '' is invalid");
  });
});
