import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort, isListening } from '../dev/emulators';
import { ROOT } from '../dev/processes';
import { SlackStandIn } from '../dev/slack-standin';
import { collectOutput } from './helpers';

/**
 * `npm start` (dist/dev/local.js) stopped early, the ways a user stops it: Ctrl-C while it
 * seeds, or a reader of its output that quits (`npm start | head`). Either way it exits, and
 * nothing it started (the emulators, the services) is left listening.
 */

const LOCAL = join(ROOT, 'dist', 'dev', 'local.js');

interface Stopped {
  code: number | null;
  lines: string[];
  ports: number[];
  /** The runner and every process under it when it was stopped. */
  started: Set<number>;
  exitedWithinMs: number;
}

/** A process's parent, from /proc; undefined once it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so split after its last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** `root` and every process under it. */
function processTree(root: number): Set<number> {
  const children = new Map<number, number[]>();
  for (const pid of readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)) {
    const ppid = parentOf(pid);
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const tree = new Set([root]);
  for (const pid of tree) for (const child of children.get(pid) ?? []) tree.add(child);
  return tree;
}

/** Whether `pid` runs under this test run (another test's emulator or server), by its parents. */
function underThisTestRun(pid: number): boolean {
  for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; hops++) {
    if (p === process.ppid) return true;
    p = parentOf(p);
  }
  return false;
}

/** The local runner as a new user starts it: its own emulators, the Slack stand-in. */
function spawnLocal(args: string[]) {
  const env = { ...process.env };
  delete env.PUBSUB_EMULATOR_HOST;
  delete env.FIRESTORE_EMULATOR_HOST;
  delete env.SLACK_BOT_TOKEN;
  return spawn(process.execPath, [LOCAL, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the local runner until `trigger` appears in its output, then stops it with `stop`. */
function runAndStop(
  trigger: RegExp,
  stop: 'sigint' | 'sigterm' | 'sighup' | 'close-stdout',
  args: string[] = ['-n', '300'],
  delay: number | (() => number) = 0,
): Promise<Stopped> {
  const child = spawnLocal(args);
  const lines: string[] = [];
  let stoppedAt = 0;
  let started = new Set<number>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the local run did not exit; its output:\n${lines.join('\n')}`));
    }, 90_000);
    const reader = createInterface({ input: child.stdout });
    reader.on('line', (line) => {
      lines.push(line);
      if (stoppedAt || !trigger.test(line)) return;
      const delayMs = typeof delay === 'number' ? delay : delay();
      stoppedAt = Date.now() + delayMs;
      if (stop !== 'close-stdout') {
        const signal = stop === 'sigint' ? 'SIGINT' : stop === 'sigterm' ? 'SIGTERM' : 'SIGHUP';
        setTimeout(() => {
          started = processTree(child.pid ?? 0);
          child.kill(signal);
        }, delayMs);
      } else {
        started = processTree(child.pid ?? 0);
        reader.close();
        child.stdout.destroy();
      }
    });
    child.stderr.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString().trim()}`));
    child.on('exit', (code) => {
      clearTimeout(timer);
      const ports = lines.flatMap((l) => [...l.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])));
      resolve({ code, lines, ports, started, exitedWithinMs: Date.now() - stoppedAt });
    });
  });
}

/** The process listening on a loopback port (`ss` names it), to kill one the run started. */
function pidOn(port: number | string | undefined): number {
  return Number(
    execFileSync('ss', ['-ltnpH', `sport = :${port}`])
      .toString()
      .match(/pid=(\d+)/)?.[1],
  );
}

/** A child's exit code, or null once killed for not exiting within `ms`. */
function exitCodeOf(child: ChildProcess, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
}

