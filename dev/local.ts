import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { SingleBar } from 'cli-progress';
import { loadServiceConfig } from '../shared/auth';
import { raceTimeout } from '../shared/concurrency';
import { errorMessage } from '../shared/errors';
import { createFirestore } from '../shared/firestore';
import { FirestoreStore } from '../shared/firestore-store';
import { escapedUnshowable, FINAL_STATUSES, storedCount, storedText } from '../shared/model';
import { saveAccounts, saveNotifications } from '../shared/notifications';
import { createPubSub } from '../shared/pubsub';
import { onSignalTwice, STOP_SIGNALS, signalExitCode } from '../shared/signals';
import { COLLECTIONS, localTopology } from '../shared/topology';
import { counted } from '../shared/words';
import { ARCHIVED_CHANNEL, demoAccounts, demoNotifications, seededLine } from './demo';
import { type Emulators, groupAlive, groupsLeft, hasExited, killGroup, portProblem, startEmulators } from './emulators';
import { endedElsewhere } from './ended-elsewhere';
import { startFrontend } from './frontend';
import { chosenPorts, type Options, parseArgs, slackToken, startedByNpm, USAGE } from './local-options';
import { ROOT, startReaper, startService } from './processes';
import {
  barOptions,
  channelShown,
  expectedDeliveries,
  failureHints,
  LookErrors,
  PostLines,
  postPreview,
  resumeHint,
  runHints,
  runsToWatch,
  SeedProgress,
  timeLeft,
  VERBOSE_MAX,
} from './progress';
import { runLogDir } from './run-logs';
import {
  cloudRunProblem,
  type ServiceEnvSettings,
  serviceEnv,
  serviceEnvProblems,
  variablesSetOver,
} from './service-env';
import { type FaultRule, SlackStandIn } from './slack-standin';
import { checkRealToken } from './slack-token';
import { superviseService } from './supervise';
import { newOccurrenceLines, PendingRunsLine, RefusedTickLine, type TickSummary, tickRefusal } from './tick-answer';
import { nextTick, slotAtOrBefore } from './tick-rhythm';
import { createTopology } from './topology';

/**
 * `npm start`: the whole pipeline on this machine. Starts the emulators, the Slack
 * stand-in (or uses real Slack when SLACK_BOT_TOKEN is set), both services as their own
 * processes exactly as their containers run them, creates the topology, seeds demo data,
 * ticks, and shows the deliveries landing.
 */

const PROJECT_ID = 'slack-fanout-local';
const STANDIN_TOKEN = 'xoxb-local-standin';

/**
 * A usage error for a chosen port nothing can listen on now (another process has it), said
 * before anything starts; null when every chosen port is free.
 */
async function takenPort(opts: Options): Promise<string | null> {
  for (const [flag, port] of chosenPorts(opts)) {
    const problem = await portProblem(port);
    if (problem) return `${flag} ${port}: ${problem}; choose another, or leave the option out for a free one`;
  }
  return null;
}

/**
 * How long past --timeout the watch waits for a look at the runs it began before the deadline:
 * a Firestore that answers nothing must not hold the run there.
 */
const LOOK_GRACE_MS = 5000;

/** `promise`'s value if it settles by `until` (a time in ms), else null; a rejection after that is nobody's. */
function answeredBy<T>(promise: Promise<T>, until: number): Promise<T | null> {
  promise.catch(() => {});
  return raceTimeout(promise, Math.max(0, until - Date.now()), () => null);
}

/** The failed (or dead) deliveries of a run the summary names, with why, before "… and N more". */
const SHOWN_FAILURES = 5;

/** A delivery's last error in a line: Slack's error or the code, and the message. */
function whyEnded(lastError: unknown): string {
  const e = lastError as { code?: unknown; slackError?: unknown; message?: unknown } | null | undefined;
  if (!e) return 'no error recorded';
  const what = typeof e.slackError === 'string' ? e.slackError : storedText(e.code ?? 'error');
  return typeof e.message === 'string' && e.message !== what ? `${what} (${e.message})` : what;
}

/** How long a push waits at the front end for a notifier that is down (Cloud Run holds a request while it starts an instance). */
const FRONTEND_WAIT_MS = 10_000;

/** How long a tick is sent again for: a run's lease (60 s) held by a dispatcher that died, and then some. */
const TICK_RETRY_WINDOW_MS = 90_000;
const TICK_RETRY_MS = 5_000;
/** The runs whose service logs are kept under .local/logs/. */
const KEPT_RUN_LOGS = 10;
/** A tick sent this long after it was due says so. */
const LATE_TICK_NOTE_MS = 2_000;
/** Cloud Scheduler's attempt deadline for the tick, as infra/ sets it by default (300 s). */
const TICK_DEADLINE_MS = 300_000;
/** A run a tick did not dispatch that a tick sent again may: it failed, or another dispatcher's lease holds it. */
const RETRIED = ['failed', 'leased-elsewhere'];

/** How long a stop waits, after SIGKILL, for the process groups it started to be empty. */
const GROUP_GONE_MS = 2000;

/**
 * A progress bar of the run, on stderr: off a terminal (a pipe, a log file), a line every 5 s
 * instead, none the same as the one before it, and no blank line after the last.
 */
function progressBar(format: string): SingleBar {
  const bar = new SingleBar(barOptions(format, process.stderr));
  // One made once a stop has begun (a tick that was in flight, seeding's delayed bar) never draws.
  if (barsEnded) silence(bar);
  liveBars.add(bar);
  bar.once('stop', () => liveBars.delete(bar));
  return bar;
}

