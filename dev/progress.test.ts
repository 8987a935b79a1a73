import { execFileSync } from 'node:child_process';
import { SingleBar } from 'cli-progress';
import {
  type BarLike,
  barOptions,
  channelShown,
  expectedDeliveries,
  failureHints,
  LookErrors,
  OVERDUE_MS,
  PostLines,
  postPreview,
  resumeHint,
  runHints,
  runsToWatch,
  SEED_QUIET_MS,
  SeedProgress,
  STALL_MS,
  shellQuoted,
  timeLeft,
  VERBOSE_MAX,
} from './progress';

describe('postPreview', () => {
  it('reads Slack’s escapes as the characters they stand for, and keeps a post to one line', () => {
    expect(postPreview('&lt;b&gt;T&lt;/b&gt; &amp; é: scheduled report\nRevenue: 1')).toBe(
      '<b>T</b> & é: scheduled report Revenue: 1',
    );
    expect(postPreview('&amp;lt;')).toBe('&lt;');
  });

  it('cuts a long one between words, and never inside an emoji', () => {
    expect(postPreview(`${'word '.repeat(20)}`, 12)).toBe('word word…');
    expect(postPreview(`${'x'.repeat(59)}😀😀`, 60)).toBe(`${'x'.repeat(59)}…`);
  });
});

describe('failureHints', () => {
  const env = { PUBSUB_EMULATOR_HOST: '127.0.0.1:1', FIRESTORE_EMULATOR_HOST: '127.0.0.1:2' };
  test('lists the failed and the dead alike, and gives each their redrive with both emulators', () => {
    expect(failureHints({ runId: 's_1:2030-01-01T00:00:00.000Z', failed: 1, dead: 2 }, env, 'p')).toEqual([
      "  all the failed: FIRESTORE_EMULATOR_HOST=127.0.0.1:2 GOOGLE_CLOUD_PROJECT=p npm run --silent cli -- deliveries 's_1:2030-01-01T00:00:00.000Z' --status failed",
      "  to send the failed again, once their cause is fixed: PUBSUB_EMULATOR_HOST=127.0.0.1:1 FIRESTORE_EMULATOR_HOST=127.0.0.1:2 GOOGLE_CLOUD_PROJECT=p npm run --silent cli -- redrive 's_1:2030-01-01T00:00:00.000Z' --failed",
      "  all the dead: FIRESTORE_EMULATOR_HOST=127.0.0.1:2 GOOGLE_CLOUD_PROJECT=p npm run --silent cli -- deliveries 's_1:2030-01-01T00:00:00.000Z' --status dead",
      "  to send the dead again: PUBSUB_EMULATOR_HOST=127.0.0.1:1 FIRESTORE_EMULATOR_HOST=127.0.0.1:2 GOOGLE_CLOUD_PROJECT=p npm run --silent cli -- redrive 's_1:2030-01-01T00:00:00.000Z'",
    ]);
    expect(failureHints({ runId: 'r', failed: 2, dead: 0 }, env, 'p')).toHaveLength(2);
    expect(failureHints({ runId: 'r', failed: 0, dead: 0 }, env, 'p')).toEqual([]);
  });
});

describe('resumeHint', () => {
  test('resumes the notification, then sends its failed deliveries of every run again', () => {
    const env = { PUBSUB_EMULATOR_HOST: '127.0.0.1:1', FIRESTORE_EMULATOR_HOST: '127.0.0.1:2' };
    expect(resumeHint("n-it's", env, 'p')).toBe(
      "to resume it: FIRESTORE_EMULATOR_HOST=127.0.0.1:2 GOOGLE_CLOUD_PROJECT=p npm run --silent cli -- resume 'n-it'\\''s'; then, once the cause is fixed, its failed deliveries, which span runs (a run's redrive --failed sends that run's alone), go again with PUBSUB_EMULATOR_HOST=127.0.0.1:1 FIRESTORE_EMULATOR_HOST=127.0.0.1:2 GOOGLE_CLOUD_PROJECT=p npm run --silent cli -- redrive --all-runs --failed, which sends the failed and dead deliveries of every run and every notification",
    );
  });
});

