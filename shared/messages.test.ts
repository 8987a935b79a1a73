import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  canonicalOccurrence,
  canonicalRunId,
  type DispatchMessage,
  dispatchAttributes,
  dispatchMessageSchema,
  encodeDispatchMessage,
  MAX_ATTRIBUTE_VALUE_BYTES,
  MESSAGE_ID_CHARS,
  parsePushBody,
  pubsubTime,
  runIdProblem,
} from './messages';
import { deliveryIdOf, documentIdProblem, MAX_NOTIFICATION_ID_BYTES, runIdOf } from './model';

const fixture = JSON.parse(
  readFileSync(join(__dirname, '..', 'test', 'fixtures', 'pubsub-push-envelope.json'), 'utf8'),
) as { message: { data: string; attributes: Record<string, string>; messageId: string } };

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

const occurrence = '2026-12-07T08:00:00.000Z';
const message: DispatchMessage = {
  v: 1,
  notificationId: 'notif-123',
  occurrence,
  scheduleId: 's_0123456789abcdef0123',
  runId: runIdOf('s_0123456789abcdef0123', occurrence),
};

function envelope(data: string | undefined, extra: Record<string, unknown> = {}) {
  return {
    message: {
      ...(data === undefined ? {} : { data }),
      attributes: { deliveryId: deliveryIdOf(message.notificationId, message.occurrence), runId: message.runId },
      messageId: '2070443601311540',
      message_id: '2070443601311540',
      publishTime: '2026-12-07T08:00:01.123Z',
      publish_time: '2026-12-07T08:00:01.123Z',
      ...extra,
    },
    subscription: 'projects/p/subscriptions/slack-fanout-dispatch-push',
    deliveryAttempt: 3,
  };
}

function rejected(body: unknown) {
  const result = parsePushBody(body);
  if (result.ok) throw new Error(`accepted ${JSON.stringify(body)}`);
  expect(typeof result.reason).toBe('string');
  expect(result.reason.length).toBeGreaterThan(0);
  return result;
}

describe('parsePushBody with a dispatch message pushed without its envelope', () => {
  it('refuses it as unwrapped, naming the subscription setting, with its delivery and run', () => {
    const result = rejected({ ...message, occurrence: '2026-12-07T09:00:00+01:00' });
    // The message itself, read as a wrapped one is (its occurrence normalised).
    expect(result.unwrapped).toEqual({ ...message, occurrence });
    expect(result.reason).toMatch(/without its Pub\/Sub envelope.*"no wrapper"/);
    expect(result.deliveryId).toBe(deliveryIdOf(message.notificationId, occurrence));
    expect(result.runId).toBe(message.runId);
  });

  it.each<[string, unknown]>([
    ['data of another type', 5],
    ['data that is null', null],
  ])(
    'names the delivery and run its attributes name in an envelope whose fields are of another shape (%s)',
    (_what, data) => {
      const result = rejected({
        message: { data, attributes: { deliveryId: `n-1:${occurrence}`, runId: message.runId }, messageId: 7 },
      });
      expect(result.reason).toMatch(/^not a Pub\/Sub push envelope/);
      expect(result.deliveryId).toBe(`n-1:${occurrence}`);
      expect(result.runId).toBe(message.runId);
      expect(result.unwrapped).toBeUndefined();
    },
  );

  it.each(['2030-01-01 10:00:00+01:00', '2030-01-01t09:00:00z', '2030-01-01T09:00:00.000000Z'])(
    'names the delivery and run its attributes name with their occurrence in its canonical spelling (%s)',
    (written) => {
      const result = rejected({
        message: { data: 5, attributes: { deliveryId: `n-1:${written}`, runId: `s_ab:${written}` }, messageId: '7' },
      });
      expect(result.deliveryId).toBe('n-1:2030-01-01T09:00:00.000Z');
      expect(result.runId).toBe('s_ab:2030-01-01T09:00:00.000Z');
    },
  );

  it('names no delivery for a body that is neither', () => {
    const result = rejected({ notificationId: 'n-1' });
    expect(result.reason).toMatch(/^not a Pub\/Sub push envelope/);
    expect(result.deliveryId).toBeNull();
    expect(result.unwrapped).toBeUndefined();
  });
});

