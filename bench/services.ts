import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, howExited } from '../dev/emulators';
import { type ServiceProcess, startService, stopService } from '../dev/processes';
import { guardSpawned, onCleanup } from './cleanup';
import { cpuSeconds, peakRssMiB } from './proc';

/**
 * A service started the way its container runs (dev/processes.ts startService), with the
 * benchmark's counters preloaded (bench/instrument.ts) and a client for them.
 */

export interface HttpSummary {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  mean: number | null;
  statuses: Record<string, number>;
}

export interface ServiceStats {
  pid: number;
  firestore: { reads: number; writes: number; deletes: number; rpcs: Record<string, number> };
  http: Record<string, HttpSummary>;
  /** Peaks of process.memoryUsage() since the last reset, MiB. */
  memoryPeakMiB: Record<string, number>;
}

export interface BenchService {
  svc: ServiceProcess;
  pid: number;
  url: string;
  cpu(): number;
  peakRssMiB(): number;
  stats(): Promise<ServiceStats>;
  resetStats(): Promise<void>;
  profileStart(intervalUs?: number): Promise<void>;
  profileStop(file: string): Promise<void>;
  /**
   * Rejects, naming how and where to read why, if the process exits before stop(): a wait on
   * its work raced with this ends at once instead of at its timeout.
   */
  exited(): Promise<never>;
  stop(): Promise<void>;
}

export async function startBenchService(
  name: 'dispatcher' | 'notifier',
  env: NodeJS.ProcessEnv,
  logDir: string,
  nodeArgs: string[] = [],
  /** A diagnostic script run in place of the service's entry (bench/notifier-memory.ts). */
  entry?: string,
): Promise<BenchService> {
  mkdirSync(logDir, { recursive: true });
  const statsPort = await freePort();
  const instrument = join(__dirname, 'instrument.js');
  const nodeOptions = [env.NODE_OPTIONS, `--require=${instrument}`].filter(Boolean).join(' ');
  const starting = guardSpawned(`${name} (starting)`);
  const svc = await startService(
    name,
    {
      ...env,
      NODE_OPTIONS: nodeOptions,
      BENCH_STATS_PORT: String(statsPort),
      // The dispatcher's memory peaks are reported (bench/dispatch.ts); the notifier's are not.
      ...(name === 'dispatcher' ? { BENCH_SAMPLE_MEMORY: '1' } : {}),
    },
    { logFile: join(logDir, `${name}.log`), nodeArgs, onSpawn: starting.onSpawn, ...(entry ? { entry } : {}) },
  );
  const pid = svc.child.pid;
  if (pid === undefined) throw new Error(`the ${name} has no pid`);
  let stopping = false;
  const remove = onCleanup(
    name,
    () => {
      stopping = true;
      return stopService(svc);
    },
    svc.child,
  );
  starting.release();
  const logFile = join(logDir, `${name}.log`);
  const exited = new Promise<never>((_resolve, reject) => {
    svc.child.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`the ${name} exited (${howExited(code, signal)}) mid-run; see ${logFile}`));
    });
  });
  // Raced only where a phase waits on the service; unobserved otherwise.
  exited.catch(() => undefined);
  const base = `http://127.0.0.1:${statsPort}`;
  const call = async (method: string, path: string): Promise<unknown> => {
    const res = await fetch(`${base}${path}`, { method });
    const body = (await res.json()) as unknown;
    if (!res.ok) throw new Error(`${name} stats ${path}: HTTP ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  // The stats server starts with the process; give it a moment after the service listens.
  for (let i = 0; ; i++) {
    try {
      await call('GET', '/stats');
      break;
    } catch (err) {
      if (i >= 50) throw new Error(`the ${name}'s benchmark counters did not answer: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    svc,
    pid,
    url: svc.url,
    cpu: () => cpuSeconds(pid),
    peakRssMiB: () => peakRssMiB(pid),
    stats: async () => (await call('GET', '/stats')) as ServiceStats,
    resetStats: async () => {
      await call('POST', '/reset');
    },
    profileStart: async (intervalUs = 1000) => {
      await call('POST', `/profile/start?intervalUs=${intervalUs}`);
    },
    profileStop: async (file: string) => {
      await call('POST', `/profile/stop?file=${encodeURIComponent(file)}`);
    },
    exited: () => exited,
    stop: remove,
  };
}

/** Waits until the service answers /readyz (its clients have connected once). */
export async function warmUp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
      last = `HTTP ${res.status} ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url}/readyz did not answer 200 within ${timeoutMs} ms: ${last}`);
}
