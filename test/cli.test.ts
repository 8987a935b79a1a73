import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniqueProjectId } from '../dev/stack';
import { mapLimit } from '../shared/concurrency';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { bucketIds } from '../shared/members';
import { accountSchema } from '../shared/model';
import { saveNotifications, setNotificationEnabled } from '../shared/notifications';
import { createPubSub } from '../shared/pubsub';
import { RUN_RECORD_GONE } from '../shared/redrive';
import { scheduleIdOf } from '../shared/schedule';
import { COLLECTIONS } from '../shared/topology';
import { collectOutput, notification } from './helpers';

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

/**
 * What an import of 6,000 notifications stopped by a signal says last, with how many it saved:
 * stopped while it saves them, or, on a machine slow enough that the signal comes before their
 * one schedule is made, while it makes it (0 saved).
 */
const INTERRUPTED_IMPORT =
  /\nimport: interrupted: saved (\d+) of 6000 notifications, (?:every one whole|while making their schedules) \(saving them again is safe\)\n$/;

/** An import file of `count` daily notifications (`{prefix}{i}`), in a directory of its own. */
function notificationsFile(count: number, prefix = 'n-'): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'import-'));
  const file = join(dir, 'n.json');
  const items = Array.from({ length: count }, (_, i) => ({
    id: `${prefix}${i}`,
    accountId: 'a-1',
    channelId: 'C1',
    cron: '0 9 * * *',
    timezone: 'UTC',
  }));
  writeFileSync(file, JSON.stringify(items));
  return { dir, file };
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
    const redrive = await runCli(['-p', 'demo-cli-fs', 'redrive', 's_1:2030-01-01T00:00:00Z'], env);
    expect(redrive.stderr).toMatch(/^slack-fanout: no Google credentials/);
    // Which of the two emulator variables is missing, said.
    expect(redrive.stderr).toMatch(
      /; FIRESTORE_EMULATOR_HOST is set, but not PUBSUB_EMULATOR_HOST, which redrive needs as well \(it publishes to Pub\/Sub\): set it for the Pub\/Sub emulator\n$/,
    );
  });
});

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the built command, with no emulator listening', () => {
  it('says at once, in one line, that Firestore could not be reached and where it looked; exit 1', async () => {
    const [fs, ps] = [await closedPort(), await closedPort()];
    const env = { FIRESTORE_EMULATOR_HOST: `127.0.0.1:${fs}`, PUBSUB_EMULATOR_HOST: `127.0.0.1:${ps}` };
    for (const args of [['show', 'x'], ['resume', '--all-paused'], ['reindex']]) {
      const started = Date.now();
      const res = await runCli(['-p', 'demo-cli-down', ...args], env);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `slack-fanout: cannot reach Firestore at FIRESTORE_EMULATOR_HOST=127.0.0.1:${fs}: connect ECONNREFUSED 127.0.0.1:${fs} (is the emulator running?)\n`,
      );
    }
    // redrive publishes too: Pub/Sub is checked first.
    const redrive = await runCli(['-p', 'demo-cli-down', 'redrive', 's_1:2030-01-01T00:00:00Z'], env);
    expect(redrive.code).toBe(1);
    expect(redrive.stderr).toMatch(/^slack-fanout: cannot reach Pub\/Sub at PUBSUB_EMULATOR_HOST=127\.0\.0\.1:\d+: /);
  });
});