describe('parsePushBody with the production push fixture', () => {
  it('decodes the fixture data to only a notificationId, so it is not a dispatch message', () => {
    const decoded = JSON.parse(Buffer.from(fixture.message.data, 'base64').toString('utf8'));
    expect(Object.keys(decoded)).toEqual(['notificationId']);
  });

  it('rejects it, keeping the delivery id from the attributes and the message id', () => {
    const result = rejected(fixture);
    expect(result.deliveryId).toBe(fixture.message.attributes.deliveryId);
    expect(result.messageId).toBe(fixture.message.messageId);
    expect(result.reason).toMatch(/dispatch message/);
  });

  it('accepts the fixture envelope once its data is one of our dispatch messages', () => {
    const body = structuredClone(fixture);
    body.message.data = encodeDispatchMessage(message).toString('base64');
    const result = parsePushBody(body);
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.message).toEqual(message);
    expect(result.push.deliveryAttempt).toBe(2);
    expect(result.push.attributes).toEqual(fixture.message.attributes);
  });
});

describe('parsePushBody with a well-formed envelope', () => {
  it('gives back the dispatch message, ids, publish time and attempt', () => {
    const result = parsePushBody(envelope(encodeDispatchMessage(message).toString('base64')));
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.message).toEqual(message);
    expect(result.push.messageId).toBe('2070443601311540');
    expect(result.push.publishTime?.toISOString()).toBe('2026-12-07T08:00:01.123Z');
    expect(result.push.deliveryAttempt).toBe(3);
    expect(result.push.attributes.deliveryId).toBe(`notif-123:${occurrence}`);
  });

  it('keeps the redrive flag', () => {
    const result = parsePushBody(envelope(encodeDispatchMessage({ ...message, redrive: true }).toString('base64')));
    expect(result.ok && result.push.message.redrive).toBe(true);
  });

  it('reads the snake_case ids when only those are sent (the emulator)', () => {
    const result = parsePushBody({
      message: {
        data: encodeDispatchMessage(message).toString('base64'),
        message_id: '2070443601311540',
        publish_time: '2026-12-07T08:00:01.123Z',
      },
    });
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.messageId).toBe('2070443601311540');
    expect(result.push.publishTime?.toISOString()).toBe('2026-12-07T08:00:01.123Z');
    // The emulator sends no deliveryAttempt.
    expect(result.push.deliveryAttempt).toBeNull();
  });

  it('treats an unparseable publish time as unknown, not as an error', () => {
    const result = parsePushBody(
      envelope(encodeDispatchMessage(message).toString('base64'), {
        publishTime: 'not a time',
        publish_time: 'not a time',
      }),
    );
    expect(result.ok && result.push.publishTime).toBeNull();
  });

  it.each([
    ['a bare number, which Date reads as a year', '1'],
    ['a year past 9999, which Firestore cannot store', '+010000-01-01T00:00:00Z'],
    ['year 0, before Firestore’s first instant', '0000-06-01T00:00:00Z'],
    ['a date without a time', '2026-12-07'],
    ['a negative year', '-000001-01-01T00:00:00Z'],
  ])('reads a publish time Pub/Sub never writes (%s) as unknown', (_what, publishTime) => {
    const result = parsePushBody(
      envelope(encodeDispatchMessage(message).toString('base64'), { publishTime, publish_time: publishTime }),
    );
    expect(result.ok && result.push.publishTime).toBeNull();
  });

  it('reads a publish time with nanoseconds or an offset to the millisecond', () => {
    expect(pubsubTime('2026-12-07T08:00:01.123456789Z')?.toISOString()).toBe('2026-12-07T08:00:01.123Z');
    expect(pubsubTime('2026-12-07t09:00:01+01:00')?.toISOString()).toBe('2026-12-07T08:00:01.000Z');
    expect(pubsubTime('0001-01-01T00:00:00Z')?.toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(pubsubTime('9999-12-31T23:59:59.999999999Z')?.toISOString()).toBe('9999-12-31T23:59:59.999Z');
  });

  it('accepts an envelope with no attributes at all', () => {
    const result = parsePushBody({ message: { data: encodeDispatchMessage(message).toString('base64') } });
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.attributes).toEqual({});
    expect(result.push.messageId).toBeNull();
  });
});

