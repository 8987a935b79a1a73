import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoAccounts } from '../dev/demo';
import { type DeliverDeps, handlePush } from '../notifier/deliver';
import type { SlackPort } from '../notifier/slack';
import { createLogger } from '../shared/logger';
import { MemoryStore } from '../shared/memory-store';
import type { DispatchMessage } from '../shared/messages';
import { parsePushBody } from '../shared/messages';
import { notificationDoc } from '../shared/notifications';
import { latestOccurrence, validateSchedule } from '../shared/schedule';
import { CAPACITY_NOTIFICATIONS, type CapacityRun, capacityLevel, drive, nextEnvelope } from './capacity';
import { makeContext, PHASES, usesEmulators } from './context';
import { type CpuProfile, packageOf, summariseProfile } from './cpuprofile';
import { BENCH_ACCOUNTS } from './e2e';
import { billableMessageBytes, dispatchMessage, pushEnvelope } from './envelope';
import { costPerMillion, PRICES, pubsubBytesPerNotification } from './prices';
import { busyCoresSince, cpuSeconds, machineCpu, peakRssMiB, resetPeakRss, treeCpuSeconds } from './proc';
import {
  evaluateTargets,
  markdown,
  noMeasurements,
  type Results,
  reserveResults,
  resultsBaseName,
  throughputSvg,
  writeCeilingPerSec,
} from './report';
import { benchNotifications, maxSpreadSchedules, spreadNotifications } from './seed';
import { median, medianRecord, percentiles, runPool } from './stats';

describe('stats', () => {
  it('takes medians of odd and even counts, ignoring NaN', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });

  it('gives nearest-rank percentiles', () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => i + 1));
    expect([p.p50, p.p95, p.p99, p.max]).toEqual([50, 95, 99, 100]);
  });

  it('takes the median of every numeric field, nested ones too', () => {
    const m = medianRecord([
      { n: 1, a: 10, label: 'x', nested: { b: 1 } },
      { n: 1, a: 30, label: 'y', nested: { b: 3 } },
      { n: 1, a: 20, label: 'z', nested: { b: 2 } },
    ]);
    expect(m).toEqual({ n: 1, a: 20, label: 'x', nested: { b: 2 } });
  });

  it('never runs more than inFlight tasks at once', async () => {
    let live = 0;
    let peak = 0;
    await runPool(50, 4, async () => {
      live++;
      peak = Math.max(peak, live);
      await new Promise((r) => setTimeout(r, 1));
      live--;
    });
    expect(peak).toBe(4);
  });
});

describe('envelopes', () => {
  it('are push bodies the notifier accepts', () => {
    const { message } = dispatchMessage(3, '2031-01-01T00:00:00.000Z', 's_abc');
    const parsed = parsePushBody(pushEnvelope(message, '42'));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.push.message).toEqual(message);
      expect(parsed.push.messageId).toBe('42');
      expect(parsed.push.deliveryAttempt).toBe(1);
    }
  });

  it('count Pub/Sub billable bytes as data, attributes, timestamp and id', () => {
    const message = {
      v: 1 as const,
      notificationId: 'n',
      occurrence: '2031-01-01T00:00:00.000Z',
      scheduleId: 's',
      runId: 'r',
    };
    const data = Buffer.byteLength(JSON.stringify(message));
    expect(billableMessageBytes(message, { k: 'vv' }, 16)).toBe(data + 3 + 20 + 16);
  });
});

describe('cost', () => {
  it('bills a push at the 1,000-byte minimum and a batched publish at its size', () => {
    expect(pubsubBytesPerNotification(300, 500)).toBe(300 + 1000);
    expect(pubsubBytesPerNotification(300, 1)).toBe(1000 + 1000);
  });

  it('prices a million notifications line by line', () => {
    const { lines, total } = costPerMillion({
      reads: 3,
      writes: 2,
      pubsubBytes: 0,
      requests: 1,
      cpuSeconds: 0,
      logBytes: 0,
    });
    const usd = Object.fromEntries(lines.map((l) => [l.item, l.usd]));
    expect(usd['Firestore reads']).toBeCloseTo(30 * PRICES.firestore.readsPer100k);
    expect(usd['Firestore writes']).toBeCloseTo(20 * PRICES.firestore.writesPer100k);
    expect(usd['Cloud Run requests']).toBeCloseTo(PRICES.cloudRun.perMillionRequests);
    expect(total).toBeCloseTo(0.9 + 1.8 + 0.4);
  });
});