/** A local server that accepts connections and says nothing: a stopped or overloaded emulator. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const held: import('node:net').Socket[] = [];
  const silent = createServer((socket) => held.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as { port: number };
  return {
    port,
    close: async () => {
      for (const socket of held) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    },
  };
}

describe('the built command, with a Firestore that takes the connection and never answers', () => {
  it('gives up after the first read’s 10 s, in one line, exit 1', async () => {
    const { port, close } = await silentServer();
    try {
      const started = Date.now();
      const res = await runCli(['-p', 'demo-cli-silent', 'show', 'n-1'], {
        FIRESTORE_EMULATOR_HOST: `127.0.0.1:${port}`,
      });
      expect(Date.now() - started).toBeLessThan(25_000);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `slack-fanout: cannot use Firestore: Firestore at FIRESTORE_EMULATOR_HOST=127.0.0.1:${port} took the connection but did not answer a first read within 10 s\n`,
      );
    } finally {
      await close();
    }
  }, 40_000);
});

describe('redrive, with a Pub/Sub that takes the connection and never answers', () => {
  it('gives up on its first Pub/Sub call after 10 s, in one line, exit 1, nothing redriven', async () => {
    const { port, close } = await silentServer();
    try {
      const started = Date.now();
      const res = await runCli(['-p', 'demo-cli-silent-pubsub', 'redrive', 's_1:2030-01-01T00:00:00Z'], {
        FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
        PUBSUB_EMULATOR_HOST: `127.0.0.1:${port}`,
      });
      expect(Date.now() - started).toBeLessThan(25_000);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `slack-fanout: cannot use Pub/Sub: Pub/Sub at PUBSUB_EMULATOR_HOST=127.0.0.1:${port} took the connection but did not answer a first call (listing the subscriptions of topic slack-fanout-dispatch) within 10 s; nothing was redriven\n`,
      );
    } finally {
      await close();
    }
  }, 40_000);
});

describe('the built command, with the two emulator variables swapped', () => {
  const firestoreHost = process.env.FIRESTORE_EMULATOR_HOST ?? '';
  const pubsubHost = process.env.PUBSUB_EMULATOR_HOST ?? '';

  it('names the address that answered as another service, exit 1', async () => {
    const res = await runCli(['-p', 'demo-cli-swapped', 'show', 'n-1'], {
      FIRESTORE_EMULATOR_HOST: pubsubHost,
      PUBSUB_EMULATOR_HOST: firestoreHost,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      new RegExp(
        `^slack-fanout: cannot use Firestore: FIRESTORE_EMULATOR_HOST=${pubsubHost.replace(/\./g, '\\.')} answered, but not as Firestore \\(12 UNIMPLEMENTED: .*\\); is that the Pub/Sub emulator's address\\?\n$`,
      ),
    );
  }, 40_000);

  it('names an address where an HTTP/1 server answers (a neighbouring port) at once, not after the first call’s 10 s', async () => {
    const http1 = createHttpServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => http1.listen(0, '127.0.0.1', () => resolve()));
    const { port } = http1.address() as AddressInfo;
    try {
      const started = Date.now();
      const [show, redrive] = await Promise.all([
        runCli(['-p', 'demo-cli-http1', 'show', 'n-1'], { FIRESTORE_EMULATOR_HOST: `127.0.0.1:${port}` }),
        runCli(['-p', 'demo-cli-http1', 'redrive', 's_1:2030-01-01T00:00:00Z'], {
          FIRESTORE_EMULATOR_HOST: firestoreHost,
          PUBSUB_EMULATOR_HOST: `127.0.0.1:${port}`,
        }),
      ]);
      expect(Date.now() - started).toBeLessThan(8000);
      expect([show.code, show.stderr]).toEqual([
        1,
        `slack-fanout: cannot use Firestore: FIRESTORE_EMULATOR_HOST=127.0.0.1:${port} took the connection, but it answered HTTP/1 ("HTTP/1.1 400 Bad Request"), not HTTP/2 as gRPC needs: is that the Firestore emulator's address?\n`,
      ]);
      expect([redrive.code, redrive.stderr]).toEqual([
        1,
        `slack-fanout: cannot use Pub/Sub: PUBSUB_EMULATOR_HOST=127.0.0.1:${port} took the connection, but it answered HTTP/1 ("HTTP/1.1 400 Bad Request"), not HTTP/2 as gRPC needs: is that the Pub/Sub emulator's address?\n`,
      ]);
    } finally {
      http1.closeAllConnections();
      await new Promise<void>((resolve) => http1.close(() => resolve()));
    }
  }, 40_000);

  it('redrive stops before reopening anything when its Pub/Sub is another service', async () => {
    const res = await runCli(['-p', 'demo-cli-swapped', 'redrive', 's_1:2030-01-01T00:00:00Z'], {
      FIRESTORE_EMULATOR_HOST: firestoreHost,
      PUBSUB_EMULATOR_HOST: firestoreHost,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /^slack-fanout: cannot use Pub\/Sub: PUBSUB_EMULATOR_HOST=\S+ answered, but not as Pub\/Sub \(12 UNIMPLEMENTED: .*\); is that the Firestore emulator's address\?; nothing was redriven\n$/,
    );
  }, 40_000);
});

describe('redrive interrupted before it starts', () => {
  it('says nothing changed, exit 130, without waiting for the Pub/Sub that does not answer', async () => {
    const { port, close } = await silentServer();
    try {
      const child = spawn(process.execPath, [CLI, '-p', 'demo-cli-int-early', 'redrive', 's_1:2030-01-01T00:00:00Z'], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: mkdtempSync(join(tmpdir(), 'no-adc-')),
          FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
          PUBSUB_EMULATOR_HOST: `127.0.0.1:${port}`,
        },
      });
      const { out, exited } = collectOutput(child);
      const started = Date.now();
      // Past the command's start, within its first Pub/Sub call's 10 s.
      const timer = setTimeout(() => child.kill('SIGINT'), 5000);
      const code = await exited;
      clearTimeout(timer);
      const { stdout, stderr } = out;
      expect(Date.now() - started).toBeLessThan(9000);
      expect({ code, stdout, stderr }).toEqual({
        code: 130,
        stdout: '',
        stderr: 'redrive: interrupted before it reopened any delivery: nothing changed\n',
      });
    } finally {
      await close();
    }
  }, 30_000);
});

describe('a project id that cannot be one', () => {
  it.each(['BadProj', 'my_project', '-x', 'p'])(
    '%j is refused in one line, exit 2, before any call',
    async (project) => {
      const res = await runCli(['-p', project, 'show', 'n-1'], { FIRESTORE_EMULATOR_HOST: '127.0.0.1:9' });
      expect(res.code).toBe(2);
      expect(res.stderr).toBe(
        `slack-fanout: project ${JSON.stringify(project)} is not a Google Cloud project id (3 to 63 lower-case letters, ` +
          'digits and hyphens, starting with a letter and not ending with a hyphen, after an optional domain: prefix; ' +
          'a project made today has 6 to 30)\n',
      );
    },
  );
});

describe('exit codes', () => {
  it('2 for usage and bad input, whoever finds it (commander or the command)', async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    for (const args of [
      ['no-such-command'],
      // Help asked of a command that is not one: not the program's help with exit 0.
      ['no-such-command', '--help'],
      ['help', 'no-such-command'],
      ['show'],
      ['show', 'n-1', '--bogus'],
      ['redrive', 'r-1', '--page-size', '0'],
      // Each of a page's deliveries is reopened in a transaction of its own, all at once.
      ['redrive', 'r-1', '--page-size', '1001'],
      [],
    ]) {
      const res = await runCli(['-p', 'demo-cli-codes', ...args], env);
      expect([args, res.code]).toEqual([args, 2]);
    }
    const help = await runCli(['--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
    // The help command's own help is the program's.
    const helpOfHelp = await runCli(['help', 'help'], env);
    expect([helpOfHelp.code, helpOfHelp.stdout]).toEqual([0, help.stdout]);
  });

  it('0 for --version, which prints the version in package.json and needs no project or emulator', async () => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const res = await runCli([flag], { GOOGLE_CLOUD_PROJECT: '', FIRESTORE_EMULATOR_HOST: '' });
      expect([flag, res.code, res.stdout, res.stderr]).toEqual([flag, 0, `${version}\n`, '']);
    }
    // Where it stands as an option's value, the missing value is named, and no version printed.
    const taken = await runCli(['add', '--id', 'x', '--title', '--version'], { GOOGLE_CLOUD_PROJECT: '' });
    expect([taken.code, taken.stdout]).toEqual([2, '']);
    expect(taken.stderr).toMatch(/^error: --version is an option, not a value: give --title its value\n/);
  });

  it('keeps its own exit code, and prints no stack trace, when its reader has stopped reading (| head)', async () => {
    // `true` reads nothing and exits at once: every write the command makes meets a closed pipe.
    for (const [args, code] of [
      [['add', '--id', 'x1'], 2],
      [['--help'], 0],
    ] as const) {
      const res = await new Promise<{ status: string; stderr: string }>((resolve) => {
        execFile(
          'bash',
          ['-c', `"${process.execPath}" "${CLI}" ${args.join(' ')} 2>&1 | true; echo "\${PIPESTATUS[0]}"`],
          { timeout: 30_000 },
          (_err, stdout, stderr) => resolve({ status: stdout.trim(), stderr }),
        );
      });
      expect([args, res.status]).toEqual([args, String(code)]);
    }
  });

  it('run and redrive name a run id whose occurrence cannot be read, instead of saying no such run', async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    for (const command of ['run', 'redrive']) {
      const res = await runCli(['-p', 'demo-cli-codes', command, 's_1:2030-01-01T10:33Z'], env);
      expect([command, res.code]).toEqual([command, 2]);
      expect(res.stderr).toBe(
        'slack-fanout: run id "s_1:2030-01-01T10:33Z" has an occurrence that cannot be read: "2030-01-01T10:33Z" is not an RFC 3339 date-time like 2030-01-01T09:00:00.000Z\n',
      );
    }
  });

  it('run takes a run id as copied: blanks around it, out of a URL (%3A), or a blank for its colon', async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    for (const typed of [
      '  s_1:2030-01-01T00:00:00Z \n',
      's_1%3A2030-01-01T00%3A00%3A00Z',
      's_1 2030-01-01T00:00:00Z',
    ]) {
      const res = await runCli(['-p', 'demo-cli-codes', 'run', typed], env);
      // Read as the run it names, which this project does not have.
      expect([typed, res.stderr]).toEqual([
        typed,
        'slack-fanout: run s_1:2030-01-01T00:00:00.000Z does not exist, and no delivery of it is in the ledger\n',
      ]);
    }
  });

  it('redrive --topic "" names --topic before anything starts', async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    const res = await runCli(['-p', 'demo-cli-codes', 'redrive', 'r-1', '--topic', ''], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("error: option '--topic <name>' argument '' is invalid. expected a Pub/Sub topic id");
    expect(res.stderr).not.toContain('A name must be specified');
  });

  it('redrive --topic refuses the dead-letter topic, in either spelling, before anything starts', async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    for (const topic of ['slack-fanout-dead-letter', 'projects/demo-cli-codes/topics/slack-fanout-dead-letter']) {
      const res = await runCli(['-p', 'demo-cli-codes', 'redrive', 'r-1', '--topic', topic], env);
      expect([topic, res.code]).toEqual([topic, 2]);
      expect(res.stderr).toContain(
        `${topic} is the dead-letter topic: what is published there is recorded dead again at once, with nothing posted`,
      );
    }
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
    // stderr is no terminal here: its progress is in lines.
    expect(first.stderr).toBe('import-accounts: 2 accounts to save\nimport-accounts: 2 of 2 accounts saved\n');
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
    expect(latin1.code).toBe(2);
    writeFileSync(file, `\ufeff${JSON.stringify([{ id: 'acct-3', name: 'Gamma' }])}`);
    expect((await runCli(['-p', 'demo-cli-accounts', 'import-accounts', file], env)).stdout).toBe(
      'imported 1 account\n',
    );
    // A dashboard URL too long for the report's link is named, not left out of every report.
    writeFileSync(
      file,
      JSON.stringify([{ id: 'acct-4', name: 'Delta', dashboardUrl: `https://x.io/${'p'.repeat(3000)}` }]),
    );
    const long = await runCli(['-p', 'demo-cli-accounts', 'import-accounts', file], env);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(
      /dashboardUrl: is too long for a report's link: 3034 characters written as a Slack link, at most 2900/,
    );
  });
});

describe('import, on the emulator', () => {
  it('names the paused notifications an import resumes, as an entry without "enabled": false enables its own', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const project = 'demo-cli-import-resumed';
    const dir = mkdtempSync(join(tmpdir(), 'notifications-'));
    const file = join(dir, 'notifications.json');
    const entry = (id: string) => ({ id, accountId: 'acct-1', channelId: 'C1', cron: '0 9 * * *', timezone: 'UTC' });
    writeFileSync(file, JSON.stringify([entry('n-1'), entry('n-2'), { ...entry('n-3'), enabled: false }]));
    expect((await runCli(['-p', project, 'import', file], env)).code).toBe(0);
    expect((await runCli(['-p', project, 'pause', 'n-2', '--reason', 'client offboarding'], env)).code).toBe(0);
    const again = await runCli(['-p', project, 'import', file], env);
    expect(again.code).toBe(0);
    // n-2 resumed and named; n-3, saved disabled with no pause, is not said to be resumed.
    expect(again.stderr).toContain(
      'import: 1 paused notification was resumed, as its entry does not say "enabled": false: "n-2" (slack-fanout pause <id> pauses one again)',
    );
    expect(again.stderr).not.toContain('n-3');
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
      // Two still being tried: not redriven, and said to be left to end.
      for (const id of ['n-2', 'n-3']) {
        await db
          .doc(`deliveries/${id}:${occurrence}`)
          .set({ notificationId: id, occurrence, runId, status: 'retrying', attempts: 3 });
      }
      // One that failed for good: not redriven, and said to be so.
      await db
        .doc(`deliveries/n-4:${occurrence}`)
        .set({ notificationId: 'n-4', occurrence, runId, status: 'failed', attempts: 1 });
      // A dead one whose notification was paused since: sent, it would be recorded skipped and
      // its report lost, so it is left dead, named, until the notification is resumed.
      await db.doc('notifications/n-8').set({ enabled: false, pausedReason: 'checking the channel' });
      await db
        .doc(`deliveries/n-8:${occurrence}`)
        .set({ notificationId: 'n-8', occurrence, runId, status: 'dead', attempts: 10 });
    } finally {
      await db.terminate();
    }
    // A topic with no subscription: what it would publish reaches no notifier, so nothing is reopened.
    const pubsub = createPubSub('demo-cli-redrive');
    await pubsub.createTopic('no-subscriber');
    await pubsub.close();
    const lone = await runCli(['-p', 'demo-cli-redrive', 'redrive', runId, '--topic', 'no-subscriber'], env);
    expect(lone.code).toBe(2);
    expect(lone.stderr).toContain(
      'slack-fanout: topic no-subscriber has no subscription: what is published there reaches no notifier; nothing was redriven',
    );
    const untouched = createFirestore('demo-cli-redrive');
    try {
      const d = await untouched.doc(`deliveries/n-1:${occurrence}`).get();
      expect(d.get('status')).toBe('dead');
      expect(d.get('lastRedriveAt')).toBeUndefined();
    } finally {
      await untouched.terminate();
    }
    // A topic that does not exist (a typo): said before anything is reopened, as a usage error.
    const typo = await runCli(['-p', 'demo-cli-redrive', 'redrive', runId, '--topic', 'no-such-topic'], env);
    expect(typo.code).toBe(2);
    expect(typo.stdout).toBe('');
    expect(typo.stderr).toBe(
      'slack-fanout: topic no-such-topic does not exist in project demo-cli-redrive; nothing was redriven (the dispatch topic is slack-fanout-dispatch unless you named it otherwise)\n',
    );
    // A run that does not exist is said as such, whatever the topic.
    const nowhere = await runCli(['-p', 'demo-cli-redrive', 'redrive', 's_none:2030-01-01T00:00:00Z'], env);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain(
      'run s_none:2030-01-01T00:00:00.000Z does not exist, and no delivery of it is dead',
    );
    // One with a character that does not show is quoted with its escape, and the character named.
    const hidden = await runCli(['-p', 'demo-cli-redrive', 'redrive', 's_none\u200b:2030-01-01T00:00:00Z'], env);
    expect(hidden.code).toBe(2);
    expect(hidden.stderr).toMatch(
      /run "s_none\\u200B:2030-01-01T00:00:00\.000Z" \(the id given has an invisible character in it \(U\+200B zero-width space\).*\) does not exist/,
    );
    // A topic with a subscription: the result alone on stdout, the progress on stderr.
    const ready = createPubSub('demo-cli-redrive');
    await ready.createTopic('redrive-here');
    await ready.topic('redrive-here').createSubscription('redrive-here-sub');
    await ready.close();
    const res = await runCli(['-p', 'demo-cli-redrive', 'redrive', runId, '--topic', 'redrive-here'], env);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      runId,
      redriven: 1,
      skipped: 0,
      failed: 0,
      waiting: 0,
      waitingUntil: null,
      paused: 1,
      pausedNotifications: ['n-8'],
    });
    expect(res.stderr).toContain(
      'redrive: 1 redriven, 0 skipped, 0 failed, 1 left as it is (notification paused) so far',
    );
    expect(res.stderr).toContain(
      'redrive: 1 dead delivery left as it is, as its notification is paused (sent, it would be recorded skipped, and the report lost): n-8; `slack-fanout resume <id>` (or `resume --paused-reason <code>`), then redrive again\n',
    );
    expect(res.stderr).toContain(
      'redrive: at least 2 other deliveries of the run are still being tried (retrying or sending), not dead yet: those that end dead need another redrive',
    );
    expect(res.stderr).toContain(
      `redrive: 1 delivery of the run failed (a permanent error, not out of attempts) and is not redriven: redrive sends dead deliveries alone; \`slack-fanout deliveries ${runId} --status failed\` lists it with why, and once the cause is fixed \`slack-fanout redrive ${runId} --failed\` sends it again (one of a notification paused stays failed until it is resumed; one of a notification deleted since, and a broken message's record, stay failed)`,
    );
    expect(res.stdout).not.toContain('so far');

    // --failed: n-4's notification is paused (it is left failed, and named), n-5's is not (it is
    // sent again), n-6's is deleted (left failed, counted skipped), and n-7's record is a broken
    // message's (left alone, uncounted).
    const fix = createFirestore('demo-cli-redrive');
    try {
      await fix.doc('notifications/n-4').set({ enabled: false, pausedReason: 'invalid_auth' });
      await fix.doc('notifications/n-5').set({ enabled: true });
      const failure = { code: 'slack_permanent_auth', message: 'invalid_auth', retryable: false, at: new Date() };
      for (const id of ['n-5', 'n-6']) {
        await fix
          .doc(`deliveries/${id}:${occurrence}`)
          .set({ notificationId: id, occurrence, runId, status: 'failed', attempts: 1, lastError: failure });
      }
      await fix.doc(`deliveries/n-7:${occurrence}`).set({
        runId,
        status: 'failed',
        attempts: 0,
        lastError: { ...failure, code: 'invalid_message' },
      });
    } finally {
      await fix.terminate();
    }
    const again = await runCli(
      ['-p', 'demo-cli-redrive', 'redrive', runId, '--topic', 'redrive-here', '--failed'],
      env,
    );
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({
      runId,
      redriven: 1,
      skipped: 1,
      failed: 0,
      waiting: 0,
      waitingUntil: null,
      paused: 2,
      pausedNotifications: ['n-8', 'n-4'],
      deleted: 1,
    });
    expect(again.stderr).toContain(
      'redrive: 1 redriven, 1 skipped, 0 failed, 2 left as they are (notification paused) so far',
    );
    expect(again.stderr).toContain(
      'redrive: 2 dead or failed deliveries left as they are, as their notifications are paused (sent, each would be recorded skipped, and the report lost): n-8, n-4; `slack-fanout resume <id>` (or `resume --paused-reason <code>`), then redrive again with --failed',
    );
    expect(again.stderr).toContain(
      'redrive: 1 failed delivery left failed, as its notification is deleted: nothing is left to send (counted in skipped; failed-runs still lists the run, and a redrive passes it over again)',
    );
    expect(again.stderr).not.toContain('not redriven: redrive sends dead deliveries alone');
    const after = createFirestore('demo-cli-redrive');
    try {
      const status = async (id: string) => (await after.doc(`deliveries/${id}:${occurrence}`).get()).get('status');
      expect(await Promise.all(['n-4', 'n-5', 'n-6', 'n-7', 'n-8'].map(status))).toEqual([
        'failed',
        'retrying',
        'failed',
        'failed',
        'dead',
      ]);
      // Resumed, its dead delivery is redriven.
      await after.doc('notifications/n-8').set({ enabled: true, pausedReason: null });
    } finally {
      await after.terminate();
    }
    const resumed = await runCli(['-p', 'demo-cli-redrive', 'redrive', runId, '--topic', 'redrive-here'], env);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ redriven: 1 });
    expect(JSON.parse(resumed.stdout).paused).toBeUndefined();
    // On the topic: the first redrive's n-1, the second's n-5, and n-8 once resumed, each a redrive's message.
    const reader = createPubSub('demo-cli-redrive');
    const got: { notificationId: string; redrive?: boolean }[] = [];
    const sub = reader.subscription('redrive-here-sub');
    sub.on('message', (m: { data: Buffer; ack(): void }) => {
      got.push(JSON.parse(m.data.toString()) as { notificationId: string; redrive?: boolean });
      m.ack();
    });
    try {
      const until = Date.now() + 30_000;
      while (got.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await sub.close();
      await reader.close();
    }
    expect(got.map((m) => [m.notificationId, m.redrive]).sort()).toEqual([
      ['n-1', true],
      ['n-5', true],
      ['n-8', true],
    ]);
  });
});

describe('redrive --all-runs, on the emulators', () => {
  it('redrives every run dead-runs (with --failed, failed-runs too) lists, in one process, and sums what each did', async () => {
    const projectId = 'demo-cli-redrive-all';
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    const day = (d: number) => `2030-01-0${d}T00:00:00.000Z`;
    const runA = `s_a:${day(2)}`;
    const runB = `s_b:${day(1)}`;
    const runC = `s_c:${day(3)}`;
    const runD = `s_d:${day(4)}`;
    const runE = `s_e:${day(5)}`;
    const failure = { code: 'slack_permanent_auth', message: 'invalid_auth', retryable: false, at: new Date() };
    const db = createFirestore(projectId);
    try {
      const put = (notificationId: string, runId: string, status: string, more: object = {}) => {
        const occurrence = runId.slice(runId.indexOf(':') + 1);
        return db
          .doc(`deliveries/${notificationId}:${occurrence}`)
          .set({ notificationId, occurrence, runId, status, attempts: status === 'dead' ? 10 : 1, ...more });
      };
      for (const id of ['n-3', 'n-5']) await db.doc(`notifications/${id}`).set({ enabled: true });
      await db.doc('notifications/n-6').set({ enabled: false, pausedReason: 'invalid_auth' });
      // Run A: two dead and one failed; run B: one dead; run C: failed ones alone (n-6's
      // notification paused), and a broken message's record, which is no failure.
      await put('n-1', runA, 'dead');
      await put('n-2', runA, 'dead');
      await put('n-3', runA, 'failed', { lastError: failure });
      await put('n-4', runB, 'dead');
      await put('n-5', runC, 'failed', { lastError: failure });
      await put('n-6', runC, 'failed', { lastError: failure });
      await db.doc(`deliveries/n-7:${day(3)}`).set({
        runId: runC,
        status: 'failed',
        attempts: 0,
        lastError: { ...failure, code: 'invalid_message' },
      });
      // A dead delivery recorded from a message too broken to name its run.
      await db.doc('deliveries/broken-1').set({ status: 'dead', attempts: 10 });
      // Run D: one delivery a stopped redrive reopened an hour ago and never published (which
      // neither dead-runs nor failed-runs lists); run E: one Pub/Sub is retrying on its own.
      await put('n-8', runD, 'retrying', {
        redrivePending: true,
        redriveId: 'gone',
        lastRedriveAt: new Date(Date.now() - 3_600_000),
      });
      await put('n-9', runE, 'retrying');
    } finally {
      await db.terminate();
    }
    const pubsub = createPubSub(projectId);
    await pubsub.createTopic('redrive-all');
    await pubsub.topic('redrive-all').createSubscription('redrive-all-sub');
    await pubsub.close();

    // Usage: a run id or --all-runs, one of the two.
    const neither = await runCli(['-p', projectId, 'redrive'], env);
    expect([neither.code, neither.stdout]).toEqual([2, '']);
    expect(neither.stderr).toBe(
      'slack-fanout: redrive: give a run id (dead-runs and failed-runs list them), or --all-runs for every run with dead deliveries (with --failed, or failed ones)\n',
    );
    const both = await runCli(['-p', projectId, 'redrive', runA, '--all-runs'], env);
    expect([both.code, both.stderr]).toEqual([
      2,
      `slack-fanout: redrive: give a run id or --all-runs, not both (got run id "${runA}")\n`,
    ]);

    const dead = await runCli(['-p', projectId, 'redrive', '--all-runs', '--topic', 'redrive-all'], env);
    expect(dead.code).toBe(0);
    const counts = { skipped: 0, failed: 0, waiting: 0, waitingUntil: null };
    expect(JSON.parse(dead.stdout)).toEqual({
      listed: 3,
      redriven: 4,
      ...counts,
      runs: [
        { runId: runA, redriven: 2, ...counts },
        { runId: runB, redriven: 1, ...counts },
        { runId: runD, redriven: 1, ...counts },
      ],
    });
    expect(dead.stderr).toContain(
      'redrive: 3 runs to redrive: 2 with dead deliveries, 1 with deliveries a stopped redrive left reopened alone\n',
    );
    expect(dead.stderr).toContain(
      `redrive: run 1 of 3 (${runA}): 2 redriven, 0 skipped, 0 failed; 2 redriven, 0 skipped, 0 failed in 1 of 3 runs so far\n`,
    );
    expect(dead.stderr).toContain(
      `redrive: run 2 of 3 (${runB}): 1 redriven, 0 skipped, 0 failed; 3 redriven, 0 skipped, 0 failed in 2 of 3 runs so far\n`,
    );
    expect(dead.stderr).toContain(
      "redrive: 1 dead delivery names no run, which no redrive reaches (recorded from a message too broken to name one; the notifier's log has each)\n",
    );
    // Without --failed: the failed ones are counted, the broken message's record is not, and said how to send.
    expect(dead.stderr).toContain(
      "redrive: 3 deliveries of 2 runs failed (a permanent error, not out of attempts) and are not redriven: redrive sends dead deliveries alone; `slack-fanout failed-runs` lists their runs, `slack-fanout deliveries <runId> --status failed` says why each failed, and once the cause is fixed `slack-fanout redrive --all-runs --failed` sends them again (one of a notification paused stays failed until it is resumed; one of a notification deleted since, and a broken message's record, stay failed)\n",
    );

    // With --failed: no dead delivery is left (the three are retrying now), so the runs with
    // failed ones, the latest first: C, then A.
    const failed = await runCli(['-p', projectId, 'redrive', '--all-runs', '--failed', '--topic', 'redrive-all'], env);
    expect(failed.code).toBe(0);
    const none = { ...counts, paused: 0, pausedNotifications: [], deleted: 0 };
    expect(JSON.parse(failed.stdout)).toEqual({
      listed: 2,
      redriven: 2,
      ...counts,
      paused: 1,
      pausedNotifications: ['n-6'],
      deleted: 0,
      runs: [
        { runId: runC, redriven: 1, ...none, paused: 1, pausedNotifications: ['n-6'] },
        { runId: runA, redriven: 1, ...none },
      ],
    });
    expect(failed.stderr).toContain('redrive: 2 runs to redrive: 2 with failed ones alone\n');
    expect(failed.stderr).toContain(
      'redrive: 1 dead or failed delivery left as it is, as its notification is paused (sent, it would be recorded skipped, and the report lost): n-6; `slack-fanout resume <id>` (or `resume --paused-reason <code>`), then redrive again with --failed\n',
    );
    expect(failed.stderr).not.toContain('are not redriven');

    // Nothing left to redrive: said, with an empty list, exit 0.
    const again = await runCli(['-p', projectId, 'redrive', '--all-runs', '--topic', 'redrive-all'], env);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ listed: 0, redriven: 0, ...counts, runs: [] });
    expect(again.stderr).toContain('redrive: no run has dead deliveries: nothing to redrive\n');

    // On the topic: each redriven delivery once.
    const reader = createPubSub(projectId);
    const got: string[] = [];
    const sub = reader.subscription('redrive-all-sub');
    sub.on('message', (m: { data: Buffer; ack(): void }) => {
      got.push((JSON.parse(m.data.toString()) as { notificationId: string }).notificationId);
      m.ack();
    });
    try {
      const until = Date.now() + 30_000;
      while (got.length < 6 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await sub.close();
      await reader.close();
    }
    expect(got.sort()).toEqual(['n-1', 'n-2', 'n-3', 'n-4', 'n-5', 'n-8']);
  });
});

describe('deliveries, on the emulator', () => {
  it("lists a run's deliveries of one status with why each ended, a page at a time", async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    const projectId = 'demo-cli-deliveries';
    const occurrence = '2030-01-01T00:00:00.000Z';
    const runId = `s_list:${occurrence}`;
    const at = new Date('2030-01-01T00:00:05.000Z');
    const db = createFirestore(projectId);
    try {
      await db.doc(`runs/${runId}`).set({ scheduleId: 's_list', occurrence, status: 'done' });
      for (const [n, fields] of [
        [
          'n-1',
          {
            status: 'failed',
            attempts: 1,
            lastError: {
              code: 'slack_permanent',
              slackError: 'is_archived',
              message: 'Slack refused: is_archived',
              retryable: false,
              at,
            },
            postTargets: [
              { channelId: 'C-OLD', teamId: null, accountId: 'acct-1' },
              { channelId: 'C-NEW', teamId: 'T1', accountId: 'acct-1' },
            ],
          },
        ],
        [
          'n-2',
          {
            status: 'failed',
            attempts: 1,
            // A post of an earlier attempt may have landed unseen: said, for the report may be in Slack.
            outcomeUnknown: true,
            lastError: { code: 'account_not_found', message: 'account acct-9 does not exist', retryable: false, at },
          },
        ],
        [
          'n-3',
          {
            status: 'sent',
            attempts: 1,
            channelId: 'C1',
            slackTs: '1893456005.000100',
            sentAt: at,
            claimedBy: 'x',
            outcomeUnknown: true,
          },
        ],
      ] as const) {
        await db
          .doc(`deliveries/${n}:${occurrence}`)
          .set({ notificationId: n, occurrence, runId, updatedAt: at, ...fields });
      }
    } finally {
      await db.terminate();
    }
    const failed = await runCli(['-p', projectId, 'deliveries', runId], env);
    expect(failed.code).toBe(0);
    expect(JSON.parse(failed.stdout)).toEqual({
      runId,
      status: 'failed',
      deliveries: [
        {
          id: `n-1:${occurrence}`,
          notificationId: 'n-1',
          attempts: 1,
          lastError: {
            code: 'slack_permanent',
            slackError: 'is_archived',
            message: 'Slack refused: is_archived',
            at: at.toISOString(),
          },
          channelsTried: ['C-OLD', 'C-NEW'],
          updatedAt: at.toISOString(),
        },
        {
          id: `n-2:${occurrence}`,
          notificationId: 'n-2',
          attempts: 1,
          outcomeUnknown: true,
          lastError: { code: 'account_not_found', message: 'account acct-9 does not exist', at: at.toISOString() },
          updatedAt: at.toISOString(),
        },
      ],
      next: null,
    });
    const sent = JSON.parse((await runCli(['-p', projectId, 'deliveries', runId, '--status', 'sent'], env)).stdout);
    expect(sent.deliveries).toEqual([
      {
        id: `n-3:${occurrence}`,
        notificationId: 'n-3',
        attempts: 1,
        channelId: 'C1',
        slackTs: '1893456005.000100',
        sentAt: at.toISOString(),
        updatedAt: at.toISOString(),
      },
    ]);
    // Pages: the first's next is its last id; the page after it holds the rest.
    const first = JSON.parse((await runCli(['-p', projectId, 'deliveries', runId, '--limit', '1'], env)).stdout);
    expect(first.deliveries.map((d: { id: string }) => d.id)).toEqual([`n-1:${occurrence}`]);
    expect(first.next).toBe(`n-1:${occurrence}`);
    const second = JSON.parse(
      (await runCli(['-p', projectId, 'deliveries', runId, '--limit', '1', '--after', first.next], env)).stdout,
    );
    expect(second.deliveries.map((d: { id: string }) => d.id)).toEqual([`n-2:${occurrence}`]);
    // A run with none in that status lists none; a run with nothing at all is named; a bad status is usage.
    const dead = JSON.parse((await runCli(['-p', projectId, 'deliveries', runId, '--status', 'dead'], env)).stdout);
    expect(dead).toEqual({ runId, status: 'dead', deliveries: [], next: null });
    const none = await runCli(['-p', projectId, 'deliveries', `s_none:${occurrence}`], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`run s_none:${occurrence} does not exist, and no delivery of it is in the ledger`);
    const bad = await runCli(['-p', projectId, 'deliveries', runId, '--status', 'lost'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /--status <status>' argument 'lost' is invalid\. Allowed choices are sending, retrying, sent, failed, skipped, dead/,
    );
  });
});

/** The occurrence of the runs runToRedrive makes. */
const REDRIVE_OCCURRENCE = '2030-01-01T00:00:00.000Z';

