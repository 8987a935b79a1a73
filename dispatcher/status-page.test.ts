import type { RunDoc } from '../shared/model';
import { dispatchState, escapeHtml, renderStatusPage } from './status-page';

describe('escapeHtml', () => {
  it('escapes HTML, and writes a character that turns or breaks the text as its escape', () => {
    expect(escapeHtml(`<b onclick="x">'&'</b>`)).toBe('&lt;b onclick=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;');
    expect(escapeHtml('s_\u202Egnp.exe\u200F:1')).toBe('s_\\u202Egnp.exe\\u200F:1');
    expect(escapeHtml('a\nb')).toBe('a\\nb');
    expect(escapeHtml(null)).toBe('');
  });
});

describe('renderStatusPage', () => {
  it('shows a stored run id with a direction mark as its escape, not turned round', () => {
    const id = "s_\u202Egnp.exe'onmouseover='alert(3):2026-12-06T03:20:00.000Z";
    const run = { status: 'done', startedAt: new Date('2026-12-06T03:20:01Z'), published: 1 } as unknown as RunDoc;
    const page = renderStatusPage(
      [{ id, run, counts: { sent: 1, sending: 0, retrying: 0, failed: 0, skipped: 0, dead: 0 } }],
      new Date('2026-12-06T03:21:00Z'),
    );
    expect(page).not.toContain('\u202E');
    expect(page).toContain('s_\\u202Egnp.exe&#39;onmouseover=&#39;alert(3)');
    // The link's address keeps the id as it is, encoded.
    expect(page).toContain(`href="admin/runs/${encodeURIComponent(id)}"`);
  });

  it('shows a run whose status and count were written by hand as maps, with toString keys, as their JSON', () => {
    const hostile = { toString: 'x', valueOf: '<b>' };
    const run = {
      status: hostile,
      startedAt: new Date('2026-12-06T03:20:01Z'),
      published: hostile,
    } as unknown as RunDoc;
    const page = renderStatusPage(
      [
        {
          id: 'h5:2026-12-06T03:20:00.000Z',
          run,
          counts: { sent: 0, sending: 0, retrying: 0, failed: 0, skipped: 0, dead: 0 },
        },
      ],
      new Date('2026-12-06T03:21:00Z'),
    );
    expect(page).toContain('{&quot;toString&quot;:&quot;x&quot;,&quot;valueOf&quot;:&quot;&lt;b&gt;&quot;}');
  });
});

describe('renderStatusPage with no runs', () => {
  it('says there are none yet, in one row across the table', () => {
    const page = renderStatusPage([], new Date('2026-12-06T03:21:00Z'));
    expect(page).toContain(
      '<tr><td colspan="12">No runs yet: the first tick that finds a schedule due makes one.</td></tr>',
    );
    expect(page.match(/<th>/g)).toHaveLength(12);
  });
});

describe('dispatchState', () => {
  const now = new Date('2026-12-06T18:52:00Z');
  const run = (fields: Partial<RunDoc>) =>
    ({ status: 'running', leaseOwner: 'd-1', leaseExpiresAt: new Date('2026-12-06T18:52:30Z'), ...fields }) as RunDoc;

  it('says a run its tick gave up on is stopped, with why, until the next tick resumes it', () => {
    const failed = run({
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: 'publishing a page of 907 messages did not finish',
    });
    expect(dispatchState(failed, now)).toEqual({
      text: 'stopped, the next tick resumes it: publishing a page of 907 messages did not finish',
      stopped: true,
    });
    const page = renderStatusPage(
      [
        {
          id: 's_1:2026-12-06T18:51:00.000Z',
          run: failed,
          counts: { sent: 975, sending: 0, retrying: 0, failed: 0, skipped: 0, dead: 0 },
        },
      ],
      now,
    );
    expect(page).toContain('<tr class="stopped">');
    expect(page).toContain(
      '<td class="dispatch"><span>stopped, the next tick resumes it: publishing a page of 907 messages did not finish</span></td>',
    );
  });

  it('says a run whose lease ran out is stalled, from when', () => {
    expect(dispatchState(run({ leaseExpiresAt: new Date('2026-12-06T18:51:40Z') }), now)).toEqual({
      text: 'stalled, the next tick resumes it: its dispatcher let its lease run out at 2026-12-06T18:51:40.000Z',
      stopped: true,
    });
  });

  it('says a run under a live lease is running, and a done one done, whatever error it met on the way', () => {
    expect(dispatchState(run({}), now)).toEqual({ text: 'running', stopped: false });
    expect(dispatchState(run({ status: 'done', leaseOwner: null, lastError: 'an earlier try' }), now)).toEqual({
      text: 'done',
      stopped: false,
    });
  });
});