describe('cpuprofile summary', () => {
  const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0, columnNumber: 0 });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 3, 4] },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('encode', 'file:///app/node_modules/protobufjs/src/writer.js') },
      { id: 4, callFrame: frame('deliver', 'file:///app/dist/notifier/deliver.js') },
    ],
    startTime: 0,
    endTime: 10_000,
    samples: [2, 3, 3, 4, 2],
    timeDeltas: [0, 1000, 1000, 1000, 1000],
  };

  it('attributes self time and leaves idle out of the busy share', () => {
    const s = summariseProfile(profile);
    expect(s.totalMs).toBe(4);
    expect(s.busyMs).toBe(3);
    expect(s.topFunctions[0]).toMatchObject({ name: 'encode', ms: 2 });
    expect(s.topPackages.map((p) => p.name)).toEqual(['protobufjs', 'slack-fanout notifier/']);
  });

  it('names packages, scoped ones included', () => {
    expect(packageOf('file:///a/node_modules/@grpc/grpc-js/build/x.js', 'f')).toBe('@grpc/grpc-js');
    expect(packageOf('node:internal/streams/readable', 'f')).toBe('node (built-in modules)');
    expect(packageOf('', '(garbage collector)')).toBe('(garbage collector)');
  });
});

describe('report', () => {
  const ceilings = {
    publishPerSec: 30_000,
    publishClientCpuUsPerMessage: 12.5,
    publishEmulatorCpuUsPerMessage: 20,
    publishBusyCores: 1.7,
    topicPublishPerSec: 20_000,
    pushPerSec: 1000,
    createPerSec: 800,
    updatePerSec: 1600,
    getPerSec: 1000,
    createClientCpuMs: 1.2,
    updateClientCpuMs: 0.8,
    getClientCpuMs: 1,
  };
  const dispatchRun = (n: number, wallSeconds: number, peakRssMiB: number) => ({
    n,
    dueSchedules: 4,
    wallSeconds,
    tickSeconds: wallSeconds,
    heapUsedPeakMiB: 10,
    externalPeakMiB: 1,
    messagesPerSec: n / wallSeconds,
    peakRssMiB,
    cpuSeconds: 1,
    cpuSecondsPer1k: 0.1,
    reads: n,
    writes: 1,
    readsPerNotification: 1,
    writesPerNotification: 0.002,
    coldWallSeconds: wallSeconds * 1.3,
    busyCores: 1.96,
    pubsubEmulatorCpuSeconds: n * 30e-6,
    firestoreEmulatorCpuSeconds: n * 40e-6,
  });
  const capacityLevel = (inFlight: number, cpuMsPerDelivery: number): CapacityRun => ({
    inFlight,
    requests: 10,
    seconds: 1,
    deliveriesPerSec: 100,
    p50Ms: 1,
    p95Ms: 2,
    p99Ms: 3,
    cpuMsPerDelivery,
    readsPerDelivery: 2,
    writesPerDelivery: 2,
    rpcsPerDelivery: 0.5,
    failures: 0,
    emulatorCpuMsPerDelivery: 1.25,
    busyCores: 1.97,
  });
  const measuredLevel = (inFlight: number, cpuMsPerDelivery: number) => {
    const m = capacityLevel(inFlight, cpuMsPerDelivery);
    return { inFlight, runs: [m], median: m };
  };
  const measuredPeer = (concurrency: number, workerCpuMsPerJob: number) => {
    const m = {
      jobs: 10,
      enqueueSeconds: 1,
      enqueuePerSec: 10,
      e2eSeconds: 1,
      e2ePerSec: 10,
      workerCpuMsPerJob,
      workerPeakRssMiB: 50,
      duplicates: 0,
    };
    return { concurrency, runs: [m], median: m };
  };
  const results = (): Results => ({
    date: '2030-01-01',
    startedAt: '',
    finishedAt: '',
    machine: { cpus: 2, cpuModel: 'x', memoryGiB: 1, node: 'v20', platform: 'linux' },
    options: {
      quick: false,
      runs: 1,
      sizes: [10_000, 100_000],
      schedules: 0,
      e2e: 10,
      inFlight: [8, 64],
      capacityRequests: 10,
      peerJobs: 10,
      workerConcurrency: [8],
      phases: [],
      installRedis: false,
      out: '',
      logLevel: 'info',
      timeout: 10,
    },
    ...noMeasurements(),
    ceilings: { runs: [ceilings], median: ceilings },
    dispatch: [10_000, 100_000].map((n) => {
      const r = dispatchRun(n, n === 100_000 ? 20 : 2, n === 100_000 ? 120 : 100);
      return { n, runs: [r], median: r };
    }),
  });

  it('combines the create and update ceilings into one write rate', () => {
    expect(writeCeilingPerSec(ceilings)).toBeCloseTo(2 / (1 / 800 + 1 / 1600));
  });

  it('judges each target, and says n/a for what was not measured', () => {
    const t = evaluateTargets(results());
    expect(t.map((x) => x.pass)).toEqual([true, true, false, null, null, null]);
  });

  it('gives no verdict on dispatching 100,000 from a smaller N, only a hint', () => {
    const r = results();
    r.dispatch = r.dispatch.filter((d) => d.n === 10_000);
    const t = evaluateTargets(r).find((x) => x.name === 'dispatch 100k');
    expect(t).toMatchObject({ pass: null, measured: expect.stringMatching(/^not measured \(N=100,000 did not run; /) });
  });

  it('says in the markdown what the run could not do', () => {
    const r = results();
    r.notes.push('The BullMQ peer was skipped: redis-server was not available.');
    expect(markdown(r)).toContain('**Notes**\n\n- The BullMQ peer was skipped: redis-server was not available.');
    expect(markdown(results())).not.toContain('**Notes**');
  });

  it("puts the dispatcher's CPU a message and the machine's busy cores beside the publish ceiling's", () => {
    const r = results();
    const dispatch = evaluateTargets(r).find((t) => t.name.startsWith('dispatch rate'));
    // 100,000 in 20 s = 5,000 msg/s against 30,000; 0.1 CPU s per 1,000 = 100 µs a message.
    expect(dispatch?.measured).toBe(
      '5,000 / 30,000 msg/s = 17% (CPU a message: dispatcher 100.0 µs, publishing client 12.5 µs; machine busy 1.96 of 2 cores in the tick, 1.70 in the ceiling; in the tick the Pub/Sub emulator 30.0 µs and the Firestore emulator 40.0 µs a message, in the ceiling the Pub/Sub emulator 20.0 µs)',
    );
    const md = markdown(r);
    expect(md).toContain(
      'the publishing client spent 12.5 µs of CPU a message and the Pub/Sub emulator 20.0 µs, and the machine kept 1.70 of its 2 cores busy',
    );
    expect(md).toContain(
      'N=10,000: dispatcher 100.0 µs, Pub/Sub emulator 30.0 µs, Firestore emulator 40.0 µs; N=100,000: dispatcher 100.0 µs,',
    );
    expect(md).toContain('| machine busy (of 2 cores) |');
    expect(md).toContain('| 100,000 | 20.00 s | 5,000 | 17% | 120 MiB | 0.100 s | 1.96 | 1.0000 | 0.0020 | 26.00 s |');
  });

  it('compares CPU with the BullMQ worker at each concurrency the notifier was driven at too', () => {
    const r = {
      ...results(),
      capacity: [measuredLevel(8, 3), measuredLevel(64, 1)],
      peer: [measuredPeer(8, 1.5), measuredPeer(64, 1.2), measuredPeer(16, 1)],
    };
    const cpu = evaluateTargets(r).filter((t) => t.name.startsWith('notifier CPU'));
    // No notifier level at 16: that peer run has nothing to be compared with.
    expect(cpu.map((t) => [t.name.match(/\((\d+) in flight/)?.[1], t.pass])).toEqual([
      ['8', false],
      ['64', true],
    ]);
    expect(cpu[0]?.measured).toBe('3.00 / 1.50 ms = 2.00×');
  });

  it("says what the Firestore client alone spends a call, in the ceilings and beside the peer's CPU", () => {
    const md = markdown({ ...results(), peer: [measuredPeer(8, 1.5)] });
    expect(md).toContain('spent 1.20 ms of CPU a create(), 0.80 ms an update() and 1.00 ms a get()');
    expect(md).toContain(
      "one single-document call costs the Firestore client 1.00 ms of CPU on average in the ceilings (2 reads, a create and an update). The BullMQ worker's whole job costs 1.50 ms at concurrency 8.",
    );
  });

  it("shows the BullMQ worker's own figures when ours were not measured in the run (--only peer)", () => {
    const r = { ...results(), ...noMeasurements(), peer: [measuredPeer(8, 1.5)] };
    const md = markdown(r);
    expect(md).toContain('| enqueue (dispatch / addBulk) | not measured | 10 jobs/s | n/a |');
    expect(md).toContain('| delivery rate, 8 in flight (driven / worker) | not measured | 10 /s | n/a |');
    expect(md).toContain('| CPU per delivery, 8 in flight (own process, /proc) | not measured | 1.50 ms | n/a |');
  });

  it("shows the in-memory store diagnostic beside the capacity table and the peer's CPU, without judging a target on it", () => {
    const r = {
      ...results(),
      capacity: [measuredLevel(64, 1)],
      capacityMemoryStore: [
        { ...capacityLevel(8, 0.9), readsPerDelivery: 0, writesPerDelivery: 0, rpcsPerDelivery: 0 },
        { ...capacityLevel(64, 0.6), readsPerDelivery: 0, writesPerDelivery: 0, rpcsPerDelivery: 0 },
      ],
      peer: [measuredPeer(64, 0.5)],
    };
    const md = markdown(r);
    expect(md).toContain(
      '0.90 ms CPU per delivery and 100/s at 8 in flight; 0.60 ms CPU per delivery and 100/s at 64 in flight',
    );
    // The emulator's share of each delivery, and the machine's, beside the notifier's own CPU.
    expect(md).toContain(
      '| 64 | 100 | 1.0 / 2.0 / 3.0 ms | 1.00 ms | 1.25 ms | 1.97 of 2 cores | 2.00 / 2.00 | 0.50 |',
    );
    expect(md).toContain(
      '| CPU per delivery, 64 in flight, in-memory store in place of Firestore (diagnostic) | 0.60 ms | 0.50 ms | 1.20 |',
    );
    // The target is still judged on the notifier with Firestore.
    const cpu = evaluateTargets(r).find((t) => t.name.startsWith('notifier CPU'));
    expect(cpu?.measured).toBe('1.00 / 0.50 ms = 2.00×');
  });

  it('shows the tick of many small schedules at both schedules at once, per schedule, with their ratio', () => {
    const at = (wallSeconds: number, cpuSeconds: number) => ({
      ...dispatchRun(10_000, wallSeconds, 140),
      dueSchedules: 1000,
      reads: 3000,
      writes: 3000,
      cpuSeconds,
      firestoreEmulatorCpuSeconds: 25,
    });
    const now = at(20, 7);
    const md = markdown({
      ...results(),
      dispatchSchedules: {
        schedules: 1000,
        perSchedule: 10,
        concurrency: 16,
        runs: [now, now, now],
        median: now,
        previous: { concurrency: 4, run: at(40, 9) },
      },
    });
    expect(md).toContain('**Dispatch of many small schedules** (N=10,000 over 1,000 schedules of 10, each due now');
    expect(md).toContain(
      '| 16 (default, median of 3) | 20.00 s | 50 | 500 | 3.0 / 3.0 | 7.00 ms | 25.00 ms | 140 MiB |',
    );
    expect(md).toContain(
      '| 4 (the default before, one run) | 40.00 s | 25 | 250 | 3.0 / 3.0 | 9.00 ms | 25.00 ms | 140 MiB |',
    );
    expect(md).toContain('The tick at 16 schedules at once took 0.50× the time it took at 4, in the same run.');
    expect(markdown(results())).not.toContain('many small schedules');
  });

  it('draws a well-formed SVG', () => {
    const svg = throughputSvg(results());
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('<polyline');
  });
});

describe('spreadNotifications (the many-schedules tick)', () => {
  it('makes that many distinct schedules, every one valid and due every minute, of perSchedule notifications each', () => {
    const max = maxSpreadSchedules();
    expect(max).toBeGreaterThanOrEqual(1000);
    const items = spreadNotifications(max, 2);
    expect(items).toHaveLength(2 * max);
    expect(new Set(items.map((n) => n.id)).size).toBe(items.length);
    const schedules = new Map<string, { cron: string; timezone: string; count: number }>();
    for (const n of items) {
      const doc = notificationDoc(n);
      const s = schedules.get(doc.scheduleId) ?? { ...doc.schedule, count: 0 };
      s.count++;
      schedules.set(doc.scheduleId, s);
    }
    expect(schedules.size).toBe(max);
    const at = new Date('2030-01-01T09:00:30.000Z');
    for (const s of schedules.values()) {
      expect(s.count).toBe(2);
      expect(() => validateSchedule(s)).not.toThrow();
      expect(latestOccurrence(s, at)?.toISOString()).toBe('2030-01-01T09:00:00.000Z');
    }
    expect(() => spreadNotifications(max + 1, 1)).toThrow(`schedules must be a whole number from 1 to ${max}`);
  });
});

describe('busyCoresSince', () => {
  it("counts this process's spinning as a busy core, and never more cores than the machine has", () => {
    const since = machineCpu();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < 300) {
      // spin
    }
    const spun = process.cpuUsage(cpu0);
    const { busyCores, cores } = busyCoresSince(since);
    // The machine was at least as busy as this process was (its CPU over the wall time).
    const ours = (spun.user + spun.system) / 1000 / (performance.now() - t0);
    expect(busyCores).toBeGreaterThan(ours * 0.8);
    expect(busyCores).toBeLessThanOrEqual(cores + 0.01);
    expect(cores).toBe(readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm)?.length);
  });
});

