import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { DeliveryStatus, RunDoc } from '../shared/model';
import { deliveryCounts, dispatcherForAdmin, fakeAdminPorts } from '../test/admin-ports';

/**
 * The status page in a real browser (Debian's Chromium, driven by playwright-core): what a
 * browser makes of the page, which its HTML alone does not say (colours, a long id wrapped, a
 * link resolved, markup in stored data left as text). `npm run test:browser`; `.ci/run`
 * installs Chromium first.
 */

// An empty CHROMIUM_PATH is unset, as every variable the project reads.
const CHROMIUM = process.env.CHROMIUM_PATH?.trim() || '/usr/bin/chromium';
// Checked as the file loads: the suite then fails once, saying what to install, not once a test.
if (!existsSync(CHROMIUM)) {
  throw new Error(
    process.env.CHROMIUM_PATH?.trim()
      ? `CHROMIUM_PATH=${CHROMIUM}: no such file; give the path of a Chromium, or unset it for Debian's at /usr/bin/chromium`
      : `no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium), as .ci/run does, or set CHROMIUM_PATH`,
  );
}
const now = new Date('2026-12-06T10:00:00.000Z');
const HOSTILE = `s_<img src=x onerror="window.__injected=1">'onmouseover='window.__injected=2:2026-12-06T09:00:00.000Z`;
const LONG = `s_${'x'.repeat(150)}:2026-12-06T09:00:00.000Z`;

function run(fields: Partial<RunDoc>): RunDoc {
  return {
    scheduleId: 's_1',
    occurrence: '2026-12-06T09:00:00.000Z',
    status: 'done',
    leaseOwner: null,
    leaseExpiresAt: null,
    cursor: null,
    published: 3,
    pages: 1,
    resumes: 0,
    startedAt: new Date('2026-12-06T09:00:01.000Z'),
    updatedAt: new Date('2026-12-06T09:00:02.000Z'),
    finishedAt: new Date('2026-12-06T09:00:02.000Z'),
    ...fields,
  };
}

const RUNS: { id: string; run: RunDoc; counts: Record<DeliveryStatus, number> }[] = [
  { id: 's_done:2026-12-06T09:00:00.000Z', run: run({}), counts: deliveryCounts({ sent: 3 }) },
  { id: 's_dead:2026-12-06T09:00:00.000Z', run: run({}), counts: deliveryCounts({ sent: 2, dead: 1 }) },
  { id: 's_failed:2026-12-06T09:00:00.000Z', run: run({}), counts: deliveryCounts({ sent: 2, failed: 1 }) },
  {
    id: 's_stopped:2026-12-06T09:00:00.000Z',
    run: run({ status: 'running', finishedAt: null, lastError: 'Pub/Sub refused a page' }),
    counts: deliveryCounts({ sent: 1 }),
  },
  { id: HOSTILE, run: run({}), counts: deliveryCounts({ sent: 3 }) },
  { id: LONG, run: run({}), counts: deliveryCounts({ sent: 3 }) },
  {
    id: 's_long_error:2026-12-06T09:00:00.000Z',
    run: run({ status: 'running', finishedAt: null, lastError: `Pub/Sub refused a page: ${'E'.repeat(600)}` }),
    counts: deliveryCounts({ sent: 1 }),
  },
];

let server: Server;
let base: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const app = dispatcherForAdmin(
    {
      // Who may see the page is the admin API's tests' concern: here, anyone on loopback.
      auth: (_req, _res, next) => next(),
      clock: () => now,
      ...fakeAdminPorts({
        getRun: async (id) => RUNS.find((r) => r.id === id)?.run ?? null,
        countByStatus: async (id) => RUNS.find((r) => r.id === id)?.counts ?? deliveryCounts(),
        recentRuns: async (limit) => RUNS.slice(0, limit).map(({ id, run: r }) => ({ id, run: r })),
      }),
    },
    { clock: () => now },
  );
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  // Not made where Chromium is missing.
  if (server) await new Promise((resolve) => server.close(resolve));
});

/** The background colour of a row's cells, by the row's run id. */
async function rowBackground(id: string): Promise<string> {
  const row = page.locator('tbody tr').filter({ has: page.getByText(id, { exact: true }) });
  // Run in the page, with its window's getComputedStyle (this project is typed without the DOM's names).
  type PageWindow = { getComputedStyle(e: unknown): { backgroundColor: string } };
  return row
    .locator('td')
    .nth(1)
    .evaluate((td) => (globalThis as unknown as PageWindow).getComputedStyle(td).backgroundColor);
}

