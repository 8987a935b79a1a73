import { readFileSync } from 'node:fs';
import { Command, type CommanderError, InvalidArgumentError, Option } from 'commander';
import { portNumber, positiveInt, refuseOptionSlips } from '../shared/cli-args';
import { LOG_LEVELS } from '../shared/config';
import { quoted } from '../shared/model';
import { notificationProblems } from '../shared/notifications';
import { type FaultRule, parseFaultsBody } from './slack-standin';

/** `npm start`'s command line: its options, their ranges, and the help the README pastes. */

export interface Options {
  once: boolean;
  notifications: number;
  accounts: number;
  timeout: number;
  channel?: string;
  interval: number;
  logLevel: string;
  pubsubPort?: number;
  firestorePort?: number;
  dispatcherPort?: number;
  notifierPort?: number;
  pushPort?: number;
  slackPort?: number;
  slackFaults?: SlackFaults;
}

/** The Slack stand-in's fault rules from `--slack-faults`, in force from the first tick. */
export interface SlackFaults {
  file: string;
  rules: FaultRule[];
  seed?: number;
}

/**
 * A `--slack-faults` file: what `POST /_admin/faults` takes (an array of rules, or
 * `{"rules": […], "seed": n}`). Read when the options are, so that a file that cannot be read,
 * or a rule the stand-in would refuse, is a usage error before anything starts.
 */
