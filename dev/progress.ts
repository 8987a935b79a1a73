import { Writable } from 'node:stream';
import type { Options as BarOptions } from 'cli-progress';
import { escapedUnshowable } from '../shared/model';
import { safeCut, unescapeMrkdwn } from '../shared/report';
import { counted } from '../shared/words';
/** How long no delivery becoming final makes `npm start`'s progress line stop guessing. */
export const STALL_MS = 20_000;
/** The least wait that can read as stalled before STALL_MS, when the rate so far says it is (timeLeft). */
export const OVERDUE_MS = 5_000;

export interface Progress {
  /** Deliveries final so far, of `total`. */
  done: number;
  total: number;
  /** Since the tick's deliveries began to be watched. */
  elapsedMs: number;
  /** Since a delivery last became final (or, before the first, since the start). */
  sinceLastFinalMs: number;
  /** Until --timeout gives up on the tick's deliveries. */
  timeoutInMs: number;
}

/** `45s`, `3m 07s`. */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, '0')}s`;
}

/**
 * What `npm start`'s progress line says of the time left: nothing is guessed before the first
 * delivery is final (no rate to go by yet; past STALL_MS without one, that is said), nor once
 * none has become final for STALL_MS, or for OVERDUE_MS and ten deliveries' time at the rate so
 * far (a rate from before is no guide then);
 * otherwise the rest at the rate so far, but never past --timeout: a rest that would take
 * longer says when the wait gives up instead.
 */
export function timeLeft(p: Progress): string {
  if (p.done >= p.total) return 'done';
  // None final yet: past STALL_MS that is said as a stall is (a Firestore that stopped answering).
  if (p.done <= 0 || p.elapsedMs <= 0) {
    return p.elapsedMs >= STALL_MS
      ? `none final yet, no progress for ${duration(Math.floor(p.elapsedMs / 1000) * 1000)}`
      : 'waiting for the first';
  }
  // Stalled: STALL_MS without a delivery becoming final, or sooner, once the wait is more than
  // ten deliveries' time at the rate so far and OVERDUE_MS besides (the last few waiting out a
  // dead service's claim would otherwise show "about 1s left" for STALL_MS).
  const overdue = p.sinceLastFinalMs >= OVERDUE_MS && p.sinceLastFinalMs > (10 * p.elapsedMs) / p.done;
  if (p.sinceLastFinalMs >= STALL_MS || overdue)
    return `no progress for ${duration(Math.floor(p.sinceLastFinalMs / 1000) * 1000)}`;
  const leftMs = ((p.total - p.done) * p.elapsedMs) / p.done;
  if (leftMs > p.timeoutInMs) return `at this rate, --timeout first (in ${duration(p.timeoutInMs)})`;
  return `about ${duration(leftMs)} left`;
}

/** The most deliveries a tick has for its posts to be printed one by one; past it, a progress bar. */
export const VERBOSE_MAX = 60;

/**
 * The watch's looks that Firestore answered with an error: each is said when its message is
 * not the one said last, the watch then looks again; a look answered clears it.
 */
export class LookErrors {
  /** The message of the last look, while it failed; null once one is answered. */
  last: string | null = null;

  constructor(private readonly say: (line: string) => void) {}

  failed(message: string): void {
    if (this.last !== message) this.say(`  a look at the deliveries failed (${message}); looking again`);
    this.last = message;
  }

  answered(): void {
    this.last = null;
  }
}

/**
 * A post's fallback text as a person reads it, in at most `max` characters, cut between words,
 * with … when cut: Slack's escapes (&amp; &lt; &gt;) read as the characters they stand for, and
 * a line break as a blank, so that one post stays one line.
 */
export function postPreview(mrkdwn: string, max = 60): string {
  const text = unescapeMrkdwn(mrkdwn.replace(/\s+/g, ' '));
  if (text.length <= max) return text;
  // Not inside an emoji: where the report cuts its own text.
  const cut = text.slice(0, safeCut(text, max));
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,:;]+$/, '')}…`;
}

/**
 * The commands under a run's failed and dead deliveries, while the run ticks on and its
 * emulators are up: the CLI's listing of them all, and the redrive that sends them again (the
 * failed with --failed, once their cause is fixed; it publishes, so it needs the Pub/Sub
 * emulator's address too).
 */