test('shows every run, coloured by what its deliveries and its dispatch say', async () => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const res = await page.goto(`${base}/status`);
  expect(res?.status()).toBe(200);
  expect(await page.locator('h1').textContent()).toBe('slack-fanout: recent runs');
  expect(await page.locator('tbody tr').count()).toBe(RUNS.length);
  expect(await rowBackground('s_dead:2026-12-06T09:00:00.000Z')).toBe('rgb(255, 238, 238)');
  expect(await rowBackground('s_failed:2026-12-06T09:00:00.000Z')).toBe('rgb(255, 246, 224)');
  expect(await rowBackground('s_stopped:2026-12-06T09:00:00.000Z')).toBe('rgb(238, 242, 255)');
  expect(await rowBackground('s_done:2026-12-06T09:00:00.000Z')).toBe('rgba(0, 0, 0, 0)');
  const stopped = page.locator('tbody tr').nth(3).locator('td').nth(1);
  expect(await stopped.textContent()).toBe('stopped, the next tick resumes it: Pub/Sub refused a page');
  // The page runs no script and loads nothing (its Content-Security-Policy): nothing to complain of.
  expect(errors).toEqual([]);
});

test('shows markup in a stored run id as text: nothing in it runs or becomes an element', async () => {
  await page.goto(`${base}/status`);
  const cell = page.locator('td.id').nth(4);
  expect(await cell.textContent()).toBe(HOSTILE);
  expect(await page.locator('tbody img').count()).toBe(0);
  await cell.hover();
  expect(await page.evaluate(() => (globalThis as { __injected?: number }).__injected)).toBeUndefined();
});

type Box = { width: number; height: number };

/** The boxes of two rows' spans in one column of the page (`td.id`, `td.dispatch`), each there. */
async function spanBoxes(column: string, rows: [number, number]) {
  await page.goto(`${base}/status`);
  const spans = page.locator(`${column} > span`);
  const [first, second] = rows;
  const boxes = await Promise.all([spans.nth(first).boundingBox(), spans.nth(second).boundingBox()]);
  expect(boxes).not.toContain(null);
  return { spans, boxes: boxes as [Box, Box] };
}

test('wraps a run id longer than any the dispatcher writes, in its column, rather than widening the page', async () => {
  const { spans, boxes } = await spanBoxes('td.id', [0, 5]);
  const [short, long] = boxes;
  // The same column width; the long one is taller, on several lines.
  expect(Math.abs(long.width - short.width)).toBeLessThan(1);
  expect(long.height).toBeGreaterThan(2.5 * short.height);
  expect(await spans.nth(5).textContent()).toBe(LONG);
});

test("wraps a run's dispatch with a long error in its column, rather than widening the page", async () => {
  const { boxes } = await spanBoxes('td.dispatch', [3, 6]);
  const [stopped, long] = boxes;
  expect(long.width).toBeLessThan(500);
  expect(long.height).toBeGreaterThan(5 * stopped.height);
  // The table's columns take about 1,650 px (the page scrolls sideways in a narrower window);
  // the error on one line would add its own width, some 5,000 px.
  const table = await page.locator('table').boundingBox();
  expect(table?.width).toBeLessThan(2000);
});

test("each run's link opens its details, resolved from the page's own address", async () => {
  await page.goto(`${base}/status`);
  await page.locator('td.id a').nth(1).click();
  await page.waitForURL(`${base}/admin/runs/${encodeURIComponent('s_dead:2026-12-06T09:00:00.000Z')}`);
  const details = JSON.parse((await page.locator('body').textContent()) ?? '') as Record<string, unknown>;
  expect(details).toMatchObject({ runId: 's_dead:2026-12-06T09:00:00.000Z', deliveries: { dead: 1, sent: 2 } });
});

test('a bad ?limit= gives a page saying so, whose link leads back to the runs', async () => {
  const res = await page.goto(`${base}/status?limit=abc`);
  expect(res?.status()).toBe(400);
  expect(await page.locator('p').first().textContent()).toBe('limit must be a whole number from 1 to 200, got "abc"');
  await page.locator('a').click();
  await page.waitForURL(`${base}/status`);
  expect(await page.locator('tbody tr').count()).toBe(RUNS.length);
  // `/status/` is sent to `/status`, so that the page's relative links resolve where they should.
  await page.goto(`${base}/status/?limit=2`);
  expect(page.url()).toBe(`${base}/status?limit=2`);
  expect(await page.locator('tbody tr').count()).toBe(2);
});