describe('parsePushBody rejects bad input with a reason, never a throw', () => {
  const deliveryId = deliveryIdOf(message.notificationId, message.occurrence);

  it.each([
    ['missing data', undefined],
    ['empty data', ''],
    ['characters outside base64', '!!!!'],
    ['base64 of the wrong length', 'eyJ2IjoxfQ'],
    ['the base64url alphabet', 'ab-_'],
    ['padding in the middle', 'ab=c'],
  ])('%s in message.data', (_what, data) => {
    const result = rejected(envelope(data));
    // The envelope names its delivery, so the bad input can be recorded against it.
    expect(result.deliveryId).toBe(deliveryId);
    expect(result.messageId).toBe('2070443601311540');
  });

  it.each([
    ['plain text', b64('hello')],
    ['truncated JSON', b64('{"v":1,')],
    ['binary', Buffer.from([0xff, 0xfe, 0x00, 0x01]).toString('base64')],
  ])('data that is not JSON (%s)', (_what, data) => {
    expect(rejected(envelope(data)).reason).toMatch(/JSON/);
  });

  const without = (key: keyof DispatchMessage) => {
    const { [key]: _, ...rest } = message;
    return rest;
  };

  it.each<[string, unknown]>([
    ['no v', without('v')],
    ['no notificationId', without('notificationId')],
    ['no occurrence', without('occurrence')],
    ['no scheduleId', without('scheduleId')],
    ['no runId', without('runId')],
    ['v is 2', { ...message, v: 2 }],
    ['v is "1"', { ...message, v: '1' }],
    ['notificationId is a number', { ...message, notificationId: 123 }],
    ['notificationId is empty', { ...message, notificationId: '' }],
    // The dead-letter check reads schedules/{scheduleId}: an id Firestore refuses failed that read
    // (a 503, for ever) and every read batched with it.
    ['scheduleId has a slash', { ...message, scheduleId: 'a/b' }],
    ['scheduleId is ..', { ...message, scheduleId: '..' }],
    ['scheduleId has the reserved form __x__', { ...message, scheduleId: '__x__' }],
    ['scheduleId is a lone surrogate', { ...message, scheduleId: '\ud800' }],
    // Written on the delivery record, which Firestore then refuses: every attempt failed.
    ['runId holds a lone surrogate', { ...message, runId: `${message.runId}\udc00` }],
    ['occurrence is not a date-time', { ...message, occurrence: 'yesterday' }],
    ['occurrence is a number', { ...message, occurrence: Date.now() }],
    ['redrive is a string', { ...message, redrive: 'yes' }],
    ['data is null', null],
    ['data is an array', [message]],
    ['data is a string', 'notif-123'],
    ['data is a number', 42],
  ])('a dispatch message with %s', (_what, data) => {
    expect(rejected(envelope(b64(JSON.stringify(data)))).reason).toMatch(/dispatch message/);
  });

  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['an array', [envelope(b64(JSON.stringify(message)))]],
    ['a string', JSON.stringify(envelope(b64(JSON.stringify(message))))],
    ['a number', 204],
    ['a boolean', true],
    ['an empty object', {}],
    ['message null', { message: null }],
    ['message a string', { message: 'hello' }],
    ['data a number', { message: { data: 5 } }],
  ])('a body that is not an envelope: %s', (_what, body) => {
    const result = rejected(body);
    expect(result.reason).toMatch(/envelope/);
    expect(result.deliveryId).toBeNull();
  });

  it.each([
    ['a slash', 'team/a'],
    ['dot-dot', '..'],
    ['a dot', '.'],
    ['the reserved __…__ form', '__x__'],
  ])('a notificationId that cannot be a document id (%s), named in the reason', (_what, notificationId) => {
    const result = rejected(envelope(b64(JSON.stringify({ ...message, notificationId }))));
    expect(result.reason).toMatch(/notificationId: not a valid document id/);
  });

  it('a message whose delivery id could not be a document id (a notificationId of 1,500 bytes)', () => {
    const result = rejected(envelope(b64(JSON.stringify({ ...message, notificationId: '界'.repeat(500) }))));
    expect(result.reason).toMatch(/notificationId: its delivery id is longer than 1500 bytes/);
  });

  it('a message whose run id could not be a document id (a scheduleId of 500 characters, 1,500 bytes)', () => {
    const scheduleId = '€'.repeat(500);
    const result = rejected(envelope(b64(JSON.stringify({ ...message, scheduleId, runId: 'r' }))));
    expect(result.reason).toMatch(/scheduleId: its run id is longer than 1500 bytes/);
    // Its delivery is still named, so that the broken message is recorded against it.
    expect(result.deliveryId).toBe(`${message.notificationId}:${message.occurrence}`);
  });

  it.each([
    ['a slash', 'a/b:2026-12-07T08:00:00.000Z'],
    ['too many bytes', 'é'.repeat(751)],
    ['the reserved form', '__n__'],
  ])('an attributes.deliveryId that cannot be a document id (%s) is not named', (_what, deliveryId) => {
    const result = rejected({ message: { data: b64('{}'), attributes: { deliveryId }, messageId: 'm1' } });
    expect(result.reason).toMatch(/dispatch message/);
    expect(result.deliveryId).toBeNull();
    expect(result.messageId).toBe('m1');
  });
});

