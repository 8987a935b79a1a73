import type { RecordedPost, SlackStandIn } from '../dev/slack-standin';
import { deferred } from '../shared/concurrency';
import { withTimeout } from '../shared/http';
import type { BenchContext } from './context';

/** Waits for a run's posts at the stand-in: `n` distinct deliveries, with a progress bar. */
export interface PostWatch {
  /** Resolves once `n` distinct deliveries have been posted; rejects past --timeout, saying how many came. */
  wait(): Promise<void>;
  /** When the last of them reached the stand-in, epoch ms (0 before any). */
  lastAt(): number;
  /** Stops listening and closes the bar; wait() does it too. */
  stop(): void;
}

/** Counts each delivery id once, so a duplicate post never ends the wait early. */
export function watchPosts(
  ctx: BenchContext,
  standIn: SlackStandIn,
  n: number,
  label: string,
  what: string,
): PostWatch {
  const seen = new Set<string>();
  let lastAt = 0;
  const all = deferred();
  const bar = ctx.bar(label, n);
  const onPost = (p: RecordedPost) => {
    const id = p.metadata?.event_payload.deliveryId;
    if (typeof id !== 'string' || seen.has(id)) return;
    seen.add(id);
    lastAt = p.receivedAt;
    if (seen.size % 100 === 0 || seen.size === n) bar.update(seen.size);
    if (seen.size >= n) all.resolve();
  };
  standIn.on('post', onPost);
  let stopped = false;
  const stop = () => {
    // Stopped by wait() and again by its caller: the bar's last line is written once.
    if (stopped) return;
    stopped = true;
    bar.stop();
    standIn.off('post', onPost);
  };
  return {
    async wait() {
      try {
        await withTimeout(
          all.promise,
          ctx.opts.timeout * 1000,
          () => `${what}: ${seen.size}/${n} delivered within ${ctx.opts.timeout} s (--timeout)`,
        );
      } finally {
        stop();
      }
    },
    lastAt: () => lastAt,
    stop,
  };
}
