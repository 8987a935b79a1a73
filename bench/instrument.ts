/**
 * Preloaded into a service process by the benchmark only (`NODE_OPTIONS=--require …`, with
 * BENCH_STATS_PORT set): it counts the Firestore reads and writes the process makes, times its
 * HTTP requests, and runs the V8 CPU profiler over a window the benchmark chooses. It serves
 * all of that on 127.0.0.1:BENCH_STATS_PORT. Without BENCH_STATS_PORT it does nothing.
 *
 * Counting sits where the client turns calls into RPCs, so every code path is seen:
 * - writes: each write in a `commit` or `batchWrite` request (create, set, update, a
 *   transaction's writes) is one billed write; a delete is counted apart;
 * - document reads: each document named in a `batchGetDocuments` request (get(), a
 *   transaction's get(), getAll()): one billed read each, found or not;
 * - query reads: each document a `runQuery` stream delivers (get() and stream() alike), and
 *   one for a query that returns nothing, as Firestore bills it; an aggregation (count()) as one read (Firestore bills one
 *   per 1,000 index entries; none sits on a hot path).
 */

import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector';
import { Firestore } from '@google-cloud/firestore';

interface Counts {
  reads: number;
  writes: number;
  deletes: number;
  rpcs: Record<string, number>;
}

interface HttpStat {
  durations: number[];
  statuses: Record<string, number>;
}

const MAX_SAMPLES = 1_000_000;

function fresh(): Counts {
  return { reads: 0, writes: 0, deletes: 0, rpcs: {} };
}

let counts = fresh();
let httpStats = new Map<string, HttpStat>();

/**
 * Peaks of process.memoryUsage(), sampled every 50 ms with BENCH_SAMPLE_MEMORY=1 (and at each
 * /stats): which part of the RSS grows.
 */
type Memory = ReturnType<typeof process.memoryUsage>;
let memoryPeak: Memory = process.memoryUsage();
function sampleMemory(): void {
  const m = process.memoryUsage();
  for (const k of Object.keys(m) as (keyof Memory)[]) if (m[k] > memoryPeak[k]) memoryPeak[k] = m[k];
}

function rpc(method: string): void {
  counts.rpcs[method] = (counts.rpcs[method] ?? 0) + 1;
}

type AnyFn = (...args: unknown[]) => unknown;

function patchFirestore(): void {
  const fsProto = Firestore.prototype as unknown as Record<string, AnyFn>;
  const request = fsProto.request as AnyFn;
  fsProto.request = function (this: unknown, ...args: unknown[]) {
    const [method, req] = args as [string, { writes?: { delete?: unknown }[] } | undefined];
    rpc(method);
    if ((method === 'commit' || method === 'batchWrite') && Array.isArray(req?.writes)) {
      for (const w of req.writes) {
        if (w.delete) counts.deletes++;
        else counts.writes++;
      }
    }
    return request.apply(this, args);
  };

  const requestStream = fsProto.requestStream as AnyFn;
  fsProto.requestStream = function (this: unknown, ...args: unknown[]) {
    const [method, , req] = args as [string, boolean, { documents?: unknown[] } | undefined];
    rpc(method);
    if (method === 'batchGetDocuments' && Array.isArray(req?.documents)) counts.reads += req.documents.length;
    if (method === 'runAggregationQuery') counts.reads += 1;
    const out = requestStream.apply(this, args) as Promise<NodeJS.EventEmitter>;
    if (method !== 'runQuery') return out;
    // Query results are counted as the client receives them, get() and stream() alike. The
    // stream's emit is wrapped rather than listened to: a 'data' listener would start it flowing.
    return out.then((stream) => {
      let docs = 0;
      const emit = stream.emit;
      stream.emit = function (this: NodeJS.EventEmitter, event: string | symbol, ...rest: unknown[]) {
        if (event === 'data' && (rest[0] as { document?: unknown } | undefined)?.document) {
          docs++;
          counts.reads++;
        } else if (event === 'end' && docs === 0) {
          // Firestore bills a query that returns nothing as one read.
          docs = -1;
          counts.reads++;
        }
        return emit.call(this, event, ...rest);
      } as typeof emit;
      return stream;
    });
  };
}

