/**
 * What `npm start`'s progress line says of the time left: nothing is guessed before the first
 * delivery is final (no rate to go by yet), then the rest at the rate so far.
 */
export function timeLeft(done: number, total: number, elapsedMs: number): string {
  if (done >= total) return 'done';
  if (done <= 0 || elapsedMs <= 0) return 'waiting for the first';
  const seconds = Math.ceil(((total - done) * elapsedMs) / done / 1000);
  if (seconds < 60) return `about ${seconds}s left`;
  const minutes = Math.floor(seconds / 60);
  return `about ${minutes}m ${String(seconds % 60).padStart(2, '0')}s left`;
}

/** The most deliveries a tick has for its posts to be printed one by one; past it, a progress bar. */
export const VERBOSE_MAX = 60;

/**
 * The `✓ posted` and `✗ refused` lines of `npm start`. Posts land while a tick is still
 * publishing, before its size is known: from `hold()` (a tick sent) they wait, and `decide()`
 * (the tick's size known) prints them and those after, or drops them for a progress bar. Past
 * VERBOSE_MAX lines held, the tick is past it too, and they are dropped at once.
 */
export class PostLines {
  private held: string[] | null = [];
  private printing = false;

  constructor(private readonly say: (line: string) => void) {}

  hold(): void {
    this.held = [];
  }

  decide(print: boolean): void {
    const held = this.held ?? [];
    this.held = null;
    this.printing = print;
    if (print) for (const line of held) this.say(line);
  }

  /** A tick with nothing of its own: what is held, late posts of earlier ticks, goes as theirs did. */
  asBefore(): void {
    this.decide(this.printing);
  }

  add(line: string): void {
    if (this.held) {
      this.held.push(line);
      if (this.held.length > VERBOSE_MAX) this.decide(false);
    } else if (this.printing) {
      this.say(line);
    }
  }
}

/**
 * The runs of a tick's answer that the tick watches: each run it names, but one an earlier tick
 * watched only when this tick sent its messages (dispatched, resumed). One another dispatcher
 * still holds, or one that is done, was summed up then, and is not counted again.
 */
export function runsToWatch(
  occurrences: readonly { runId: string | null; status: string }[],
  watched: ReadonlySet<string>,
): string[] {
  const runs: string[] = [];
  for (const o of occurrences) {
    if (!o.runId || runs.includes(o.runId)) continue;
    if (!watched.has(o.runId) || o.status === 'dispatched' || o.status === 'resumed') runs.push(o.runId);
  }
  return runs;
}

/**
 * The deliveries runs are to end with: what each published, or the deliveries it has on record
 * where that is more (a run whose dispatcher died had published messages it had not yet
 * recorded). So the count not final is never below 0.
 */
export function expectedDeliveries(runs: readonly { published: number; recorded: number }[]): number {
  return runs.reduce((n, r) => n + Math.max(r.published, r.recorded), 0);
}
