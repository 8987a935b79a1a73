import { ARCHIVED_CHANNEL, DEMO_TIMEZONES, demoNotifications, seededLine } from './demo';

describe('demoNotifications', () => {
  test('a demo of one notification posts it: the archived channel comes only beside another', () => {
    const one = demoNotifications({ notifications: 1, accounts: 1, withBrokenChannel: true });
    expect(one.map((n) => n.channelId)).not.toContain(ARCHIVED_CHANNEL);
    const two = demoNotifications({ notifications: 2, accounts: 1, withBrokenChannel: true });
    expect(two.map((n) => n.channelId)).toEqual([expect.not.stringMatching(ARCHIVED_CHANNEL), ARCHIVED_CHANNEL]);
  });

  test('with a real channel, every notification goes there and none is broken', () => {
    const real = demoNotifications({ notifications: 7, accounts: 3, channel: 'C0REAL', withBrokenChannel: true });
    expect(new Set(real.map((n) => n.channelId))).toEqual(new Set(['C0REAL']));
    expect(new Set(real.map((n) => n.timezone)).size).toBe(DEMO_TIMEZONES.length);
  });
});

describe('seededLine', () => {
  test('says what was seeded', () => {
    const notifications = demoNotifications({ notifications: 200, accounts: 20 });
    expect(seededLine(20, notifications)).toBe('seeded 20 accounts and 200 notifications in 5 time zones');
  });

  test('says how many accounts are reported on when the notifications are fewer', () => {
    const notifications = demoNotifications({ notifications: 1, accounts: 100_000 });
    expect(seededLine(100_000, notifications)).toBe(
      'seeded 100000 accounts (1 of them reported on, one per notification) and 1 notification in 1 time zone',
    );
  });
});