function summarise(stat: HttpStat) {
  const sorted = [...stat.durations].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
  const sum = sorted.reduce((n, v) => n + v, 0);
  return {
    count: sorted.length,
    p50: at(50) ?? null,
    p95: at(95) ?? null,
    p99: at(99) ?? null,
    mean: sorted.length ? sum / sorted.length : null,
    statuses: stat.statuses,
  };
}

function patchHttp(statsServer: http.Server): void {
  const proto = http.Server.prototype as unknown as { emit: AnyFn };
  const emit = proto.emit;
  proto.emit = function (this: http.Server, ...args: unknown[]) {
    if (args[0] === 'request' && this !== statsServer) {
      const req = args[1] as http.IncomingMessage;
      const res = args[2] as http.ServerResponse;
      const start = process.hrtime.bigint();
      const path = (req.url ?? '').split('?')[0] ?? '';
      res.once('finish', () => {
        let stat = httpStats.get(path);
        if (!stat) {
          stat = { durations: [], statuses: {} };
          httpStats.set(path, stat);
        }
        if (stat.durations.length < MAX_SAMPLES) stat.durations.push(Number(process.hrtime.bigint() - start) / 1e6);
        const code = String(res.statusCode);
        stat.statuses[code] = (stat.statuses[code] ?? 0) + 1;
      });
    }
    return emit.apply(this, args);
  };
}

let session: Session | null = null;

function post<T>(s: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) => {
    s.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T)));
  });
}

async function startProfile(intervalUs: number): Promise<void> {
  if (session) throw new Error('a profile is already running');
  session = new Session();
  session.connect();
  await post(session, 'Profiler.enable');
  await post(session, 'Profiler.setSamplingInterval', { interval: intervalUs });
  await post(session, 'Profiler.start');
}

async function stopProfile(file: string): Promise<void> {
  if (!session) throw new Error('no profile is running');
  const s = session;
  session = null;
  const { profile } = await post<{ profile: unknown }>(s, 'Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  s.disconnect();
}

function start(port: number): void {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const run = async () => {
      if (req.method === 'GET' && url.pathname === '/stats') {
        const http: Record<string, unknown> = {};
        for (const [path, stat] of httpStats) http[path] = summarise(stat);
        sampleMemory();
        const mib = (v: number) => Math.round((v / 2 ** 20) * 10) / 10;
        const memoryPeakMiB = Object.fromEntries(Object.entries(memoryPeak).map(([k, v]) => [k, mib(v)]));
        return reply(200, { pid: process.pid, firestore: counts, http, cpu: process.cpuUsage(), memoryPeakMiB });
      }
      if (req.method === 'POST' && url.pathname === '/reset') {
        counts = fresh();
        httpStats = new Map();
        memoryPeak = process.memoryUsage();
        return reply(200, { ok: true });
      }
      if (req.method === 'POST' && url.pathname === '/profile/start') {
        await startProfile(Number(url.searchParams.get('intervalUs') ?? 1000));
        return reply(200, { ok: true });
      }
      if (req.method === 'POST' && url.pathname === '/profile/stop') {
        const file = url.searchParams.get('file');
        if (!file) return reply(400, { error: 'file is required' });
        await stopProfile(file);
        return reply(200, { ok: true, file });
      }
      return reply(404, { error: 'not_found' });
    };
    run().catch((err: unknown) => reply(500, { error: (err as Error).message }));
  });
  patchFirestore();
  patchHttp(server);
  server.listen(port, '127.0.0.1');
  // Only where a peak is read (the dispatcher's): a sample every 50 ms is CPU the service would
  // otherwise be charged for (1.2% of the notifier's busy time at 64 in flight, in its profile).
  if (process.env.BENCH_SAMPLE_MEMORY === '1') setInterval(sampleMemory, 50).unref();
  // The service's own shutdown decides when the process ends.
  server.unref();
}

const port = Number(process.env.BENCH_STATS_PORT);
if (Number.isInteger(port) && port > 0) start(port);