/**
 * A run of `n` dead or failed deliveries (of notifications that are there and not paused), a
 * dispatch topic with a subscription for a redrive to publish to, and the environment of a
 * redrive of it on the emulators.
 */
async function runToRedrive(
  projectId: string,
  runId: string,
  n: number,
  status: 'dead' | 'failed',
  occurrence = REDRIVE_OCCURRENCE,
): Promise<Record<string, string>> {
  const pubsub = createPubSub(projectId);
  const [there] = await pubsub.topic('slack-fanout-dispatch').exists();
  if (!there) {
    const [topic] = await pubsub.createTopic('slack-fanout-dispatch');
    // A redrive publishes only to a topic something reads.
    await topic.createSubscription('slack-fanout-dispatch-pull');
  }
  await pubsub.close();
  const db = createFirestore(projectId);
  try {
    await db.doc(`runs/${runId}`).set({ scheduleId: runId.split(':')[0], occurrence, status: 'done' });
    const writer = db.bulkWriter();
    const lastError = { code: 'slack_permanent_auth', message: 'invalid_auth', retryable: false, at: new Date(0) };
    for (let i = 0; i < n; i++) {
      void writer.set(db.doc(`notifications/n-${i}`), { enabled: true });
      void writer.set(db.doc(`deliveries/n-${i}:${occurrence}`), {
        notificationId: `n-${i}`,
        occurrence,
        runId,
        status,
        ...(status === 'dead' ? { attempts: 10 } : { attempts: 1, lastError }),
      });
    }
    await writer.close();
  } finally {
    await db.terminate();
  }
  return {
    PATH: process.env.PATH ?? '',
    HOME: mkdtempSync(join(tmpdir(), 'no-adc-')),
    FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
    PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
  };
}

