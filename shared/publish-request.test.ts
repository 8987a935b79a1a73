import { protos } from '@google-cloud/pubsub';
import * as fc from 'fast-check';
import { EncodedPublishRequest, encodePublishRequest, sendEncodedRequests, type WireMessage } from './publish-request';

const { PublishRequest } = protos.google.pubsub.v1;

/** What protobufjs, the generated client's own encoding, reads back from the bytes. */
function decoded(bytes: Buffer): { topic: string; messages: { data: string; attributes: Record<string, string> }[] } {
  const r = PublishRequest.decode(bytes);
  return {
    topic: r.topic,
    messages: r.messages.map((m) => ({
      data: Buffer.from(m.data ?? []).toString('utf8'),
      attributes: { ...(m.attributes ?? {}) },
    })),
  };
}

describe('encodePublishRequest', () => {
  test('a page of dispatch messages reads back as the same request, in order', () => {
    const messages = Array.from({ length: 1000 }, (_, i) => ({
      data: JSON.stringify({ v: 1, notificationId: `n-${i}`, occurrence: '2030-01-01T09:00:00.000Z' }),
      attributes: { deliveryId: `n-${i}:2030-01-01T09:00:00.000Z`, runId: 's1:2030-01-01T09:00:00.000Z' },
    }));
    const bytes = encodePublishRequest('projects/p/topics/dispatch', messages);
    expect(decoded(bytes)).toEqual({ topic: 'projects/p/topics/dispatch', messages });
  });

  test('the same bytes protobufjs writes for the same request', () => {
    const messages: WireMessage[] = [
      { data: Buffer.from([0, 1, 2, 255]), attributes: { a: 'b', '': '' } },
      { data: '', attributes: {} },
      { data: 'x' },
    ];
    const theirs = PublishRequest.encode(
      PublishRequest.fromObject({
        topic: 't',
        messages: messages.map((m) => ({ data: Buffer.from(m.data), attributes: m.attributes ?? {} })),
      }),
    ).finish();
    expect(encodePublishRequest('t', messages).equals(Buffer.from(theirs))).toBe(true);
  });

  test('lengths of 1 to 4 varint bytes: 127, 128, 16,383, 16,384 and 2 MB fields', () => {
    for (const n of [0, 127, 128, 16_383, 16_384, 2_097_152]) {
      const data = 'd'.repeat(n);
      const value = 'v'.repeat(n);
      const bytes = encodePublishRequest('t', [{ data, attributes: { k: value } }]);
      const back = decoded(bytes).messages[0];
      expect(back?.data.length).toBe(n);
      expect(back?.attributes.k?.length).toBe(n);
    }
  });

  test('any strings, multi-byte and lone surrogates included, read back as their UTF-8', () => {
    const text = fc.string({ unit: 'binary', maxLength: 300 });
    fc.assert(
      fc.property(
        text,
        fc.array(fc.record({ data: text, attributes: fc.dictionary(text, text, { maxKeys: 4 }) }), { maxLength: 20 }),
        (topic, messages: WireMessage[]) => {
          const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
          const back = decoded(encodePublishRequest(topic, messages));
          expect(back.topic).toBe(utf8(topic));
          expect(back.messages).toEqual(
            messages.map((m) => ({
              data: utf8(m.data as string),
              attributes: Object.fromEntries(Object.entries(m.attributes ?? {}).map(([k, v]) => [utf8(k), utf8(v)])),
            })),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('sendEncodedRequests', () => {
  function fakeStub(withService: boolean) {
    const calls: unknown[][] = [];
    class Stub {
      static service = withService
        ? {
            Publish: {
              path: '/google.pubsub.v1.Publisher/Publish',
              requestSerialize: (r: unknown) => Buffer.from(`own:${JSON.stringify(r)}`),
              responseDeserialize: (b: Buffer) => ({ decoded: b.toString() }),
            },
          }
        : undefined;
      publish(...args: unknown[]): string {
        calls.push(['own', ...args]);
        return 'own';
      }
      makeUnaryRequest(...args: unknown[]): string {
        calls.push(['unary', ...args]);
        return 'unary';
      }
    }
    return { stub: new Stub(), calls };
  }

  test('an encoded request goes as its bytes; any other through the stub’s own serializer; the rest of the call is the stub’s', () => {
    const { stub, calls } = fakeStub(true);
    expect(sendEncodedRequests(stub)).toBe(true);
    const bytes = Buffer.from([1, 2, 3]);
    const callback = () => undefined;
    expect(stub.publish(new EncodedPublishRequest('t', bytes, 3), 'metadata', 'options', callback)).toBe('unary');
    const [kind, path, serialize, deserialize, request, ...rest] = calls[0] as [
      string,
      string,
      (r: unknown) => Buffer,
      (b: Buffer) => unknown,
      unknown,
      ...unknown[],
    ];
    expect([kind, path, rest]).toEqual([
      'unary',
      '/google.pubsub.v1.Publisher/Publish',
      ['metadata', 'options', callback],
    ]);
    expect(serialize(request)).toBe(bytes);
    expect(serialize({ topic: 't' }).toString()).toBe('own:{"topic":"t"}');
    expect(deserialize(Buffer.from('r'))).toEqual({ decoded: 'r' });
  });

  test('a stub that is not a gRPC client (the HTTP fallback) is left as it is', () => {
    const { stub, calls } = fakeStub(false);
    expect(sendEncodedRequests(stub)).toBe(false);
    stub.publish('request');
    expect(calls).toEqual([['own', 'request']]);
  });

  test('an encoded request logs as a summary, not its bytes', () => {
    expect(JSON.stringify(new EncodedPublishRequest('t', Buffer.alloc(10), 2))).toBe(
      '{"topic":"t","messages":2,"bytes":10}',
    );
  });
});