export function failureHints(
  f: { runId: string; failed: number; dead: number },
  emulators: Record<string, string | undefined>,
  projectId: string,
): string[] {
  const firestore = `FIRESTORE_EMULATOR_HOST=${emulators.FIRESTORE_EMULATOR_HOST} GOOGLE_CLOUD_PROJECT=${projectId}`;
  const list = `${firestore} npm run --silent cli -- deliveries ${shellQuoted(f.runId)}`;
  const redrive = `PUBSUB_EMULATOR_HOST=${emulators.PUBSUB_EMULATOR_HOST} ${firestore} npm run --silent cli -- redrive ${shellQuoted(f.runId)}`;
  return [
    ...(f.failed > 0
      ? [
          `  all the failed: ${list} --status failed`,
          `  to send the failed again, once their cause is fixed: ${redrive} --failed`,
        ]
      : []),
    ...(f.dead > 0 ? [`  all the dead: ${list} --status dead`, `  to send the dead again: ${redrive}`] : []),
  ];
}

/**
 * What to run for a notification its failures paused: resume it, then, once the cause is
 * fixed, send its failed deliveries of every run again (they span the runs that counted them,
 * where failureHints' redrive takes one run's).
 */
export function resumeHint(
  notificationId: string,
  emulators: Record<string, string | undefined>,
  projectId: string,
): string {
  const firestore = `FIRESTORE_EMULATOR_HOST=${emulators.FIRESTORE_EMULATOR_HOST} GOOGLE_CLOUD_PROJECT=${projectId}`;
  return `to resume it: ${firestore} npm run --silent cli -- resume ${shellQuoted(notificationId)}; then, once the cause is fixed, its failed deliveries, which span runs (a run's redrive --failed sends that run's alone), go again with PUBSUB_EMULATOR_HOST=${emulators.PUBSUB_EMULATOR_HOST} ${firestore} npm run --silent cli -- redrive --all-runs --failed, which sends the failed and dead deliveries of every run and every notification`;
}

/**
 * One word for a POSIX shell, whatever it holds: in single quotes, each `'` in it closed, escaped
 * and reopened (`it's` is `'it'\''s'`), so that a hint pasted into a shell passes it as it is.
 */
