import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PeerRun } from './bullmq-peer';
import type { CapacityRun } from './capacity';
import type { CeilingRun } from './ceilings';
import { type BenchOptions, PHASES } from './context';
import type { ProfileSummary } from './cpuprofile';
import type { DispatchRun } from './dispatch';
import type { E2eRun } from './e2e';
import type { CostLine, UsagePerNotification } from './prices';

/** The results file, the markdown table printed at the end, the targets, and the SVG chart. */

export interface Measured<T> {
  runs: T[];
  median: T;
}

/**
 * One tick of many small schedules (bench/seed.ts spreadNotifications): the dispatcher at its
 * default schedules at once (`concurrency`, median of the runs) and at the default before
 * (`previous`, one run), in the same run.
 */
export interface SpreadDispatch extends Measured<DispatchRun> {
  schedules: number;
  perSchedule: number;
  concurrency: number;
  previous: { concurrency: number; run: DispatchRun };
}

export interface Results {
  date: string;
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  options: BenchOptions;
  ceilings: Measured<CeilingRun> | null;
  dispatch: (Measured<DispatchRun> & { n: number })[];
  /**
   * A diagnostic: one tick at the largest N without the container's heap cap (V8 sizing its heap
   * from the host's memory). Its peak RSS against the capped runs shows what the cap saves.
   */
  dispatchHeapUncapped: { maxOldSpaceMiB: number; run: DispatchRun } | null;
  /** The tick of many small schedules (--schedules), when measured. */
  dispatchSchedules: SpreadDispatch | null;
  e2e: Measured<E2eRun> | null;
  capacity: (Measured<CapacityRun> & { inFlight: number })[];
  /**
   * A diagnostic: one capacity run of the notifier with the in-memory store in place of
   * Firestore (bench/notifier-memory.ts). Beside the capacity figures it shows what the
   * Firestore client costs per delivery.
   */
  capacityMemoryStore: CapacityRun[] | null;
  /** One entry per worker concurrency (--worker-concurrency). */
  peer: (Measured<PeerRun> & { concurrency: number })[];
  cost: { usage: UsagePerNotification; lines: CostLine[]; total: number; basis: string[] } | null;
  targets: Target[];
  profile: { dispatcher?: ProfileSummary; notifier?: ProfileSummary } | null;
  notes: string[];
}

/** A run's results before any phase has measured anything (fresh arrays each call). */
export function noMeasurements(): Omit<Results, 'date' | 'startedAt' | 'finishedAt' | 'machine' | 'options'> {
  return {
    ceilings: null,
    dispatch: [],
    dispatchHeapUncapped: null,
    dispatchSchedules: null,
    e2e: null,
    capacity: [],
    capacityMemoryStore: null,
    peer: [],
    cost: null,
    targets: [],
    profile: null,
    notes: [],
  };
}

export interface Target {
  name: string;
  target: string;
  measured: string;
  /** null when the run did not measure what the target needs. */
  pass: boolean | null;
}