describe('treeCpuSeconds', () => {
  it("counts a launcher's running child, as an emulator's Java child under its launcher script", async () => {
    // A shell (the launcher) whose node child spins for 400 ms of CPU, says so, then waits.
    const script =
      'const t = process.cpuUsage(); while (process.cpuUsage(t).user < 400_000) {} console.log("spun"); setInterval(() => {}, 1000);';
    const launcher = spawn('sh', ['-c', `"${process.execPath}" -e '${script}'; sleep 30`], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the child did not spin within 20 s')), 20_000);
        launcher.stdout?.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const pid = launcher.pid as number;
      expect(cpuSeconds(pid)).toBeLessThan(0.2);
      expect(treeCpuSeconds(pid)).toBeGreaterThanOrEqual(0.39);
    } finally {
      process.kill(-(launcher.pid as number), 'SIGKILL');
    }
    expect(treeCpuSeconds(2 ** 30)).toBe(0);
  });
});

describe('resetPeakRss', () => {
  it("starts another process's peak over at its current RSS, and says false for a process it cannot reach", async () => {
    // A process whose peak (about 300 MiB of touched buffer) is far above what it holds now.
    const script =
      'let b = Buffer.alloc(300 * 2 ** 20, 1); b = null; gc(); console.log("ready"); setInterval(() => {}, 1000);';
    const child = spawn(process.execPath, ['--expose-gc', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the child did not get ready within 10 s')), 10_000);
        child.stdout?.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const pid = child.pid as number;
      const before = peakRssMiB(pid);
      expect(before).toBeGreaterThan(300);
      expect(resetPeakRss(pid)).toBe(true);
      expect(peakRssMiB(pid)).toBeLessThan(before - 200);
    } finally {
      child.kill('SIGKILL');
    }
    expect(resetPeakRss(2 ** 30)).toBe(false);
  });
});

describe('resultsBaseName', () => {
  it('keeps a full run under its date, and a quick or partial run apart from it', () => {
    const all = [...PHASES];
    expect(resultsBaseName({ quick: false, phases: all }, '2030-01-01')).toBe('2030-01-01');
    expect(resultsBaseName({ quick: true, phases: all }, '2030-01-01')).toBe('2030-01-01-quick');
    expect(resultsBaseName({ quick: false, phases: ['ceilings', 'dispatch'] }, '2030-01-01')).toBe(
      '2030-01-01-partial',
    );
    expect(resultsBaseName({ quick: true, phases: all.filter((p) => p !== 'peer') }, '2030-01-01')).toBe(
      '2030-01-01-quick-partial',
    );
  });
});

describe('reserveResults', () => {
  it('takes the name no earlier run has a file under, never overwriting one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
    expect(reserveResults(dir, '2030-01-01', 'first')).toBe(join(dir, '2030-01-01'));
    expect(reserveResults(dir, '2030-01-01', 'second')).toBe(join(dir, '2030-01-01-2'));
    // Any file of a run holds its name, not only the JSON: a chart left from an older run too.
    writeFileSync(join(dir, '2030-01-01-3-throughput.svg'), '<svg/>');
    expect(reserveResults(dir, '2030-01-01', 'third')).toBe(join(dir, '2030-01-01-4'));
    expect(readFileSync(join(dir, '2030-01-01.json'), 'utf8')).toBe('first');
    expect(readFileSync(join(dir, '2030-01-01-2.json'), 'utf8')).toBe('second');
    expect(readdirSync(dir).sort()).toEqual([
      '2030-01-01-2.json',
      '2030-01-01-3-throughput.svg',
      '2030-01-01-4.json',
      '2030-01-01.json',
    ]);
    expect(() => reserveResults(dir, '2030-01-01', 'x', 2)).toThrow(/2 runs' results already have that name/);
  });
});

describe('the emulators a run starts', () => {
  it('are wanted by every phase but the peer, and a context without them says so when a phase reaches for them', () => {
    expect(PHASES.filter((p) => !usesEmulators(p))).toEqual(['peer']);
    const opts = { logLevel: 'info' } as Parameters<typeof makeContext>[0];
    const ctx = makeContext(opts, null, tmpdir(), 'stamp', () => undefined);
    expect(() => ctx.emulators).toThrow('the emulators were not started: no phase of this run uses them');
    expect(() => ctx.serviceEnv('p')).toThrow('the emulators were not started');
    expect(ctx.projectId('peer')).toBe('bench-peer-stamp-1');
  });
});

describe('npm run bench arguments (the built command)', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'bench', 'run.js'), ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });

  it.each([
    [['--log-level', 'loud'], /--log-level <level>' argument 'loud' is invalid\. Allowed choices are trace, debug/],
    [['--runs', '0x2'], /--runs <n>' argument '0x2' is invalid\. expected a whole number from 1 to 20/],
    [['--sizes', '1e3'], /--sizes <list>' argument '1e3' is invalid/],
    [
      ['--schedules', '100000'],
      /--schedules <n>' argument '100000' is invalid\. expected a whole number from 0 to \d,\d{3}/,
    ],
    [['--only', 'dispatch', '--skip', 'dispatch'], /--only dispatch with --skip dispatch leaves no phase to run/],
    // Without --only, no --only is named.
    [
      ['--skip', [...PHASES].reverse().join(',')],
      new RegExp(`error: --skip ${[...PHASES].reverse().join(',')} leaves`),
    ],
    // A list given again is added to, whichever the option.
    [
      ['--only', 'ceilings', '--only', 'dispatch', '--skip', 'dispatch', '--skip', 'ceilings'],
      /--only ceilings,dispatch with --skip dispatch,ceilings leaves no phase to run/,
    ],
    [['--only', ',ceilings'], /an empty phase name in ",ceilings"; phases: ceilings, /],
    [['--in-flight', '8', '--in-flight', '8'], /--in-flight <list>' argument '8' is invalid\. 8 is named twice/],
    [
      ['--in-flight', '64', '--in-flight', '8', '--capacity-requests', '10'],
      /--in-flight 64,8: 64 in flight needs at least 64 requests/,
    ],
    // One size named twice would be measured twice and compared with itself.
    [['--sizes', '300,300'], /--sizes <list>' argument '300,300' is invalid\. 300 is named twice/],
    // A thousands separator is read as a comma between sizes: said so, not refused as a size of 0.
    [
      ['--sizes', '10,000'],
      /argument '10,000' is invalid\. sizes are separated by commas, so "10,000" is 2 of them: write each without a thousands separator \(10000, not 10,000\)/,
    ],
    [['--in-flight', '8,8'], /--in-flight <list>' argument '8,8' is invalid\. 8 is named twice/],
    // The README's example: the capacity problem, whatever else the defaults leave unmatched.
    [['--in-flight', '64', '--capacity-requests', '10'], /--in-flight 64: 64 in flight needs at least 64 requests/],
    [['--out', ''], /--out <dir>' argument '' is invalid\. a directory is needed, not an empty path/],
    [
      ['--out', __filename],
      /--out .*bench\.test\.ts: results cannot be written there: .*(ENOTDIR|EEXIST|not a directory)/,
    ],
    // Node's own recursive mkdir spins for ever on a path under /proc.
    [
      ['--out', '/proc/slack-fanout-bench/x'],
      /--out \/proc\/slack-fanout-bench\/x: results cannot be written there: ENOENT/,
    ],
    [
      ['--in-flight', '1,8', '--worker-concurrency', '8,16'],
      /--worker-concurrency 16 has no --in-flight level to be compared with \(--in-flight 1,8\)/,
    ],
    // autocannon refuses more connections than requests: said before the emulators start.
    [
      ['--only', 'capacity', '--in-flight', '64', '--capacity-requests', '10'],
      /--in-flight 64: 64 in flight needs at least 64 requests, and --capacity-requests 10 gives that level 10/,
    ],
    [
      ['--quick', '--only', 'profile', '--in-flight', '1,1024'],
      /--in-flight 1,1024: 1024 in flight needs at least 1024 requests, and --capacity-requests 1000 gives that level 1000/,
    ],
  ])('refuses %j before starting anything, naming the input', (args, message) => {
    const res = run(...args);
    // 2, a usage error, as the slack-fanout CLI and npm start give it.
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stdout).not.toContain('starting the Pub/Sub emulator');
    // The error and where the help is, not the whole help under it.
    expect(res.stderr).toContain('(npm run bench -- --help lists every option)');
    expect(res.stderr).not.toContain('Options:');
  });

  it('refuses an --out whose tmp/ for the logs cannot be made, before starting anything', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-out-'));
    writeFileSync(join(dir, 'tmp'), 'a file where the logs folder goes');
    const res = run('--only', 'peer', '--out', dir);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/results cannot be written there: .*tmp is not a directory/);
  });

  it('takes a relative --out from the directory npm was run in (INIT_CWD), not the package root', () => {
    const res = spawnSync(
      process.execPath,
      [join(__dirname, '..', 'dist', 'bench', 'run.js'), '--only', 'peer', '--out', 'rel/out'],
      { encoding: 'utf8', timeout: 30_000, env: { ...process.env, INIT_CWD: '/proc/slack-fanout-bench' } },
    );
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/--out \/proc\/slack-fanout-bench\/rel\/out: results cannot be written there/);
  });

  it('shows list defaults the way they are written', () => {
    const help = run('--help').stdout.replace(/\s+/g, ' ');
    expect(help).toContain('(default: 1,8,64)');
    // A switch has no default to show.
    expect(help).not.toContain('(default: false)');
    expect(help).toContain('(default: 8,64)');
    expect(help).toContain('<date>-profile.md');
  });
});

describe('node dist/bench/cpuprofile.js (the built command)', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(__dirname, '..', 'dist', 'bench', 'cpuprofile.js'), ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });
  const file = (name: string, text: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'cpuprofile-')), name);
    writeFileSync(path, text);
    return path;
  };

  it.each<[string, () => string[], RegExp]>([
    [
      'a file that is not there',
      () => ['/nonexistent/x.cpuprofile'],
      /^cpuprofile: cannot read \/nonexistent\/x\.cpuprofile: ENOENT/,
    ],
    [
      'a file that is not JSON',
      () => [file('a.cpuprofile', 'not json')],
      /a\.cpuprofile is not a V8 CPU profile: it is not JSON/,
    ],
    [
      'JSON of another shape',
      () => [file('b.cpuprofile', '{}')],
      /b\.cpuprofile is not a V8 CPU profile: it has no nodes array/,
    ],
    [
      'a [top] that is not a whole number',
      () => [file('c.cpuprofile', '{}'), 'abc'],
      /'abc' is invalid for argument 'top'\. expected a whole number from 1 to 1,000/,
    ],
  ])('refuses %s, naming it, without a stack trace', (_what, args, message) => {
    const res = run(...args());
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('summarises a profile, and says how in --help', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 }, children: [2] },
        { id: 2, callFrame: { functionName: 'work', url: 'file:///app/dist/x.js', lineNumber: 1, columnNumber: 1 } },
      ],
      startTime: 0,
      endTime: 2000,
      samples: [2, 2],
      timeDeltas: [1000, 1000],
    };
    const res = run(file('d.cpuprofile', JSON.stringify(profile)), '5');
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('`work`');
    expect(run('--help').stdout).toContain('how many functions to list (1 to 1,000)');
  });
});

