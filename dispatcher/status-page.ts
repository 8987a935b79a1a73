import { type DeliveryStatus, escapedUnshowable, type RunDoc, storedDate, storedText } from '../shared/model';

/** The status page: a plain HTML table of the latest runs and their delivery counts. */

/** The runs the page shows, unless `?limit=` asks for another number. */
export const STATUS_PAGE_RUNS = 20;
/** The most `?limit=` may ask for: each run's counts are 6 count queries. */
export const STATUS_PAGE_MAX_RUNS = 200;
/** Runs whose counts are read at once: at `?limit=200`, 60 count queries in flight rather than 1,200. */
export const STATUS_PAGE_COUNT_CONCURRENCY = 10;

export interface RunRow {
  id: string;
  run: RunDoc;
  counts: Record<DeliveryStatus, number>;
}

const COLUMNS: DeliveryStatus[] = ['sent', 'sending', 'retrying', 'failed', 'skipped', 'dead'];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Every value that reaches the page goes through this: run and schedule ids come from stored
 * data. A character that would turn, break or hide the text (a direction mark, a line break)
 * is written as its escape (`\u202E`), as the project's messages write it, not let loose on the page.
 */
export function escapeHtml(value: unknown): string {
  return escapedUnshowable(storedText(value)).replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

function time(d: Date | null | undefined): string {
  return storedDate(d)?.toISOString() ?? '';
}

/** The page for a request it cannot answer (a bad `?limit=`), for a browser: the same words as the JSON answer. */
export function renderStatusError(message: string, title = 'bad request'): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>slack-fanout status: ${escapeHtml(title)}</title>
</head>
<body>
<h1>slack-fanout status: ${escapeHtml(title)}</h1>
<p>${escapeHtml(message)}</p>
<p><a href="status">The ${escapeHtml(STATUS_PAGE_RUNS)} most recent runs</a></p>
</body>
</html>
`;
}

/**
 * A run's dispatch as the page says it. A run whose tick failed (Pub/Sub refused a page, a
 * shutdown) keeps status `running`, its lease released and the failure kept as `lastError`, and
 * one whose dispatcher died keeps its lease until it runs out: either way the next tick resumes
 * it, but until then nothing is being published, and the page says so, and why.
 */
export function dispatchState(run: RunDoc, now: Date): { text: string; stopped: boolean } {
  if (run.status !== 'running') return { text: storedText(run.status), stopped: false };
  const error = typeof run.lastError === 'string' && run.lastError !== '' ? run.lastError : null;
  if (!run.leaseOwner) {
    return {
      text: `stopped, the next tick resumes it${error === null ? '' : `: ${error}`}`,
      stopped: true,
    };
  }
  const expires = run.leaseExpiresAt;
  if (expires instanceof Date && expires.getTime() < now.getTime()) {
    return {
      text: `stalled, the next tick resumes it: its dispatcher let its lease run out at ${time(expires)}`,
      stopped: true,
    };
  }
  return { text: 'running', stopped: false };
}

export function renderStatusPage(rows: RunRow[], now: Date): string {
  const body = rows
    .map(({ id, run, counts }) => {
      const recorded = COLUMNS.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
      const published = typeof run.published === 'number' ? run.published : null;
      const dispatch = dispatchState(run, now);
      const cells = [
        // The run's details and counts, as JSON: the admin API's answer for it. Relative to
        // /status, so it holds behind a proxy that serves the dispatcher under a path prefix.
        `<a href="admin/runs/${encodeURIComponent(id)}">${escapeHtml(id)}</a>`,
        escapeHtml(dispatch.text),
        escapeHtml(time(run.startedAt)),
        escapeHtml(time(run.finishedAt)),
        escapeHtml(published ?? run.published),
        ...COLUMNS.map((s) => escapeHtml(counts[s] ?? 0)),
        // Published with no delivery record: not yet attempted (still in Pub/Sub), or a message
        // lost. Not below 0: a delivery redriven or recorded from another run's message counts
        // here without being published by it.
        escapeHtml(published === null ? '' : Math.max(0, published - recorded)),
      ];
      const rowClass =
        (counts.dead ?? 0) > 0
          ? ' class="dead"'
          : (counts.failed ?? 0) > 0
            ? ' class="failed"'
            : dispatch.stopped
              ? ' class="stopped"'
              : '';
      const cell = (c: string, i: number) =>
        i === 0
          ? `<td class="id"><span>${c}</span></td>`
          : i === 1
            ? `<td class="dispatch"><span>${c}</span></td>`
            : `<td>${c}</td>`;
      return `<tr${rowClass}>${cells.map(cell).join('')}</tr>`;
    })
    .join('\n');
  const headings = ['run', 'dispatch', 'started', 'finished', 'published', ...COLUMNS, 'published, no record'];
  const head = headings.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>slack-fanout status</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1rem; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; font-variant-numeric: tabular-nums; white-space: nowrap; }
table { font-size: .9rem; }
/* A run id (47 characters) on one line; a longer one, stored by hand, wraps rather than widening the page.
   The width is on a block inside the cell: a table cell's min-width and max-width are not kept alike by every browser. */
td.id { font-family: ui-monospace, monospace; }
td.id > span { display: inline-block; width: 47ch; white-space: normal; overflow-wrap: anywhere; }
/* A run's dispatch, with the error its tick met (as long as 1,000 characters), wraps past 40ch. */
td.dispatch > span { display: inline-block; max-width: 40ch; white-space: normal; overflow-wrap: anywhere; }
tr.failed td { background: #fff6e0; }
tr.dead td { background: #fee; }
tr.stopped td { background: #eef2ff; }
.scroll { overflow-x: auto; }
</style>
</head>
<body>
<h1>slack-fanout: recent runs</h1>
<p>${escapeHtml(rows.length)} most recent runs, as of ${escapeHtml(now.toISOString())} (<code>?limit=</code> up to
${escapeHtml(STATUS_PAGE_MAX_RUNS)} shows more). "dispatch" is the run's own state: running, done, or stopped or stalled
(its tick failed, said with why, or its dispatcher stopped renewing its lease; the next tick resumes it, blue): its
deliveries are counted by status beside it, and "published, no record" are published with no delivery record yet (not yet
attempted, still in Pub/Sub, or lost), or with their record under an earlier run (a notification moved to this run's schedule
after it was sent in the same minute under its old one: sent once, and counted there). A row with a dead delivery is red, one with a failed delivery
yellow. Each run links to its details (JSON); <code>slack-fanout deliveries &lt;runId&gt; --status dead</code>
lists its deliveries.</p>
<div class="scroll">
<table>
<thead><tr>${head}</tr></thead>
<tbody>
${rows.length > 0 ? body : `<tr><td colspan="${headings.length}">No runs yet: the first tick that finds a schedule due makes one.</td></tr>`}
</tbody>
</table>
</div>
</body>
</html>
`;
}