describe('shellQuoted', () => {
  it.each([
    ['n-1'],
    ["it's"],
    ["'"],
    ["a'b'c"],
    ['a b'],
    ['$HOME `id` "x" \\ *'],
    ['s_1:2030-01-01T00:00:00.000Z'],
    [''],
  ])('passes %j to a shell as it is', (word) => {
    const echoed = execFileSync('sh', ['-c', `printf %s ${shellQuoted(word)}`], { encoding: 'utf8' });
    expect(echoed).toBe(word);
  });

  it('quotes an id whose quote would have ended the word', () => {
    expect(shellQuoted("it's")).toBe("'it'\\''s'");
  });
});

describe('runHints', () => {
  test('gives each run its CLI command, the first five, and counts the rest', () => {
    const env = { FIRESTORE_EMULATOR_HOST: '127.0.0.1:2' };
    expect(runHints(['s_1:t'], env, 'p')).toEqual([
      "  how run s_1:t ends: FIRESTORE_EMULATOR_HOST=127.0.0.1:2 GOOGLE_CLOUD_PROJECT=p npm run --silent cli -- run 's_1:t'",
    ]);
    const many = runHints(
      Array.from({ length: 7 }, (_, i) => `s_${i}:t`),
      env,
      'p',
    );
    expect(many).toHaveLength(6);
    expect(many.at(-1)).toBe('  … and 2 more runs of this tick');
    expect(
      runHints(
        Array.from({ length: 6 }, (_, i) => `s_${i}:t`),
        env,
        'p',
      ).at(-1),
    ).toBe('  … and 1 more run of this tick');
    expect(runHints([], env, 'p')).toEqual([]);
  });
});

describe('channelShown', () => {
  test('names a channel id with its #, and a channel given by its name as it was given', () => {
    expect(channelShown('C0123456789')).toBe('#C0123456789');
    expect(channelShown('#général')).toBe('#général');
    expect(channelShown(undefined)).toBe('#?');
  });
});

describe('timeLeft', () => {
  // Deliveries moving, an hour before --timeout: the rate so far says the rest.
  const moving = { sinceLastFinalMs: 500, timeoutInMs: 3_600_000 };

  it('guesses nothing before the first delivery is final', () => {
    expect(timeLeft({ ...moving, done: 0, total: 500, elapsedMs: 0 })).toBe('waiting for the first');
    expect(timeLeft({ ...moving, done: 0, total: 500, elapsedMs: 12_000 })).toBe('waiting for the first');
    // Long without a first: said as a stall is.
    expect(timeLeft({ ...moving, done: 0, total: 500, elapsedMs: 22_400 })).toBe('none final yet, no progress for 22s');
  });

  it('says the rest at the rate so far, in seconds, then minutes', () => {
    // 100 of 500 in 5 s: 400 more at 20/s.
    expect(timeLeft({ ...moving, done: 100, total: 500, elapsedMs: 5_000 })).toBe('about 20s left');
    expect(timeLeft({ ...moving, done: 499, total: 500, elapsedMs: 10_000 })).toBe('about 1s left');
    expect(timeLeft({ ...moving, done: 10, total: 500, elapsedMs: 5_000 })).toBe('about 4m 05s left');
  });

  it(`guesses nothing once no delivery has become final for ${STALL_MS / 1000} s, and says for how long`, () => {
    // 10 of 500 in 30 s: 3 s a delivery, so ten deliveries' time (30 s) is past STALL_MS.
    const stalled = { done: 10, total: 500, elapsedMs: 30_000, timeoutInMs: 3_600_000 };
    expect(timeLeft({ ...stalled, sinceLastFinalMs: STALL_MS - 1 })).toBe('about 24m 30s left');
    expect(timeLeft({ ...stalled, sinceLastFinalMs: STALL_MS })).toBe('no progress for 20s');
    expect(timeLeft({ ...stalled, sinceLastFinalMs: 65_400 })).toBe('no progress for 1m 05s');
  });

  it(`says the wait sooner, from ${OVERDUE_MS / 1000} s, when the rate so far says a delivery is long overdue`, () => {
    // The trial's case: 66 of 67 final in 3 s, the last waiting out a dead notifier's claim.
    const last = { done: 66, total: 67, elapsedMs: 3_000, timeoutInMs: 3_600_000 };
    expect(timeLeft({ ...last, sinceLastFinalMs: OVERDUE_MS - 1 })).toBe('about 1s left');
    expect(timeLeft({ ...last, sinceLastFinalMs: OVERDUE_MS })).toBe('no progress for 5s');
    // Not while the wait is within ten deliveries' time: 1 of 67 in 3 s is 3 s a delivery.
    expect(timeLeft({ ...last, done: 1, sinceLastFinalMs: 10_000 })).toBe('about 3m 18s left');
  });

  it('never says more than the time before --timeout gives up: it says the timeout comes first', () => {
    // The trial's case: 1 of 2,000 final after 25 s would be 13 hours at that rate, with 35 s of --timeout left.
    const slow = { done: 1, total: 2000, elapsedMs: 25_000, sinceLastFinalMs: 1_000 };
    expect(timeLeft({ ...slow, timeoutInMs: 35_000 })).toBe('at this rate, --timeout first (in 35s)');
    // A rest that fits says itself.
    expect(timeLeft({ done: 100, total: 500, elapsedMs: 5_000, sinceLastFinalMs: 0, timeoutInMs: 21_000 })).toBe(
      'about 20s left',
    );
  });

  it('says done once every delivery is final, stalled or not', () => {
    expect(timeLeft({ done: 500, total: 500, elapsedMs: 9_000, sinceLastFinalMs: 60_000, timeoutInMs: 0 })).toBe(
      'done',
    );
  });
});