describe('the capacity phase’s pushes', () => {
  it('are each delivered by the notifier as the seeded notification’s own occurrence, not skipped', async () => {
    const store = new MemoryStore();
    for (const { id, account } of demoAccounts(BENCH_ACCOUNTS))
      store.putAccount(id, account as Record<string, unknown>);
    for (const n of benchNotifications(CAPACITY_NOTIFICATIONS, BENCH_ACCOUNTS, 'cap')) {
      store.putNotification(n.id, notificationDoc(n) as unknown as Record<string, unknown>);
    }
    const posts: string[] = [];
    const slack: SlackPort = {
      post: async (req) => {
        posts.push(req.deliveryId);
        return { ts: `1.${posts.length}`, channel: req.channel };
      },
      findDelivery: async () => null,
      checkToken: async () => ({ team: null, scopes: null }),
    };
    const deps: DeliverDeps = {
      ledger: store,
      notifications: store,
      accounts: store.accounts,
      runs: store,
      slack,
      log: createLogger({ service: 'bench-test', level: 'silent' }),
      claimTtlMs: 60_000,
      pauseAfterFailures: 3,
    };
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await handlePush(JSON.parse(nextEnvelope()), deps));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill('sent'));
    expect(new Set(posts).size).toBe(12);
  });

  it('are each a delivery never seen before, made as runs make them: a round of the notifications shares one occurrence and its run id', () => {
    const envelopes = Array.from({ length: 2 * CAPACITY_NOTIFICATIONS + 10 }, () => {
      const body = JSON.parse(nextEnvelope()) as { message: { data: string; attributes: { deliveryId: string } } };
      return JSON.parse(Buffer.from(body.message.data, 'base64').toString()) as DispatchMessage;
    });
    expect(new Set(envelopes.map((m) => `${m.notificationId}:${m.occurrence}`)).size).toBe(envelopes.length);
    for (const m of envelopes) expect(m.runId).toBe(`${m.scheduleId}:${m.occurrence}`);
    // At most three occurrences among them (the first round may be part-used by the test above).
    expect(new Set(envelopes.map((m) => m.occurrence)).size).toBeLessThanOrEqual(3);
  });
});