/**
 * A redrive of a page at a time, stopped by SIGINT at its first progress line and by SIGTERM once
 * it says it is stopping: its exit code, its line about what it left reopened, and when it was
 * stopped.
 */
async function stoppedTwice(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; line: string; before: number }> {
  const child = spawn(process.execPath, [CLI, ...args, '--page-size', '1'], { env });
  const { out, exited } = collectOutput(child);
  const signalled: string[] = [];
  child.stderr.on('data', () => {
    if (out.stderr.includes('so far') && signalled.length === 0) {
      signalled.push('SIGINT');
      child.kill('SIGINT');
    } else if (out.stderr.includes('stopping after the page under way') && signalled.length === 1) {
      signalled.push('SIGTERM');
      child.kill('SIGTERM');
    }
  });
  const before = Date.now();
  const code = await exited;
  return { code, line: out.stderr.split('\n').find((l) => l.includes('left reopened')) ?? '', before };
}

describe('redrive interrupted, on the emulators', () => {
  it('Ctrl-C stops after the page under way, says so, and leaves the rest dead; exit 130', async () => {
    const projectId = 'demo-cli-redrive-int';
    const occurrence = REDRIVE_OCCURRENCE;
    const runId = `s_int:${occurrence}`;
    const n = 300;
    const env = await runToRedrive(projectId, runId, n, 'dead');
    const db = createFirestore(projectId);
    try {
      const child = spawn(process.execPath, [CLI, '-p', projectId, 'redrive', runId, '--page-size', '1'], { env });
      const { out, exited } = collectOutput(child);
      child.stderr.on('data', () => {
        if (out.stderr.includes('so far') && !child.killed) child.kill('SIGINT');
      });
      const code = await exited;
      const { stdout, stderr } = out;
      expect(code).toBe(130);
      expect(stderr).toContain('redrive: stopping after the page under way (Ctrl-C again stops at once)');
      const result = JSON.parse(stdout) as { redriven: number; interrupted?: boolean };
      expect(stderr).toContain(
        `redrive: interrupted: ${n - result.redriven} of the run's deliveries still dead (running it again is safe)`,
      );
      expect(result.interrupted).toBe(true);
      expect(result.redriven).toBeGreaterThan(0);
      expect(result.redriven).toBeLessThan(n);
      // What it reopened it published; the rest is still dead, for the next redrive.
      const dead = (await db.collection('deliveries').where('status', '==', 'dead').count().get()).data().count;
      expect(dead).toBe(n - result.redriven);
    } finally {
      await db.terminate();
    }
  });
});

describe('redrive --failed interrupted, on the emulators', () => {
  const occurrence = REDRIVE_OCCURRENCE;
  const failedRun = (projectId: string, runId: string, n: number) => runToRedrive(projectId, runId, n, 'failed');

  it('Ctrl-C ends with how many are still dead or failed, as its last line', async () => {
    const projectId = 'demo-cli-redrive-failed-int';
    const runId = `s_fint:${occurrence}`;
    const n = 200;
    const env = await failedRun(projectId, runId, n);
    const args = [CLI, '-p', projectId, 'redrive', runId, '--failed', '--page-size', '1'];
    const child = spawn(process.execPath, args, { env });
    const { out, exited } = collectOutput(child);
    child.stderr.on('data', () => {
      if (out.stderr.includes('so far') && !child.killed) child.kill('SIGINT');
    });
    expect(await exited).toBe(130);
    const result = JSON.parse(out.stdout) as { redriven: number; interrupted?: boolean };
    expect(result).toMatchObject({ interrupted: true, paused: 0 });
    expect(result.redriven).toBeGreaterThan(0);
    expect(result.redriven).toBeLessThan(n);
    expect(out.stderr.trimEnd().split('\n').at(-1)).toBe(
      `redrive: interrupted: ${n - result.redriven} of the run's deliveries still dead or failed (running it again is safe)`,
    );
  });

  it('a second signal stops at once, and says which redrive takes over what it left reopened, and from when', async () => {
    const projectId = 'demo-cli-redrive-failed-stop';
    const runId = `s_fstop:${occurrence}`;
    const env = await failedRun(projectId, runId, 200);
    const { code, line, before } = await stoppedTwice(['-p', projectId, 'redrive', runId, '--failed'], env);
    expect([130, 143]).toContain(code);
    expect(line).toContain(
      `(retrying, which neither dead-runs nor failed-runs lists: keep the run id), and \`slack-fanout redrive ${runId} --failed\` after `,
    );
    const after = Date.parse(line.slice(line.lastIndexOf(' after ') + 7, line.lastIndexOf(' takes it over')));
    expect(after - before).toBeGreaterThan(29 * 60_000);
    expect(after - before).toBeLessThan(31 * 60_000);
  });
});