/** Once the run's Slack stand-in is up (its line), every post to it is held for 10 minutes. */
function holdEveryPost(line: string, slackPort: number): void {
  if (!/^Slack stand-in at /.test(line)) return;
  void fetch(`http://127.0.0.1:${slackPort}/_admin/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([{ respond: { kind: 'delay', ms: 600_000 } }]),
  });
}

const listening = (port: number) => isListening('127.0.0.1', port);

/**
 * The run's ports still held by a process the run started: one under it when it was stopped, or
 * one orphaned since. A port freed by the run and taken at once by another test's process (one
 * under this test run, not under the stopped runner) is not the run's.
 */
async function stillListening(run: Stopped): Promise<number[]> {
  // The children's sockets close as they exit: give them a moment after the runner is gone.
  await new Promise((r) => setTimeout(r, 1000));
  const open = await Promise.all(run.ports.map(async (p) => ((await listening(p)) ? p : null)));
  return open.filter((p): p is number => {
    if (p === null) return false;
    const holder = pidOn(p);
    // Freed between the two looks: nothing holds it.
    if (Number.isNaN(holder)) return false;
    return run.started.has(holder) || !underThisTestRun(holder);
  });
}

describe('npm start, stopped early', () => {
  test('Ctrl-C while it seeds: exits 130 within seconds and leaves nothing listening', async () => {
    const run = await runAndStop(/^topology: /, 'sigint');
    expect(run.lines.join('\n')).toContain('SIGINT: stopping everything this run started');
    expect(run.code).toBe(130);
    expect(run.exitedWithinMs).toBeLessThan(20_000);
    // Both emulators, the stand-in, the notifier and the dispatcher had printed their ports.
    expect(run.ports.length).toBeGreaterThanOrEqual(5);
    expect(await stillListening(run)).toEqual([]);
  }, 120_000);

  test('Ctrl-C during the first tick: only the stop is said after it, not what it did to the tick', async () => {
    const run = await runAndStop(/^seeded /, 'sigint', ['-n', '2000'], 100);
    expect(run.code).toBe(130);
    const stdout = run.lines.filter((l) => !l.startsWith('stderr: '));
    const stop = stdout.findIndex((l) => l.startsWith('SIGINT: stopping everything this run started'));
    expect(stop).toBeGreaterThan(0);
    const after = stdout.slice(stop + 1);
    expect(after.filter((l) => !/^(\d+ calls? held by a fault rule|stopped)/.test(l))).toEqual([]);
    expect(after.at(-1)).toBe('stopped: nothing this run started is left running');
    expect(await stillListening(run)).toEqual([]);
  }, 120_000);

  test('Ctrl-C as posts land: the stand-in, holding no call, is stopped after the notifier, whose posts under way do not meet a Slack that is gone', async () => {
    const run = await runAndStop(/^ {2}✓ posted /, 'sigint', ['-n', '50']);
    expect(run.code).toBe(130);
    const logDir = /\(logs in (.+)\)$/.exec(run.lines.find((l) => l.includes('(logs in ')) ?? '')?.[1];
    expect(readFileSync(join(logDir as string, 'notifier.log'), 'utf8')).not.toContain('Slack could not be reached');
  }, 120_000);

  test('Ctrl-C between ticks, the next tick due before the stop ends: waits for the stop, exits 130', async () => {
    // Ctrl-C 50 ms before the next tick is due (ticks fall on the clock, at whole multiples of
    // the interval): that tick's turn comes while the stop runs.
    const beforeNextTick = () => {
      const next = (Math.floor(Date.now() / 2000) + 1) * 2000;
      return Math.max(0, next - Date.now() - 50);
    };
    const run = await runAndStop(/^running: /, 'sigint', ['-n', '5', '--interval', '2'], beforeNextTick);
    expect(run.code).toBe(130);
    expect(run.ports.length).toBeGreaterThanOrEqual(5);
    expect(await stillListening(run)).toEqual([]);
  }, 120_000);

  test.each([
    ['SIGTERM (kill, timeout, an IDE’s stop button)', 'sigterm', 143],
    ['SIGHUP (the terminal closed)', 'sighup', 129],
  ] as const)(
    '%s between ticks (%s): exits %i and leaves nothing listening',
    async (_what, stop, code) => {
      const run = await runAndStop(/^running: /, stop, ['-n', '5', '--interval', '5']);
      expect(run.code).toBe(code);
      // It says when the next tick comes: within the interval.
      const running = run.lines.find((l) => l.startsWith('running: ')) ?? '';
      const [, at, inSeconds] =
        /; the next at (\S+Z) \((?:in (\d+) s|due already: sent now)\)\. Ctrl-C stops everything\.$/.exec(running) ??
        [];
      expect(Number(inSeconds ?? 0)).toBeLessThanOrEqual(5);
      expect(new Date(at ?? '').getTime() % 5000).toBe(0);
      expect(run.ports.length).toBeGreaterThanOrEqual(5);
      expect(await stillListening(run)).toEqual([]);
    },
    120_000,
  );

  test.each([
    ['ticking on', 0, ['-n', '300']],
    // With --once, 0 says every delivery reached a final state: a run cut short cannot say that.
    ['--once', 1, ['-n', '3', '--once']],
  ])(
    'its output closed by the reader (npm start | head), %s: exits %d and leaves nothing listening',
    async (_mode, exitCode, args) => {
      const run = await runAndStop(/^notifier at /, 'close-stdout', args);
      expect(run.code).toBe(exitCode);
      expect(run.exitedWithinMs).toBeLessThan(20_000);
      expect(run.ports.length).toBeGreaterThanOrEqual(4);
      expect(await stillListening(run)).toEqual([]);
    },
    120_000,
  );
});

describe('npm start, ticking on', () => {
  test('a later tick refused while Pub/Sub does not answer is said and sent again, as Cloud Scheduler retries, until it is taken', async () => {
    const child = spawnLocal(['-n', '3', '--interval', '2']);
    const lines: string[] = [];
    let frozen: number | null = null;
    const waiting: { pattern: RegExp; resolve: (line: string) => void }[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      for (const w of [...waiting]) {
        if (w.pattern.test(line)) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
    /** The first line from `from` on that matches, waiting for it up to `within` ms. */
    const next = (pattern: RegExp, within: number, from = 0) =>
      new Promise<string>((resolve, reject) => {
        const found = lines.slice(from).find((l) => pattern.test(l));
        if (found) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no line ${pattern} in:\n${lines.join('\n')}`)), within);
        waiting.push({
          pattern,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const up = await next(/^emulators up: PUBSUB_EMULATOR_HOST=127\.0\.0\.1:(\d+)/, 60_000);
      await next(/^summary: /, 30_000);
      // The Pub/Sub emulator, frozen: the next tick's readiness check finds it not answering.
      const port = up.match(/PUBSUB_EMULATOR_HOST=127\.0\.0\.1:(\d+)/)?.[1];
      const ss = execFileSync('ss', ['-ltnpH', `sport = :${port}`]).toString();
      frozen = Number(ss.match(/pid=(\d+)/)?.[1]);
      expect(frozen).toBeGreaterThan(0);
      process.kill(frozen, 'SIGSTOP');
      const refused = await next(
        /^tick \S+Z failed: HTTP 503 .*; the tick is sent again every 5 s, as Cloud Scheduler retries$/,
        30_000,
      );
      const at = refused.match(/^tick (\S+Z) failed/)?.[1] ?? '';
      // Sent again twice more while Pub/Sub stays frozen: the same refusal is not said again.
      await new Promise((r) => setTimeout(r, 11_000));
      expect(lines.filter((l) => l.startsWith(`tick ${at} failed`))).toHaveLength(1);
      process.kill(frozen, 'SIGCONT');
      frozen = null;
      // The same tick, its occurrence not passed over: the next tick sends the latest only.
      await next(new RegExp(`^tick ${at.replace(/[.]/g, '\\.')}: HTTP 200`), 30_000, lines.length);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
    } finally {
      if (frozen) process.kill(frozen, 'SIGCONT');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});