export function readSlackFaults(file: string): SlackFaults {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'a directory, not a file'
          : code === 'EACCES'
            ? 'not readable (permission denied)'
            : (err as Error).message;
    throw new InvalidArgumentError(`cannot read ${quoted(file)}: ${why}`);
  }
  const unmarked = text.replace(/^\uFEFF/, '');
  if (unmarked.trim() === '') {
    throw new InvalidArgumentError(
      `${quoted(file)} is empty${unmarked === '' ? '' : ' but for blanks'}: expected what POST /_admin/faults takes, an array of rules or {"rules": […], "seed": n}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(unmarked);
  } catch (err) {
    throw new InvalidArgumentError(`${quoted(file)} is not JSON: ${(err as Error).message}`);
  }
  const parsed = parseFaultsBody(body);
  if (!parsed.ok) {
    const [first] = parsed.issues;
    const where = first?.path.map(String).join('.') || '(the whole file)';
    throw new InvalidArgumentError(
      `${quoted(file)}: ${where}: ${first?.message ?? 'invalid'} (the file holds what POST /_admin/faults takes: an array of rules, or {"rules": […], "seed": n})`,
    );
  }
  return { file, rules: parsed.rules, ...(parsed.seed === undefined ? {} : { seed: parsed.seed }) };
}

/** The exit code of a usage error. */
export const USAGE = 2;

/** The most of each counted option; the help says each range from these, so the two cannot differ. */
export const MAX_NOTIFICATIONS = 1_000_000;
export const MAX_ACCOUNTS = 100_000;
export const MAX_SECONDS = 3600;

/** `, 1 to 1,000,000`: an option's range as its help says it. */
const range = (max: number) => `, 1 to ${max.toLocaleString('en-US')}`;

/** Whether npm started this process (`npm start`): npm names the script it runs. */
export function startedByNpm(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.npm_lifecycle_event ?? '') !== '';
}

/** A real Slack token, when one is given: an empty or blank SLACK_BOT_TOKEN is no token. */
export function slackToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.SLACK_BOT_TOKEN?.trim() || undefined;
}

/** The command, unparsed: `--help` prints its help, and a test reads the same help. */
export function localProgram(): Command {
  return (
    new Command()
      .name('npm start --')
      .description(
        'Run slack-fanout locally: Pub/Sub and Firestore emulators, dispatcher, notifier and a Slack stand-in.\n' +
          'Seeds demo notifications in several time zones, sends a tick as Cloud Scheduler would, and shows deliveries landing.\n' +
          'With SLACK_BOT_TOKEN set, posts go to real Slack (SLACK_API_URL to override) and --channel is required.',
      )
      .option(
        '--once',
        'exit after the first tick is delivered (exit 0 only if every delivery reached a final state)',
        false,
      )
      .option(
        '-n, --notifications <count>',
        `demo notifications to seed${range(MAX_NOTIFICATIONS)}`,
        positiveInt(MAX_NOTIFICATIONS),
        200,
      )
      .option(
        '--accounts <count>',
        `demo accounts the notifications report on${range(MAX_ACCOUNTS)}`,
        positiveInt(MAX_ACCOUNTS),
        20,
      )
      .option(
        '--timeout <seconds>',
        `how long a tick's deliveries are waited for${range(MAX_SECONDS)} (with --once, past it the run exits 1; without, the next tick follows)`,
        positiveInt(MAX_SECONDS),
        180,
      )
      .option(
        '--interval <seconds>',
        `seconds between ticks (a usage error with --once), on the clock (60: every minute on the minute, as Cloud Scheduler)${range(MAX_SECONDS)}`,
        positiveInt(MAX_SECONDS),
        60,
      )
      .option(
        '--channel <id>',
        'a real Slack channel id for every demo notification (with SLACK_BOT_TOKEN)',
        (value: string) => {
          // Checked as a notification's channel is when it is saved, before anything starts: an
          // id no channel can have (blanks, an invisible character, past 255 characters) is a slip.
          const problem = notificationProblems({
            id: 'demo',
            accountId: 'demo',
            channelId: value,
            cron: '* * * * *',
            timezone: 'UTC',
          }).find((p) => p.field === 'channelId')?.problem;
          if (problem !== undefined) {
            throw new InvalidArgumentError(
              `expected a Slack channel id such as C0123456789: ${quoted(value)} ${problem}`,
            );
          }
          return value;
        },
      )
      .option(
        '--pubsub-port <port>',
        'the Pub/Sub emulator on 127.0.0.1:<port>, so the CLI variables stay the same from run to run (default: a free port)',
        portNumber(),
      )
      .option(
        '--firestore-port <port>',
        'the Firestore emulator on 127.0.0.1:<port> (default: a free port)',
        portNumber(),
      )
      .option(
        '--dispatcher-port <port>',
        'the dispatcher (its /status page and admin API) on 127.0.0.1:<port> (default: a free port; a restart keeps it)',
        portNumber(),
      )
      .option(
        '--notifier-port <port>',
        'the notifier on 127.0.0.1:<port> (default: a free port; a restart keeps it)',
        portNumber(),
      )
      .option(
        '--push-port <port>',
        "the stand-in for Cloud Run's front end that Pub/Sub pushes to the notifier through, on 127.0.0.1:<port> (default: a free port)",
        portNumber(),
      )
      .option(
        '--slack-port <port>',
        'the Slack stand-in (its API under /api/, its faults and posts under /_admin/) on 127.0.0.1:<port> (default: a free port; a usage error with SLACK_BOT_TOKEN set, as posts then go to real Slack)',
        portNumber(),
      )
      .option(
        '--slack-faults <file>',
        'fault rules for the Slack stand-in from the first tick on: a JSON file of what POST /_admin/faults takes (an array of rules, or {"rules": [...], "seed": n}), in force before the demo\'s own rule for its archived channel (a usage error with SLACK_BOT_TOKEN set)',
        readSlackFaults,
      )
      .addOption(
        new Option(
          '--log-level <level>',
          "the services' log level (their logs go to a directory of the run's own in .local/logs/; the 10 latest runs' are kept)",
        )
          .choices(LOG_LEVELS)
          // The services' own variable, read as they read it (parseArgs), unless this is given.
          .default('info', '$LOG_LEVEL, else info'),
      )
      .addHelpText(
        'after',
        `
Exit codes: 0 done (with --once: every delivery reached a final state), or stopped by a
reader of its output that quits (npm start | head); 1 a failure (an emulator that exited, a
service that exited more than 5 times within a minute; with --once: deliveries not final by
--timeout, or a reader of its output that quit); 2 a usage error (an unknown option, a bad
value, an environment variable the services would refuse, a SLACK_BOT_TOKEN Slack refuses);
130 Ctrl-C, 143 SIGTERM, 129 SIGHUP, each after stopping everything the run started.`,
      )
      // The error and where the help is: the whole help under it would scroll the error away.
      .showHelpAfterError('(npm start -- --help lists every option)')
      // A usage error exits 2, as the slack-fanout CLI's do; commander has printed it already.
      .exitOverride((err: CommanderError) => {
        process.exit(err.exitCode === 0 ? 0 : USAGE);
      })
  );
}