describe('redrive --all-runs with nothing to redrive, on the emulators', () => {
  it('says so, exit 0, without asking for a topic that does not exist', async () => {
    const env = {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
      PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST ?? '',
    };
    const res = await runCli(['-p', 'demo-cli-redrive-none', 'redrive', '--all-runs', '--failed'], env);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual({
      listed: 0,
      redriven: 0,
      skipped: 0,
      failed: 0,
      waiting: 0,
      waitingUntil: null,
      paused: 0,
      pausedNotifications: [],
      deleted: 0,
      runs: [],
    });
    expect(res.stderr).toBe('redrive: no run has dead or failed deliveries: nothing to redrive\n');
  });
});

describe('redrive --all-runs interrupted, on the emulators', () => {
  it('Ctrl-C stops after the page under way: the runs after it are not begun, and it says how to go on; exit 130', async () => {
    const projectId = 'demo-cli-redrive-all-int';
    const n = 100;
    const occurrences = ['2030-01-03T00:00:00.000Z', '2030-01-02T00:00:00.000Z', '2030-01-01T00:00:00.000Z'];
    let env: Record<string, string> = {};
    for (const [i, occurrence] of occurrences.entries()) {
      env = await runToRedrive(projectId, `s_all${i}:${occurrence}`, n, 'dead', occurrence);
    }
    const child = spawn(process.execPath, [CLI, '-p', projectId, 'redrive', '--all-runs', '--page-size', '1'], { env });
    const { out, exited } = collectOutput(child);
    child.stderr.on('data', () => {
      if (out.stderr.includes('so far') && !child.killed) child.kill('SIGINT');
    });
    expect(await exited).toBe(130);
    const result = JSON.parse(out.stdout) as {
      listed: number;
      notReached: number;
      redriven: number;
      interrupted?: boolean;
      runs: { runId: string; redriven: number; interrupted?: boolean }[];
    };
    expect(result).toMatchObject({ listed: 3, notReached: 2, interrupted: true });
    expect(result.runs.map((r) => [r.runId, r.interrupted])).toEqual([[`s_all0:${occurrences[0]}`, true]]);
    expect(result.redriven).toBeGreaterThan(0);
    expect(result.redriven).toBeLessThan(n);
    expect(out.stderr).toContain('redrive: stopping after the page under way (Ctrl-C again stops at once)');
    expect(out.stderr.trimEnd().split('\n').at(-1)).toBe(
      `redrive: interrupted in run 1 of 3 (s_all0:${occurrences[0]}): what it had not reached is still dead; \`slack-fanout redrive --all-runs\` again takes it (running it again is safe)`,
    );
    // What it reopened it published; the rest is still dead, the two runs it did not begin whole.
    const db = createFirestore(projectId);
    try {
      const deadOf = async (i: number) =>
        (
          await db
            .collection('deliveries')
            .where('runId', '==', `s_all${i}:${occurrences[i]}`)
            .where('status', '==', 'dead')
            .count()
            .get()
        ).data().count;
      expect([await deadOf(0), await deadOf(1), await deadOf(2)]).toEqual([n - result.redriven, n, n]);
    } finally {
      await db.terminate();
    }
  });
});

describe('redrive --all-runs stopped at once, on the emulators', () => {
  it('a second signal names the run of the page left reopened, and the --all-runs redrive that takes it over, and from when', async () => {
    const projectId = 'demo-cli-redrive-all-stop';
    const runId = `s_allstop:${REDRIVE_OCCURRENCE}`;
    const env = await runToRedrive(projectId, runId, 200, 'dead');
    const { code, line, before } = await stoppedTwice(['-p', projectId, 'redrive', '--all-runs'], env);
    expect([130, 143]).toContain(code);
    expect(line).toContain(
      `(retrying, which neither dead-runs nor failed-runs lists; it is of run ${runId}), and \`slack-fanout redrive --all-runs\` after `,
    );
    const after = Date.parse(line.slice(line.lastIndexOf(' after ') + 7, line.lastIndexOf(' takes it over')));
    expect(after - before).toBeGreaterThan(29 * 60_000);
    expect(after - before).toBeLessThan(31 * 60_000);
  });
});

describe('run, on the emulator', () => {
  it("shows a run whose record has expired by its deliveries' counts, and a run of neither as not there", async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const occurrence = '2030-01-01T00:00:00.000Z';
    const runId = `s_gone:${occurrence}`;
    const db = createFirestore('demo-cli-run');
    try {
      await db
        .doc(`deliveries/n-1:${occurrence}`)
        .set({ notificationId: 'n-1', occurrence, runId, status: 'sent', attempts: 1 });
      await db
        .doc(`deliveries/n-2:${occurrence}`)
        .set({ notificationId: 'n-2', occurrence, runId, status: 'dead', attempts: 10 });
    } finally {
      await db.terminate();
    }
    const gone = await runCli(['-p', 'demo-cli-run', 'run', runId], env);
    expect(gone.code).toBe(0);
    expect(JSON.parse(gone.stdout)).toEqual({
      runId,
      run: null,
      deliveries: { sending: 0, retrying: 0, sent: 1, failed: 0, skipped: 0, dead: 1 },
      note: RUN_RECORD_GONE,
    });
    // The occurrence in another RFC 3339 spelling names the same run.
    const typed = await runCli(['-p', 'demo-cli-run', 'run', 's_gone:2030-01-01T01:00:00+01:00'], env);
    expect(JSON.parse(typed.stdout)).toMatchObject({ runId, deliveries: { sent: 1, dead: 1 } });
    const none = await runCli(['-p', 'demo-cli-run', 'run', `s_never:${occurrence}`], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(
      `slack-fanout: run s_never:${occurrence} does not exist, and no delivery of it is in the ledger\n`,
    );
  });
});

describe('dead-runs, on the emulator', () => {
  it('lists every run with dead deliveries and how many, the latest first, reading a page at a time', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const project = 'demo-cli-dead';
    const db = createFirestore(project);
    const early = '2030-01-01T09:00:00.000Z';
    const late = '2030-01-02T09:00:00.000Z';
    try {
      const put = (id: string, fields: Record<string, unknown>) => db.doc(`deliveries/${id}`).set(fields);
      await Promise.all([
        put(`n-1:${early}`, { notificationId: 'n-1', occurrence: early, runId: `s_a:${early}`, status: 'dead' }),
        put(`n-2:${early}`, { notificationId: 'n-2', occurrence: early, runId: `s_a:${early}`, status: 'dead' }),
        put(`n-3:${early}`, { notificationId: 'n-3', occurrence: early, runId: `s_a:${early}`, status: 'sent' }),
        put(`n-4:${late}`, { notificationId: 'n-4', occurrence: late, runId: `s_b:${late}`, status: 'dead' }),
        put(`n-5:${late}`, { notificationId: 'n-5', occurrence: late, runId: `s_c:${late}`, status: 'dead' }),
        put(`n-6:${late}`, { notificationId: 'n-6', occurrence: late, runId: `s_c:${late}`, status: 'retrying' }),
        // A record of a message too broken to name its run.
        put('broken-1', { status: 'dead', attempts: 0 }),
      ]);
    } finally {
      await db.terminate();
    }
    const listed = await runCli(['-p', project, 'dead-runs', '--page-size', '2'], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({
      runs: [
        { runId: `s_b:${late}`, dead: 1 },
        { runId: `s_c:${late}`, dead: 1 },
        { runId: `s_a:${early}`, dead: 2 },
      ],
      dead: 5,
      withoutRun: 1,
    });
    // A line after each full page: 5 read in pages of 2.
    expect(listed.stderr).toBe('dead-runs: 2 dead deliveries read so far\ndead-runs: 4 dead deliveries read so far\n');
    const ids = await runCli(['-p', project, 'dead-runs', '--ids'], env);
    expect(ids.code).toBe(0);
    expect(ids.stdout).toBe(`s_b:${late}\ns_c:${late}\ns_a:${early}\n`);
    expect(ids.stderr).toBe('');
    const none = await runCli(['-p', 'demo-cli-nodead', 'dead-runs'], env);
    expect(none.code).toBe(0);
    expect(JSON.parse(none.stdout)).toEqual({ runs: [], dead: 0, withoutRun: 0 });
  });

  it('failed-runs lists every run with deliveries that failed for good, not the records broken messages left', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const project = 'demo-cli-failed-runs';
    const db = createFirestore(project);
    const early = '2030-01-01T09:00:00.000Z';
    const late = '2030-01-02T09:00:00.000Z';
    const error = (code: string) => ({ code, message: code, retryable: false, at: new Date(0) });
    try {
      const put = (id: string, fields: Record<string, unknown>) => db.doc(`deliveries/${id}`).set(fields);
      const failed = (n: string, occurrence: string, run: string, code = 'slack_permanent_auth') =>
        put(`${n}:${occurrence}`, {
          notificationId: n,
          occurrence,
          runId: `${run}:${occurrence}`,
          status: 'failed',
          attempts: 1,
          lastError: error(code),
        });
      await Promise.all([
        failed('n-1', early, 's_a'),
        failed('n-2', early, 's_a', 'account_not_found'),
        failed('n-3', late, 's_b'),
        put(`n-4:${late}`, { notificationId: 'n-4', occurrence: late, runId: `s_b:${late}`, status: 'dead' }),
        // Broken messages' records, with and without their run: no failure of a delivery.
        put(`n-5:${late}`, {
          runId: `s_c:${late}`,
          status: 'failed',
          attempts: 0,
          lastError: error('invalid_message'),
        }),
        put('broken-1', { status: 'failed', attempts: 0, lastError: error('invalid_message') }),
      ]);
    } finally {
      await db.terminate();
    }
    const listed = await runCli(['-p', project, 'failed-runs', '--page-size', '2'], env);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual({
      runs: [
        { runId: `s_b:${late}`, failed: 1 },
        { runId: `s_a:${early}`, failed: 2 },
      ],
      failed: 3,
      withoutRun: 0,
    });
    // A line after each full page: 5 failed records read in pages of 2.
    expect(listed.stderr).toBe(
      'failed-runs: 2 failed deliveries read so far\nfailed-runs: 4 failed deliveries read so far\n',
    );
    const ids = await runCli(['-p', project, 'failed-runs', '--ids'], env);
    expect([ids.code, ids.stdout, ids.stderr]).toEqual([0, `s_b:${late}\ns_a:${early}\n`, '']);
  });
});

