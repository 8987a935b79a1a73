/** The dispatcher's answer to a tick, as `npm start` reads it. */
export interface TickSummary {
  published?: number;
  occurrences?: { runId: string | null; status: string; published: number }[];
  error?: string;
  message?: string;
  /** With `dependency_unavailable`: each dependency's check, `ok` or `unavailable`. */
  checks?: Record<string, string>;
}

/** The dependencies as a person names them. */
const TITLES: Record<string, string> = { firestore: 'Firestore', pubsub: 'Pub/Sub' };

/**
 * The line for a tick the dispatcher refused: its status and error, and with the checks it
 * answered, which dependency did not answer (`tick failed: HTTP 503 dependency_unavailable:
 * Pub/Sub unavailable (Firestore ok)`).
 */
export function tickRefusal(status: number, summary: TickSummary): string {
  const what = summary.message ?? summary.error ?? '';
  const checks = Object.entries(summary.checks ?? {}).map(([name, state]) => [TITLES[name] ?? name, state] as const);
  const down = checks.filter(([, state]) => state !== 'ok');
  const up = checks.filter(([, state]) => state === 'ok');
  const named = down.length > 0 ? `: ${down.map(([name, state]) => `${name} ${state}`).join(', ')}` : '';
  const fine = down.length > 0 && up.length > 0 ? ` (${up.map(([name]) => `${name} ok`).join(', ')})` : '';
  return `tick failed: HTTP ${status} ${what}${named}${fine}`.trimEnd();
}