export function fmt(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The Firestore write bound for deliveries: a create and an update each at its own ceiling. */
export function writeCeilingPerSec(c: CeilingRun): number {
  // The harmonic mean of the two rates: the rate of a mix of one create per update.
  return 2 / (1 / c.createPerSec + 1 / c.updatePerSec);
}

function closest<T>(items: T[], key: (t: T) => number, want: number): T | undefined {
  return [...items].sort((a, b) => Math.abs(key(a) - want) - Math.abs(key(b) - want))[0];
}

export function evaluateTargets(r: Results): Target[] {
  const out: Target[] = [];
  const cores = r.machine.cpus;
  const sizes = [...r.dispatch].sort((a, b) => a.n - b.n);
  const largest = sizes[sizes.length - 1];
  const at100k = sizes.find((d) => d.n === 100_000);
  const at10k = sizes.find((d) => d.n === 10_000);

  if (at100k) {
    out.push({
      name: 'dispatch 100k',
      target: '< 30 s',
      measured: `${fmt(at100k.median.wallSeconds, 1)} s`,
      pass: at100k.median.wallSeconds < 30,
    });
  } else if (largest) {
    // A straight line from a smaller N is a hint, not a measurement: no verdict on it.
    const projected = 100_000 / largest.median.messagesPerSec;
    out.push({
      name: 'dispatch 100k',
      target: '< 30 s',
      measured: `not measured (N=100,000 did not run; ${fmt(projected, 1)} s if N=${fmt(largest.n)}'s rate held)`,
      pass: null,
    });
  } else {
    out.push({ name: 'dispatch 100k', target: '< 30 s', measured: 'not measured', pass: null });
  }

  const big = at100k ?? largest;
  const ref = at100k && at10k ? at10k : sizes[sizes.length - 2];
  if (big && ref && big !== ref) {
    const ratio = big.median.peakRssMiB / ref.median.peakRssMiB;
    out.push({
      name: `dispatcher peak RSS, N=${fmt(big.n)} vs N=${fmt(ref.n)}`,
      target: '≤ 1.3×',
      measured: `${fmt(big.median.peakRssMiB)} / ${fmt(ref.median.peakRssMiB)} MiB = ${fmt(ratio, 2)}×`,
      pass: ratio <= 1.3,
    });
  } else {
    out.push({ name: 'dispatcher peak RSS scaling', target: '≤ 1.3×', measured: 'not measured', pass: null });
  }

  if (big && r.ceilings) {
    const share = big.median.messagesPerSec / r.ceilings.median.publishPerSec;
    out.push({
      name: `dispatch rate at N=${fmt(big.n)} vs raw publish ceiling`,
      target: '≥ 50%',
      measured:
        `${fmt(big.median.messagesPerSec)} / ${fmt(r.ceilings.median.publishPerSec)} msg/s = ${fmt(share * 100)}%` +
        ` (CPU a message: dispatcher ${fmt(big.median.cpuSecondsPer1k * 1000, 1)} µs, publishing client ${fmt(r.ceilings.median.publishClientCpuUsPerMessage, 1)} µs;` +
        ` machine busy ${fmt(big.median.busyCores, 2)} of ${fmt(cores)} cores in the tick, ${fmt(r.ceilings.median.publishBusyCores, 2)} in the ceiling;` +
        ` in the tick the Pub/Sub emulator ${fmt((big.median.pubsubEmulatorCpuSeconds / big.n) * 1e6, 1)} µs and the Firestore emulator ${fmt((big.median.firestoreEmulatorCpuSeconds / big.n) * 1e6, 1)} µs a message, in the ceiling the Pub/Sub emulator ${fmt(r.ceilings.median.publishEmulatorCpuUsPerMessage, 1)} µs)`,
      pass: share >= 0.5,
    });
  } else {
    out.push({ name: 'dispatch rate vs publish ceiling', target: '≥ 50%', measured: 'not measured', pass: null });
  }

  if (r.e2e) {
    const w = r.e2e.median.notifierWritesPerDelivery + r.e2e.median.dispatchWritesPerNotification;
    out.push({
      name: 'Firestore writes per delivery (end to end)',
      target: '≤ 3',
      measured: `${fmt(r.e2e.median.notifierWritesPerDelivery, 2)} notifier + ${fmt(r.e2e.median.dispatchWritesPerNotification, 3)} dispatch = ${fmt(w, 2)}`,
      pass: w <= 3,
    });
  } else {
    out.push({ name: 'Firestore writes per delivery', target: '≤ 3', measured: 'not measured', pass: null });
  }

  const top = closest(r.capacity, (c) => c.inFlight, 64);
  if (top && r.ceilings) {
    const bound = writeCeilingPerSec(r.ceilings.median) / top.median.writesPerDelivery;
    const share = top.median.deliveriesPerSec / bound;
    out.push({
      name: `notifier at ${top.inFlight} in flight vs Firestore write bound`,
      target: '≥ 80%',
      measured: `${fmt(top.median.deliveriesPerSec)} / ${fmt(bound)} deliveries/s = ${fmt(share * 100)}%`,
      pass: share >= 0.8,
    });
  } else {
    out.push({ name: 'notifier capacity vs write bound', target: '≥ 80%', measured: 'not measured', pass: null });
  }

  // Compared at the same concurrency: the notifier at N in flight, the Worker at concurrency N.
  const pairs = r.peer.flatMap((peer) => {
    const same = r.capacity.find((c) => c.inFlight === peer.concurrency);
    return same ? [{ peer, same }] : [];
  });
  for (const { peer, same } of pairs) {
    const ours = same.median.cpuMsPerDelivery;
    const theirs = peer.median.workerCpuMsPerJob;
    out.push({
      name: `notifier CPU per delivery (${same.inFlight} in flight) vs BullMQ worker CPU per job (concurrency ${peer.concurrency})`,
      target: '≤ 1.0×',
      measured: `${fmt(ours, 2)} / ${fmt(theirs, 2)} ms = ${fmt(ours / theirs, 2)}×`,
      pass: ours <= theirs,
    });
  }
  if (pairs.length === 0) {
    out.push({ name: 'notifier CPU vs BullMQ worker CPU', target: '≤ 1.0×', measured: 'not measured', pass: null });
  }
  return out;
}

export function markdown(r: Results): string {
  const L: string[] = [];
  const cores = r.machine.cpus;
  const runs = r.options.runs;
  L.push(
    `Measured ${r.date} on ${r.machine.cpus} × ${r.machine.cpuModel}, ${fmt(r.machine.memoryGiB)} GiB, Node ${r.machine.node}; each figure the median of ${runs} run${runs === 1 ? '' : 's'}${r.options.quick ? ' (--quick)' : ''}.`,
    '',
  );
  const c = r.ceilings?.median;
  if (c) {
    L.push('**Ceilings** (the emulators alone, same run)', '');
    L.push(
      '| raw publish (requests of 1,000) | publish through the topic client | raw push to a 204 endpoint | Firestore create() ×64 | update() ×64 | get() ×64 |',
    );
    L.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
    L.push(
      `| ${fmt(c.publishPerSec)} msg/s | ${fmt(c.topicPublishPerSec)} msg/s | ${fmt(c.pushPerSec)} msg/s | ${fmt(c.createPerSec)}/s | ${fmt(c.updatePerSec)}/s | ${fmt(c.getPerSec)}/s |`,
    );
    L.push(
      '',
      `The raw publish round (every request of 1,000 messages at once, on the generated client the dispatcher publishes with): the publishing client spent ${fmt(c.publishClientCpuUsPerMessage, 1)} µs of CPU a message and the Pub/Sub emulator ${fmt(c.publishEmulatorCpuUsPerMessage, 1)} µs, and the machine kept ${fmt(c.publishBusyCores, 2)} of its ${fmt(cores)} cores busy (client and emulator). The topic client's batching publisher, a promise a message (the ceiling of records before the dispatcher published on the generated client), managed ${fmt(c.topicPublishPerSec)} msg/s.`,
    );
    L.push(
      '',
      `The Firestore client alone (this process, 64 calls in flight, nothing else running in it) spent ${fmt(c.createClientCpuMs, 2)} ms of CPU a create(), ${fmt(c.updateClientCpuMs, 2)} ms an update() and ${fmt(c.getClientCpuMs, 2)} ms a get(): what a single-document call costs its caller, before any work of ours.`,
    );
    L.push('');
  }
  if (r.dispatch.length > 0) {
    L.push(
      "**Dispatch** (dispatcher process, topic with one subscription nothing pulls from; the timed tick is a fresh process's second, the first is the cold tick)",
      '',
    );
    L.push(
      `| N | tick wall | messages/s | % of publish ceiling | peak RSS | CPU per 1,000 | machine busy (of ${fmt(cores)} cores) | reads / notification | writes / notification | cold first tick |`,
    );
    L.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const d of r.dispatch) {
      const m = d.median;
      L.push(
        `| ${fmt(d.n)} | ${fmt(m.wallSeconds, 2)} s | ${fmt(m.messagesPerSec)} | ${c ? `${fmt((m.messagesPerSec / c.publishPerSec) * 100)}%` : '–'} | ${fmt(m.peakRssMiB)} MiB | ${fmt(m.cpuSecondsPer1k, 3)} s | ${fmt(m.busyCores, 2)} | ${fmt(m.readsPerNotification, 4)} | ${fmt(m.writesPerNotification, 4)} | ${fmt(m.coldWallSeconds, 2)} s |`,
      );
    }
    L.push(
      '',
      `CPU a message in the timed tick, process by process (medians): ${r.dispatch
        .map(
          (d) =>
            `N=${fmt(d.n)}: dispatcher ${fmt(d.median.cpuSecondsPer1k * 1000, 1)} µs, Pub/Sub emulator ${fmt((d.median.pubsubEmulatorCpuSeconds / d.n) * 1e6, 1)} µs, Firestore emulator ${fmt((d.median.firestoreEmulatorCpuSeconds / d.n) * 1e6, 1)} µs`,
        )
        .join('; ')}. The emulators are each a launcher and its Java child, counted together.`,
    );
    const uncapped = r.dispatchHeapUncapped;
    if (uncapped) {
      L.push(
        '',
        `Diagnostic, N=${fmt(uncapped.run.n)} without the container's heap cap (\`--max-old-space-size=${uncapped.maxOldSpaceMiB}\`, about V8's default on this host): ${fmt(uncapped.run.wallSeconds, 2)} s, peak RSS ${fmt(uncapped.run.peakRssMiB)} MiB (V8 heap peak ${fmt(uncapped.run.heapUsedPeakMiB)} MiB). Peak V8 heap in use with the cap: ${r.dispatch.map((d) => `${fmt(d.median.heapUsedPeakMiB)} MiB at N=${fmt(d.n)}`).join(', ')}.`,
      );
    }
    L.push('');
  }
  if (r.dispatchSchedules) L.push(...spreadMarkdown(r.dispatchSchedules));
  const e = r.e2e?.median;
  if (e) {
    L.push('**End to end through the emulators** (tick → last post at the stand-in)', '');
    L.push(
      '| N | tick → last post | deliveries/s | raw push ceiling | publish → post p50 / p95 / p99 | notifier POST /push p50 / p95 / p99 | Firestore reads / writes per delivery | notifier CPU per delivery |',
    );
    L.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    L.push(
      `| ${fmt(e.n)} | ${fmt(e.seconds, 1)} s | ${fmt(e.deliveriesPerSec)} | ${c ? `${fmt(c.pushPerSec)} msg/s` : '–'} | ${fmt(e.latencyP50Ms / 1000, 1)} / ${fmt(e.latencyP95Ms / 1000, 1)} / ${fmt(e.latencyP99Ms / 1000, 1)} s | ${fmt(e.pushP50Ms, 1)} / ${fmt(e.pushP95Ms, 1)} / ${fmt(e.pushP99Ms, 1)} ms | ${fmt(e.notifierReadsPerDelivery + e.dispatchReadsPerNotification, 2)} / ${fmt(e.notifierWritesPerDelivery + e.dispatchWritesPerNotification, 2)} | ${fmt(e.notifierCpuMsPerDelivery, 2)} ms |`,
    );
    L.push('');
  }
  if (r.capacity.length > 0) {
    const bound = c ? writeCeilingPerSec(c) : Number.NaN;
    L.push('**Notifier capacity** (POST /push driven directly, Firestore emulator + stand-in)', '');
    L.push(
      '| in flight | deliveries/s | p50 / p95 / p99 | CPU per delivery | Firestore emulator CPU per delivery | machine busy | reads / writes per delivery | Firestore RPCs per delivery | % of Firestore write bound |',
    );
    L.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const k of r.capacity) {
      const m = k.median;
      L.push(
        `| ${k.inFlight} | ${fmt(m.deliveriesPerSec)} | ${fmt(m.p50Ms, 1)} / ${fmt(m.p95Ms, 1)} / ${fmt(m.p99Ms, 1)} ms | ${fmt(m.cpuMsPerDelivery, 2)} ms | ${fmt(m.emulatorCpuMsPerDelivery, 2)} ms | ${fmt(m.busyCores, 2)} of ${cores} cores | ${fmt(m.readsPerDelivery, 2)} / ${fmt(m.writesPerDelivery, 2)} | ${fmt(m.rpcsPerDelivery, 2)} | ${c ? `${fmt((m.deliveriesPerSec / (bound / m.writesPerDelivery)) * 100)}%` : '–'} |`,
      );
    }
    const mem = r.capacityMemoryStore;
    if (mem && mem.length > 0) {
      L.push(
        '',
        `Diagnostic, one run of the same notifier with the in-memory store in place of Firestore (bench/notifier-memory.ts): ${mem.map((l) => `${fmt(l.cpuMsPerDelivery, 2)} ms CPU per delivery and ${fmt(l.deliveriesPerSec)}/s at ${l.inFlight} in flight`).join('; ')}.`,
      );
    }
    L.push('');
  }
  const p = r.peer[0]?.median;
  if (p) {
    const dispatchRef = closest(r.dispatch, (d) => d.n, p.jobs)?.median;
    L.push(
      `**Peer: cron + BullMQ** (Redis on loopback, worker concurrency ${r.peer.map((x) => x.concurrency).join(' and ')}, ${fmt(p.jobs)} jobs)`,
      '',
    );
    L.push('| | slack-fanout | cron + BullMQ | ours ÷ theirs |');
    L.push('| --- | ---: | ---: | ---: |');
    // The peer's own figures are shown whether or not ours were measured in this run.
    const row = (what: string, ours: number | undefined, theirs: number, unit: string, digits = 0, theirUnit = unit) =>
      L.push(
        `| ${what} | ${ours === undefined ? 'not measured' : `${fmt(ours, digits)}${unit}`} | ${fmt(theirs, digits)}${theirUnit} | ${ours === undefined ? 'n/a' : fmt(ours / theirs, 2)} |`,
      );
    row(
      `enqueue (${dispatchRef ? `dispatch at N=${fmt(dispatchRef.n)}` : 'dispatch'} / addBulk)`,
      dispatchRef?.messagesPerSec,
      p.enqueuePerSec,
      ' msg/s',
      0,
      ' jobs/s',
    );
    row(
      `end to end (emulator push, 2 in flight / worker at concurrency ${r.peer[0]?.concurrency})`,
      e?.deliveriesPerSec,
      p.e2ePerSec,
      ' /s',
    );
    for (const peer of r.peer) {
      const ours = r.capacity.find((k) => k.inFlight === peer.concurrency)?.median;
      const t = peer.median;
      row(`delivery rate, ${peer.concurrency} in flight (driven / worker)`, ours?.deliveriesPerSec, t.e2ePerSec, ' /s');
      row(
        `CPU per delivery, ${peer.concurrency} in flight (own process, /proc)`,
        ours?.cpuMsPerDelivery,
        t.workerCpuMsPerJob,
        ' ms',
        2,
      );
      const mem = r.capacityMemoryStore?.find((k) => k.inFlight === peer.concurrency);
      if (mem) {
        row(
          `CPU per delivery, ${peer.concurrency} in flight, in-memory store in place of Firestore (diagnostic)`,
          mem.cpuMsPerDelivery,
          t.workerCpuMsPerJob,
          ' ms',
          2,
        );
      }
    }
    L.push('');
    if (c) {
      const perCall = (c.createClientCpuMs + c.updateClientCpuMs + 2 * c.getClientCpuMs) / 4;
      const worker = r.peer.map((x) => `${fmt(x.median.workerCpuMsPerJob, 2)} ms at concurrency ${x.concurrency}`);
      L.push(
        `A delivery's Firestore calls alone: the notifier reads 2 documents and writes 2 a delivery (the capacity table), and one single-document call costs the Firestore client ${fmt(perCall, 2)} ms of CPU on average in the ceilings (2 reads, a create and an update). The BullMQ worker's whole job costs ${worker.join(' and ')}. The notifier batches its calls across pushes (Firestore RPCs per delivery, above), which is what brings its Firestore share below that sum.`,
        '',
      );
    }
  }
  if (r.cost) {
    L.push('**Cost per million notifications** (Google Cloud list prices in bench/prices.ts, measured usage)', '');
    L.push('| item | usage per million | USD |');
    L.push('| --- | ---: | ---: |');
    for (const line of r.cost.lines) L.push(`| ${line.item} | ${line.usagePerMillion} | ${fmt(line.usd, 2)} |`);
    L.push(`| **total** | | **${fmt(r.cost.total, 2)}** |`);
    L.push('');
  }
  L.push('**Targets**', '');
  L.push('| target | required | measured | result |');
  L.push('| --- | --- | --- | --- |');
  for (const t of r.targets) {
    L.push(`| ${t.name} | ${t.target} | ${t.measured} | ${t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'FAIL'} |`);
  }
  L.push('');
  // What the run could not do, said where a reader of the table looks, not in the JSON alone.
  if (r.notes.length > 0) L.push('**Notes**', '', ...r.notes.map((n) => `- ${n}`), '');
  return L.join('\n');
}