describe('list, on the emulator', () => {
  it('lists notifications by id a page at a time, and the paused ones alone', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const db = createFirestore('demo-cli-list');
    try {
      await saveNotifications(db, [notification(1), notification(2), notification(3, { teamId: 'T1' })]);
      await setNotificationEnabled(db, 'n-00002', false, 'channel_not_found');
      const list = async (...args: string[]) => {
        const res = await runCli(['-p', 'demo-cli-list', 'list', ...args], env);
        expect(res.code).toBe(0);
        return JSON.parse(res.stdout) as { notifications: { id: string }[]; next: string | null };
      };
      const first = await list('--limit', '2');
      expect(first.notifications.map((n) => n.id)).toEqual(['n-00001', 'n-00002']);
      expect(first.notifications[0]).toEqual({
        id: 'n-00001',
        accountId: 'acct-0002',
        channelId: 'C000000001',
        cron: '* * * * *',
        timezone: 'Europe/Paris',
        enabled: true,
      });
      expect(first.next).toBe('n-00002');
      const rest = await list('--limit', '2', '--after', first.next ?? '');
      expect(rest.notifications).toEqual([expect.objectContaining({ id: 'n-00003', teamId: 'T1' })]);
      expect(rest.next).toBeNull();
      const paused = await list('--paused');
      expect(paused.notifications).toEqual([
        expect.objectContaining({ id: 'n-00002', enabled: false, pausedReason: 'channel_not_found' }),
      ]);
      const bad = await runCli(['-p', 'demo-cli-list', 'list', '--limit', '0'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("option '--limit <n>' argument '0' is invalid");
    } finally {
      await db.terminate();
    }
  });

  it('lists one schedule’s notifications (--schedule), paused ones alone with --paused, and names a schedule that does not exist', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const project = 'demo-cli-list-schedule';
    const nine = { cron: '0 9 * * *', timezone: 'UTC' };
    const db = createFirestore(project);
    try {
      await saveNotifications(db, [
        notification(1, nine),
        notification(2),
        notification(3, nine),
        notification(4, nine),
      ]);
      await setNotificationEnabled(db, 'n-00003', false, 'channel_not_found');
      const list = async (...args: string[]) => {
        const res = await runCli(['-p', project, 'list', ...args], env);
        expect([res.code, res.stderr]).toEqual([0, '']);
        return JSON.parse(res.stdout) as { notifications: { id: string }[]; next: string | null };
      };
      const ids = (page: { notifications: { id: string }[] }) => page.notifications.map((n) => n.id);
      const scheduleId = scheduleIdOf(nine);
      const first = await list('--schedule', scheduleId, '--limit', '2');
      expect([ids(first), first.next]).toEqual([['n-00001', 'n-00003'], 'n-00003']);
      const rest = await list('--schedule', scheduleId, '--limit', '2', '--after', 'n-00003');
      expect([ids(rest), rest.next]).toEqual([['n-00004'], null]);
      expect(ids(await list('--schedule', scheduleId, '--paused'))).toEqual(['n-00003']);
      // The other schedule's notification alone.
      const other = scheduleIdOf(notification(2));
      expect(ids(await list('--schedule', other))).toEqual(['n-00002']);
      // Its document deleted by hand, and none of it paused: an empty page, not "does not exist".
      await db.doc(`${COLLECTIONS.schedules}/${other}`).delete();
      expect(await list('--schedule', other, '--paused')).toEqual({ notifications: [], next: null });
      // A schedule no notification has and no document: exit 2, naming it; a page after the
      // last of one that exists is an empty page, not an error.
      const missing = await runCli(['-p', project, 'list', '--schedule', 's_00000000000000000000'], env);
      expect([missing.code, missing.stdout]).toEqual([2, '']);
      expect(missing.stderr).toContain('schedule s_00000000000000000000 does not exist, and no notification has it');
      const typo = await runCli(['-p', project, 'list', '--schedule', '0 9 * * *'], env);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toContain("(a schedule id is s_ and 20 hex digits, as a tick's log names it)");
      const after = await list('--schedule', scheduleId, '--after', 'n-00004');
      expect(after).toEqual({ notifications: [], next: null });
    } finally {
      await db.terminate();
    }
  });
});

describe('delete, on the emulator', () => {
  it('deletes a notification and its dispatch index entry; a second delete says it does not exist, exit 2', async () => {
    const env = { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' };
    const db = createFirestore('demo-cli-delete');
    try {
      await saveNotifications(db, [notification(1), notification(2)]);
      const gone = await runCli(['-p', 'demo-cli-delete', 'delete', 'n-00001'], env);
      expect(gone.code).toBe(0);
      expect(JSON.parse(gone.stdout)).toEqual({ id: 'n-00001', deleted: true });
      expect((await db.doc('notifications/n-00001').get()).exists).toBe(false);
      const scheduleId = String((await db.doc('notifications/n-00002').get()).get('scheduleId'));
      const buckets = await db.collection(`schedules/${scheduleId}/members`).get();
      const indexed = buckets.docs.flatMap((d) => bucketIds(d));
      expect(indexed).toEqual(['n-00002']);
      const again = await runCli(['-p', 'demo-cli-delete', 'delete', 'n-00001'], env);
      expect(again.code).toBe(2);
      expect(again.stderr).toBe('slack-fanout: notification n-00001 does not exist\n');
    } finally {
      await db.terminate();
    }
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
    expect(pause.code).toBe(2);
    expect(pause.stderr).toBe(
      'slack-fanout: pause: --reason: must not be empty or blank (only white space or invisible characters)\n',
    );
  });
});

describe('resume in bulk, on the emulator', () => {
  const env = () => ({ FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' });
  const schedule = { cron: '0 9 * * *', timezone: 'Europe/Paris' };
  const scheduleId = scheduleIdOf(schedule);

  it('SIGTERM lets the transactions under way finish and prints the counts, so that a resume at once finds no lock held', async () => {
    const project = uniqueProjectId('cli-resume-term');
    const items = Array.from({ length: 2000 }, (_, i) => notification(i + 1, schedule));
    const db = createFirestore(project);
    try {
      await saveNotifications(db, items);
      for (let i = 0; i < items.length; i += 500) {
        const batch = db.batch();
        for (const n of items.slice(i, i + 500)) {
          batch.update(db.doc(`notifications/${n.id}`), { enabled: false, pausedReason: 'bulk' });
        }
        await batch.commit();
      }
    } finally {
      await db.terminate();
    }
    const home = mkdtempSync(join(tmpdir(), 'no-adc-'));
    const child = spawn(process.execPath, [CLI, '-p', project, 'resume', '--all-paused', '--page-size', '100'], {
      env: { PATH: process.env.PATH ?? '', HOME: home, ...env() },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // Once a page is done: the next one's transactions are under way, or about to be.
      if (/ read, \d+ resumed/.test(stderr) && !child.killed) child.kill('SIGTERM');
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code).toBe(143);
    expect(stderr).toContain(
      'resume: SIGTERM: stopping once the transactions under way finish (SIGTERM again stops at once)\n',
    );
    const first = JSON.parse(stdout);
    expect(first).toMatchObject({ allPaused: true, interrupted: true, failed: 0 });
    expect(first.resumed).toBeGreaterThanOrEqual(100);
    expect(first.resumed).toBeLessThan(2000);
    expect(stderr).toMatch(
      new RegExp(
        `\\nresume: interrupted: ${first.matched} read, ${first.resumed} resumed, 0 skipped, 0 failed${first.notReached ? `, ${first.notReached} not reached` : ''} \\(running it again is safe\\)\\n$`,
      ),
    );
    // Every match read is resumed, or said not reached.
    expect(first.resumed + (first.notReached ?? 0)).toBe(first.matched);
    // Run again at once: no transaction left open holds a lock, and the rest are resumed.
    const again = await runCli(['-p', project, 'resume', '--all-paused'], env());
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ failed: 0, resumed: 2000 - first.resumed });
  }, 120_000);

  it('resumes exactly the notifications paused for one reason, back in the dispatch index; a dry run changes nothing', async () => {
    const project = uniqueProjectId('cli-resume');
    const items = Array.from({ length: 270 }, (_, i) => notification(i + 1, schedule));
    const ids = (from: number, to: number) => items.slice(from, to).map((n) => n.id);
    const badToken = ids(0, 250);
    const archived = ids(250, 255);
    const byOperator = ids(255, 258);
    const importedOff = ids(258, 260);
    const untouched = ids(260, 270);
    const db = createFirestore(project);
    const store = new FirestoreStore(db);
    const indexed = async (): Promise<string[]> => {
      const out: string[] = [];
      for await (const page of store.notificationPages(scheduleId, null, 1000)) out.push(...page.ids);
      return out.sort();
    };
    const docs = async (list: string[]) =>
      (await db.getAll(...list.map((id) => db.doc(`notifications/${id}`)))).map((d) => d.data() ?? {});
    try {
      await saveNotifications(
        db,
        items.map((n, i) => (i >= 258 && i < 260 ? { ...n, enabled: false } : n)),
      );
      // The notifier's own pause (as after PAUSE_AFTER_FAILURES permanent failures), and an operator's.
      const now = new Date();
      await mapLimit(badToken, 16, (id) => store.recordPermanentFailure(id, 'invalid_auth', 1, now));
      await mapLimit(archived, 16, (id) => store.recordPermanentFailure(id, 'is_archived', 1, now));
      for (const id of byOperator) await setNotificationEnabled(db, id, false, 'customer asked');
      // Paused for the reason, but resumed some other way meanwhile: matched, not touched.
      await db.doc('notifications/n-odd').set({ scheduleId, enabled: true, pausedReason: 'invalid_auth' });
      expect(await indexed()).toEqual(untouched);

      const dry = await runCli(['-p', project, 'resume', '--paused-reason', 'invalid_auth', '--dry-run'], env());
      expect(dry.code).toBe(0);
      const dryResult = JSON.parse(dry.stdout);
      expect(dryResult).toMatchObject({
        pausedReason: 'invalid_auth',
        dryRun: true,
        matched: 251,
        resumed: 0,
        skipped: 0,
        failed: 0,
        byReason: { invalid_auth: 251 },
        unlisted: 0,
      });
      expect(dryResult.ids).toEqual([...badToken, 'n-odd'].sort());
      expect(await indexed()).toEqual(untouched);
      expect((await docs(badToken)).every((d) => d.enabled === false && d.consecutiveFailures === 1)).toBe(true);

      // Three pages of 100: a page resumed does not move the next one.
      const res = await runCli(
        ['-p', project, 'resume', '--paused-reason', 'invalid_auth', '--page-size', '100'],
        env(),
      );
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout)).toEqual({
        pausedReason: 'invalid_auth',
        dryRun: false,
        matched: 251,
        resumed: 250,
        skipped: 1,
        failed: 0,
        byReason: { invalid_auth: 251 },
      });
      expect(res.stderr).toContain('resume: 251 to resume');
      expect(res.stderr).toContain('resume: 251 of 251 read, 250 resumed, 1 skipped, 0 failed');
      for (const d of await docs(badToken)) {
        expect(d).toMatchObject({ enabled: true, pausedReason: null, consecutiveFailures: 0 });
      }
      // Back in the dispatch index (what a tick reads), and the others still out of it.
      expect(await indexed()).toEqual([...badToken, ...untouched].sort());
      for (const d of await docs(archived)) expect(d).toMatchObject({ enabled: false, pausedReason: 'is_archived' });
      for (const d of await docs(byOperator))
        expect(d).toMatchObject({ enabled: false, pausedReason: 'customer asked' });
      expect((await db.doc('notifications/n-odd').get()).data()).toEqual({
        scheduleId,
        enabled: true,
        pausedReason: 'invalid_auth',
      });

      // Again: nothing left to resume.
      const again = JSON.parse(
        (await runCli(['-p', project, 'resume', '--paused-reason', 'invalid_auth'], env())).stdout,
      );
      expect(again).toMatchObject({ matched: 1, resumed: 0, skipped: 1, failed: 0 });
      // A reason typed with blanks around it matches nothing, and the one a pause saves is named.
      const padded = await runCli(['-p', project, 'resume', '--paused-reason', ' customer asked ', '--dry-run'], env());
      expect(JSON.parse(padded.stdout)).toMatchObject({ matched: 0 });
      expect(padded.stderr).toContain('try --paused-reason "customer asked"');

      // Every paused one, whatever the reason; one imported disabled has no reason and stays off.
      const all = await runCli(['-p', project, 'resume', '--all-paused', '--dry-run'], env());
      expect(JSON.parse(all.stdout)).toMatchObject({
        allPaused: true,
        matched: 9,
        byReason: { invalid_auth: 1, is_archived: 5, 'customer asked': 3 },
      });
      const allRes = JSON.parse((await runCli(['-p', project, 'resume', '--all-paused'], env())).stdout);
      expect(allRes).toMatchObject({ matched: 9, resumed: 8, skipped: 1, failed: 0 });
      expect(await indexed()).toEqual([...badToken, ...archived, ...byOperator, ...untouched].sort());
      for (const d of await docs(importedOff)) expect(d).toMatchObject({ enabled: false, pausedReason: null });

      // One id still works as before.
      const one = await runCli(['-p', project, 'resume', importedOff[0] as string], env());
      expect(JSON.parse(one.stdout)).toEqual({ id: importedOff[0], enabled: true });
      expect(await indexed()).toContain(importedOff[0]);
      // One imported disabled and never paused is paused by this call: a reason, not alreadyPaused.
      const offPaused = await runCli(['-p', project, 'pause', importedOff[1] as string], env());
      expect(JSON.parse(offPaused.stdout)).toEqual({
        id: importedOff[1],
        enabled: false,
        pausedReason: 'paused by an operator',
      });
      expect((await docs([importedOff[1] as string]))[0]).toMatchObject({
        pausedReason: 'paused by an operator',
        pausedAt: expect.anything(),
      });

      // A pause with no reason leaves one the notifier paused as it was, for a bulk resume to find.
      const auto = archived[0] as string;
      await store.recordPermanentFailure(auto, 'is_archived', 1, now);
      const pausedAt = (await docs([auto]))[0]?.pausedAt;
      const repeated = await runCli(['-p', project, 'pause', auto], env());
      expect(JSON.parse(repeated.stdout)).toEqual({
        id: auto,
        enabled: false,
        pausedReason: 'is_archived',
        alreadyPaused: true,
      });
      expect((await docs([auto]))[0]).toMatchObject({ pausedReason: 'is_archived', pausedAt });
      const fresh = await runCli(['-p', project, 'pause', untouched[0] as string], env());
      expect(JSON.parse(fresh.stdout)).toEqual({
        id: untouched[0],
        enabled: false,
        pausedReason: 'paused by an operator',
      });
      const found = await runCli(['-p', project, 'resume', '--paused-reason', 'is_archived'], env());
      expect(JSON.parse(found.stdout)).toMatchObject({ matched: 1, resumed: 1 });
    } finally {
      await db.terminate();
    }
  });

  it.each([
    [['resume'], /^slack-fanout: resume: give a notification id, --paused-reason <reason> or --all-paused\n$/],
    [
      ['resume', 'n-1', '--paused-reason', 'invalid_auth'],
      /^slack-fanout: resume: give a notification id or --paused-reason, not both \(got id "n-1"\)\n$/,
    ],
    [['resume', 'n-1', '--all-paused'], /not both/],
    [['resume', '--paused-reason', 'x', '--all-paused'], /give --paused-reason or --all-paused, not both/],
    [['resume', 'n-1', '--dry-run'], /--dry-run goes with --paused-reason or --all-paused/],
    [['resume', 'n-1', '--page-size', '10'], /--page-size goes with --paused-reason or --all-paused, not an id/],
  ])('%j is refused, naming what is wrong, before touching anything', async (args, message) => {
    const res = await runCli(['-p', 'demo-cli-resume-bad', ...args], env());
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
  });

  it('an empty or blank --paused-reason is an invalid argument, and says which', async () => {
    for (const [reason, what] of [
      ['', 'got an empty one'],
      ['  ', 'got a blank one'],
    ]) {
      const res = await runCli(['-p', 'demo-cli-resume-bad', 'resume', '--paused-reason', reason as string], env());
      expect(res.code).toBe(2);
      expect(res.stderr).toContain("option '--paused-reason <reason>' argument");
      expect(res.stderr).toContain(`expected 1 to 500 characters, ${what}`);
    }
  });
});