describe('drive (the capacity load generator)', () => {
  // A stand-in for the notifier's POST /push: 204 at once, or the connection dropped, or per
  // push (numbered from 1) one of those or another status.
  type Answer = 'ok' | 'drop' | number;
  async function server(
    answer: Answer | ((n: number) => Answer),
  ): Promise<{ url: string; close: () => Promise<void>; lastAnsweredAt: () => number }> {
    let n = 0;
    let lastAnsweredAt = Number.NaN;
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        n++;
        const a = typeof answer === 'function' ? answer(n) : answer;
        if (a === 'drop') req.socket.destroy();
        else res.writeHead(a === 'ok' ? 204 : a).end();
        lastAnsweredAt = performance.now();
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const { port } = srv.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      lastAnsweredAt: () => lastAnsweredAt,
      close: () =>
        new Promise<void>((resolve) => {
          srv.close(() => resolve());
          srv.closeAllConnections();
        }),
    };
  }

  it('ends a level at its last answer, not at autocannon’s next one-second tick, and reads there', async () => {
    const s = await server('ok');
    try {
      let readAt = Number.NaN;
      let reads = 0;
      const t0 = performance.now();
      const r = await drive(s.url, 4, 40, () => {
        reads++;
        readAt = performance.now();
      });
      const resolvedAt = performance.now();
      expect(r.times).toHaveLength(40);
      expect(r.non2xx + r.errors).toBe(0);
      expect(reads).toBe(1);
      // autocannon itself reports on its sample tick, a second after it started.
      expect(resolvedAt - t0).toBeGreaterThan(900);
      // The level's time is the work's: it ends at the last answer, and reads there, not at
      // autocannon's tick (compared with when the server answered last, not with a bound in
      // seconds, which a loaded machine can pass).
      expect(r.seconds * 1000).toBeLessThanOrEqual(readAt - t0 + 1);
      expect(readAt - s.lastAnsweredAt()).toBeLessThan(250);
    } finally {
      await s.close();
    }
  });

  it('counts a refused connection as an error, and the level still ends at the last of them', async () => {
    const s = await server('ok');
    const url = s.url;
    await s.close();
    let reads = 0;
    const r = await drive(url, 2, 10, () => {
      reads++;
    });
    expect(r.times).toHaveLength(0);
    expect(r.errors).toBeGreaterThanOrEqual(10);
    expect(reads).toBe(1);
    expect(r.seconds).toBeLessThan(0.6);
  });

  it('counts a request that failed once, though it was not posted either', async () => {
    // A notifier stand-in: 204 and a post for every push but the 7th, answered 500.
    const posts: number[] = [];
    const s = await server((n) => {
      if (n === 7) return 500;
      posts.push(n);
      return 'ok';
    });
    try {
      const notifier = {
        url: s.url,
        resetStats: async () => undefined,
        cpu: () => 0,
        stats: async () => ({ firestore: { reads: 0, writes: 0, rpcs: {} } }),
      };
      const fixture = {
        standIn: {
          posts,
          reset: () => {
            posts.length = 0;
          },
        },
      };
      const r = await capacityLevel(
        notifier as unknown as Parameters<typeof capacityLevel>[0],
        fixture as unknown as Parameters<typeof capacityLevel>[1],
        4,
        40,
        () => 0,
      );
      expect(posts).toHaveLength(39);
      expect(r.failures).toBe(1);
      expect(r.requests).toBe(40);
      expect(r.deliveriesPerSec).toBeCloseTo(39 / r.seconds, 6);
    } finally {
      await s.close();
    }
  });

  it('ends at autocannon’s report when some request is neither answered nor failed (a dropped connection)', async () => {
    const s = await server('drop');
    try {
      let reads = 0;
      const r = await drive(s.url, 2, 10, () => {
        reads++;
      });
      // autocannon reconnects and counts the request as made: no answer, no error, no reading.
      expect(r.times.length + r.errors).toBeLessThan(10);
      expect(reads).toBe(0);
      expect(r.seconds).toBeGreaterThan(0.9);
    } finally {
      await s.close();
    }
  });
});