/** A tick's figures per due schedule: schedules/s, and the dispatcher's and the Firestore emulator's CPU in ms. */
export function perSchedule(r: DispatchRun): {
  schedulesPerSec: number;
  cpuMs: number;
  firestoreEmulatorCpuMs: number;
} {
  return {
    schedulesPerSec: r.dueSchedules / r.wallSeconds,
    cpuMs: (r.cpuSeconds / r.dueSchedules) * 1000,
    firestoreEmulatorCpuMs: (r.firestoreEmulatorCpuSeconds / r.dueSchedules) * 1000,
  };
}

/** The many-schedules tick: a row at the default schedules at once, one at the previous default, and their ratio. */
export function spreadMarkdown(d: SpreadDispatch): string[] {
  const row = (concurrency: number, m: DispatchRun, what: string) => {
    const each = perSchedule(m);
    return `| ${fmt(concurrency)} (${what}) | ${fmt(m.wallSeconds, 2)} s | ${fmt(each.schedulesPerSec)} | ${fmt(m.messagesPerSec)} | ${fmt(m.reads / m.dueSchedules, 1)} / ${fmt(m.writes / m.dueSchedules, 1)} | ${fmt(each.cpuMs, 2)} ms | ${fmt(each.firestoreEmulatorCpuMs, 2)} ms | ${fmt(m.peakRssMiB)} MiB |`;
  };
  const m = d.median;
  const p = d.previous.run;
  return [
    `**Dispatch of many small schedules** (N=${fmt(m.n)} over ${fmt(d.schedules)} schedules of ${fmt(d.perSchedule)}, each due now; the dispatcher as above)`,
    '',
    '| schedules at once | tick wall | schedules/s | messages/s | Firestore reads / writes per schedule | dispatcher CPU per schedule | Firestore emulator CPU per schedule | peak RSS |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    row(d.concurrency, m, `default, median of ${fmt(d.runs.length)}`),
    row(d.previous.concurrency, p, 'the default before, one run'),
    '',
    `The tick at ${fmt(d.concurrency)} schedules at once took ${fmt(m.wallSeconds / p.wallSeconds, 2)}× the time it took at ${fmt(d.previous.concurrency)}, in the same run.`,
    '',
  ];
}

