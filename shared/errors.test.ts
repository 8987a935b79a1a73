import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  classifySlackErrorCode,
  classifySlackHttpStatus,
  FanoutError,
  type FanoutErrorCode,
  outcomeOf,
  PermanentError,
  postMayStillLand,
  pushStatus,
  RetryableError,
} from './errors';

interface ErrorFixture {
  retry: string[];
  outcome_unknown: string[];
  refresh_token_then_retry: string[];
  permanent_workspace: string[];
  permanent_channel: string[];
  permanent_payload: string[];
}

const fixture = JSON.parse(
  readFileSync(join(__dirname, '..', 'test', 'fixtures', 'slack-postmessage-errors.json'), 'utf8'),
) as ErrorFixture;

/** The statuses Pub/Sub push treats as an ack; anything else is redelivered. */
const PUBSUB_ACK_STATUSES = new Set([102, 200, 201, 202, 204]);

const table: [keyof ErrorFixture, typeof RetryableError | typeof PermanentError, FanoutErrorCode][] = [
  ['retry', RetryableError, 'slack_retryable'],
  ['outcome_unknown', RetryableError, 'slack_outcome_unknown'],
  ['refresh_token_then_retry', RetryableError, 'slack_retryable'],
  ['permanent_workspace', PermanentError, 'slack_permanent_workspace'],
  ['permanent_channel', PermanentError, 'slack_permanent_channel'],
  ['permanent_payload', PermanentError, 'slack_permanent_payload'],
];

describe('classifySlackErrorCode against the chat.postMessage error fixture', () => {
  it('covers every group of the fixture, each with codes', () => {
    for (const [group] of table) expect(fixture[group].length).toBeGreaterThan(0);
  });

  describe.each(table)('%s', (group, cls, code) => {
    const retryable = cls === RetryableError;
    it.each(fixture[group])(`%s → ${cls.name} ${code}`, (slackError) => {
      const err = classifySlackErrorCode(slackError);
      expect(err).toBeInstanceOf(cls);
      expect(err).toBeInstanceOf(FanoutError);
      expect(err.code).toBe(code);
      expect(err.retryable).toBe(retryable);
      expect(err.slackError).toBe(slackError);
      const outcome = outcomeOf(err);
      expect(outcome.kind).toBe(retryable ? 'retry' : 'ack');
      expect(outcome.reason).toBe(code);
      // A retry must be a non-ack status and a permanent failure an ack one.
      expect(PUBSUB_ACK_STATUSES.has(pushStatus(outcome))).toBe(!retryable);
    });
  });

  it('retries a code Slack adds later rather than dropping the post', () => {
    const err = classifySlackErrorCode('some_new_error_2031');
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('slack_retryable');
    expect(outcomeOf(err).kind).toBe('retry');
  });

  it('carries the cause', () => {
    const cause = new Error('from the client');
    expect(classifySlackErrorCode('channel_not_found', cause).cause).toBe(cause);
  });
});

describe('classifySlackHttpStatus', () => {
  it.each([429, 408])('HTTP %i is retryable and carries Retry-After', (status) => {
    const err = classifySlackHttpStatus(status, 30);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.code).toBe('slack_retryable');
    expect(err.retryAfterSeconds).toBe(30);
    expect(outcomeOf(err)).toEqual({ kind: 'retry', reason: 'slack_retryable', retryAfterSeconds: 30 });
    expect(pushStatus(outcomeOf(err))).toBe(503);
  });

  // 503 too: a gateway such as Envoy answers it for a reset upstream after the post was sent on.
  it.each([500, 502, 503, 504, 599])(
    'HTTP %i is retried as an outcome unknown: the post may have gone through',
    (status) => {
      const err = classifySlackHttpStatus(status, 30);
      expect(err).toBeInstanceOf(RetryableError);
      expect(err.code).toBe('slack_outcome_unknown');
      expect(err.slackError).toBe(`http_${status}`);
      expect(err.retryAfterSeconds).toBe(30);
      expect(outcomeOf(err)).toEqual({ kind: 'retry', reason: 'slack_outcome_unknown', retryAfterSeconds: 30 });
      expect(pushStatus(outcomeOf(err))).toBe(503);
    },
  );

  it('leaves retryAfter out when Slack gave none', () => {
    const err = classifySlackHttpStatus(429);
    expect(err.retryAfterSeconds).toBeUndefined();
    expect('retryAfterSeconds' in outcomeOf(err)).toBe(false);
  });

  it('HTTP 413 (too big, and it will be again) is permanent', () => {
    const err = classifySlackHttpStatus(413);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.code).toBe('slack_permanent_payload');
    expect(err.retryable).toBe(false);
    expect(pushStatus(outcomeOf(err))).toBe(204);
  });

  // Slack answers its own errors with HTTP 200: another 4xx is a proxy or gateway that did not
  // pass the post on, and dropping the report for good over it would lose it.
  it.each([400, 401, 403, 404, 407])('HTTP %i (from something in between) is retried as not posted', (status) => {
    const err = classifySlackHttpStatus(status);
    expect(err).toBeInstanceOf(RetryableError);
    expect([err.code, err.slackError]).toEqual(['slack_retryable', `http_${status}`]);
    expect(pushStatus(outcomeOf(err))).toBe(503);
  });
});