/**
 * The run's options npm took for its own config: `npm start --once` passes no --once on (npm
 * sets npm_config_once and warns that it does not know it), and the run would tick on forever.
 */
export function optionsNpmTook(program: Command, env: NodeJS.ProcessEnv): string[] {
  if (!startedByNpm(env)) return [];
  return program.options
    .map((o) => o.long)
    .filter((long): long is string => long !== undefined && long !== '--help')
    .filter((long) => env[`npm_config_${long.slice(2).replace(/-/g, '_')}`] !== undefined);
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
  const program = localProgram();
  refuseOptionSlips(program);
  // What is left over is named below, with why it may be there, rather than counted.
  program.allowExcessArguments(true);
  const took = optionsNpmTook(program, env);
  if (took.length > 0) {
    program.error(
      `error: npm took ${took.join(', ')} for its own config, so the run never saw ${took.length === 1 ? 'it' : 'them'}: give the run's options after --, as in npm start -- ${took[0]}${took[0] === '--once' ? '' : ' …'}`,
    );
  }
  program.parse(argv);
  if (program.args.length > 0) {
    const words = program.args.map((a) => JSON.stringify(a)).join(' ');
    // npm takes a short option it knows (-n, -d, -s…) without a trace in the environment and
    // passes its value on alone: a lone number is most likely one (npm start -n 5).
    const [only, ...more] = program.args;
    const number =
      startedByNpm(env) && more.length === 0 && only !== undefined && /^\d+$/.test(only) ? only : undefined;
    const why =
      number === undefined
        ? ''
        : ` (npm start -n ${number} without -- passes only ${JSON.stringify(number)} on: npm takes -n for its own)`;
    program.error(
      `error: ${words} ${program.args.length === 1 ? 'is not an option' : 'are not options'}: npm start takes options alone, given after -- so that npm passes them on, as in npm start -- --once -n 5${why}`,
    );
  }
  const opts = program.opts<Options>();
  // LOG_LEVEL as the services read it: blanks around it dropped, empty as unset.
  const envLevel = env.LOG_LEVEL?.trim();
  if (envLevel && program.getOptionValueSource('logLevel') === 'default') {
    if (!(LOG_LEVELS as readonly string[]).includes(envLevel)) {
      program.error(
        `error: LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)} is not a log level: expected one of ${LOG_LEVELS.join(', ')} (or --log-level, which takes its place)`,
      );
    }
    opts.logLevel = envLevel;
  }
  const token = slackToken(env);
  if (!token && opts.channel) {
    program.error(
      'error: --channel is for real Slack: set SLACK_BOT_TOKEN too (without it, posts go to the local stand-in)',
    );
  }
  if (token && !opts.channel) {
    program.error(
      'error: SLACK_BOT_TOKEN is set, so posts go to real Slack: pass --channel <id> for the demo notifications',
    );
  }
  // --once sends one tick: an interval given with it would be passed over without a word.
  if (opts.once && program.getOptionValueSource('interval') === 'cli') {
    program.error('error: --interval is for a run that keeps ticking: --once sends one tick and stops');
  }
  if (token && opts.slackFaults !== undefined) {
    program.error(
      'error: --slack-faults is for the local Slack stand-in, and SLACK_BOT_TOKEN is set: posts go to real Slack',
    );
  }
  if (token && opts.slackPort !== undefined) {
    program.error(
      'error: --slack-port is for the local Slack stand-in, and SLACK_BOT_TOKEN is set: posts go to real Slack',
    );
  }
  const chosen = chosenPorts(opts);
  for (const [i, [flag, port]] of chosen.entries()) {
    const other = chosen.slice(0, i).find(([, p]) => p === port);
    if (other) program.error(`error: ${flag} ${port}: ${other[0]} is ${port} too; each needs a port of its own`);
  }
  return opts;
}

/** The ports given on the command line, with the option that gave each. */
export function chosenPorts(opts: Options): [string, number][] {
  const given: [string, number | undefined][] = [
    ['--pubsub-port', opts.pubsubPort],
    ['--firestore-port', opts.firestorePort],
    ['--dispatcher-port', opts.dispatcherPort],
    ['--notifier-port', opts.notifierPort],
    ['--push-port', opts.pushPort],
    ['--slack-port', opts.slackPort],
  ];
  return given.filter((g): g is [string, number] => g[1] !== undefined);
}