describe('add on a machine whose clock is off, on the emulator', () => {
  it("takes a new schedule's first instant and the notification's times from Firestore's clock, not the machine's", async () => {
    const project = uniqueProjectId('cli-clock');
    const dir = mkdtempSync(join(tmpdir(), 'clock-'));
    // Every Date this process makes is 3 minutes ahead.
    const shift = join(dir, 'shift.js');
    writeFileSync(
      shift,
      [
        'const Real = Date;',
        'const ahead = 180000;',
        'class Shifted extends Real {',
        '  constructor(...a) { if (a.length === 0) super(Real.now() + ahead); else super(...a); }',
        '  static now() { return Real.now() + ahead; }',
        '}',
        'globalThis.Date = Shifted;',
      ].join('\n'),
    );
    // A minute two ahead of the real time: still to come here, already past on the shifted clock.
    const due = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 120_000);
    const cron = `${due.getUTCMinutes()} ${due.getUTCHours()} * * *`;
    const before = Date.now();
    const added = await runCli(
      [
        '-p',
        project,
        'add',
        '--id',
        'n-clock',
        '--account',
        'a-1',
        '--channel',
        'C1',
        '--cron',
        cron,
        '--timezone',
        'UTC',
      ],
      { FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '', NODE_OPTIONS: `--require ${shift}` },
    );
    expect(added.code).toBe(0);
    const shown = await runCli(['-p', project, 'show', 'n-clock'], {
      FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '',
    });
    const printed = JSON.parse(shown.stdout) as { nextRunAt: string; createdAt: string };
    // Today's instant, not tomorrow's, which the shifted clock would have made it.
    expect(printed.nextRunAt).toBe(due.toISOString());
    expect(Date.parse(printed.createdAt)).toBeLessThan(before + 60_000);
  });
});

