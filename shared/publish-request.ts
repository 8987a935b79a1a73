/**
 * A Pub/Sub publish request written straight into the bytes gRPC sends, for the dispatcher's
 * pages. The generated client turns each message into a protobuf object, then encodes it field
 * by field, a small object for every field; for a page of 1,000 messages that was half of the
 * publishing client's CPU (docs/PERFORMANCE.md, item 23). The request is
 * `google.pubsub.v1.PublishRequest`:
 *
 *     PublishRequest { string topic = 1; repeated PubsubMessage messages = 2; }
 *     PubsubMessage  { bytes data = 1; map<string, string> attributes = 2; }
 *
 * and a map entry is a message `{ string key = 1; string value = 2; }`. Every field is
 * length-delimited: a tag byte, the length as a varint, the bytes.
 */

export interface WireMessage {
  /** A string is sent as its UTF-8 bytes. */
  data: Buffer | string;
  attributes?: Record<string, string>;
}

const TOPIC = 0x0a; // field 1, length-delimited
const MESSAGES = 0x12; // field 2, length-delimited
const DATA = 0x0a;
const ATTRIBUTES = 0x12;
const KEY = 0x0a;
const VALUE = 0x12;

function varintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** A length-delimited field's size: tag, length, bytes. */
function field(bytes: number): number {
  return 1 + varintBytes(bytes) + bytes;
}

function byteLength(data: Buffer | string): number {
  return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
}

/** Encodes one publish request; the messages are taken as they are (split them first). */
export function encodePublishRequest(topic: string, messages: readonly WireMessage[]): Buffer {
  // Every size is counted first, in the order the bytes are written (a field's length comes
  // before its bytes), then the request is written into one buffer in a second pass.
  const topicBytes = Buffer.byteLength(topic, 'utf8');
  let total = field(topicBytes);
  const sizes: number[] = [];
  for (const m of messages) {
    const slot = sizes.length;
    const dataBytes = byteLength(m.data);
    sizes.push(0, dataBytes);
    let size = field(dataBytes);
    for (const key in m.attributes) {
      const keyBytes = Buffer.byteLength(key, 'utf8');
      const valueBytes = Buffer.byteLength(m.attributes[key] ?? '', 'utf8');
      const entry = field(keyBytes) + field(valueBytes);
      sizes.push(entry, keyBytes, valueBytes);
      size += field(entry);
    }
    sizes[slot] = size;
    total += field(size);
  }

  const out = Buffer.allocUnsafe(total);
  let at = 0;
  let next = 0;
  const counted = (): number => sizes[next++] ?? 0;
  const varint = (n: number): void => {
    let v = n;
    while (v >= 0x80) {
      out[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[at++] = v;
  };
  const text = (tag: number, s: string, bytes: number): void => {
    out[at++] = tag;
    varint(bytes);
    at += out.write(s, at, bytes, 'utf8');
  };
  text(TOPIC, topic, topicBytes);
  for (const m of messages) {
    out[at++] = MESSAGES;
    varint(counted());
    const dataBytes = counted();
    if (typeof m.data === 'string') text(DATA, m.data, dataBytes);
    else {
      out[at++] = DATA;
      varint(dataBytes);
      at += m.data.copy(out, at);
    }
    for (const key in m.attributes) {
      out[at++] = ATTRIBUTES;
      varint(counted());
      text(KEY, key, counted());
      text(VALUE, m.attributes[key] ?? '', counted());
    }
  }
  if (at !== total) throw new Error(`publish request encoded to ${at} bytes where ${total} were counted`);
  return out;
}

/**
 * A publish request already encoded: the generated client takes it where it takes a request
 * object (its routing header reads `topic`), and the serializer `sendEncodedRequests` installs
 * sends its bytes as they are.
 */
export class EncodedPublishRequest {
  constructor(
    readonly topic: string,
    readonly bytes: Buffer,
    readonly count: number,
  ) {}

  /** What the client's debug log prints in place of the request. */
  toJSON(): { topic: string; messages: number; bytes: number } {
    return { topic: this.topic, messages: this.count, bytes: this.bytes.length };
  }
}

interface UnaryMethod {
  path: string;
  requestSerialize(request: unknown): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

/**
 * Makes a Publisher service stub (the gRPC client the generated client calls) send an
 * EncodedPublishRequest's bytes as they are; any other request is encoded by the stub's own
 * serializer. The call is otherwise the stub's own: the same channel, credentials, deadline,
 * metadata and response decoding, and the generated client's retries around it. Returns false,
 * changing nothing, for a stub that is not a gRPC client (the client's HTTP fallback).
 */
export function sendEncodedRequests(stub: object): boolean {
  const s = stub as {
    publish?: unknown;
    makeUnaryRequest?: (...args: unknown[]) => unknown;
    constructor: { service?: { Publish?: UnaryMethod } };
  };
  const method = s.constructor.service?.Publish;
  const makeUnaryRequest = s.makeUnaryRequest;
  if (!method || typeof makeUnaryRequest !== 'function' || typeof s.publish !== 'function') return false;
  const serialize = (request: unknown): Buffer =>
    request instanceof EncodedPublishRequest ? request.bytes : method.requestSerialize(request);
  s.publish = (request: unknown, ...rest: unknown[]) =>
    makeUnaryRequest.call(stub, method.path, serialize, method.responseDeserialize, request, ...rest);
  return true;
}