describe('the instrument preloaded into a measured service', () => {
  const INSTRUMENT = join(__dirname, '..', 'dist', 'bench', 'instrument.js');
  // Holds about 80 MiB for half a second, lets it go, collects, then asks for the stats.
  const SCRIPT = `
    let held = Array.from({ length: 80 }, () => new Array(2 ** 17).fill(0.5));
    setTimeout(async () => {
      held = null;
      globalThis.gc();
      const res = await fetch('http://127.0.0.1:' + process.env.BENCH_STATS_PORT + '/stats');
      process.stdout.write(JSON.stringify((await res.json()).memoryPeakMiB));
    }, 500);`;

  async function heapPeakMiB(sample: boolean): Promise<number> {
    const { freePort } = await import('../dev/emulators');
    const env = { ...process.env, BENCH_STATS_PORT: String(await freePort()), BENCH_SAMPLE_MEMORY: sample ? '1' : '' };
    const out = spawnSync(process.execPath, ['--expose-gc', `--require=${INSTRUMENT}`, '-e', SCRIPT], {
      env,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(out.stderr).toBe('');
    return (JSON.parse(out.stdout) as { heapUsed: number }).heapUsed;
  }

  it('samples memory peaks every 50 ms only when asked to (the dispatcher is; the notifier is not charged for it)', async () => {
    expect(await heapPeakMiB(true)).toBeGreaterThan(60);
    expect(await heapPeakMiB(false)).toBeLessThan(40);
  }, 30_000);
});