/** A small hand-written SVG: dispatch throughput against N (log scale) with the ceilings. */
export function throughputSvg(r: Results): string {
  const W = 800;
  const H = 420;
  const m = { left: 80, right: 250, top: 40, bottom: 60 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const pts = r.dispatch.map((d) => ({ n: d.n, v: d.median.messagesPerSec }));
  const ceiling = r.ceilings?.median.publishPerSec ?? null;
  const push = r.ceilings?.median.pushPerSec ?? null;
  const extra: { label: string; n: number; v: number; color: string }[] = [];
  if (r.e2e) extra.push({ label: 'end to end', n: r.e2e.median.n, v: r.e2e.median.deliveriesPerSec, color: '#d62728' });
  const firstPeer = r.peer[0]?.median;
  if (firstPeer) {
    extra.push({ label: 'BullMQ addBulk', n: firstPeer.jobs, v: firstPeer.enqueuePerSec, color: '#9467bd' });
    extra.push({ label: 'BullMQ end to end', n: firstPeer.jobs, v: firstPeer.e2ePerSec, color: '#8c564b' });
  }
  const ns = [...pts.map((p) => p.n), ...extra.map((e) => e.n)];
  const vs = [...pts.map((p) => p.v), ...extra.map((e) => e.v), ceiling ?? 0, push ?? 0];
  const minN = Math.min(...ns, 1000);
  const maxN = Math.max(...ns, 10_000);
  const lx0 = Math.floor(Math.log10(minN));
  const lx1 = Math.ceil(Math.log10(maxN));
  const maxV = Math.max(...vs, 1) * 1.1;
  const x = (n: number) => m.left + ((Math.log10(n) - lx0) / (lx1 - lx0 || 1)) * pw;
  const y = (v: number) => m.top + ph - (v / maxV) * ph;
  const step = niceStep(maxV / 5);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.left}" y="22" font-size="15" font-weight="bold">slack-fanout dispatch throughput against N (${r.date})</text>`,
  );
  for (let v = 0; v <= maxV; v += step) {
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${m.left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (let e = lx0; e <= lx1; e++) {
    const n = 10 ** e;
    out.push(
      `<line x1="${x(n).toFixed(1)}" x2="${x(n).toFixed(1)}" y1="${m.top}" y2="${m.top + ph}" stroke="#eee"/>`,
      `<text x="${x(n).toFixed(1)}" y="${m.top + ph + 18}" text-anchor="middle">${fmt(n)}</text>`,
    );
  }
  out.push(
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="black"/>`,
    `<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="black"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 18}" text-anchor="middle">N, due notifications (log scale)</text>`,
    `<text x="18" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 18 ${m.top + ph / 2})">messages per second</text>`,
  );
  const legend: { label: string; color: string; dash?: string }[] = [];
  const hline = (v: number, color: string, dash: string, label: string) => {
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${color}" stroke-width="1.5" stroke-dasharray="${dash}"/>`,
    );
    legend.push({ label, color, dash });
  };
  if (ceiling !== null) {
    hline(ceiling, '#2ca02c', '6 4', `raw publish ceiling ${fmt(ceiling)}`);
    hline(ceiling / 2, '#2ca02c', '2 3', '50% of publish ceiling');
  }
  if (push !== null) hline(push, '#ff7f0e', '6 4', `raw push ceiling ${fmt(push)}`);
  if (pts.length > 0) {
    const sorted = [...pts].sort((a, b) => a.n - b.n);
    out.push(
      `<polyline fill="none" stroke="#1f77b4" stroke-width="2.5" points="${sorted.map((p) => `${x(p.n).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const p of sorted) {
      out.push(
        `<circle cx="${x(p.n).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="4" fill="#1f77b4"/>`,
        `<text x="${(x(p.n) + 6).toFixed(1)}" y="${(y(p.v) - 8).toFixed(1)}" fill="#1f77b4">${fmt(p.v)}</text>`,
      );
    }
    legend.unshift({ label: 'dispatch (messages/s)', color: '#1f77b4' });
  }
  for (const e of extra) {
    out.push(
      `<rect x="${(x(e.n) - 4).toFixed(1)}" y="${(y(e.v) - 4).toFixed(1)}" width="8" height="8" fill="${e.color}"/>`,
    );
    legend.push({ label: `${e.label} ${fmt(e.v)}/s`, color: e.color });
  }
  legend.forEach((l, i) => {
    const ly = m.top + 10 + i * 20;
    const lx = m.left + pw + 14;
    out.push(
      l.dash
        ? `<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${l.color}" stroke-width="1.5" stroke-dasharray="${l.dash}"/>`
        : `<rect x="${lx + 7}" y="${ly - 4}" width="8" height="8" fill="${l.color}"/>`,
      `<text x="${lx + 28}" y="${ly + 4}">${escapeXml(l.label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  for (const k of [1, 2, 5, 10]) if (raw <= k * p) return k * p;
  return 10 * p;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The files a run writes, each its base name and this. */
export const RESULTS_FILES = ['.json', '.md', '-throughput.svg', '-profile.md'] as const;

/**
 * Writes a run's JSON under the first of `<name>`, `<name>-2`, `<name>-3`, … in `dir` that no
 * file of an earlier run has (RESULTS_FILES), and returns that path without its extension, for
 * the run's other files. The JSON is created only where none is (`wx`), so two runs ending at
 * once never take the same name.
 */
export function reserveResults(dir: string, name: string, json: string, most = 1000): string {
  for (let n = 1; n <= most; n++) {
    const base = join(dir, n === 1 ? name : `${name}-${n}`);
    if (RESULTS_FILES.some((ext) => existsSync(`${base}${ext}`))) continue;
    try {
      writeFileSync(`${base}.json`, json, { flag: 'wx' });
      return base;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`${join(dir, name)}: ${most} runs' results already have that name; move some away`);
}

/**
 * The results' file name before its extension: `<date>`, `<date>-quick` for --quick, and
 * `-partial` added when some phases did not run (--only, --skip), so a smoke check or a
 * partial run is never taken for a full run's files of the same day. A run whose name an
 * earlier run's files have gets `-2`, `-3`, … after it (reserveResults).
 */
export function resultsBaseName(opts: Pick<BenchOptions, 'quick' | 'phases'>, date: string): string {
  const partial = PHASES.some((p) => !opts.phases.includes(p));
  return `${date}${opts.quick ? '-quick' : ''}${partial ? '-partial' : ''}`;
}
