import { buildProgram, parseNotificationsFile } from './slack-fanout';

const good = { id: 'n-1', accountId: 'a-1', channelId: 'C1', cron: '0 9 * * MON-FRI', timezone: 'Europe/Paris' };

describe('parseNotificationsFile', () => {
  it('reads a valid array', () => {
    expect(parseNotificationsFile(JSON.stringify([good]), 'f.json')).toEqual([good]);
  });

  it.each([
    ['not JSON', '{', /f\.json is not JSON/],
    ['not an array', '{}', /must hold a JSON array/],
    ['a missing field', JSON.stringify([good, { ...good, channelId: undefined }]), /f\.json\[1\]: channelId/],
    ['an unknown field', JSON.stringify([{ ...good, chanel: 'C2' }]), /f\.json\[0\]/],
    ['a bad cron', JSON.stringify([{ ...good, cron: '61 * * * *' }]), /f\.json\[0\]: notification n-1: invalid cron/],
    ['a duplicate id', JSON.stringify([good, good]), /f\.json\[1\]: duplicate id n-1 \(also f\.json\[0\]\)/],
    [
      'a bad time zone',
      JSON.stringify([{ ...good, timezone: 'Mars/Base' }]),
      /f\.json\[0\].*unknown time zone "Mars\/Base"/,
    ],
    [
      'a reserved id',
      JSON.stringify([good, { ...good, id: '__bad__' }]),
      /f\.json\[1\]: notification id "__bad__".*reserved/,
    ],
    ['an id with a slash', JSON.stringify([{ ...good, id: 'a/b' }]), /f\.json\[0\]: notification id "a\/b".*'\/'/],
    [
      'an account id with a slash',
      JSON.stringify([{ ...good, accountId: 'acc/evil' }]),
      /f\.json\[0\].*accountId.*'\/'/,
    ],
    ['a blank account id', JSON.stringify([{ ...good, accountId: '   ' }]), /f\.json\[0\].*accountId: is blank/],
    [
      'an id whose delivery ids would be too long',
      JSON.stringify([{ ...good, id: '界'.repeat(500) }]),
      /f\.json\[0\]: notification id .*longer than 1475 bytes/,
    ],
    ['a huge channel id', JSON.stringify([{ ...good, channelId: 'C'.repeat(300) }]), /f\.json\[0\].*slack\.channelId/],
  ])('names %s', (_what, text, message) => {
    expect(() => parseNotificationsFile(text, 'f.json')).toThrow(message);
  });
});

describe('the command line', () => {
  it('lists every command in its help', () => {
    const help = buildProgram().helpInformation();
    for (const command of ['import', 'add', 'reindex', 'pause', 'resume', 'show', 'run', 'redrive']) {
      expect(help).toContain(command);
    }
  });
});