/** The progress bars drawing now (a tick's deliveries, seeding), for a stop to end them. */
const liveBars = new Set<SingleBar>();
/** Set by a stop: no bar draws from then on. */
let barsEnded = false;

/**
 * A bar that draws nothing more: on a terminal its line is left as it was, the cursor shown
 * again below it; off one, where the bar prints whole lines, not even its closing new line.
 */
function silence(bar: SingleBar): void {
  bar.render = () => undefined;
  if (!process.stderr.isTTY)
    (bar as unknown as { options: { clearOnComplete: boolean } }).options.clearOnComplete = true;
}

/**
 * Ends the bars drawing now without drawing them again, before a stop says why: a bar's last
 * state printed after that line (off a terminal, a line of its own) would read as the run going
 * on. On a terminal the bar's line is left as it was, the cursor shown again below it.
 */
function endBarsQuietly(): void {
  barsEnded = true;
  for (const bar of [...liveBars]) {
    silence(bar);
    bar.stop();
  }
}

/** What a stop says once done: whether anything it started is left. */
function stoppedLine(left: readonly ChildProcess[]): string {
  return left.length === 0
    ? 'stopped: nothing this run started is left running'
    : `stopped, but the process groups ${left.map((c) => c.pid).join(', ')} still had a process ${GROUP_GONE_MS / 1000} s after SIGKILL`;
}
/** How long stopping waits for one client to close: its server may already be gone. */
const CLIENT_CLOSE_MS = 3000;

/** Real Slack's Web API, unless SLACK_API_URL says another (with SLACK_BOT_TOKEN set). */
function realSlackUrl(): string {
  return process.env.SLACK_API_URL?.trim() || 'https://slack.com/api/';
}

/** What the run sets for the services, but for what only it knows once under way (addresses, the stand-in's URL). */
function settingsFor(opts: Options, emulators: Record<string, string>, slackApiUrl: string): ServiceEnvSettings {
  return {
    projectId: PROJECT_ID,
    emulators,
    slackApiUrl,
    slackBotToken: slackToken() ?? STANDIN_TOKEN,
    logLevel: opts.logLevel,
    nackDelayMs: localTopology().nackDelayMs,
  };
}

