/** Small statistics helpers for the benchmark: medians across runs, latency percentiles. */

import { mapLimit } from '../shared/concurrency';

export function median(values: readonly number[]): number {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 === 1 ? (xs[mid] as number) : ((xs[mid - 1] as number) + (xs[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100) of values that are already sorted ascending. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((n, v) => n + v, 0);
  return {
    count: sorted.length,
    p50: percentileSorted(sorted, 50),
    p95: percentileSorted(sorted, 95),
    p99: percentileSorted(sorted, 99),
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    max: sorted.length ? (sorted[sorted.length - 1] as number) : Number.NaN,
  };
}

type NumericKeys<T> = { [K in keyof T]: T[K] extends number ? K : never }[keyof T];

/** The median of each numeric field across runs; other fields come from the first run. */
export function medianRecord<T extends object>(runs: readonly T[]): T {
  if (runs.length === 0) throw new Error('medianRecord needs at least one run');
  const first = runs[0] as T;
  const out: Record<string, unknown> = { ...(first as Record<string, unknown>) };
  for (const key of Object.keys(first) as (keyof T & string)[]) {
    const v = first[key];
    if (typeof v === 'number') {
      out[key] = median(runs.map((r) => r[key] as unknown as number));
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out[key] = medianRecord(runs.map((r) => r[key] as unknown as object));
    }
  }
  return out as T;
}

export function pick<T>(runs: readonly T[], key: NumericKeys<T>): number {
  return median(runs.map((r) => r[key] as unknown as number));
}

/** Runs `task(i)` for i in 0..count-1 with at most `inFlight` at once; resolves when all are done. */
export async function runPool(count: number, inFlight: number, task: (i: number) => Promise<unknown>): Promise<void> {
  await mapLimit(
    Array.from({ length: count }, (_, i) => i),
    inFlight,
    task,
  );
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function round(v: number, digits = 0): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
