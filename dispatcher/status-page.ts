import type { DeliveryStatus, RunDoc } from '../shared/model';

/** The status page: a plain HTML table of the latest runs and their delivery counts. */

export interface RunRow {
  id: string;
  run: RunDoc;
  counts: Record<DeliveryStatus, number>;
}

const COLUMNS: DeliveryStatus[] = ['sent', 'sending', 'retrying', 'failed', 'skipped', 'dead'];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Every value that reaches the page goes through this: run and schedule ids come from stored data. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

function time(d: Date | null | undefined): string {
  return d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : '';
}

export function renderStatusPage(rows: RunRow[], now: Date): string {
  const body = rows
    .map(({ id, run, counts }) => {
      const cells = [
        id,
        run.status,
        time(run.startedAt),
        time(run.finishedAt),
        run.published,
        ...COLUMNS.map((s) => counts[s] ?? 0),
      ];
      const dead = (counts.dead ?? 0) > 0 ? ' class="dead"' : '';
      return `<tr${dead}>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const head = ['run', 'status', 'started', 'finished', 'published', ...COLUMNS]
    .map((h) => `<th>${escapeHtml(h)}</th>`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>slack-fanout status</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; font-variant-numeric: tabular-nums; }
tr.dead td { background: #fee; }
</style>
</head>
<body>
<h1>slack-fanout: recent runs</h1>
<p>${escapeHtml(rows.length)} most recent runs, as of ${escapeHtml(now.toISOString())}.</p>
<table>
<thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody>
</table>
</body>
</html>
`;
}
