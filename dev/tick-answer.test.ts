import { tickRefusal } from './tick-answer';

describe('tickRefusal', () => {
  it('names the dependency the dispatcher found unavailable, and the ones that answered', () => {
    expect(
      tickRefusal(503, { error: 'dependency_unavailable', checks: { firestore: 'ok', pubsub: 'unavailable' } }),
    ).toBe('tick failed: HTTP 503 dependency_unavailable: Pub/Sub unavailable (Firestore ok)');
    expect(
      tickRefusal(503, {
        error: 'dependency_unavailable',
        checks: { firestore: 'unavailable', pubsub: 'unavailable' },
      }),
    ).toBe('tick failed: HTTP 503 dependency_unavailable: Firestore unavailable, Pub/Sub unavailable');
  });

  it('says the error or message alone when the answer has no checks', () => {
    expect(tickRefusal(503, { error: 'tick_failed' })).toBe('tick failed: HTTP 503 tick_failed');
    expect(tickRefusal(400, { error: 'bad_request', message: 'bad schedule time' })).toBe(
      'tick failed: HTTP 400 bad schedule time',
    );
    expect(tickRefusal(500, {})).toBe('tick failed: HTTP 500');
  });
});