describe('npm start, a service killed', () => {
  test('the notifier and the dispatcher killed as the tick goes out are started again on their ports, and the tick is sent again: none dead, exit 0', async () => {
    // The ports chosen on the command line are the ones used, and a restart keeps them.
    const [pubsubPort, firestorePort, dispatcherPort, notifierPort, pushPort, slackPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const child = spawnLocal([
      '-n',
      '3',
      '--once',
      '--pubsub-port',
      String(pubsubPort),
      '--firestore-port',
      String(firestorePort),
      '--dispatcher-port',
      String(dispatcherPort),
      '--notifier-port',
      String(notifierPort),
      '--push-port',
      String(pushPort),
      '--slack-port',
      String(slackPort),
    ]);
    const lines: string[] = [];
    const killed: number[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      // Both killed once the demo data is in, as the tick goes out: it finds no dispatcher, or
      // one that dies under it, and its pushes find no notifier.
      if (killed.length === 0 && /^seeded /.test(line)) {
        const at = lines.find((l) => l.startsWith('notifier at ')) ?? '';
        const notifier = at.match(/^notifier at http:\/\/127\.0\.0\.1:(\d+)/)?.[1];
        const dispatcher = at.match(/dispatcher at http:\/\/127\.0\.0\.1:(\d+)/)?.[1];
        for (const pid of [pidOn(dispatcher), pidOn(notifier)]) {
          killed.push(pid);
          process.kill(pid, 'SIGKILL');
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString().trim()}`));
    const code = await exitCodeOf(child, 170_000);
    const output = lines.join('\n');
    expect(killed).toHaveLength(2);
    expect(killed.every((pid) => pid > 0)).toBe(true);
    expect(output).toContain('the notifier exited (SIGKILL); starting it again');
    expect(output).toContain('the dispatcher exited (SIGKILL); starting it again');
    expect(output).toContain(
      `emulators up: PUBSUB_EMULATOR_HOST=127.0.0.1:${pubsubPort} FIRESTORE_EMULATOR_HOST=127.0.0.1:${firestorePort}`,
    );
    expect(output).toMatch(new RegExp(`dispatcher at http://127\\.0\\.0\\.1:${dispatcherPort} `));
    expect(output).toContain(
      `notifier at http://127.0.0.1:${notifierPort} (pushed through http://127.0.0.1:${pushPort}), dispatcher at`,
    );
    expect(output).toContain(`status page: http://127.0.0.1:${dispatcherPort}/status`);
    expect(output).toContain(
      `Slack stand-in at http://127.0.0.1:${slackPort}/api/ (its faults: http://127.0.0.1:${slackPort}/_admin/faults, its posts: http://127.0.0.1:${slackPort}/_admin/posts;`,
    );
    const notifierUrl = output.match(/^notifier at (http:\/\/127\.0\.0\.1:\d+)/m)?.[1];
    expect(output).toContain(`the notifier is up again at ${notifierUrl}\n`);
    expect(output).toContain(`the dispatcher is up again at http://127.0.0.1:${dispatcherPort}\n`);
    // Two sent, the archived channel's failed for good; nothing spent its attempts on a notifier that was down.
    expect(output).toMatch(/^summary: 3 expected, 2 sent, 1 failed, 0 skipped, 0 dead, 0 not final/m);
    expect(code).toBe(0);
  }, 180_000);
});

describe('npm start with a SLACK_BOT_TOKEN', () => {
  test('the demo posts no instant more than a minute older than the run: a run started again does not post again what one before it posted minutes ago', async () => {
    // Real Slack's methods, on loopback: the run takes it for Slack, as SLACK_API_URL says.
    const slack = new SlackStandIn({ token: 'xoxb-demo' });
    const { url } = await slack.start();
    const started = Date.now();
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, SLACK_BOT_TOKEN: 'xoxb-demo', SLACK_API_URL: url };
      delete env.PUBSUB_EMULATOR_HOST;
      delete env.FIRESTORE_EMULATOR_HOST;
      // -n 3: one each of every minute, every 2 minutes and every 5 minutes.
      const child = spawn(process.execPath, [LOCAL, '-n', '3', '--once', '--channel', 'C0123456789'], {
        cwd: ROOT,
        env,
      });
      const { out, exited } = collectOutput(child);
      const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
      const code = await exited;
      clearTimeout(timer);
      expect({ code, stderr: out.stderr }).toEqual({ code: 0, stderr: '' });
      const delivered = slack.posts.map((p) => String(p.metadata?.event_payload.deliveryId));
      expect(delivered.some((id) => id.startsWith('notif-000001:'))).toBe(true);
      for (const id of delivered) {
        const occurrence = Date.parse(id.slice(id.indexOf(':') + 1));
        expect({ id, minuteOrLess: occurrence >= started - 60_000 }).toEqual({ id, minuteOrLess: true });
      }
    } finally {
      await slack.stop();
    }
  }, 180_000);
});

describe('npm start --slack-faults', () => {
  test("the file's rules are in force from the first tick of a --once run, before the archived channel's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slack-faults-'));
    const file = join(dir, 'faults.json');
    writeFileSync(
      file,
      JSON.stringify([
        // The first demo channel's first two calls: an error the notifier retries.
        { channel: 'C000000001', times: 2, respond: { kind: 'slack_error', error: 'some_unknown_code' } },
        // Every channel, the demo's archived one too: the file's rules come before its own.
        { channelPrefix: 'C0', respond: { kind: 'slack_error', error: 'channel_not_found' } },
      ]),
    );
    const child = spawnLocal(['-n', '4', '--once', '--slack-faults', file]);
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
    child.stderr.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString().trim()}`));
    const code = await exitCodeOf(child, 170_000);
    const output = lines.join('\n');
    expect(output).toContain(`Slack stand-in faults: 2 rules from ${file}`);
    // Every channel refused by the file's rules, the archived one's rule kept for none: nothing
    // posted. The delivery refused three times says so from its second refusal.
    const first = lines.filter((l) => /^ {2}✗ refused notif-000001:/.test(l)).map((l) => l.replace(/^.*: /, ''));
    expect(first).toEqual([
      'some_unknown_code',
      'some_unknown_code (refused 2 times)',
      'channel_not_found (refused 3 times)',
    ]);
    expect(lines.filter((l) => /^ {2}✗ refused notif-00000[234]:.*: channel_not_found$/.test(l))).toHaveLength(3);
    expect(lines.filter((l) => /: is_archived/.test(l))).toEqual([]);
    expect(lines.filter((l) => /^ {2}✓ posted /.test(l))).toEqual([]);
    expect(output).toMatch(/^summary: 4 expected, 0 sent, 4 failed, 0 skipped, 0 dead, 0 not final/m);
    expect(code).toBe(0);
  }, 180_000);
});

describe('npm start, an emulator killed', () => {
  test('the Pub/Sub emulator killed under the progress bar: the run names it, says the held posts are dropped, draws no bar after, exits 1', async () => {
    const [pubsubPort, slackPort] = [await freePort(), await freePort()];
    // 200 deliveries: past the lines printed one by one, so a progress bar (on stderr) shows them.
    const child = spawnLocal(['-n', '200', '--pubsub-port', String(pubsubPort), '--slack-port', String(slackPort)]);
    const lines: string[] = [];
    let killed = 0;
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      // Every post held for 10 minutes, from before the tick goes out.
      holdEveryPost(line, slackPort);
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(`stderr: ${line}`);
      // The bar's first line, once some calls are held: then the emulator's Java goes.
      if (killed === 0 && /deliveries \[/.test(line)) {
        killed = pidOn(pubsubPort);
        setTimeout(() => process.kill(killed, 'SIGKILL'), 2000);
      }
    });
    const code = await exitCodeOf(child, 150_000);
    const output = lines.join('\n');
    expect(killed).toBeGreaterThan(0);
    expect(code).toBe(1);
    const stop = lines.findIndex((l) =>
      /the Pub\/Sub emulator exited \(SIGKILL\).*stopping everything this run started/.test(l),
    );
    expect(stop).toBeGreaterThan(0);
    // The bar and the stop's line are both on stderr, so their order is the order written; the
    // line on the held calls is on stdout, whose order against stderr's no reader can know.
    const after = lines.slice(stop + 1).filter((l) => l.startsWith('stderr: '));
    expect(after.filter((l) => /deliveries \[/.test(l))).toEqual([]);
    expect(output).toMatch(/^\d+ calls? held by a fault rule at the Slack stand-in (is|are) dropped: /m);
    expect(output).toContain('stopped: nothing this run started is left running');
  }, 180_000);
});

describe('npm start, Firestore frozen', () => {
  test('the Firestore emulator frozen under the progress bar: --timeout still ends the run, which says what it could not read, exit 1', async () => {
    const [firestorePort, slackPort] = [await freePort(), await freePort()];
    const timeout = 15;
    const child = spawnLocal([
      '--once',
      '-n',
      '200',
      '--timeout',
      String(timeout),
      '--firestore-port',
      String(firestorePort),
      '--slack-port',
      String(slackPort),
    ]);
    const lines: string[] = [];
    let frozen = 0;
    let tickAt = 0;
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      // Every post held, so that the deliveries are not all final before Firestore stops.
      holdEveryPost(line, slackPort);
      if (tickAt === 0 && /^tick /.test(line)) tickAt = Date.now();
    });
    createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(`stderr: ${line}`);
      // The bar's first line: then the Firestore emulator's Java stops answering.
      if (frozen === 0 && /deliveries \[/.test(line)) {
        frozen = pidOn(firestorePort);
        process.kill(frozen, 'SIGSTOP');
      }
    });
    try {
      const code = await exitCodeOf(child, 150_000);
      const output = lines.join('\n');
      expect(frozen).toBeGreaterThan(0);
      expect(code).toBe(1);
      // Ended by --timeout and the look's grace, not by Firestore coming back (it never does).
      expect(Date.now() - tickAt).toBeLessThan((timeout + 5 + 20) * 1000);
      // Frozen as the first look went out, or just after one was answered: said either way.
      if (/^summary: 200 expected, none counted$/m.test(output)) {
        expect(output).toMatch(
          /^timed out after 15 s \(--timeout\): Firestore did not answer the watch's last look by 5 s past the deadline, so no delivery could be counted$/m,
        );
      } else {
        expect(output).toMatch(/^timed out: \d+ deliveries not final after 15 s \(--timeout\)$/m);
        expect(output).toMatch(
          /^Firestore did not answer the watch's last look by 5 s past the deadline: the counts below are those read [\d.]+ s in, and failures are not listed$/m,
        );
        expect(output).toMatch(/^summary: 200 expected, \d+ sent, .* not final, as read [\d.]+ s in$/m);
      }
    } finally {
      if (frozen) {
        try {
          process.kill(frozen, 'SIGCONT');
        } catch {
          // Gone with the run.
        }
      }
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 180_000);
});

describe('npm start without Java', () => {
  test('says the emulators need Java, quoting the emulator’s log and naming it; exit 1', async () => {
    // A PATH with everything /usr/bin and /bin hold but java.
    const dir = mkdtempSync(join(tmpdir(), 'no-java-'));
    for (const bin of ['/usr/bin', '/bin']) {
      for (const name of readdirSync(bin)) {
        if (name === 'java' || existsSync(join(dir, name))) continue;
        symlinkSync(join(bin, name), join(dir, name));
      }
    }
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: dir };
    delete env.JAVA_HOME;
    delete env.PUBSUB_EMULATOR_HOST;
    delete env.FIRESTORE_EMULATOR_HOST;
    const child = spawn(process.execPath, [LOCAL, '--once', '-n', '2'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(out).toMatch(/the emulators did not start: the (pubsub|firestore) emulator: process exited with code \d+/);
    expect(out).toMatch(/its log ends: .*java/i);
    expect(out).toMatch(
      /\(the emulators need Java 17 on PATH or in JAVA_HOME\) \(log: \S+\/(pubsub|firestore)-\d+\.log\)/,
    );
  }, 60_000);
});

describe('npm start, given bad usage', () => {
  const envWith = (extraEnv: NodeJS.ProcessEnv) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
    delete env.PUBSUB_EMULATOR_HOST;
    delete env.FIRESTORE_EMULATOR_HOST;
    if (!('SLACK_BOT_TOKEN' in extraEnv)) delete env.SLACK_BOT_TOKEN;
    return env;
  };
  type Ran = { status: number | null; stdout: string; stderr: string };
  /** Each run at once (each is a second of module loading, most of it waiting on the disk), answered in order. */
  const runAll = (calls: (readonly [readonly string[], NodeJS.ProcessEnv?])[]): Promise<Ran[]> =>
    Promise.all(
      calls.map(
        ([args, extraEnv]) =>
          new Promise<Ran>((resolve) => {
            execFile(
              process.execPath,
              [LOCAL, ...args],
              { cwd: ROOT, env: envWith(extraEnv ?? {}), encoding: 'utf8', timeout: 60_000 },
              (err, stdout, stderr) =>
                resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
            );
          }),
      ),
    );

  test('an unknown option or a bad value exits 2 at once, naming it, before anything starts', async () => {
    const named = [
      [['--bogus'], /unknown option '--bogus'/],
      [['-n', '0'], /-n, --notifications <count>.*0/],
      [['--log-level', 'loud'], /--log-level.*loud/],
      [['--channel', 'C123'], /^error: --channel is for real Slack: set SLACK_BOT_TOKEN too/],
      [['--once', '--interval', '5'], /^error: --interval is for a run that keeps ticking: --once sends one tick/],
      [['-n', '5', '-n', '6'], /^error: --notifications is given twice \("5" and "6"\): give it once\n/],
      [['--channel', '--once'], /--once is an option, not a value: give --channel its value/],
      [['--dispatcher-port', '70000'], /--dispatcher-port <port>.*70000/],
      [['--slack-port', '0'], /--slack-port <port>.*0/],
      [['--push-port', '9313', '--notifier-port', '9313'], /--push-port 9313: --notifier-port is 9313 too/],
      [['--slack-port', '9311', '--dispatcher-port', '9311'], /--slack-port 9311: --dispatcher-port is 9311 too/],
      [['--pubsub-port', '9311', '--firestore-port', '9311'], /--firestore-port 9311: --pubsub-port is 9311 too/],
    ] as const;
    const [stray, took, loud, help, blank, real, slackPort, ...each] = await runAll([
      // Words that are not options (npm start once, or the value of an option npm took), named.
      [['once', '5']],
      // npm start --once without --: npm keeps --once as its own config (npm_config_once), and
      // the run would tick on forever; named, exit 2, before anything starts.
      [[], { npm_lifecycle_event: 'start', npm_config_once: 'true', npm_config_notifications: 'true' }],
      [[], { LOG_LEVEL: 'loud' }],
      [['--help'], { LOG_LEVEL: '' }],
      [['--channel', 'not a channel'], { SLACK_BOT_TOKEN: 'xoxb-real' }],
      [[], { SLACK_BOT_TOKEN: 'xoxb-real' }],
      [['--channel', 'C123', '--slack-port', '9312'], { SLACK_BOT_TOKEN: 'xoxb-real' }],
      ...named.map(([args]) => [args] as const),
    ]);
    named.forEach(([args, said], i) => {
      const r = each[i] as Ran;
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr).toMatch(said);
      expect(r.stdout).not.toMatch(/starting the Pub\/Sub emulator/);
    });
    expect(stray?.status).toBe(2);
    expect(stray?.stderr).toMatch(
      /^error: "once" "5" are not options: npm start takes options alone, given after -- so that npm passes them on, as in npm start -- --once -n 5\n\(npm start -- --help lists every option\)\n$/,
    );
    expect(took?.status).toBe(2);
    expect(took?.stderr).toMatch(
      /^error: npm took --once, --notifications for its own config, so the run never saw them: give the run's options after --, as in npm start -- --once\n/,
    );
    expect(took?.stdout).not.toMatch(/starting the Pub\/Sub emulator/);
    expect(loud?.status).toBe(2);
    expect(loud?.stderr).toMatch(/^error: LOG_LEVEL="loud" is not a log level: expected one of trace, debug/);
    expect(help?.status).toBe(0);
    expect(blank?.status).toBe(2);
    expect(blank?.stderr).toMatch(/--channel <id>' argument 'not a channel' is invalid\. expected a Slack channel id/);
    expect(real?.status).toBe(2);
    expect(real?.stderr).toMatch(/^error: SLACK_BOT_TOKEN is set, so posts go to real Slack: pass --channel <id>/);
    expect(slackPort?.status).toBe(2);
    expect(slackPort?.stderr).toMatch(
      /^error: --slack-port is for the local Slack stand-in, and SLACK_BOT_TOKEN is set/,
    );
  }, 120_000);

  test('a SLACK_BOT_TOKEN Slack refuses is named, exit 2, before anything starts', async () => {
    const slack = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":false,"error":"token_revoked"}');
    });
    await new Promise<void>((resolve) => slack.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(slack.address() as AddressInfo).port}/api/`;
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, SLACK_BOT_TOKEN: 'xoxb-revoked', SLACK_API_URL: url };
      delete env.PUBSUB_EMULATOR_HOST;
      delete env.FIRESTORE_EMULATOR_HOST;
      // Not spawnSync: the Slack stand-in lives in this process's event loop.
      const child = spawn(process.execPath, [LOCAL, '--once', '--channel', 'C123'], { cwd: ROOT, env });
      const { out, exited } = collectOutput(child);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const r = { status: await exited, ...out };
      clearTimeout(timer);
      expect(r).toMatchObject({ status: 2 });
      expect(r.stderr).toBe(
        `error: SLACK_BOT_TOKEN: Slack at ${url} refused it (token_revoked), so every post would fail; nothing was started\n`,
      );
      expect(r.stdout).not.toMatch(/starting the Pub\/Sub emulator/);
    } finally {
      slack.close();
    }
  });

  test('a chosen port another process has is named, exit 2, before anything starts', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.PUBSUB_EMULATOR_HOST;
      delete env.FIRESTORE_EMULATOR_HOST;
      delete env.SLACK_BOT_TOKEN;
      // A shell value the run sets its own over is said, before the port.
      env.NACK_DELAY_MS = '99999';
      // Not spawnSync: the server holding the port lives in this process's event loop.
      const child = spawn(process.execPath, [LOCAL, '--dispatcher-port', String(port)], { cwd: ROOT, env });
      const { out, exited } = collectOutput(child);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const r = { status: await exited, ...out };
      clearTimeout(timer);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--dispatcher-port ${port}: 127.0.0.1:${port} is in use`);
      expect(r.stderr).toMatch(
        /^npm start: not passed on to the services, as the local run sets its own: (.*, )?NACK_DELAY_MS="99999" \(it uses 100\)/m,
      );
      expect(r.stdout).not.toMatch(/starting the Pub\/Sub emulator/);
    } finally {
      server.close();
    }
  });

  test('--help exits 0 and names every exit code', async () => {
    const [r] = (await runAll([[['--help']]])) as [Ran];
    expect(r.status).toBe(0);
    for (const code of ['0 done', '1 a failure', '2 a usage error', '130 Ctrl-C', '143 SIGTERM', '129 SIGHUP']) {
      expect(r.stdout).toContain(code);
    }
    // Each way of ending it that has a code of its own.
    const flat = r.stdout.replace(/\s+/g, ' ');
    expect(flat).toContain('or stopped by a reader of its output that quits (npm start | head)');
    expect(flat).toContain('a service that exited more than 5 times within a minute');
  });
});