describe('import and reindex off a terminal, on the emulator', () => {
  const env = () => ({ FIRESTORE_EMULATOR_HOST: process.env.FIRESTORE_EMULATOR_HOST ?? '' });

  /** The command, stopped by `stop` `afterMs` after its stderr says `said` (how many it is to do). */
  async function stoppedCommand(
    args: string[],
    said: string,
    stop: (child: ChildProcess) => void,
    afterMs: number,
  ): Promise<{ code: number | null; stderr: string }> {
    const home = mkdtempSync(join(tmpdir(), 'no-adc-'));
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: home, ...env() },
    });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!sent && stderr.includes(said)) {
        sent = true;
        setTimeout(() => stop(child), afterMs);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    return { code, stderr };
  }

  it('import writes its progress to stderr in lines, and says which accounts it names are missing', async () => {
    const project = uniqueProjectId('cli-import');
    const { dir, file } = notificationsFile(3);
    const missing =
      'import: 1 account named here is not in Firestore ("a-1"): 3 notifications naming it are saved, and until ' +
      'import-accounts writes it each delivery of one fails (invalid_notification); after PAUSE_AFTER_FAILURES ' +
      'occurrences in a row (3 by default) a notification is paused (account_not_found: resume --paused-reason ' +
      'account_not_found brings those back)\n';
    const res = await runCli(['-p', project, 'import', file], env());
    expect(res).toMatchObject({ code: 0, stdout: 'imported 3 notifications\n' });
    expect(res.stderr).toBe(`import: 3 notifications to save\nimport: 3 of 3 notifications saved\n${missing}`);

    // Its account written, the same import says nothing more; `add` names a missing one too.
    const accounts = join(dir, 'accounts.json');
    writeFileSync(accounts, JSON.stringify([{ id: 'a-1', name: 'One' }]));
    expect((await runCli(['-p', project, 'import-accounts', accounts], env())).code).toBe(0);
    const again = await runCli(['-p', project, 'import', file], env());
    expect(again).toMatchObject({ code: 0, stdout: 'imported 3 notifications\n' });
    expect(again.stderr).toBe('import: 3 notifications to save\nimport: 3 of 3 notifications saved\n');
    const added = ['add', '--id', 'n-9', '--channel', 'C1', '--cron', '0 9 * * *', '--timezone', 'UTC'];
    const known = await runCli(['-p', project, ...added, '--account', 'a-1'], env());
    expect(known).toMatchObject({ code: 0, stderr: '' });
    const unknown = await runCli(['-p', project, ...added, '--account', 'a-\u00e9t\u00e9'], env());
    expect(unknown.code).toBe(0);
    expect(unknown.stderr).toMatch(
      /^add: 1 account named here is not in Firestore \("a-été"\): 1 notification naming it is saved/,
    );
  });

  it('import - reads the notifications from standard input, and names it stdin in an error', async () => {
    const project = uniqueProjectId('cli-import-stdin');
    const piped = (text: string) => {
      const child = spawn(process.execPath, [CLI, '-p', project, 'import', '-'], {
        env: { PATH: process.env.PATH ?? '', HOME: mkdtempSync(join(tmpdir(), 'no-adc-')), ...env() },
      });
      const { out, exited } = collectOutput(child);
      child.stdin.end(text);
      return exited.then((code) => ({ code, ...out }));
    };
    const { file } = notificationsFile(2, 'stdin-');
    expect(await piped(readFileSync(file, 'utf8'))).toMatchObject({ code: 0, stdout: 'imported 2 notifications\n' });
    const shown = await runCli(['-p', project, 'show', 'stdin-1'], env());
    expect(shown.code).toBe(0);
    // The notification as stored, and when it is next sent: its schedule's next instant.
    const printed = JSON.parse(shown.stdout) as { id: string; enabled: boolean; nextRunAt: string | null };
    expect(printed).toMatchObject({ id: 'stdin-1', enabled: true });
    expect(new Date(printed.nextRunAt ?? 0).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(shown.stderr).toBe('');
    // Its schedule's document deleted by hand: no next instant, and said why, with the mend.
    const db = createFirestore(project);
    const scheduleId = scheduleIdOf({ cron: '0 9 * * *', timezone: 'UTC' });
    try {
      await db.doc(`${COLLECTIONS.schedules}/${scheduleId}`).delete();
    } finally {
      await db.terminate();
    }
    const orphan = await runCli(['-p', project, 'show', 'stdin-1'], env());
    expect(orphan.code).toBe(0);
    expect(JSON.parse(orphan.stdout)).toMatchObject({ id: 'stdin-1', enabled: true, nextRunAt: null });
    expect(orphan.stderr).toBe(
      `show: schedule ${scheduleId} has no document (or no nextRunAt time), so no tick sends this notification: \`slack-fanout reindex\` makes it, due at its next instant\n`,
    );
    const bad = await piped('[{"id":"n-1","accountId":"a-1","channelId":"C1","cron":"0 9 * *","timezone":"UTC"}]');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^slack-fanout: stdin\[0\]: notification n-1: /);
    // An empty array saves nothing, and says so beside the count.
    const empty = await piped('[]');
    expect(empty).toMatchObject({ code: 0, stdout: 'imported 0 notifications\n' });
    expect(empty.stderr).toMatch(/\nimport: the array given is empty: nothing to save\n$/);
  });

  it('Ctrl-C lets the import’s transactions finish and says how many were saved; run again at once, it finishes', async () => {
    const project = uniqueProjectId('cli-import-int');
    const { file } = notificationsFile(6000);
    // Twice at once, as a terminal's Ctrl-C reaches `npm run cli` and npm passes it on: one stop.
    const { code, stderr } = await stoppedCommand(
      ['-p', project, 'import', file],
      'to save\n',
      (child) => {
        child.kill('SIGINT');
        setTimeout(() => child.kill('SIGINT'), 20);
      },
      300,
    );
    expect(code).toBe(130);
    expect(stderr).toContain('import: stopping once the writes under way finish (Ctrl-C again stops at once)\n');
    const saved = Number(INTERRUPTED_IMPORT.exec(stderr)?.[1]);
    // Whole transactions of 150 only.
    expect(saved % 150 === 0 || saved === 6000).toBe(true);

    const again = await runCli(['-p', project, 'import', file], env());
    expect(again).toMatchObject({ code: 0, stdout: 'imported 6000 notifications\n' });
    const db = createFirestore(project);
    try {
      const ids: string[] = [];
      for await (const page of new FirestoreStore(db).notificationPages(
        scheduleIdOf({ cron: '0 9 * * *', timezone: 'UTC' }),
        null,
        1000,
      ))
        ids.push(...page.ids);
      expect(ids).toHaveLength(6000);
    } finally {
      await db.terminate();
    }
  }, 90_000);

  it('an import of many schedules creates each schedule document', async () => {
    const project = uniqueProjectId('cli-import-sched');
    const file = join(mkdtempSync(join(tmpdir(), 'import-')), 'n.json');
    const items = Array.from({ length: 240 }, (_, i) => ({
      id: `n-${i}`,
      accountId: 'a-1',
      channelId: 'C1',
      cron: `${i % 60} ${Math.floor(i / 60)} * * *`,
      timezone: 'UTC',
    }));
    writeFileSync(file, JSON.stringify(items));
    expect(await runCli(['-p', project, 'import', file], env())).toMatchObject({ code: 0 });
    const db = createFirestore(project);
    try {
      const schedules = await db.collection('schedules').get();
      expect(schedules.size).toBe(240);
      expect(schedules.docs.every((d) => d.get('nextRunAt') && d.get('activeOccurrence') === null)).toBe(true);
    } finally {
      await db.terminate();
    }
  });

  it('an import of thousands of schedules counts each schedule made as progress, and says so, rather than stopping as stalled', async () => {
    const project = uniqueProjectId('cli-import-many-sched');
    const file = join(mkdtempSync(join(tmpdir(), 'import-')), 'n.json');
    const zones = ['UTC', 'Europe/Paris', 'Asia/Tokyo'];
    const items = Array.from({ length: 3000 }, (_, i) => ({
      id: `n-${i}`,
      accountId: 'a-1',
      channelId: 'C1',
      cron: `${i % 60} ${Math.floor(i / 60) % 24} * * *`,
      timezone: zones[Math.floor(i / 1440)],
    }));
    writeFileSync(file, JSON.stringify(items));
    // Seconds of schedule writes before the first notification is: a stall to a watch that
    // counts only notifications saved. Each read of a page of schedules (300) answers 4 s late
    // here, 4 pages at once, so the 3,000 take about 12 s, with a page done every 4 s or so: a
    // watch blind to them stops the import at 8 s (4 s past a page's wait, for a loaded machine).
    const result = await runCli(['-p', project, 'import', file, '--stall-timeout', '8'], {
      ...env(),
      NODE_OPTIONS: `--require ${join(__dirname, 'fixtures', 'slow-schedule-reads.cjs')}`,
      SLOW_SCHEDULE_READS_MS: '4000',
    });
    expect(result).toMatchObject({ code: 0, stdout: 'imported 3000 notifications\n' });
    expect(result.stderr).not.toContain('stopped: no write finished');
    const lines = result.stderr.match(/\nimport: \d+ of 3000 schedules ready, before the notifications\n/g) ?? [];
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(result.stderr).toContain('\nimport: 3000 of 3000 schedules ready, before the notifications\n');
  }, 120_000);

  it.each([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)(
    '%s stops an import as Ctrl-C does: the transactions under way finish, it says how many were saved, exit %d',
    async (signal, exitCode) => {
      const project = uniqueProjectId('cli-import-term');
      const { file } = notificationsFile(6000);
      const { code, stderr } = await stoppedCommand(
        ['-p', project, 'import', file],
        'to save\n',
        (child) => child.kill(signal),
        300,
      );
      expect(code).toBe(exitCode);
      expect(stderr).toContain(
        `import: ${signal}: stopping once the writes under way finish (${signal} again stops at once)\n`,
      );
      expect(stderr).toMatch(INTERRUPTED_IMPORT);
      // Nothing said after the stop but how far it got.
      expect(stderr.slice(stderr.indexOf('stopping once')).split('\n').filter(Boolean)).toHaveLength(2);
    },
    90_000,
  );

  it('reindex writes its progress to stderr in lines, and Ctrl-C says how far it got', async () => {
    const project = uniqueProjectId('cli-reindex');
    const db = createFirestore(project);
    try {
      const schedule = { cron: '0 9 * * *', timezone: 'UTC' };
      await saveNotifications(
        db,
        Array.from({ length: 3000 }, (_, i) => notification(i + 1, schedule)),
      );
    } finally {
      await db.terminate();
    }
    const whole = await runCli(['-p', project, 'reindex'], env());
    expect(whole.code).toBe(0);
    // Each phase after the scan says what it does, and how far it is: its one schedule checked,
    // then its index buckets read.
    expect(whole.stderr).toMatch(
      /^reindex: 3000 notifications to scan\n(reindex: \d+ of 3000 notifications scanned\n)*reindex: 1 schedule to check\n(reindex: [01] of 1 schedules checked\n)*reindex: 1 schedule with index buckets to read\n(reindex: [01] of 1 schedules with their index buckets read\n)*$/,
    );
    expect(whole.stderr).toContain('reindex: 3000 of 3000 notifications scanned\n');
    expect(whole.stderr).toContain('reindex: 1 of 1 schedules with their index buckets read\n');

    // Interrupted as soon as it has counted them: before it has scanned them all.
    const { code, stderr } = await stoppedCommand(
      ['-p', project, 'reindex'],
      'to scan\n',
      (child) => child.kill('SIGINT'),
      0,
    );
    expect(code).toBe(130);
    expect(stderr).toMatch(
      /\nreindex: interrupted after scanning (0|1000|2000) of 3000 notifications \(those scanned are indexed; the page under way may be partly done\); running it again is safe\n$/,
    );
  });
});

describe('the built command, with a Firestore that stops answering mid-import', () => {
  it('says so while it waits, then stops at --stall-timeout with how many were saved, exit 1', async () => {
    // A proxy in front of the emulator that stops passing bytes on, both ways, when told.
    const [host, port] = (process.env.FIRESTORE_EMULATOR_HOST ?? '').split(':');
    let frozen = false;
    const sockets: Socket[] = [];
    const proxy = createServer((client) => {
      const upstream = connect(Number(port), host);
      sockets.push(client, upstream);
      client.on('data', (d) => frozen || upstream.write(d));
      upstream.on('data', (d) => frozen || client.write(d));
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        a.on('error', () => undefined);
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyAt = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
    const { dir, file } = notificationsFile(3000, 'stall-');
    try {
      const child = spawn(
        process.execPath,
        [CLI, '-p', uniqueProjectId('stall'), 'import', file, '--stall-timeout', '6'],
        {
          env: { PATH: process.env.PATH ?? '', HOME: dir, FIRESTORE_EMULATOR_HOST: proxyAt },
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // Firestore answered the first read; from now on it says nothing.
        if (stderr.includes('to save')) frozen = true;
      });
      const started = Date.now();
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(code).toBe(1);
      expect(stderr).toContain(
        `import: no write has finished for 2 s (Firestore at FIRESTORE_EMULATOR_HOST=${proxyAt}); still trying, stopping at 6 s (--stall-timeout); Ctrl-C stops now`,
      );
      expect(stderr).toMatch(
        new RegExp(
          `import: stopped: no write finished for 6 s \\(Firestore at FIRESTORE_EMULATOR_HOST=${proxyAt}\\); \\d+ of 3000 notifications saved at least \\(saving again is safe; the transactions left open keep their locks for about a minute, which a save sooner waits out\\)\\n$`,
        ),
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  }, 40_000);
});
