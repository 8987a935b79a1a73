import { howExited } from './emulators';
import { type ServiceProcess, stopService } from './processes';

/**
 * A service of the local run kept up as Cloud Run keeps an instance up: when it exits without
 * being asked to (a crash, an out-of-memory kill, a `kill -9` by hand), it is started again,
 * and the run says so; one that dies again while it starts counts as one more exit. A service
 * that keeps exiting (more than `maxRestarts` times within `windowMs`) is given up on:
 * `onGiveUp` is told why, once.
 */
export interface Supervised {
  /** The instance up now; a restart replaces it. */
  current(): ServiceProcess;
  /** How many times it has been started again. */
  readonly restarts: number;
  /** Stops it for good: it is not started again after this. */
  stop(): Promise<void>;
}

export interface SuperviseOptions {
  say: (line: string) => void;
  onGiveUp: (why: string) => void;
  maxRestarts?: number;
  windowMs?: number;
  now?: () => number;
}

export async function superviseService(
  start: () => Promise<ServiceProcess>,
  opts: SuperviseOptions,
): Promise<Supervised> {
  const maxRestarts = opts.maxRestarts ?? 5;
  const windowMs = opts.windowMs ?? 60_000;
  const now = opts.now ?? Date.now;
  let instance = await start();
  let stopped = false;
  let gaveUp = false;
  let restarts = 0;
  const recent: number[] = [];

  const giveUp = (why: string) => {
    if (gaveUp) return;
    gaveUp = true;
    opts.onGiveUp(why);
  };

  /**
   * One more exit of the service (`how`): started again, unless it has exited too often. A
   * start that fails (it died again before it listened) is one more exit, tried again the same way.
   */
  const restart = (name: ServiceProcess['name'], how: string): void => {
    if (stopped || gaveUp) return;
    const at = now();
    while (recent.length > 0 && (recent[0] ?? 0) <= at - windowMs) recent.shift();
    if (recent.length >= maxRestarts) {
      giveUp(`the ${name} exited (${how}) ${recent.length + 1} times within ${windowMs / 1000} s; giving up`);
      return;
    }
    recent.push(at);
    restarts++;
    opts.say(`the ${name} exited (${how}); starting it again`);
    start().then(
      (next) => {
        if (stopped) {
          void stopService(next);
          return;
        }
        instance = next;
        opts.say(`the ${name} is up again at ${next.url}`);
        watch(next);
      },
      (err: unknown) => restart(name, `while starting: ${(err as Error).message}`),
    );
  };

  const watch = (s: ServiceProcess) => {
    s.child.once('exit', (code, signal) => restart(s.name, howExited(code, signal)));
  };
  watch(instance);

  return {
    current: () => instance,
    get restarts() {
      return restarts;
    },
    async stop() {
      stopped = true;
      await stopService(instance);
    },
  };
}
