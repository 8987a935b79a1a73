import { mkdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { constants, cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Command, type CommanderError, InvalidArgumentError, Option } from 'commander';
import { type Emulators, startEmulators } from '../dev/emulators';
import { ROOT } from '../dev/processes';
import { SlackStandIn } from '../dev/slack-standin';
import { refuseOptionSlips, wholeNumber } from '../shared/cli-args';
import { DEFAULT_SCHEDULE_CONCURRENCY, LOG_LEVELS } from '../shared/config';
import { type PeerRun, peerRun, seedRedis } from './bullmq-peer';
import { type CapacityFixture, type CapacityRun, capacityFixture, capacityRun, levelProblem } from './capacity';
import { type CeilingRun, ceilingSizes, measureCeilings } from './ceilings';
import {
  cleanupAll,
  guardSpawned,
  installSignalHandlers,
  onCleanup,
  releaseReaper,
  stopAndExit,
  stoppingOnSignal,
} from './cleanup';
import { type BenchContext, type BenchOptions, makeContext, PHASES, type Phase, usesEmulators } from './context';
import { profileMarkdown } from './cpuprofile';
import { type DispatchFixture, type DispatchRun, dispatchFixture, dispatchRun } from './dispatch';
import { type E2eRun, e2eRun, STANDIN_TOKEN } from './e2e';
import { billableMessageBytes, dispatchMessage } from './envelope';
import { costPerMillion, pubsubBytesPerNotification, type UsagePerNotification } from './prices';
import { profileDispatcher, profileNotifier } from './profile';
import { ensureRedisServer, startRedis } from './redis';
import {
  evaluateTargets,
  markdown,
  noMeasurements,
  perSchedule,
  type Results,
  reserveResults,
  resultsBaseName,
  type SpreadDispatch,
  throughputSvg,
} from './report';
import { maxSpreadSchedules, SPREAD_PER_SCHEDULE } from './seed';
import { medianRecord } from './stats';

/**
 * `npm run bench`: the throughput, latency, memory, CPU and cost of slack-fanout on the
 * emulators, beside the emulators' own ceilings and a cron + BullMQ peer. Not part of npm test.
 */

const FULL = {
  runs: 3,
  sizes: [1000, 10_000, 100_000],
  schedules: 1000,
  e2e: 10_000,
  capacityRequests: 4000,
  peerJobs: 10_000,
};
const QUICK = { runs: 1, sizes: [500, 2000, 5000], schedules: 100, e2e: 1000, capacityRequests: 1000, peerJobs: 1000 };
/**
 * The dispatcher's schedules at once before DISPATCH_SCHEDULE_CONCURRENCY's default became
 * DEFAULT_SCHEDULE_CONCURRENCY: the many-schedules tick is timed at both, in the same run.
 */
const PREVIOUS_SCHEDULE_CONCURRENCY = 4;
/**
 * The diagnostic's V8 old-space limit: about V8's own default on a 24 GiB host, i.e. the
 * dispatcher without its container's `--max-old-space-size` (dispatcher/Dockerfile).
 */
const UNCAPPED_OLD_SPACE_MIB = 4096;
/** The dispatcher's page size (DISPATCH_PAGE_SIZE default): messages per publish request. */
const PAGE_SIZE = 1000;
/** The exit code of a usage error, as the slack-fanout CLI and `npm start` give it. */
const USAGE = 2;

/**
 * A comma-separated list of whole numbers. The option given again adds to the list (`--in-flight
 * 8 --in-flight 64` is `8,64`); its default is not added to: the first list given replaces it.
 */
function intList(min: number, max: number) {
  const one = wholeNumber(min, max);
  let given: number[] = [];
  return (value: string): number[] => {
    const items = value.split(',').map((v) => v.trim());
    // 1,000 is two sizes here, 1 and 000: a group of three digits starting with 0 after a comma
    // is a thousands separator, said so rather than refused as a size of 0.
    if (items.slice(1).some((v) => /^0\d{2}$/.test(v))) {
      throw new InvalidArgumentError(
        `sizes are separated by commas, so ${JSON.stringify(value)} is ${items.length} of them: write each without a thousands separator (${items.join('')}, not ${value.trim()})`,
      );
    }
    const out = [...given, ...items.map((v) => one(v))];
    // One value named twice would be measured twice, and compared with itself.
    const twice = out.find((v, i) => out.indexOf(v) !== i);
    if (twice !== undefined) throw new InvalidArgumentError(`${twice} is named twice`);
    given = out;
    return out;
  };
}

/** Comma-separated phases; the option given again adds to them (`--skip peer --skip profile`). */
function phaseList(value: string, previous: Phase[] | undefined): Phase[] {
  const out = value.split(',').map((v) => v.trim());
  for (const p of out) {
    if (p === '')
      throw new InvalidArgumentError(`an empty phase name in ${JSON.stringify(value)}; phases: ${PHASES.join(', ')}`);
    if (!PHASES.includes(p as Phase))
      throw new InvalidArgumentError(`unknown phase ${p}; phases: ${PHASES.join(', ')}`);
  }
  // Named twice is still one phase.
  return [...new Set([...(previous ?? []), ...out])] as Phase[];
}

function outDir(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('a directory is needed, not an empty path');
  return value;
}

/**
 * Makes `dir` and its missing parents one level at a time. Node's own `recursive` spins for ever
 * on a path no directory can be made in that says ENOENT for its parent even once it exists, as
 * under /proc; this stops at the first level that cannot be made and throws its error.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    try {
      statSync(at);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err;
      missing.unshift(at);
      at = dirname(at);
    }
  }
  for (const level of missing) {
    try {
      mkdirSync(level);
    } catch (err) {
      // Made meanwhile by someone else: as good.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Why results cannot be written under `dir` (made if missing), or null when they can: the
 * directory and its `tmp/` for the logs are made, and a file written and removed in each, as
 * the run will (a permission check alone passes for root where nothing can be written).
 */
function outProblem(dir: string): string | null {
  try {
    for (const at of [dir, join(dir, 'tmp')]) {
      makeDirs(at);
      if (!statSync(at).isDirectory()) return `${at} is not a directory`;
      const probe = join(at, `.write-check-${process.pid}`);
      writeFileSync(probe, '');
      unlinkSync(probe);
    }
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

interface RawOptions {
  quick?: boolean;
  runs?: number;
  sizes?: number[];
  schedules?: number;
  e2e?: number;
  inFlight: number[];
  capacityRequests?: number;
  peerJobs?: number;
  workerConcurrency: number[];
  only?: Phase[];
  skip?: Phase[];
  installRedis: boolean;
  out: string;
  logLevel: string;
  timeout: number;
}

export function parseArgs(argv: string[]): BenchOptions {
  const program = new Command()
    .name('npm run bench --')
    .description(
      'Benchmarks slack-fanout on the Pub/Sub and Firestore emulators: the emulators’ ceilings, dispatch at ' +
        'several N, end to end, the notifier’s capacity driven directly, and a cron + BullMQ peer on a local Redis. ' +
        'Every figure is the median of --runs runs. Writes <date>.json, <date>.md, with the dispatch phase ' +
        '<date>-throughput.svg, and with the profile phase <date>-profile.md into --out (<date>-quick.* for ' +
        '--quick, <date>-partial.* when --only or --skip leave phases out, <date>-quick-partial.* for both), and ' +
        'the services’ logs and CPU profiles under <out>/tmp/.',
    )
    .option('--quick', `a smoke check: N=${QUICK.sizes.join(',')}, end to end ${QUICK.e2e}, 1 run`)
    .option(
      '--runs <n>',
      `runs per figure, the median reported: 1 to 20 (default: ${FULL.runs}; --quick: 1)`,
      wholeNumber(1, 20),
    )
    .option(
      '--sizes <list>',
      `dispatch sizes N, comma-separated, each 1 to 1,000,000 (default: ${FULL.sizes.join(',')}; --quick: ${QUICK.sizes.join(',')})`,
      intList(1, 1_000_000),
    )
    .option(
      '--schedules <n>',
      `dispatch: a tick of this many small schedules, each due now with ${SPREAD_PER_SCHEDULE} notifications, at the dispatcher's default schedules at once (${DEFAULT_SCHEDULE_CONCURRENCY}) and at ${PREVIOUS_SCHEDULE_CONCURRENCY} (its default before); 0 leaves it out (default: ${FULL.schedules}; --quick: ${QUICK.schedules}; at most ${maxSpreadSchedules()})`,
      wholeNumber(0, maxSpreadSchedules()),
    )
    .option(
      '--e2e <n>',
      `notifications end to end through the emulators, 1 to 1,000,000 (default: ${FULL.e2e}; --quick: ${QUICK.e2e})`,
      wholeNumber(1, 1_000_000),
    )
    .addOption(
      new Option('--in-flight <list>', 'notifier capacity: requests in flight, comma-separated, each 1 to 1,024')
        .argParser(intList(1, 1024))
        .default([1, 8, 64], '1,8,64'),
    )
    .option(
      '--capacity-requests <n>',
      `notifier capacity, at least 10: requests at a level above 8 in flight, and at least as many as that level has in flight; a level of 2 to 8 in flight gets half of it (at least 200), one of 1 an eighth (at least 100) (default: ${FULL.capacityRequests}; --quick: ${QUICK.capacityRequests})`,
      wholeNumber(10, 1_000_000),
    )
    .option(
      '--peer-jobs <n>',
      `BullMQ peer: jobs per run, 1 to 1,000,000 (default: ${FULL.peerJobs}; --quick: ${QUICK.peerJobs})`,
      wholeNumber(1, 1_000_000),
    )
    .addOption(
      new Option(
        '--worker-concurrency <list>',
        'BullMQ peer: the Worker’s concurrency, comma-separated, each 1 to 1,024, one peer run each (compared with the same --in-flight level, which must be among them when the capacity phase runs too)',
      )
        .argParser(intList(1, 1024))
        .default([8, 64], '8,64'),
    )
    .option(
      '--only <phases>',
      `run only these phases, comma-separated (given again, added to): ${PHASES.join(', ')}`,
      phaseList,
    )
    .option('--skip <phases>', 'skip these phases, comma-separated (given again, added to)', phaseList)
    .option('--no-install-redis', 'do not apt-get install redis-server when it is missing (the peer is skipped)')
    .option(
      '--out <dir>',
      'where results go (made if missing; a relative path is from the directory npm was run in)',
      outDir,
      join(ROOT, 'bench', 'results'),
    )
    .addOption(
      new Option('--log-level <level>', 'the services’ log level (production default: info)')
        .choices(LOG_LEVELS)
        .default('info'),
    )
    .option(
      '--timeout <seconds>',
      'longest wait for one run’s deliveries, in seconds: 10 to 86,400',
      wholeNumber(10, 86_400),
      900,
    )
    .addHelpText(
      'after',
      `
Exit codes: 0 done; 1 a failure while measuring (an emulator or a service that would not start or
died, deliveries not in by --timeout); 2 a usage error (an unknown option, a bad value, an --out
that cannot be written), before anything starts; 128 + the signal's number when stopped by one
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; 141, as SIGPIPE, when its output cannot be written any
more, its reader gone as with | head), after stopping everything it started; results are written
only once every phase has run.`,
    )
    .showHelpAfterError('(npm run bench -- --help lists every option)')
    // A usage error exits 2, as the slack-fanout CLI's and npm start's do; commander has printed it.
    .exitOverride((err: CommanderError) => {
      process.exit(err.exitCode === 0 ? 0 : USAGE);
    });
  // The lists add each value to the ones before; any other option is given once.
  refuseOptionSlips(program, ['--sizes', '--in-flight', '--worker-concurrency', '--only', '--skip']);
  program.parse(argv);
  const raw = program.opts<RawOptions>();
  const base = raw.quick ? QUICK : FULL;
  const only = raw.only ?? [...PHASES];
  // In the order they run, whatever order they were named in.
  const phases = PHASES.filter((p) => only.includes(p) && !(raw.skip ?? []).includes(p));
  if (phases.length === 0) {
    const skip = `--skip ${(raw.skip ?? []).join(',')}`;
    program.error(`error: ${raw.only ? `--only ${raw.only.join(',')} with ${skip}` : skip} leaves no phase to run`);
  }
  const capacityRequests = raw.capacityRequests ?? base.capacityRequests;
  if (phases.includes('capacity') || phases.includes('profile')) {
    const levels = phases.includes('capacity') ? raw.inFlight : [Math.max(...raw.inFlight)];
    const tooFew = levels.map((c) => levelProblem(c, capacityRequests)).find((p) => p !== null);
    if (tooFew) program.error(`error: --in-flight ${raw.inFlight.join(',')}: ${tooFew}`);
  }
  if (phases.includes('peer') && phases.includes('capacity')) {
    const unmatched = raw.workerConcurrency.filter((c) => !raw.inFlight.includes(c));
    if (unmatched.length > 0) {
      program.error(
        `error: --worker-concurrency ${unmatched.join(',')} has no --in-flight level to be compared with ` +
          `(--in-flight ${raw.inFlight.join(',')}); each peer run is compared with the notifier at the same number in flight`,
      );
    }
  }
  // npm runs the script from the package's root; a relative --out is from where npm was run.
  const out = resolve(process.env.INIT_CWD ?? process.cwd(), raw.out);
  const problem = outProblem(out);
  if (problem) program.error(`error: --out ${out}: results cannot be written there: ${problem}`);
  return {
    quick: raw.quick === true,
    runs: raw.runs ?? base.runs,
    sizes: raw.sizes ?? base.sizes,
    schedules: raw.schedules ?? base.schedules,
    e2e: raw.e2e ?? base.e2e,
    inFlight: raw.inFlight,
    capacityRequests,
    peerJobs: raw.peerJobs ?? base.peerJobs,
    workerConcurrency: raw.workerConcurrency,
    phases,
    installRedis: raw.installRedis,
    out,
    logLevel: raw.logLevel,
    timeout: raw.timeout,
  };
}

/** A tick of `schedules` small schedules, at the default schedules at once and at the previous default. */
async function dispatchSpread(ctx: BenchContext, schedules: number): Promise<SpreadDispatch> {
  const n = schedules * SPREAD_PER_SCHEDULE;
  ctx.say(
    `\n== dispatch: N = ${n.toLocaleString('en-US')} over ${schedules.toLocaleString('en-US')} schedules of ${SPREAD_PER_SCHEDULE} ==`,
  );
  const fixture = await dispatchFixture(ctx, n, schedules);
  const line = (r: DispatchRun, concurrency: number) => {
    const each = perSchedule(r);
    return `    ${concurrency} at once: ${r.wallSeconds.toFixed(2)} s, ${Math.round(each.schedulesPerSec)} schedules/s, ${each.cpuMs.toFixed(2)} ms dispatcher CPU and ${each.firestoreEmulatorCpuMs.toFixed(2)} ms Firestore emulator CPU a schedule`;
  };
  try {
    // Set for both, so that a DISPATCH_SCHEDULE_CONCURRENCY of the caller's does not run under the default's name.
    const at = (concurrency: number) => ({ DISPATCH_SCHEDULE_CONCURRENCY: String(concurrency) });
    const runs = await repeat(ctx, `${schedules} schedules`, async (run) => {
      const r = await dispatchRun(ctx, fixture, `${run}`, [], at(DEFAULT_SCHEDULE_CONCURRENCY));
      ctx.say(line(r, DEFAULT_SCHEDULE_CONCURRENCY));
      return r;
    });
    ctx.say(`  ${schedules} schedules, ${PREVIOUS_SCHEDULE_CONCURRENCY} at once: one run`);
    const previous = await dispatchRun(
      ctx,
      fixture,
      `at-${PREVIOUS_SCHEDULE_CONCURRENCY}`,
      [],
      at(PREVIOUS_SCHEDULE_CONCURRENCY),
    );
    ctx.say(line(previous, PREVIOUS_SCHEDULE_CONCURRENCY));
    return {
      schedules,
      perSchedule: SPREAD_PER_SCHEDULE,
      concurrency: DEFAULT_SCHEDULE_CONCURRENCY,
      ...measured<DispatchRun>(runs),
      previous: { concurrency: PREVIOUS_SCHEDULE_CONCURRENCY, run: previous },
    };
  } finally {
    await fixture.close();
  }
}

async function repeat<T>(ctx: BenchContext, what: string, fn: (run: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let run = 1; run <= ctx.opts.runs; run++) {
    ctx.say(`  ${what}: run ${run}/${ctx.opts.runs}`);
    out.push(await fn(run));
  }
  return out;
}

function measured<T extends object>(runs: T[]) {
  return { runs, median: medianRecord(runs) };
}

/** Where a failure's stack is written: in the run's folder of logs, once it is made. */
let errorFile: string | null = null;

async function main(): Promise<number> {
  const opts = parseArgs(process.argv);
  let stdoutOpen = true;
  const say = (line: string) => {
    if (stdoutOpen) process.stdout.write(`${line}\n`);
  };
  installSignalHandlers(say);
  // Its reader gone (`npm run bench | head`): stopped as by SIGPIPE, with nothing written.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    stdoutOpen = false;
    const why = err.code === 'EPIPE' ? 'standard output closed by its reader' : `standard output: ${err.message}`;
    stopAndExit(why, 128 + constants.signals.SIGPIPE, (line) => process.stderr.write(`${line.trimStart()}\n`));
  });
  process.env.METADATA_SERVER_DETECTION ??= 'none';

  const started = new Date();
  const date = started.toISOString().slice(0, 10);
  // The process id too: two runs started in the same second keep their logs apart.
  const stamp = `${started.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').toLowerCase()}-${process.pid}`;
  const tmpDir = join(opts.out, 'tmp', stamp);
  makeDirs(tmpDir);
  errorFile = join(tmpDir, 'error.txt');
  const has = (p: Phase) => opts.phases.includes(p);

  say(`slack-fanout benchmark${opts.quick ? ' (--quick)' : ''}: ${opts.phases.join(', ')}; ${opts.runs} run(s) each`);
  say(`logs and profiles in ${tmpDir}`);
  // The peer runs on Redis alone: a run of it alone starts no emulator.
  let emulators: Emulators | null = null;
  if (opts.phases.some(usesEmulators)) {
    const starting = guardSpawned('emulators (starting)');
    const started = await startEmulators({
      logDir: join(tmpDir, 'emulators'),
      onProgress: (l) => say(`  ${l}`),
      onSpawn: starting.onSpawn,
    });
    emulators = started;
    onCleanup('emulators', () => started.stop(), [started.pubsub.child, started.firestore.child]);
    starting.release();
    // The benchmark's own clients (seeding, ceilings) talk to the emulators too.
    Object.assign(process.env, started.env);
  }
  const ctx = makeContext(opts, emulators, tmpDir, stamp, say);

  const results: Results = {
    date,
    startedAt: started.toISOString(),
    finishedAt: '',
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: totalmem() / 2 ** 30,
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
    },
    options: opts,
    ...noMeasurements(),
  };
  // Written with the other results files at the end, under the name they share.
  let profileMd: string | null = null;

  if (has('ceilings')) {
    say('\n== ceilings: the emulators alone ==');
    // A discarded first pass: the emulators' JVMs are cold, and a cold ceiling flatters every ratio.
    say('  warm-up pass (discarded)');
    await measureCeilings(ctx, ceilingSizes(true));
    const runs = await repeat(ctx, 'ceilings', () => measureCeilings(ctx, ceilingSizes(opts.quick)));
    results.ceilings = measured<CeilingRun>(runs);
    const c = results.ceilings.median;
    say(
      `  publish ${Math.round(c.publishPerSec)} msg/s (${c.publishClientCpuUsPerMessage.toFixed(1)} µs CPU a message, machine busy ${c.publishBusyCores.toFixed(2)} cores; ${Math.round(c.topicPublishPerSec)} through the topic client), push ${Math.round(c.pushPerSec)} msg/s, create ${Math.round(c.createPerSec)}/s, update ${Math.round(c.updatePerSec)}/s, get ${Math.round(c.getPerSec)}/s`,
    );
  }

  const fixtures = new Map<number, DispatchFixture>();
  if (has('dispatch')) {
    for (const n of opts.sizes) {
      say(`\n== dispatch: N = ${n.toLocaleString('en-US')} ==`);
      const fixture = await dispatchFixture(ctx, n);
      fixtures.set(n, fixture);
      const runs = await repeat(ctx, `dispatch ${n}`, async (run) => {
        const r = await dispatchRun(ctx, fixture, run);
        say(
          `    ${r.wallSeconds.toFixed(2)} s, ${Math.round(r.messagesPerSec)} msg/s, peak RSS ${r.peakRssMiB.toFixed(0)} MiB, ${r.cpuSecondsPer1k.toFixed(3)} CPU s per 1,000, machine busy ${r.busyCores.toFixed(2)} cores (cold first tick ${r.coldWallSeconds.toFixed(2)} s)`,
        );
        return r;
      });
      results.dispatch.push({ n, ...measured<DispatchRun>(runs) });
      if (n === Math.max(...opts.sizes)) {
        const uncapped = await dispatchRun(ctx, fixture, 'heap-uncapped', [
          `--max-old-space-size=${UNCAPPED_OLD_SPACE_MIB}`,
        ]);
        say(
          `  diagnostic, without the container's heap cap: ${uncapped.wallSeconds.toFixed(2)} s, peak RSS ${uncapped.peakRssMiB.toFixed(0)} MiB`,
        );
        results.dispatchHeapUncapped = { maxOldSpaceMiB: UNCAPPED_OLD_SPACE_MIB, run: uncapped };
      }
      await fixture.close();
    }
    if (opts.schedules > 0) results.dispatchSchedules = await dispatchSpread(ctx, opts.schedules);
  }

  if (has('e2e')) {
    say(`\n== end to end through the emulators: N = ${opts.e2e.toLocaleString('en-US')} ==`);
    const runs = await repeat(ctx, 'end to end', async (run) => {
      const r = await e2eRun(ctx, opts.e2e, run);
      say(
        `    ${r.seconds.toFixed(1)} s, ${Math.round(r.deliveriesPerSec)} deliveries/s, publish→post p50 ${(r.latencyP50Ms / 1000).toFixed(1)} s, POST /push p50 ${r.pushP50Ms.toFixed(1)} ms`,
      );
      return r;
    });
    results.e2e = measured<E2eRun>(runs);
  }

  let capFixture: CapacityFixture | null = null;
  const getCapFixture = async () => {
    capFixture ??= await capacityFixture(ctx);
    return capFixture;
  };
  if (has('capacity')) {
    say(`\n== notifier capacity: POST /push at ${opts.inFlight.join(', ')} in flight ==`);
    const fixture = await getCapFixture();
    const runs = await repeat(ctx, 'capacity', (run) =>
      capacityRun(ctx, fixture, run, 'firestore', (l) =>
        say(
          `    ${l.inFlight} in flight: ${Math.round(l.deliveriesPerSec)} deliveries/s, p50 ${l.p50Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms, ${l.cpuMsPerDelivery.toFixed(2)} ms CPU (Firestore emulator ${l.emulatorCpuMsPerDelivery.toFixed(2)} ms), ${l.rpcsPerDelivery.toFixed(2)} RPCs, ${l.busyCores.toFixed(2)} cores busy, ${l.failures} failures`,
        ),
      ),
    );
    results.capacity = opts.inFlight.map((inFlight, i) => ({
      inFlight,
      ...measured<CapacityRun>(runs.map((levels) => levels[i] as CapacityRun)),
    }));
    say('  diagnostic: the same notifier with the in-memory store in place of Firestore');
    results.capacityMemoryStore = await capacityRun(ctx, fixture, 'memory-store', 'memory', (l) =>
      say(
        `    ${l.inFlight} in flight: ${Math.round(l.deliveriesPerSec)} deliveries/s, ${l.cpuMsPerDelivery.toFixed(2)} ms CPU, ${l.failures} failures`,
      ),
    );
  }

  if (has('peer')) {
    say(
      `\n== peer: cron + BullMQ on a local Redis, ${opts.peerJobs.toLocaleString('en-US')} jobs, worker concurrency ${opts.workerConcurrency.join(', ')} ==`,
    );
    const bin = ensureRedisServer(opts.installRedis, say);
    if (bin) {
      const redis = await startRedis(bin, join(tmpDir, 'redis'));
      const standIn = new SlackStandIn({ token: STANDIN_TOKEN });
      const { url } = await standIn.start();
      const stopStandIn = onCleanup('Slack stand-in (peer)', () => standIn.stop());
      try {
        await seedRedis(redis.port);
        for (const [level, concurrency] of opts.workerConcurrency.entries()) {
          const runs = await repeat(ctx, `BullMQ, concurrency ${concurrency}`, async (run) => {
            const r = await peerRun(ctx, redis.port, standIn, url, STANDIN_TOKEN, level * 100 + run, concurrency);
            say(
              `    addBulk ${Math.round(r.enqueuePerSec)} jobs/s, end to end ${Math.round(r.e2ePerSec)} jobs/s, worker ${r.workerCpuMsPerJob.toFixed(2)} ms CPU per job`,
            );
            return r;
          });
          results.peer.push({ concurrency, ...measured<PeerRun>(runs) });
        }
      } finally {
        await stopStandIn();
        await redis.stop();
      }
    } else {
      results.notes.push('The BullMQ peer was skipped: redis-server was not available.');
    }
  }

  if (has('profile')) {
    say('\n== CPU profiles: dispatcher tick, notifier under load ==');
    const want = opts.quick ? 2000 : 10_000;
    let fixture = fixtures.get(want);
    if (!fixture) {
      fixture = await dispatchFixture(ctx, want);
      await fixture.close();
    }
    const top = Math.max(...opts.inFlight);
    const dispatcher = await profileDispatcher(ctx, fixture);
    const notifier = await profileNotifier(ctx, await getCapFixture(), top, opts.capacityRequests);
    results.profile = { dispatcher, notifier };
    const md = [
      profileMarkdown(`Dispatcher: one tick of ${fixture.n.toLocaleString('en-US')} notifications`, dispatcher),
      profileMarkdown(`Notifier: ${opts.capacityRequests} pushes at ${top} in flight`, notifier),
    ].join('\n');
    profileMd = md;
    say(md);
  }
  if (capFixture) await (capFixture as CapacityFixture).close();

  // Cost per million notifications from what was measured.
  const largest = [...results.dispatch].sort((a, b) => b.n - a.n)[0]?.median;
  const cap = [...results.capacity].sort((a, b) => b.inFlight - a.inFlight)[0]?.median;
  if (largest && cap) {
    const sample = dispatchMessage(0, '2030-01-01T09:00:00.000Z', 's_0123456789abcdef0123');
    const messageBytes = billableMessageBytes(sample.message, sample.attributes);
    const usage: UsagePerNotification = {
      reads: largest.readsPerNotification + cap.readsPerDelivery,
      writes: largest.writesPerNotification + cap.writesPerDelivery,
      pubsubBytes: pubsubBytesPerNotification(messageBytes, PAGE_SIZE),
      requests: 1,
      cpuSeconds: largest.cpuSecondsPer1k / 1000 + cap.cpuMsPerDelivery / 1000,
      logBytes: results.e2e?.median.logBytesPerDelivery ?? 0,
    };
    results.cost = {
      usage,
      ...costPerMillion(usage),
      basis: [
        `Firestore: dispatch at N=${largest.n} plus the notifier at ${cap.inFlight} in flight, counted in each process`,
        `Pub/Sub: a ${messageBytes}-byte message (data, attributes, 20-byte timestamp, 16-byte id), published ${PAGE_SIZE} to a request, pushed one to a request (billed 1,000 bytes)`,
        'Cloud Run: CPU seconds measured from /proc, billed as if instances were busy the whole time they are billed (a lower bound); 0.5 GiB per vCPU',
        results.e2e
          ? 'Cloud Logging: the notifier log bytes per delivery from the end-to-end run'
          : 'Cloud Logging: not measured (no end-to-end run)',
      ],
    };
  }
  results.targets = evaluateTargets(results);
  results.finishedAt = new Date().toISOString();

  makeDirs(opts.out);
  // A name no earlier run's files hold, taken with the JSON: nothing is overwritten, not even
  // by a run that ends at the same moment.
  const base = reserveResults(opts.out, resultsBaseName(opts, date), `${JSON.stringify(results, null, 2)}\n`);
  const table = markdown(results);
  writeFileSync(`${base}.md`, table);
  const written = [`${base}.json`, `${base}.md`];
  if (results.dispatch.length > 0) {
    writeFileSync(`${base}-throughput.svg`, throughputSvg(results));
    written.push(`${base}-throughput.svg`);
  }
  if (profileMd !== null) {
    writeFileSync(`${base}-profile.md`, profileMd);
    written.push(`${base}-profile.md`);
  }
  say(`\n${table}`);
  say(`results: ${written.join(', ')}`);
  return 0;
}

main()
  .catch((err: unknown) => {
    // Stopping on a signal fails what was under way (a service killed while starting): that is
    // the stop, not a fault, and the signal's handler exits once everything is stopped.
    if (stoppingOnSignal()) return new Promise<number>(() => undefined);
    // One line a person can act on; where the failure arose, for a report, in the run's folder.
    const message = err instanceof Error ? err.message : String(err);
    let where = '';
    if (errorFile) {
      try {
        writeFileSync(errorFile, `${(err as Error)?.stack ?? message}\n`);
        where = ` (its stack: ${errorFile})`;
      } catch {
        // The folder went away: the line alone.
      }
    }
    process.stderr.write(`bench: ${message}${where}\n`);
    return 1;
  })
  .then(async (code) => {
    await cleanupAll((l) => process.stderr.write(`${l}\n`));
    releaseReaper();
    process.exit(code);
  });