/** The services' environment: this process's own, with what the run sets over it. */
function envFor(opts: Options, emulators: Record<string, string>, slackApiUrl: string): NodeJS.ProcessEnv {
  return serviceEnv(process.env, settingsFor(opts, emulators, slackApiUrl));
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv);
  // What the services would refuse as they start (SLACK_API_URL=notaurl, SLACK_TIMEOUT_MS=abc)
  // is a usage error, said before anything starts, in their words. The stand-in's URL is the
  // run's own, and replaces SLACK_API_URL without a token.
  // The emulators' addresses are the run's own, set over any in the shell: stand-ins here.
  const token = slackToken();
  const onCloudRun = cloudRunProblem(process.env);
  if (onCloudRun !== null) {
    process.stderr.write(`error: ${onCloudRun}\n`);
    return USAGE;
  }
  // The stand-in's address, until it has its port: what matters here is that it is not the shell's.
  const slackApiUrl = token ? realSlackUrl() : 'http://127.0.0.1/api/';
  const problems = serviceEnvProblems(
    envFor(opts, { PUBSUB_EMULATOR_HOST: '127.0.0.1:8085', FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' }, slackApiUrl),
  );
  if (problems.length > 0) {
    for (const problem of problems) process.stderr.write(`error: ${problem}\n`);
    const what = problems.length === 1 ? 'this value' : 'these values';
    process.stderr.write(
      `(npm start passes its environment on to the notifier and the dispatcher, which would refuse ${what} as they start; see "Configuration" in the README)\n`,
    );
    return USAGE;
  }
  // Set over for the services, and said: the shell's values are not the run's.
  const setOver = variablesSetOver(process.env, settingsFor(opts, {}, slackApiUrl));
  if (setOver.length > 0) {
    process.stderr.write(
      `npm start: not passed on to the services, as the local run sets its own: ${setOver.join(', ')}\n`,
    );
  }
  const taken = await takenPort(opts);
  if (taken) {
    process.stderr.write(`error: ${taken}\n`);
    return USAGE;
  }
  if (token) {
    const verdict = await checkRealToken(realSlackUrl(), token);
    if (verdict.refused) {
      process.stderr.write(`error: ${verdict.refused}\n`);
      return USAGE;
    }
    for (const warning of verdict.warnings) process.stderr.write(`npm start: ${warning}\n`);
  }
  // Output piped into a reader that quits (`| head`) must not crash the run and strand its processes.
  let stdoutOpen = true;
  const sayAlways = (line: string) => {
    if (stdoutOpen) process.stdout.write(`${line}\n`);
  };
  // Once a stop is said, the run's own lines end (a tick or a watch cut short by it would say
  // what the stop did to it as failures): only the stop's lines follow.
  let stopSaid = false;
  const say = (line: string) => {
    if (!stopSaid) sayAlways(line);
  };
  const logDir = runLogDir(join(ROOT, '.local', 'logs'), new Date(), process.pid, KEPT_RUN_LOGS);

  // Processes first (services, then emulators), clients last: a Ctrl-C while a Firestore call
  // is in flight must not leave Java or a service running.
  const processes: (() => Promise<void>)[] = [];
  const spawned: ChildProcess[] = [];
  // The services and emulators run in process groups of their own; should this process die
  // before it stops them (SIGKILL, a second Ctrl-C mid-stop, a crash), the reaper kills them.
  const reaper = startReaper();
  // A child whose group was empty when it exited: its number may since have gone to another
  // process group, which the stop must not signal.
  const groupGone = new WeakSet<ChildProcess>();
  const onSpawn = (child: ChildProcess) => {
    spawned.push(child);
    reaper.watch(child);
    child.once('exit', () => {
      if (!groupAlive(child)) groupGone.add(child);
    });
  };
  const clients: (() => Promise<void>)[] = [];
  // Seeding stops between two batches once a stop begins, rather than write to closed clients.
  const seeding = new AbortController();
  let stopping = false;
  let stopped: Promise<ChildProcess[]> | null = null;
  const closeClient = (fn: () => Promise<void>) =>
    Promise.race([fn().catch(() => undefined), new Promise<void>((r) => setTimeout(r, CLIENT_CLOSE_MS).unref())]);
  // Every caller (a signal, a failure, the end of the run) waits for the same one stop.
  // Resolves with the processes whose group still had a process in it once the stop was done.
  const stopAll = (): Promise<ChildProcess[]> => {
    stopping = true;
    endBarsQuietly();
    seeding.abort();
    stopped ??= (async () => {
      for (const fn of processes.reverse()) await fn().catch(() => undefined);
      for (const fn of clients) await closeClient(fn);
      // A service still starting when the stop came is not in `processes` yet, and a process
      // that has exited can leave one of its own behind in its group (an emulator's Java).
      const live = spawned.filter((child) => !groupGone.has(child));
      for (const child of live) killGroup(child, 'SIGKILL');
      const left = await groupsLeft(live, GROUP_GONE_MS);
      reaper.release();
      return left;
    })();
    return stopped;
  };
  // Either output closed by its reader (`npm start | head`, `npm start 2>&1 | head`; the
  // progress bar writes to stderr) ends the run, with everything it started stopped.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (stream === process.stdout) {
        stdoutOpen = false;
        if (err.code !== 'EPIPE') process.stderr.write(`npm start: standard output: ${err.message}\n`);
      }
      // A reader that quits stops the run: 0 for a run that ticks on, as for any stop; with
      // --once, 1, since 0 says every delivery reached a final state, which a run cut short cannot.
      void stopAll().then(() => process.exit(err.code === 'EPIPE' && !opts.once ? 0 : 1));
    });
  }
  // Calls cut short by the shutdown reject; they are expected then, and nothing else is running.
  process.on('unhandledRejection', (err) => {
    if (stopping) return;
    process.stderr.write(`npm start: ${(err as Error)?.message ?? String(err)}\n`);
    void stopAll().then(() => process.exit(1));
  });
  // Ctrl-C; SIGTERM (`kill`, `timeout`, an IDE's stop button; npm passes it on, and the start
  // script execs node so that it reaches this process); SIGHUP (the terminal closed). Each stops
  // everything, then exits 128 + the signal's number (130 for Ctrl-C).
  let stopCode = 130;
  // Calls the Slack stand-in holds under a delay or http_then_post rule: a stop drops them, and says how many.
  // A stand-in holding any is stopped first, so that none lands while the services drain (a
  // delay shorter than their grace would), and the count said is the count dropped; one holding
  // none is stopped after the notifier, whose posts under way then end as they would, not as
  // "Slack could not be reached" (a call held meanwhile is dropped then, and said).
  let dropHeld = () => 0;
  const sayDropped = (tell: (line: string) => void = say) => {
    const held = dropHeld();
    if (held > 0) {
      tell(
        `${counted(held, 'call')} held by a fault rule at the Slack stand-in ${held === 1 ? 'is' : 'are'} dropped: ${held === 1 ? 'its post does' : 'their posts do'} not land`,
      );
    }
  };
  // One stop for a signal and for a failure: the bars ended, why said, the held calls dropped
  // and counted, everything stopped, then the exit.
  const stopWith = (code: number, announce: () => void) => {
    if (stopping) return;
    stopCode = code;
    endBarsQuietly();
    announce();
    sayDropped();
    stopSaid = true;
    void stopAll().then((left) => {
      sayAlways(stoppedLine(left));
      process.exit(code);
    });
  };
  const stopOn = (why: string, code: number) =>
    stopWith(code, () => say(`\n${why}: stopping everything this run started…`));
  // A failure that ends the run while it goes on (an emulator gone, a service that keeps
  // exiting): said on stderr, everything stopped, exit 1, whatever step the run was at.
  const failRun = (why: string) =>
    stopWith(1, () => process.stderr.write(`\nnpm start: ${why}; stopping everything this run started…\n`));
  for (const signal of STOP_SIGNALS) {
    const code = signalExitCode(signal);
    // npm's repeat of a Ctrl-C is the same stop; a later second one exits at once, and the
    // watchdog stops what is left.
    onSignalTwice(
      signal,
      () => stopOn(signal, code),
      () => process.exit(code),
    );
  }
  // npm killed outright (SIGKILL) leaves this process orphaned: stop as for a hang-up. Started
  // without npm (`nohup node dist/dev/local.js &`), the shell that started it may exit, and the
  // run goes on.
  if (startedByNpm()) {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) stopOn('parent process gone (npm)', signalExitCode('SIGHUP'));
    }, 1000).unref();
  }

  // No metadata server on this machine; without this the Google clients warn on every call.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  try {
    say('slack-fanout local run');
    const emulators: Emulators = await startEmulators({
      // In the run's own folder of logs, kept with it (the latest KEPT_RUN_LOGS runs).
      logDir,
      onProgress: say,
      onSpawn,
      chosen: {
        ...(opts.pubsubPort ? { pubsub: opts.pubsubPort } : {}),
        ...(opts.firestorePort ? { firestore: opts.firestorePort } : {}),
      },
    });
    processes.push(() => emulators.stop());
    // An emulator that exits (a crash, its Java killed) ends the run: it keeps nothing on disk,
    // so what the run sent it is gone, and every tick after would only be refused.
    emulators.onExit((why) =>
      failRun(`${why}; it keeps nothing on disk, so this run cannot go on (start it again for a fresh one)`),
    );
    Object.assign(process.env, emulators.env);
    say(
      `emulators up: PUBSUB_EMULATOR_HOST=${emulators.env.PUBSUB_EMULATOR_HOST} FIRESTORE_EMULATOR_HOST=${emulators.env.FIRESTORE_EMULATOR_HOST} GOOGLE_CLOUD_PROJECT=${PROJECT_ID}`,
    );

    const postLines = new PostLines(say);
    const realSlack = Boolean(slackToken());
    let standIn: SlackStandIn | null = null;
    let slackApiUrl = realSlackUrl();
    if (!realSlack) {
      standIn = new SlackStandIn({ token: STANDIN_TOKEN });
      slackApiUrl = (await standIn.start(opts.slackPort)).url;
      const started = standIn;
      dropHeld = () => {
        const held = started.heldCount;
        if (held > 0) void started.stop();
        return held;
      };
      // Posts land while the tick is still publishing, so the listener is on from the start; a
      // tick's lines wait until its size is known (postLines).
      // A delivery posted before is marked where it lands, not only counted in the last line.
      const postedIds = new Set<string>();
      standIn.on('post', (p) => {
        const id = String(p.metadata?.event_payload?.deliveryId ?? '?');
        const again = postedIds.has(id) ? ' (posted again: delivered more than once)' : '';
        postedIds.add(id);
        postLines.add(`  ✓ posted ${id}${again} → ${channelShown(p.channel)}: ${postPreview(String(p.text ?? ''))}`);
      });
      // A delivery Slack refuses again and again (an error the notifier retries) says how often,
      // so that ten refusals of one read as one delivery's tries, not ten failures.
      const refusals = new Map<string, number>();
      standIn.on('refused', (r) => {
        const id = r.deliveryId ?? '?';
        // A call with no delivery id (not the notifier's) is counted with no other.
        const times = r.deliveryId === null ? 1 : (refusals.get(id) ?? 0) + 1;
        refusals.set(id, times);
        const again = times > 1 ? ` (refused ${times} times)` : '';
        postLines.add(`  ✗ refused ${id} → ${channelShown(r.channel)}: ${r.error}${again}`);
      });
      // A call a fault rule began to hold while the notifier drained is dropped here, and said.
      processes.push(() => {
        if (stopSaid) sayDropped(sayAlways);
        return (standIn as SlackStandIn).stop();
      });
      // One demo channel is archived, to show a permanent failure recorded and acked.
      // The rules of --slack-faults come first, in force before the first tick: the first rule
      // that matches a call answers it, so a rule of the file's for that channel too is kept.
      const archived: FaultRule = { channel: ARCHIVED_CHANNEL, respond: { kind: 'slack_error', error: 'is_archived' } };
      const faults = opts.slackFaults;
      standIn.setFaults([...(faults?.rules ?? []), archived], faults?.seed === undefined ? {} : { seed: faults.seed });
      if (faults) {
        say(
          `Slack stand-in faults: ${faults.rules.length} rule${faults.rules.length === 1 ? '' : 's'} from ${faults.file}`,
        );
      }
      say(
        `Slack stand-in at ${slackApiUrl} (its faults: ${new URL('/_admin/faults', slackApiUrl).href}, its posts: ${new URL('/_admin/posts', slackApiUrl).href}; set SLACK_BOT_TOKEN to post to real Slack)`,
      );
    } else {
      say(`posting to real Slack at ${slackApiUrl}, channel ${opts.channel}`);
    }

    const env = envFor(opts, emulators.env, slackApiUrl);
    const topology = localTopology();
    // A service that exits unasked (a crash, a kill -9) is started again, as Cloud Run starts
    // an instance; one that keeps exiting ends the run.
    const supervision = { say, onGiveUp: failRun };
    // A service started again keeps its port, as a Cloud Run service keeps its URL: an open
    // status page, or an address a user copied, still reaches it.
    const onItsPort = (name: 'notifier' | 'dispatcher', first?: number) => {
      let port = first;
      return async () => {
        const s = await startService(name, env, {
          logFile: join(logDir, `${name}.log`),
          onSpawn,
          ...(port ? { port } : {}),
        });
        port = s.port;
        return s;
      };
    };
    const notifier = await superviseService(onItsPort('notifier', opts.notifierPort), supervision);
    processes.push(() => notifier.stop());
    // Pushes reach the notifier through a stand-in for Cloud Run's front end: while the
    // notifier is down, a push waits for it instead of being refused (each refusal would spend
    // one of the message's delivery attempts at once, the emulator having no retry policy).
    const front = await startFrontend(() => notifier.current().url, {
      waitForInstanceMs: FRONTEND_WAIT_MS,
      ...(opts.pushPort ? { port: opts.pushPort } : {}),
    });
    processes.push(() => front.stop());
    const dispatcher = await superviseService(onItsPort('dispatcher', opts.dispatcherPort), supervision);
    processes.push(() => dispatcher.stop());
    say(
      `notifier at ${notifier.current().url} (pushed through ${front.url}), dispatcher at ${dispatcher.current().url} (logs in ${logDir})`,
    );
    say(
      `status page: ${dispatcher.current().url}/status (the admin API under ${dispatcher.current().url}/admin/; open to this machine alone, with no sign-in)`,
    );

    const pubsub = createPubSub(PROJECT_ID);
    clients.push(() => pubsub.close());
    await createTopology(pubsub, topology, front.url);
    say(
      `topology: ${topology.dispatchTopic} → push ${topology.pushPath} (${topology.maxDeliveryAttempts} attempts), ${topology.deadLetterTopic} → push ${topology.deadLetterPath}`,
    );

    const db = createFirestore(PROJECT_ID);
    clients.push(() => db.terminate());
    const store = new FirestoreStore(db);
    const notifications = demoNotifications({
      notifications: opts.notifications,
      accounts: opts.accounts,
      withBrokenChannel: !realSlack,
      ...(opts.channel ? { channel: opts.channel } : {}),
    });
    // Seeding many (100,000 accounts take minutes on the emulator) shows its progress as the
    // deliveries' does; a stop under way ends it between two batches.
    const seeded = (what: string, total: number) =>
      new SeedProgress(total, () => progressBar(`seeding ${what} [{bar}] {value}/{total}`));
    const accountsBar = seeded('accounts', opts.accounts);
    try {
      await saveAccounts(db, demoAccounts(opts.accounts), {
        onProgress: (n) => accountsBar.update(n),
        signal: seeding.signal,
      });
    } finally {
      accountsBar.stop();
    }
    const notificationsBar = seeded('notifications', notifications.length);
    try {
      await saveNotifications(db, notifications, {
        // Due at their latest instant, sent at once, on the stand-in. On real Slack as any save
        // makes them: at the instant just past when it is within a minute, else at their next.
        // Each run begins with an empty ledger, and an instant minutes past sent again would
        // post again what a run before this one may have posted.
        dueNow: !realSlack,
        onProgress: (n) => notificationsBar.update(n),
        signal: seeding.signal,
      });
    } finally {
      notificationsBar.stop();
    }
    say(seededLine(opts.accounts, notifications));

    /**
     * One tick as Cloud Scheduler sends it: the dispatcher's answer, said, or an Error saying why
     * there is none. A run's line already said for this tick (`said`) is not said again.
     */
    const sendTick = async (at: Date, said: Set<string>): Promise<TickSummary> => {
      const instance = dispatcher.current();
      const url = instance.url;
      // Given up on when the instance it went to dies (its answer will never come) or after
      // Cloud Scheduler's attempt deadline, as Cloud Scheduler gives up on a call.
      const abort = new AbortController();
      const onExit = () => abort.abort(new Error('the dispatcher exited before it answered'));
      if (hasExited(instance.child)) onExit();
      else instance.child.once('exit', onExit);
      const timer = setTimeout(
        () => abort.abort(new Error(`no answer within ${TICK_DEADLINE_MS / 1000} s`)),
        TICK_DEADLINE_MS,
      );
      let res: Response;
      let summary: TickSummary;
      try {
        res = await fetch(`${url}${topology.tickPath}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-cloudscheduler-scheduletime': at.toISOString() },
          body: '{}',
          signal: abort.signal,
        });
        summary = (await res.json()) as TickSummary;
      } catch (err) {
        // fetch's own words ("fetch failed", "This operation was aborted") say nothing; the cause does.
        const e = err as { cause?: { message?: string }; message?: string };
        const reason = abort.signal.aborted ? (abort.signal.reason as Error).message : (e.cause?.message ?? e.message);
        throw new Error(`tick ${at.toISOString()} failed: the dispatcher at ${url} did not answer (${reason})`);
      } finally {
        clearTimeout(timer);
        instance.child.off('exit', onExit);
      }
      if (!res.ok && !summary.occurrences) throw new Error(tickRefusal(at, res.status, summary));
      // The same answer to the tick sent again is not said again (the runs not dispatched yet are).
      const head = `tick ${at.toISOString()}: HTTP ${res.status}, ${counted(summary.published ?? 0, 'message')} published`;
      if (!said.has(head)) {
        said.add(head);
        say(head);
      }
      for (const line of newOccurrenceLines(summary.occurrences ?? [], said)) say(line);
      return summary;
    };

    // Runs a tick of this run watched, so a later tick does not sum them up again.
    const watched = new Set<string>();
    // The notifications said to be paused, once each.
    const pausedSaid = new Set<string>();

    /**
     * A tick, then its deliveries watched until final. It is sent again, as Cloud Scheduler
     * retries a call, while it fails or a run of it is not dispatched yet (failed, or leased by
     * a dispatcher that died mid-tick, until that lease runs out): for at most
     * TICK_RETRY_WINDOW_MS, at the same schedule time, so a run cut short is resumed, not lost.
     */
    const runTick = async (at: Date): Promise<number> => {
      // The stand-in's posts before this tick: those of earlier ticks' deliveries are not this one's.
      const postsBefore = standIn?.posts.length ?? 0;
      postLines.hold();
      const runIds = new Set<string>();
      const deadline = Date.now() + TICK_RETRY_WINDOW_MS;
      const firstSent = new Date();
      // An attempt that failed (a dispatcher that died mid-tick) may have finished runs, which
      // are no longer due, so the tick sent again does not list them: found by when they began.
      let attemptFailed = false;
      const said = new Set<string>();
      const pendingLine = new PendingRunsLine(TICK_RETRY_MS / 1000);
      const refusedLine = new RefusedTickLine(TICK_RETRY_MS / 1000);
      for (;;) {
        try {
          const summary = await sendTick(at, said);
          refusedLine.accepted();
          for (const runId of runsToWatch(summary.occurrences ?? [], watched)) runIds.add(runId);
          const pending = (summary.occurrences ?? []).filter((o) => RETRIED.includes(o.status));
          if (pending.length === 0 || Date.now() > deadline) break;
          const line = pendingLine.next(pending, Date.now(), firstSent.getTime());
          if (line !== null) say(line);
        } catch (err) {
          if (stopping || Date.now() > deadline) throw err;
          attemptFailed = true;
          const line = refusedLine.next((err as Error).message, Date.now(), firstSent.getTime());
          if (line !== null) say(line);
        }
        await new Promise((r) => setTimeout(r, TICK_RETRY_MS));
      }
      if (attemptFailed) {
        const started = await db.collection(COLLECTIONS.runs).where('startedAt', '>=', firstSent).select().get();
        const unlisted = started.docs.map((d) => d.id).filter((id) => !runIds.has(id) && !watched.has(id));
        for (const runId of unlisted) runIds.add(runId);
        if (unlisted.length > 0) {
          say(
            `  ${counted(unlisted.length, 'run')} the failed attempt began ${unlisted.length === 1 ? 'is' : 'are'} watched too (no longer due, so the tick sent again did not list ${unlisted.length === 1 ? 'it' : 'them'})`,
          );
        }
      }
      for (const runId of runIds) watched.add(runId);
      // Bounded as the watch's looks are: a Firestore that stops answering leaves it at 0.
      const counts = await answeredBy(
        Promise.all([...runIds].map(async (runId) => storedCount((await store.getRun(runId))?.published))),
        firstSent.getTime() + opts.timeout * 1000 + LOOK_GRACE_MS,
      );
      const published = (counts ?? []).reduce((n, v) => n + v, 0);
      return watch([...runIds], published, firstSent.getTime(), postsBefore);
    };

    /**
     * Watches the runs' deliveries until every one is final or --timeout has passed, both timed
     * from `started`, when the tick was first sent: a tick sent again while a lease ran out has
     * had its deliveries landing (those of the runs it finished) from then on.
     */
    const watch = async (
      runIds: string[],
      firstExpected: number,
      started: number,
      postsBefore: number,
    ): Promise<number> => {
      // Nothing due (a tick between two occurrences): the tick's line says so.
      if (runIds.length === 0 && firstExpected === 0) {
        postLines.asBefore();
        return 0;
      }
      let expected = firstExpected;
      const verbose = expected <= VERBOSE_MAX;
      postLines.decide(verbose);
      const bar = verbose
        ? null
        : progressBar(
            'deliveries [{bar}] {value}/{total} final | {sent} sent {failed} failed {skipped} skipped {dead} dead {retrying} retrying | {left}',
          );
      bar?.start(expected, 0, { sent: 0, failed: 0, skipped: 0, dead: 0, retrying: 0, left: 'waiting for the first' });
      // Deliveries out of attempts, said as they come when each post has its line (a bar counts them).
      let deadSaid = 0;
      // When a delivery last became final, for the time left not to guess from a stalled rate.
      let lastFinal = 0;
      let lastMovedAt = started;
      let totals: Record<string, number> = {};
      // When the totals last read were asked for: the summary's time is theirs.
      let readAt = started;
      // Per run: its record's size at the last look, the size at which it was last looked past
      // (endedElsewhere), and what ended under another run then.
      const lastOnRecord = new Map<string, number>();
      const lookedAt = new Map<string, number>();
      const elsewhere = new Map<string, number>();
      const elsewhereTotal = () => [...elsewhere.values()].reduce((n, v) => n + v, 0);
      const finalOf = (t: Record<string, number>) =>
        FINAL_STATUSES.reduce((n, s) => n + (t[s] ?? 0), 0) + elsewhereTotal();
      // The runs with a failed or dead delivery, for the hint at the end.
      let failing: { runId: string; failed: number; dead: number }[] = [];
      // Firestore did not answer the last look by the deadline: what was read before stands.
      let unanswered = false;
      let answeredAny = false;
      // Looks Firestore answered with an error: each said once, and looked again after a pause.
      const lookErrors = new LookErrors(say);
      try {
        const deadline = started + opts.timeout * 1000;
        /** What the bar says of the time left with `done` final at `now`. */
        const leftAt = (done: number, now: number) =>
          timeLeft({
            done,
            total: expected,
            elapsedMs: now - started,
            sinceLastFinalMs: now - lastMovedAt,
            timeoutInMs: deadline - now,
          });
        for (;;) {
          // Each run's record read at once, so that a look at many runs stays within its moment.
          const lookAt = Date.now();
          const reading = (async () => {
            const looks = await Promise.all(
              runIds.map(async (runId) => {
                const [run, counts] = await Promise.all([store.getRun(runId), store.countByStatus(runId)]);
                return { runId, run, counts };
              }),
            );
            // A record that stopped growing: some of what the run published may have ended
            // under another run (endedElsewhere), looked for once each time it stops.
            const ended = new Map<string, number>();
            for (const { runId, run, counts } of looks) {
              const onRecord = Object.values(counts).reduce((n, v) => n + v, 0);
              if (run && onRecord === lastOnRecord.get(runId) && lookedAt.get(runId) !== onRecord) {
                ended.set(runId, await endedElsewhere(db, runId, run));
              }
            }
            return { looks, ended };
          })();
          // A Firestore that stops answering must not hold the run past --timeout: the look is
          // waited for until the deadline and LOOK_GRACE_MS more, the bar's time still moving.
          const ticking = bar
            ? setInterval(() => bar.update({ left: leftAt(lastFinal, Date.now()) }), 1000)
            : undefined;
          const read = await answeredBy(reading, deadline + LOOK_GRACE_MS)
            .then((r) => {
              lookErrors.answered();
              return r;
            })
            .catch((err: unknown) => {
              lookErrors.failed(errorMessage(err));
              return 'failed' as const;
            })
            .finally(() => clearInterval(ticking));
          if (read === null || (read === 'failed' && Date.now() >= deadline)) {
            unanswered = true;
            break;
          }
          if (read === 'failed') {
            await new Promise((r) => setTimeout(r, Math.min(1000, deadline - Date.now())));
            continue;
          }
          totals = {};
          failing = [];
          const runs: { published: number; recorded: number }[] = [];
          for (const { runId, run, counts } of read.looks) {
            for (const [k, v] of Object.entries(counts)) totals[k] = (totals[k] ?? 0) + v;
            const onRecord = Object.values(counts).reduce((n, v) => n + v, 0);
            const endedThere = read.ended.get(runId);
            if (endedThere !== undefined) {
              lookedAt.set(runId, onRecord);
              elsewhere.set(runId, endedThere);
            }
            lastOnRecord.set(runId, onRecord);
            runs.push({ published: run?.published ?? 0, recorded: onRecord + (elsewhere.get(runId) ?? 0) });
            if (counts.failed > 0 || counts.dead > 0) failing.push({ runId, failed: counts.failed, dead: counts.dead });
          }
          expected = expectedDeliveries(runs);
          readAt = lookAt;
          answeredAny = true;
          const final = finalOf(totals);
          const now = Date.now();
          if (final > lastFinal) {
            lastFinal = final;
            lastMovedAt = now;
          }
          bar?.setTotal(expected);
          bar?.update(final, {
            sent: totals.sent ?? 0,
            failed: totals.failed ?? 0,
            skipped: totals.skipped ?? 0,
            dead: totals.dead ?? 0,
            retrying: totals.retrying ?? 0,
            left: leftAt(final, now),
          });
          const dead = totals.dead ?? 0;
          if (verbose && dead > deadSaid) {
            const more = dead - deadSaid;
            // Deliveries die one look apart: after the first line, each says how many in all.
            const inAll = deadSaid > 0 ? ` more (${dead} in all)` : '';
            deadSaid = dead;
            say(
              `  ✗ ${counted(more, 'delivery', 'deliveries')}${inAll} dead: out of attempts, on the dead-letter topic (listed with why below, once all are final; \`slack-fanout redrive\` sends ${more === 1 ? 'it' : 'them'} again)`,
            );
          }
          if (final >= expected || Date.now() >= deadline) break;
          // The last look is taken at the deadline, not after it.
          await new Promise((r) => setTimeout(r, Math.min(500, deadline - Date.now())));
        }
      } finally {
        bar?.stop();
      }
      const final = finalOf(totals);
      const secs = (readAt - started) / 1000;
      // Not all final, or not all read: the counts are those of the last look, said as read then
      // (a look that ended past the deadline began before it).
      const cutShort = unanswered || final < expected;
      // Read before Firestore stopped answering, or never: said, not shown as counts of now.
      const neverRead = unanswered && !answeredAny;
      const unansweredLine =
        lookErrors.last === null
          ? `Firestore did not answer the watch's last look by ${LOOK_GRACE_MS / 1000} s past the deadline`
          : `the watch's last look failed (${lookErrors.last})`;
      if (neverRead) {
        say(`timed out after ${opts.timeout} s (--timeout): ${unansweredLine}, so no delivery could be counted`);
      } else {
        if (final < expected) {
          say(
            `timed out: ${counted(expected - final, 'delivery', 'deliveries')} not final after ${opts.timeout} s (--timeout)${opts.once ? '' : `; still retried, ${expected - final === 1 ? 'it' : 'they'} may yet end sent, failed or dead, which these counts do not follow`}`,
          );
          // While the run ticks on, the emulators are up for the CLI to say how each run ends.
          if (!opts.once) for (const line of runHints(runIds, emulators.env, PROJECT_ID)) say(line);
        }
        if (unanswered) {
          say(
            `${unansweredLine}: the counts below are those read ${secs.toFixed(1)} s in, and failures are not listed`,
          );
        }
      }
      say(
        neverRead
          ? `summary: ${expected} expected, none counted`
          : `summary: ${expected} expected, ${totals.sent ?? 0} sent, ${totals.failed ?? 0} failed, ${totals.skipped ?? 0} skipped, ${totals.dead ?? 0} dead, ${expected - final} not final${elsewhereTotal() ? `, ${elsewhereTotal()} ended under an earlier run (a notification moved after it was sent)` : ''}, ${cutShort ? 'as read' : 'in'} ${secs.toFixed(1)} s${cutShort ? ' in' : ''}`,
      );
      if (standIn) {
        const dups = standIn.duplicates();
        // A call held by a fault rule may land after this line: what it says holds so far.
        const held = standIn.heldCount;
        const stillHeld =
          held > 0
            ? ` so far; ${counted(held, 'call')} still held by a fault rule, ${opts.once ? 'dropped as this run stops' : 'which may yet land'}`
            : '';
        // Cut off by --timeout, a post can land before its delivery is recorded sent.
        const unrecorded =
          final < expected && standIn.posts.length - postsBefore > (totals.sent ?? 0)
            ? ' (a post lands before its delivery is recorded sent)'
            : '';
        say(
          `Slack stand-in received ${counted(standIn.posts.length, 'post')} in all${unrecorded}, ${dups.length} delivered more than once${stillHeld}`,
        );
      }
      // Failed: a permanent error (an archived channel, a missing account or notification); dead:
      // out of attempts. The CLI names each and why (not asked of a Firestore that did not
      // answer, and given LOOK_GRACE_MS, as a Firestore may stop answering now).
      // Given LOOK_GRACE_MS: lines after it are not said.
      let listing = true;
      const tell = (line: string) => {
        if (listing) say(line);
      };
      /** Lists the failed and dead deliveries of the runs with any. */
      const listFailures = async (): Promise<void> => {
        for (const f of failing) {
          for (const status of ['failed', 'dead'] as const) {
            if (f[status] === 0) continue;
            const shown = await store.deliveriesOfRun(f.runId, status, null, SHOWN_FAILURES, [
              'lastError',
              'notificationId',
            ]);
            for (const d of shown) {
              // The error's text is Slack's (or the stand-in's rules'): written as the posted lines are.
              tell(escapedUnshowable(`  ✗ ${status} ${d.id}: ${whyEnded(d.data.lastError)}`));
              // A notification this failure paused: said, under the reason `resume --paused-reason` takes.
              const notificationId = d.data.notificationId;
              if (typeof notificationId !== 'string' || pausedSaid.has(notificationId)) continue;
              const n = await store.getRaw(notificationId);
              if (n?.enabled === false && typeof n.pausedReason === 'string') {
                pausedSaid.add(notificationId);
                const resume = opts.once ? '' : `; ${resumeHint(notificationId, emulators.env, PROJECT_ID)}`;
                // Paused by an operator (the admin API, the command line), not by failures: no count.
                const failures = storedCount(n.consecutiveFailures);
                const after = failures > 0 ? `, after ${counted(failures, 'failure')} in a row` : '';
                tell(`    ${notificationId} is paused (pausedReason ${n.pausedReason}${after})${resume}`);
              }
            }
            if (f[status] > shown.length) tell(`  … and ${f[status] - shown.length} more ${status} in run ${f.runId}`);
          }
          // While the run ticks on, the emulators are up for the CLI; --once stops them at the end.
          if (!opts.once) for (const line of failureHints(f, emulators.env, PROJECT_ID)) tell(line);
        }
      };
      if (!unanswered && (await answeredBy(listFailures(), Date.now() + LOOK_GRACE_MS)) === null) {
        listing = false;
        say(
          `Firestore did not answer within ${LOOK_GRACE_MS / 1000} s: the failed and dead deliveries are not all listed`,
        );
      }
      // Not all read is not all final: such a tick is not called done.
      return unanswered ? Math.max(1, expected - final) : expected - final;
    };

    const firstAt = new Date();
    const notFinal = await runTick(firstAt);
    if (opts.once) {
      await stopAll();
      return notFinal === 0 ? 0 : 1;
    }
    const windowSeconds = loadServiceConfig('dispatcher', { ...env, PORT: '0' }).config.catchUpWindowSeconds;
    let lastDueMs = slotAtOrBefore(firstAt.getTime(), opts.interval);
    // When the next comes: with --interval 3600 the run may be silent for most of an hour.
    const nextDue = nextTick(lastDueMs, Date.now(), opts.interval, windowSeconds).dueMs;
    const untilNext = Math.ceil((nextDue - Date.now()) / 1000);
    // A first tick whose deliveries took past the next one's time: that one is sent now, late.
    const when = untilNext > 0 ? `in ${untilNext} s` : 'due already: sent now';
    say(
      `\nrunning: a tick every ${opts.interval} s on the clock, as Cloud Scheduler would send it; the next at ${new Date(nextDue).toISOString()} (${when}). Ctrl-C stops everything.`,
    );
    // The tick after the one due at `last`, said when ticks were left out as too old.
    const following = (last: number): number => {
      const next = nextTick(last, Date.now(), opts.interval, windowSeconds);
      if (next.passedOver > 0) {
        say(
          `${counted(next.passedOver, 'tick')} due meanwhile left out, as too old for the dispatcher to send anything of (catch-up window ${windowSeconds} s)`,
        );
      }
      return next.dueMs;
    };
    for (;;) {
      // A stop under way (Ctrl-C during the wait) is waited for, not raced to the exit.
      if (stopping) {
        await stopAll();
        return stopCode;
      }
      // Worked out again after each wait: the clock may have jumped meanwhile (a machine asleep).
      const dueMs = following(lastDueMs);
      const wait = dueMs - Date.now();
      if (wait > 0) {
        // The ticks left out, or a clock set back, are behind it now.
        lastDueMs = dueMs - opts.interval * 1000;
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      const due = new Date(dueMs);
      if (-wait >= LATE_TICK_NOTE_MS) {
        say(
          `the tick due at ${due.toISOString()} is sent ${Math.round(-wait / 1000)} s late, with that time, as the run is behind (the last tick's deliveries, or a clock that jumped)`,
        );
      }
      // A tick refused (Firestore or Pub/Sub not answering) is said, and the next one tries
      // again, as Cloud Scheduler's next call would.
      // Sent again while it fails, as the first is (a dispatcher that died under it would
      // otherwise cost each of its schedules this occurrence: the next tick sends the latest only).
      await runTick(due).catch((err: unknown) => {
        const next = new Date(dueMs + opts.interval * 1000);
        say(`${errorMessage(err)}; the next tick, due at ${next.toISOString()}, tries again`);
      });
      lastDueMs = dueMs;
    }
  } catch (err) {
    // A call cut short by a stop already under way is expected: the stop says why.
    const interrupted = stopping;
    if (!interrupted) process.stderr.write(`npm start: ${(err as Error).message}\n`);
    await stopAll();
    return interrupted ? stopCode : 1;
  }
}

void main().then((code) => process.exit(code));