export function shellQuoted(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** How many runs a timed-out tick names a command for: the rest are counted. */
const RUN_HINTS = 5;

/**
 * Under a tick that timed out while the run ticks on: for each of its runs, the CLI command that
 * says how its deliveries stand, since this run does not say how those not final end.
 */
export function runHints(runIds: string[], emulators: Record<string, string | undefined>, projectId: string): string[] {
  const lines = runIds
    .slice(0, RUN_HINTS)
    .map(
      (runId) =>
        `  how run ${runId} ends: FIRESTORE_EMULATOR_HOST=${emulators.FIRESTORE_EMULATOR_HOST} GOOGLE_CLOUD_PROJECT=${projectId} npm run --silent cli -- run ${shellQuoted(runId)}`,
    );
  if (runIds.length > RUN_HINTS) lines.push(`  … and ${counted(runIds.length - RUN_HINTS, 'more run')} of this tick`);
  return lines;
}

/**
 * A channel as a post line names it: `#C0123456789`, and a channel given by its name (`#général`,
 * which Slack also takes) as it was given, not `##général`.
 */
export function channelShown(channel: string | undefined): string {
  if (channel === undefined) return '#?';
  return channel.startsWith('#') ? channel : `#${channel}`;
}

/**
 * The `✓ posted` and `✗ refused` lines of `npm start`. Posts land while a tick is still
 * publishing, before its size is known: from `hold()` (a tick sent) they wait, and `decide()`
 * (the tick's size known) prints them and those after, or drops them for a progress bar. Past
 * VERBOSE_MAX lines held, the tick is past it too, and they are dropped at once.
 */
export class PostLines {
  private held: string[] | null = [];
  private printing = false;

  constructor(private readonly say: (line: string) => void) {}

  hold(): void {
    this.held = [];
  }

  decide(print: boolean): void {
    const held = this.held ?? [];
    this.held = null;
    this.printing = print;
    if (print) for (const line of held) this.say(line);
  }

  /** A tick with nothing of its own: what is held, late posts of earlier ticks, goes as theirs did. */
  asBefore(): void {
    this.decide(this.printing);
  }

  /**
   * `line` names a delivery, a channel and the report's text, all from the data: its control
   * characters and those that would turn or hide it are written as escapes (an account named
   * `\u001b[2J` would otherwise clear the terminal).
   */
  add(text: string): void {
    const line = escapedUnshowable(text);
    if (this.held) {
      this.held.push(line);
      if (this.held.length > VERBOSE_MAX) this.decide(false);
    } else if (this.printing) {
      this.say(line);
    }
  }
}

/**
 * The runs of a tick's answer that the tick watches: each run it names, but one an earlier tick
 * watched only when this tick sent its messages (dispatched, resumed). One another dispatcher
 * still holds, or one that is done, was summed up then, and is not counted again.
 */
export function runsToWatch(
  occurrences: readonly { runId: string | null; status: string }[],
  watched: ReadonlySet<string>,
): string[] {
  const runs: string[] = [];
  for (const o of occurrences) {
    if (!o.runId || runs.includes(o.runId)) continue;
    if (!watched.has(o.runId) || o.status === 'dispatched' || o.status === 'resumed') runs.push(o.runId);
  }
  return runs;
}

/**
 * The deliveries runs are to end with: what each published, or the deliveries it has on record
 * where that is more (a run whose dispatcher died had published messages it had not yet
 * recorded). So the count not final is never below 0.
 */
export function expectedDeliveries(runs: readonly { published: number; recorded: number }[]): number {
  return runs.reduce((n, r) => n + Math.max(r.published, r.recorded), 0);
}

/** The part of a cli-progress bar that SeedProgress uses. */
export interface BarLike {
  start(total: number, value: number): void;
  update(value: number): void;
  stop(): void;
}

/** How long seeding goes on before its progress is shown. */
export const SEED_QUIET_MS = 2000;

/**
 * The progress of a step that may take long (seeding 100,000 accounts takes minutes): nothing
 * for a step done within `quietMs`, then a bar (`makeBar`: on a terminal a bar, otherwise a
 * line every 5 s, as the deliveries' progress is shown), kept up to date until stop().
 */
export class SeedProgress {
  private bar: BarLike | null = null;
  private value = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly total: number,
    private readonly makeBar: () => BarLike,
    quietMs = SEED_QUIET_MS,
  ) {
    this.timer = setTimeout(() => {
      this.bar = this.makeBar();
      this.bar.start(this.total, this.value);
    }, quietMs);
    this.timer.unref();
  }

  update(value: number): void {
    this.value = value;
    this.bar?.update(value);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.bar?.stop();
    this.bar = null;
  }
}

/**
 * A progress bar's output off a terminal (a pipe, a log file), where cli-progress prints its
 * state as a line every few seconds and once more as it stops: a line the same as the one
 * printed just before (the stop drawing the state already shown) is left out. Not a TTY, so
 * cli-progress moves no cursor on it.
 */
export function unrepeatedLines(out: { write(chunk: string): unknown }): Writable {
  let partial = '';
  let last: string | null = null;
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, done) {
      partial += chunk.toString();
      for (let end = partial.indexOf('\n'); end >= 0; end = partial.indexOf('\n')) {
        const line = partial.slice(0, end);
        partial = partial.slice(end + 1);
        if (line === last) continue;
        last = line;
        out.write(`${line}\n`);
      }
      done();
    },
  });
}

/**
 * `npm start`'s progress bars, on `out`: on a terminal a bar drawn in place; off one, a line
 * every 5 s, none the same as the one before it, and no blank line after the last.
 */
export function barOptions(format: string, out: NodeJS.WriteStream): BarOptions {
  const tty = out.isTTY === true;
  return {
    format: `  ${format}`,
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 5000,
    // Off a terminal cli-progress's cursor moves write nothing, so this leaves out its new line alone.
    clearOnComplete: !tty,
    stream: tty ? out : unrepeatedLines(out),
  };
}