describe('SeedProgress', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const recorder = () => {
    const calls: string[] = [];
    const bars: BarLike[] = [];
    const make = (): BarLike => {
      const bar: BarLike = {
        start: (total, value) => calls.push(`start ${value}/${total}`),
        update: (value) => calls.push(`update ${value}`),
        stop: () => calls.push('stop'),
      };
      bars.push(bar);
      return bar;
    };
    return { calls, bars, make };
  };

  it('shows nothing for seeding done before it has taken long', () => {
    const { calls, make } = recorder();
    const p = new SeedProgress(100, make);
    p.update(50);
    jest.advanceTimersByTime(SEED_QUIET_MS - 1);
    p.update(100);
    p.stop();
    jest.advanceTimersByTime(10 * SEED_QUIET_MS);
    expect(calls).toEqual([]);
  });

  it('shows a bar from where seeding is once it takes long, keeps it up to date, and stops it', () => {
    const { calls, bars, make } = recorder();
    const p = new SeedProgress(100_000, make);
    p.update(1500);
    jest.advanceTimersByTime(SEED_QUIET_MS);
    p.update(2000);
    p.stop();
    p.update(2500);
    expect(bars).toHaveLength(1);
    expect(calls).toEqual(['start 1500/100000', 'update 2000', 'stop']);
  });
});

describe('PostLines', () => {
  const lines = () => {
    const said: string[] = [];
    return { said, posts: new PostLines((l) => said.push(l)) };
  };

  it('holds a tick’s lines until its size is known, then prints them and the later ones', () => {
    const { said, posts } = lines();
    posts.hold();
    posts.add('a');
    posts.add('b');
    expect(said).toEqual([]);
    posts.decide(true);
    posts.add('c');
    expect(said).toEqual(['a', 'b', 'c']);
  });

  it('escapes what the data could put in a line to move the cursor, clear the screen or turn the text', () => {
    const { said, posts } = lines();
    posts.decide(true);
    posts.add(`  ✓ posted n:1 → #C1: ${postPreview('\u001b[2J\u001b[31mRED\u001b]0;title\u0007 \u202eevil\u0000')}`);
    expect(said).toEqual(['  ✓ posted n:1 → #C1: \\u001B[2J\\u001B[31mRED\\u001B]0;title\\u0007 \\u202Eevil\\u0000']);
    expect(said.join('')).not.toMatch(/\p{Cc}/u);
    // An emoji's joiner is left to join it.
    posts.add('  ✓ posted n:2 → #C1: 👩\u200d💻 ❤\ufe0f');
    expect(said[1]).toBe('  ✓ posted n:2 → #C1: 👩\u200d💻 ❤\ufe0f');
  });

  it('drops them for a progress bar, until the next tick is sent', () => {
    const { said, posts } = lines();
    posts.hold();
    posts.add('a');
    posts.decide(false);
    posts.add('b');
    expect(said).toEqual([]);
    posts.hold();
    posts.add('c');
    posts.decide(true);
    expect(said).toEqual(['c']);
  });

  it('lets a tick with nothing of its own print late posts as the tick before did', () => {
    const { said, posts } = lines();
    posts.hold();
    posts.decide(true);
    posts.hold();
    posts.add('late retry');
    posts.asBefore();
    expect(said).toEqual(['late retry']);
  });

  it(`drops a tick's lines once more than ${VERBOSE_MAX} are held: such a tick gets a bar`, () => {
    const { said, posts } = lines();
    posts.hold();
    for (let i = 0; i <= VERBOSE_MAX; i++) posts.add(`p${i}`);
    posts.add('late');
    posts.decide(true);
    expect(said).toEqual([]);
  });
});