describe('outcomeOf and pushStatus', () => {
  it('maps a retryable error to a nack (503) and a permanent one to an ack (204)', () => {
    const retry = outcomeOf(new RetryableError('dependency_unavailable', 'Firestore did not answer'));
    expect(retry).toEqual({ kind: 'retry', reason: 'dependency_unavailable' });
    expect(pushStatus(retry)).toBe(503);
    const ack = outcomeOf(new PermanentError('invalid_notification', 'no channel'));
    expect(ack).toEqual({ kind: 'ack', reason: 'invalid_notification' });
    expect(pushStatus(ack)).toBe(204);
  });

  it.each<[string, unknown]>([
    ['a plain Error', new Error('boom')],
    ['a string', 'boom'],
    ['undefined', undefined],
    ['an object', { code: 'channel_not_found' }],
  ])('retries anything unexpected (%s)', (_what, err) => {
    const outcome = outcomeOf(err);
    expect(outcome).toEqual({ kind: 'retry', reason: 'unexpected_error' });
    expect(PUBSUB_ACK_STATUSES.has(pushStatus(outcome))).toBe(false);
  });

  it('gives every outcome a status Pub/Sub reads the right way', () => {
    expect(PUBSUB_ACK_STATUSES.has(pushStatus({ kind: 'ack', reason: 'x' }))).toBe(true);
    expect(PUBSUB_ACK_STATUSES.has(pushStatus({ kind: 'retry', reason: 'x' }))).toBe(false);
  });
});

describe('postMayStillLand', () => {
  it.each<[string, FanoutError]>([
    [
      'an outcome-unknown failure Slack gave no error for (a call cut off)',
      new RetryableError('slack_outcome_unknown', 'x'),
    ],
    ['a timeout', new RetryableError('slack_outcome_unknown', 'x', { slackError: 'request_timeout' })],
    ['a connection reset', new RetryableError('slack_outcome_unknown', 'x', { slackError: 'connection_reset' })],
    ['a gateway timeout, HTTP 504', classifySlackHttpStatus(504)],
    ['a bad gateway, HTTP 502 (a proxy may pass the request on again)', classifySlackHttpStatus(502)],
    ["Envoy's HTTP 503 for an upstream reset", classifySlackHttpStatus(503)],
    [
      'an HTTP 500 (a proxy may answer it for an upstream it lost, the request on its way)',
      classifySlackHttpStatus(500),
    ],
    ['any other 5xx, such as 501 or 599', classifySlackHttpStatus(599)],
  ])('is true after %s', (_what, err) => {
    expect(postMayStillLand(err)).toBe(true);
  });

  it.each<[string, FanoutError]>([
    ['a dependency that did not answer', new RetryableError('dependency_unavailable', 'Firestore did not answer')],
    ['a permanent failure without a Slack error', new PermanentError('invalid_notification', 'no channel')],
    [
      'a retryable Slack failure, even one named a timeout',
      new RetryableError('slack_retryable', 'x', { slackError: 'request_timeout' }),
    ],
    ["Slack's internal_error (the call is over)", classifySlackErrorCode('internal_error')],
    ['a gateway that refused the request, HTTP 429', classifySlackHttpStatus(429)],
    ['an HTTP status that is not a 5xx, such as 413', classifySlackHttpStatus(413)],
  ])('is false after %s', (_what, err) => {
    expect(postMayStillLand(err)).toBe(false);
  });
});
