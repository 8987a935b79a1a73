import { Presets, SingleBar } from 'cli-progress';
import type { Emulators } from '../dev/emulators';

/** What every phase of the benchmark shares: the emulators, the options, where logs go, output. */

export type Phase = 'ceilings' | 'dispatch' | 'e2e' | 'capacity' | 'peer' | 'profile';
export const PHASES: readonly Phase[] = ['ceilings', 'dispatch', 'e2e', 'capacity', 'peer', 'profile'];

/** Whether a phase needs the Pub/Sub and Firestore emulators: every phase but the peer, which runs on Redis. */
export function usesEmulators(phase: Phase): boolean {
  return phase !== 'peer';
}

export interface BenchOptions {
  quick: boolean;
  runs: number;
  sizes: number[];
  /** Dispatch of many small schedules: how many (SPREAD_PER_SCHEDULE notifications each); 0 leaves it out. */
  schedules: number;
  e2e: number;
  inFlight: number[];
  capacityRequests: number;
  peerJobs: number;
  /** The BullMQ Worker's concurrency, one peer run per value. */
  workerConcurrency: number[];
  phases: Phase[];
  installRedis: boolean;
  out: string;
  logLevel: string;
  timeout: number;
}

export interface Progress {
  update(value: number): void;
  stop(): void;
}

export interface BenchContext {
  opts: BenchOptions;
  /** The emulators; reading it in a run whose phases did not start them (`--only peer`) throws. */
  readonly emulators: Emulators;
  /** A fresh folder for this run's logs and profiles (bench/results/tmp/<stamp>/). */
  tmpDir: string;
  stamp: string;
  say(line: string): void;
  /** A progress bar for a long step; stop() it when done. */
  bar(label: string, total: number): Progress;
  /** The environment a service process gets for one project. */
  serviceEnv(projectId: string, extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** A project id of its own: the emulators keep projects apart. */
  projectId(what: string): string;
}

export function makeContext(
  opts: BenchOptions,
  emulators: Emulators | null,
  tmpDir: string,
  stamp: string,
  say: (line: string) => void,
): BenchContext {
  let counter = 0;
  const interactive = Boolean(process.stdout.isTTY);
  const started = (): Emulators => {
    if (!emulators) throw new Error('the emulators were not started: no phase of this run uses them');
    return emulators;
  };
  return {
    opts,
    get emulators() {
      return started();
    },
    tmpDir,
    stamp,
    say,
    bar(label: string, total: number): Progress {
      const started = performance.now();
      let last = 0;
      if (!interactive) {
        // No terminal: one line at the start and one at the end instead of a redrawn bar.
        say(`  ${label}: 0/${total}`);
        return {
          update: (v) => {
            last = v;
          },
          stop: () =>
            say(
              `  ${label}: ${last}/${total} in ${((performance.now() - started) / 1000).toFixed(1)} s${last < total ? ' (stopped short, counted at its last update)' : ''}`,
            ),
        };
      }
      const bar = new SingleBar(
        { format: `  ${label} [{bar}] {value}/{total} | {duration}s`, hideCursor: true, stream: process.stdout },
        Presets.shades_classic,
      );
      bar.start(total, 0);
      return {
        update: (v) => {
          last = v;
          bar.update(v);
        },
        stop: () => bar.stop(),
      };
    },
    serviceEnv(projectId, extra = {}) {
      return {
        ...process.env,
        ...started().env,
        GOOGLE_CLOUD_PROJECT: projectId,
        // The emulator sends no OIDC token; verification is off explicitly, here only, so the
        // services listen on loopback alone.
        AUTH_MODE: 'none',
        HOST: '127.0.0.1',
        LOG_LEVEL: opts.logLevel,
        METADATA_SERVER_DETECTION: 'none',
        ...extra,
      };
    },
    projectId(what) {
      counter++;
      return `bench-${what}-${stamp}-${counter}`;
    },
  };
}