describe('runsToWatch', () => {
  it('watches every run a first tick names, once each', () => {
    const occurrences = [
      { runId: 'r1', status: 'dispatched' },
      { runId: 'r2', status: 'leased-elsewhere' },
      { runId: null, status: 'invalid-schedule' },
      { runId: 'r1', status: 'dispatched' },
    ];
    expect(runsToWatch(occurrences, new Set())).toEqual(['r1', 'r2']);
  });

  it('leaves out a run an earlier tick summed up, unless this tick sent its messages', () => {
    const occurrences = [
      { runId: 'held', status: 'leased-elsewhere' },
      { runId: 'done', status: 'already-done' },
      { runId: 'taken-over', status: 'resumed' },
      { runId: 'new', status: 'dispatched' },
    ];
    expect(runsToWatch(occurrences, new Set(['held', 'done', 'taken-over']))).toEqual(['taken-over', 'new']);
  });
});

describe('expectedDeliveries', () => {
  it('counts what each run published, or what it has on record where that is more: never fewer than recorded', () => {
    // A run whose dispatcher died before its first checkpoint: 0 published on record, 17 deliveries.
    expect(
      expectedDeliveries([
        { published: 0, recorded: 17 },
        { published: 4, recorded: 3 },
      ]),
    ).toBe(21);
    expect(expectedDeliveries([])).toBe(0);
  });
});

describe('barOptions', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /** A bar on a stream that is not a terminal (a pipe, a log file), as `npm start | cat` has. */
  const offTerminal = () => {
    let text = '';
    const out = {
      isTTY: false,
      write(chunk: string) {
        text += chunk;
        return true;
      },
    };
    const bar = new SingleBar(barOptions('deliveries {value}/{total}', out as unknown as NodeJS.WriteStream));
    return { bar, text: () => text };
  };

  it('off a terminal prints a line every 5 s and at the stop, never the same line twice in a row, and no blank line', () => {
    const { bar, text } = offTerminal();
    bar.start(10, 0);
    bar.update(4);
    jest.advanceTimersByTime(5000);
    bar.update(10);
    jest.advanceTimersByTime(5000);
    // Still 10/10 at the next line, and at the stop: neither is printed again.
    jest.advanceTimersByTime(5000);
    bar.stop();
    expect(text()).toBe('  deliveries 0/10\n  deliveries 4/10\n  deliveries 10/10\n');
  });

  it('off a terminal prints the state at the stop when it has moved since the last line', () => {
    const { bar, text } = offTerminal();
    bar.start(10, 0);
    bar.update(7);
    bar.stop();
    expect(text()).toBe('  deliveries 0/10\n  deliveries 7/10\n');
  });

  it('on a terminal writes to the terminal itself, and leaves the bar on its line at the stop', () => {
    const tty = { isTTY: true } as unknown as NodeJS.WriteStream;
    const options = barOptions('x', tty);
    expect(options.stream).toBe(tty);
    expect(options.clearOnComplete).toBe(false);
  });
});

describe('LookErrors (looks at the deliveries that Firestore answered with an error)', () => {
  it('says a failed look once per message, again after a look was answered, and keeps the last', () => {
    const said: string[] = [];
    const errors = new LookErrors((line) => said.push(line));
    errors.failed('3 INVALID_ARGUMENT: Transaction is invalid or closed.');
    errors.failed('3 INVALID_ARGUMENT: Transaction is invalid or closed.');
    expect(said).toEqual([
      '  a look at the deliveries failed (3 INVALID_ARGUMENT: Transaction is invalid or closed.); looking again',
    ]);
    errors.failed('14 UNAVAILABLE');
    expect(said).toHaveLength(2);
    expect(errors.last).toBe('14 UNAVAILABLE');
    errors.answered();
    expect(errors.last).toBeNull();
    errors.failed('14 UNAVAILABLE');
    expect(said).toHaveLength(3);
  });
});