describe('the occurrence is normalised, so one instant is one delivery however it is written', () => {
  const canonical = '2030-01-01T09:00:00.000Z';
  const at = (occ: string, runId = runIdOf('s-1', occ)) => ({ ...message, occurrence: occ, scheduleId: 's-1', runId });
  const parsed = (m: unknown) => {
    const result = parsePushBody(envelope(b64(JSON.stringify(m))));
    if (!result.ok) throw new Error(result.reason);
    return result.push.message;
  };

  it.each([
    ['seconds only', '2030-01-01T09:00:00Z'],
    ['milliseconds (the dispatcher)', '2030-01-01T09:00:00.000Z'],
    ['microseconds', '2030-01-01T09:00:00.000000Z'],
    ['nanoseconds', '2030-01-01T09:00:00.000000000Z'],
    ['a tenth of a second', '2030-01-01T09:00:00.0Z'],
    ['a positive offset', '2030-01-01T10:00:00+01:00'],
    ['a negative offset across midnight', '2029-12-31T23:30:00.000-09:30'],
    ['a zero offset', '2030-01-01T09:00:00+00:00'],
  ])('%s: %s', (_what, occ) => {
    const m = parsed(at(occ));
    expect(m.occurrence).toBe(canonical);
    expect(deliveryIdOf(m.notificationId, m.occurrence)).toBe(`notif-123:${canonical}`);
  });

  it('three spellings of one instant make one ledger key, not three', () => {
    const keys = ['2030-01-01T09:00:00Z', '2030-01-01T09:00:00.000Z', '2030-01-01T09:00:00.000000Z'].map((occ) => {
      const m = parsed(at(occ));
      return deliveryIdOf(m.notificationId, m.occurrence);
    });
    expect(new Set(keys)).toEqual(new Set([`notif-123:${canonical}`]));
  });

  it('keeps the milliseconds of an instant that has them', () => {
    expect(parsed(at('2030-01-01T09:00:00.5Z')).occurrence).toBe('2030-01-01T09:00:00.500Z');
    expect(parsed(at('2030-01-01T09:00:00.123000Z')).occurrence).toBe('2030-01-01T09:00:00.123Z');
  });

  it('a run id that embeds the occurrence as written embeds the canonical one, as runIdOf would', () => {
    const m = parsed(at('2030-01-01T09:00:00Z'));
    expect(m.runId).toBe(runIdOf('s-1', canonical));
    // A redrive reads the schedule id off the run id by its `:{occurrence}` suffix.
    expect(m.runId.endsWith(`:${m.occurrence}`)).toBe(true);
  });

  it('a run id that is not its schedule’s at its occurrence is refused, naming the one it would be', () => {
    expect(parsed(at('2030-01-01T09:00:00Z', 's-1:2030-01-01T09:00:00.000Z')).runId).toBe(runIdOf('s-1', canonical));
    for (const runId of ['run-42', 's-2:2030-01-01T09:00:00.000Z', 's-1:2030-01-01T10:00:00.000Z']) {
      const result = parsePushBody(envelope(b64(JSON.stringify(at('2030-01-01T09:00:00Z', runId)))));
      expect(result.ok).toBe(false);
      expect(!result.ok && result.reason).toContain(`runId: is not ${runIdOf('s-1', canonical)}`);
    }
  });

  it('the parsed message is canonical already: parsing it again changes nothing', () => {
    const once = parsed(at('2030-01-01T10:00:00.000000+01:00'));
    expect(parsed(once)).toEqual(once);
    expect(dispatchMessageSchema.parse(once)).toEqual(once);
  });

  it('takes t and z in lower case, as RFC 3339 allows', () => {
    expect(canonicalOccurrence('2030-01-01t09:00:00z')).toEqual({ ok: true, occurrence: '2030-01-01T09:00:00.000Z' });
    expect(canonicalOccurrence('2030-01-01t10:00:00.5+01:00')).toEqual({
      ok: true,
      occurrence: '2030-01-01T09:00:00.500Z',
    });
    expect(canonicalOccurrence('2030-02-30t09:00:00z')).toMatchObject({ ok: false });
  });

  it('takes a space for the T, as RFC 3339 allows (its section 5.6), and no other blank', () => {
    expect(canonicalOccurrence('2030-01-01 09:00:00Z')).toEqual({ ok: true, occurrence: '2030-01-01T09:00:00.000Z' });
    expect(canonicalOccurrence('2030-01-01 10:00:00+01:00')).toEqual({
      ok: true,
      occurrence: '2030-01-01T09:00:00.000Z',
    });
    for (const written of [
      '2030-01-01  09:00:00Z',
      '2030-01-01\t09:00:00Z',
      ' 2030-01-01T09:00:00Z',
      '2030-01-01 09:00:00Z ',
    ]) {
      expect(canonicalOccurrence(written)).toMatchObject({ ok: false });
    }
  });

  it('property: any RFC 3339 spelling of an instant gives its toISOString()', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1000-01-01T00:00:00Z'), max: new Date('9000-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }),
        fc.integer({ min: 0, max: 9 }),
        (date, offsetMinutes, extraZeros) => {
          const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, -1);
          const pad = (n: number) => String(n).padStart(2, '0');
          const abs = Math.abs(offsetMinutes);
          const zone =
            offsetMinutes === 0 ? 'Z' : `${offsetMinutes < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
          const written = `${local}${'0'.repeat(extraZeros)}${zone}`;
          expect(canonicalOccurrence(written)).toEqual({ ok: true, occurrence: date.toISOString() });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('an occurrence that is not one instant in canonical reach is refused, naming the field', () => {
  it.each([
    [
      'sub-millisecond digits that are not zero',
      '2030-01-01T09:00:00.0001Z',
      /sub-millisecond digits that are not zero/,
    ],
    ['nanoseconds that are not zero', '2030-01-01T09:00:00.123456789Z', /sub-millisecond digits that are not zero/],
    ['a leap second (no Date can hold one)', '2016-12-31T23:59:60Z', /RFC 3339/],
    ['30 February', '2030-02-30T09:00:00Z', /RFC 3339/],
    ['29 February of a common year', '2030-02-29T09:00:00Z', /RFC 3339/],
    ['hour 24', '2030-01-01T24:00:00Z', /RFC 3339/],
    // In the canonical shape (the fast path's), still calendar-checked.
    ['30 February, canonical shape', '2030-02-30T09:00:00.000Z', /RFC 3339/],
    ['hour 24, canonical shape', '2030-01-01T24:00:00.000Z', /RFC 3339/],
    ['month 13, canonical shape', '2030-13-01T09:00:00.000Z', /RFC 3339/],
    ['month 13', '2030-13-01T09:00:00Z', /RFC 3339/],
    ['an offset of 24 hours', '2030-01-01T09:00:00+24:00', /RFC 3339/],
    ['no time zone (a local time)', '2030-01-01T09:00:00', /RFC 3339/],
    ['no seconds', '2030-01-01T09:00Z', /RFC 3339/],
    ['a date only', '2030-01-01', /RFC 3339/],
    ['an offset without its colon', '2030-01-01T09:00:00+0100', /RFC 3339/],
    ['an expanded year', '+002030-01-01T09:00:00.000Z', /RFC 3339/],
    ['a time before year 0000 in UTC', '0000-01-01T00:30:00+01:00', /years 0000 to 9999/],
    ['a time after year 9999 in UTC', '9999-12-31T23:30:00-01:00', /years 0000 to 9999/],
    ['words', 'yesterday', /RFC 3339/],
    ['trailing text', '2030-01-01T09:00:00.000Z\n', /RFC 3339/],
    ['a fraction of 1,500 digits that are not zero', `2026-12-07T08:00:00.${'1'.repeat(1500)}Z`, /sub-millisecond/],
  ])('%s', (_what, occ, why) => {
    const result = rejected(envelope(b64(JSON.stringify({ ...message, occurrence: occ }))));
    expect(result.reason).toMatch(/^message\.data is not a dispatch message: occurrence: /);
    expect(result.reason).toMatch(why);
    // Recorded against the delivery the envelope names.
    expect(result.deliveryId).toBe(deliveryIdOf(message.notificationId, message.occurrence));
  });

  it('names the delivery and run of the attributes with their occurrence normalised too', () => {
    const written = '2030-01-01T09:00:00Z';
    const result = rejected({
      message: {
        data: b64(JSON.stringify({ ...message, occurrence: written, v: 2 })),
        attributes: { deliveryId: deliveryIdOf('n-1', written), runId: runIdOf('s-1', written) },
      },
    });
    expect(result.deliveryId).toBe(deliveryIdOf('n-1', '2030-01-01T09:00:00.000Z'));
    expect(result.runId).toBe(runIdOf('s-1', '2030-01-01T09:00:00.000Z'));
    // An id whose suffix is no instant is kept as it is.
    const other = rejected({ message: { data: b64('{}'), attributes: { deliveryId: 'n-1:2030-02-30T09:00:00Z' } } });
    expect(other.deliveryId).toBe('n-1:2030-02-30T09:00:00Z');
  });

  it('quotes a long occurrence cut short in the reason', () => {
    const result = rejected(envelope(b64(JSON.stringify({ ...message, occurrence: 'x'.repeat(5000) }))));
    expect(result.reason.length).toBeLessThan(200);
  });

  it('a fraction of 1,500 zeros is still the instant, and its delivery id a document id', () => {
    const result = parsePushBody(
      envelope(b64(JSON.stringify({ ...message, occurrence: `2026-12-07T08:00:00.${'0'.repeat(1500)}Z` }))),
    );
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.message.occurrence).toBe('2026-12-07T08:00:00.000Z');
  });
});

describe('parsePushBody reads an envelope field of another shape as absent', () => {
  const good = () => envelope(b64(JSON.stringify(message)));

  it.each<[string, unknown]>([
    ['negative', -1],
    ['zero (Pub/Sub counts from 1)', 0],
    ['a string', '2'],
    ['a fraction', 1.5],
    ['null', null],
  ])('deliveryAttempt %s: the message is still delivered, its attempt unknown', (_what, deliveryAttempt) => {
    const result = parsePushBody({ ...good(), deliveryAttempt });
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.message).toEqual(message);
    expect(result.push.deliveryAttempt).toBeNull();
  });

  it('keeps the first 100 characters of a message id longer than any of Pub/Sub, for the log lines it is on', () => {
    const body = good();
    const long = '7'.repeat(60_000);
    for (const field of ['messageId', 'message_id'] as const) {
      const { messageId: _, ...rest } = body.message;
      const result = parsePushBody({ ...body, message: { ...rest, [field]: long } });
      if (!result.ok) throw new Error(result.reason);
      expect(result.push.messageId).toBe('7'.repeat(MESSAGE_ID_CHARS));
    }
    const refused = parsePushBody({ message: { data: 'not base64!', messageId: long } });
    expect(refused).toMatchObject({ ok: false, messageId: '7'.repeat(MESSAGE_ID_CHARS) });
  });

  it('drops an attribute that is not a string and keeps the others', () => {
    const body = good();
    const result = parsePushBody({
      ...body,
      message: { ...body.message, attributes: { ...body.message.attributes, attempt: 5, extra: { a: 1 } } },
    });
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.attributes).toEqual(body.message.attributes);
  });

  it('names the delivery of undecodable data even when an attribute is not a string', () => {
    const deliveryId = deliveryIdOf(message.notificationId, message.occurrence);
    const result = rejected({ message: { data: b64('{}'), attributes: { deliveryId, n: 5 } }, deliveryAttempt: '1' });
    expect(result.deliveryId).toBe(deliveryId);
  });

  it.each<[string, unknown]>([
    ['messageId a number', { messageId: 7, message_id: 7 }],
    ['publishTime a number', { publishTime: 7, publish_time: 7 }],
    ['attributes an array', { attributes: ['deliveryId'] }],
  ])('%s', (_what, extra) => {
    const body = good();
    const result = parsePushBody({ ...body, message: { ...body.message, ...(extra as object) } });
    if (!result.ok) throw new Error(result.reason);
    expect(result.push.message).toEqual(message);
  });
});

describe('parsePushBody properties', () => {
  it('never throws on any JSON-ish value', () => {
    fc.assert(
      fc.property(fc.anything(), (body) => {
        const result = parsePushBody(body);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });

  const envelopeShaped = (data: fc.Arbitrary<string>) =>
    fc.record(
      {
        message: fc.record(
          {
            data,
            attributes: fc.dictionary(fc.string(), fc.string()),
            messageId: fc.string(),
            publishTime: fc.oneof(
              fc.string(),
              fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
            ),
            orderingKey: fc.string(),
          },
          { requiredKeys: [] },
        ),
        subscription: fc.string(),
        deliveryAttempt: fc.oneof(fc.integer(), fc.double(), fc.string()),
      },
      { requiredKeys: ['message'] },
    );

  it('never throws on envelope-shaped objects with arbitrary data', () => {
    const data = fc.oneof(
      fc.string(),
      fc.base64String(),
      fc.json().map(b64),
      fc.anything().map((v) => b64(JSON.stringify(v) ?? 'undefined')),
      fc.string({ unit: 'binary' }).map(b64),
    );
    fc.assert(
      fc.property(envelopeShaped(data), (body) => {
        const result = parsePushBody(body);
        if (result.ok) {
          // Whatever it accepts is a real dispatch message.
          expect(dispatchMessageSchema.safeParse(result.push.message).success).toBe(true);
        } else {
          expect(result.reason.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips every valid dispatch message', () => {
    const idish = fc.string({ minLength: 1, maxLength: 100 });
    const documentId = idish.filter((id) => documentIdProblem(id) === null);
    const msg = fc.record(
      {
        v: fc.constant(1 as const),
        notificationId: documentId,
        occurrence: fc
          .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
          .map((d) => d.toISOString()),
        scheduleId: documentId,
        redrive: fc.boolean(),
      },
      { requiredKeys: ['v', 'notificationId', 'occurrence', 'scheduleId'] },
    );
    fc.assert(
      fc.property(msg, (written) => {
        const m = { ...written, runId: runIdOf(written.scheduleId, written.occurrence) };
        const result = parsePushBody({ message: { data: encodeDispatchMessage(m).toString('base64') } });
        if (!result.ok) throw new Error(result.reason);
        expect(result.push.message).toEqual(m);
      }),
      { numRuns: 200 },
    );
  });
});

describe('dispatchAttributes (Pub/Sub holds 1,024 bytes an attribute value)', () => {
  const at = '2026-01-15T08:00:00.000Z';
  it('keeps the delivery id up to 1,024 bytes of UTF-8, counted in bytes, not characters', () => {
    for (const id of ['n-1', 'é'.repeat((MAX_ATTRIBUTE_VALUE_BYTES - 25) / 2 - 0.5), '界'.repeat(333)]) {
      const deliveryId = deliveryIdOf(id, at);
      expect(Buffer.byteLength(deliveryId)).toBeLessThanOrEqual(MAX_ATTRIBUTE_VALUE_BYTES);
      expect(dispatchAttributes(deliveryId, 'r')).toEqual({ deliveryId, runId: 'r' });
    }
  });

  it('leaves out a longer delivery id, a byte over included', () => {
    const exact = `${'x'.repeat(MAX_ATTRIBUTE_VALUE_BYTES - 2)}é`;
    expect(Buffer.byteLength(exact)).toBe(MAX_ATTRIBUTE_VALUE_BYTES);
    expect(dispatchAttributes(exact, 'r')).toEqual({ deliveryId: exact, runId: 'r' });
    expect(dispatchAttributes(`${exact}x`, 'r')).toEqual({ runId: 'r' });
    // 342 characters, 1,026 bytes: short in characters, too long in bytes.
    expect(dispatchAttributes('界'.repeat(342), 'r')).toEqual({ runId: 'r' });
  });

  it('fits every delivery id of a notification id the cap admits', () => {
    const longest = 'x'.repeat(MAX_NOTIFICATION_ID_BYTES);
    expect(Buffer.byteLength(deliveryIdOf(longest, at))).toBe(MAX_ATTRIBUTE_VALUE_BYTES);
  });
});

describe('canonicalRunId', () => {
  it.each([
    ['s_ab:2030-01-01T09:00:00.000Z', 's_ab:2030-01-01T09:00:00.000Z'],
    ['s_ab:2030-01-01T09:00:00Z', 's_ab:2030-01-01T09:00:00.000Z'],
    ['s_ab:2030-01-01t10:00:00+01:00', 's_ab:2030-01-01T09:00:00.000Z'],
    ['s:x:2030-01-01T09:00:00.5Z', 's:x:2030-01-01T09:00:00.500Z'],
    ['s_ab:2030-02-30T09:00:00Z', 's_ab:2030-02-30T09:00:00Z'],
    ['r-1', 'r-1'],
    [':2030-01-01T09:00:00Z', ':2030-01-01T09:00:00Z'],
    ['s_ab:2030-01-01 09:00:00Z', 's_ab:2030-01-01T09:00:00.000Z'],
    // A blank where the colon goes, as a copy from a table or a log can leave it.
    ['s_ab 2030-01-01T09:00:00.000Z', 's_ab:2030-01-01T09:00:00.000Z'],
    ['s_ab  \t2030-01-01T09:00:00.000Z', 's_ab:2030-01-01T09:00:00.000Z'],
  ])('%j is %j', (typed, stored) => {
    expect(canonicalRunId(typed)).toBe(stored);
  });

  it.each([
    [
      's_ab:2030-01-01T09:00Z',
      /has an occurrence that cannot be read: "2030-01-01T09:00Z" is not an RFC 3339 date-time/,
    ],
    ['s_ab:notatime', /has an occurrence that cannot be read: "notatime" is not an RFC 3339 date-time/],
    ['s_ab:2030-02-30T09:00:00Z', /"2030-02-30T09:00:00Z" is not an RFC 3339 date-time/],
    ['r-1', /is not \{scheduleId\}:\{occurrence\}/],
    // A character that does not show is written as its escape, and named.
    [
      's_ab:2030-01-01T09:00:00Z\u200b',
      /^has an occurrence that cannot be read: "2030-01-01T09:00:00Z\\u200B" is not an RFC 3339 date-time .*; the id given has an invisible character in it \(U\+200B zero-width space\)/,
    ],
  ])('names what keeps %j from being a run id', (typed, problem) => {
    expect(runIdProblem(typed)).toMatch(problem);
  });

  it.each(['s_ab:2030-01-01T09:00:00.000Z', 's_ab:2030-01-01 10:00:00+01:00', 's:x:2030-01-01T09:00:00Z'])(
    'takes %j as a run id',
    (typed) => {
      expect(runIdProblem(typed)).toBeNull();
    },
  );
});
