import type { RunDoc } from '../shared/model';
import { escapeHtml, renderStatusPage } from './status-page';

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
});
