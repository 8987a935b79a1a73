import { STATUS_CODES } from 'node:http';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import type { FetchFunction } from '@slack/web-api';
import { Agent, request } from 'undici';

/**
 * The transport the Slack client posts with: `@slack/web-api`'s `fetch` option, answered by
 * undici's `request()` instead of the global `fetch()`. Both are undici; `request()` skips the
 * WHATWG Request, Response and stream objects `fetch()` builds around every call, about a
 * third of the CPU one post costs on this side (see docs/PERFORMANCE.md). What the client
 * sees is unchanged:
 * - the answer: status, headers and body, read whole (Slack's answers are small). No
 *   Accept-Encoding is sent, so Slack answers uncompressed; a body that comes compressed
 *   anyway (its Content-Encoding says gzip, deflate or br) is decompressed, as fetch() would;
 * - a redirect is refused, as `fetch()` refuses it with `redirect: 'error'` (what the client asks for);
 * - the abort signal (the client's timeout) cancels the request;
 * - a connection that cannot be made rejects with the socket's error code, e.g. ECONNREFUSED.
 * A FormData body (a file upload, which the notifier never makes) goes to the global `fetch()`.
 */

type SlackFetchResponse = Awaited<ReturnType<FetchFunction>>;
type Init = NonNullable<Parameters<FetchFunction>[1]>;
type RawHeaders = Record<string, string | string[] | undefined>;

function headersOf(raw: RawHeaders): SlackFetchResponse['headers'] {
  const flat = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) flat.set(name.toLowerCase(), Array.isArray(value) ? value.join(', ') : value);
  }
  return {
    get: (name) => flat.get(name.toLowerCase()) ?? null,
    entries: () => flat.entries(),
  };
}

function decoded(body: Buffer, encoding: string | null): Buffer {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(body, DECODE_BOUND);
    case 'deflate':
      return inflateSync(body, DECODE_BOUND);
    case 'br':
      return brotliDecompressSync(body, DECODE_BOUND);
    default:
      return body;
  }
}

/** The index of the first byte of `body` that is not JSON's white space (its length when none). */
function firstNonBlank(body: Buffer): number {
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
  return i;
}

/** A redirect the transport refused: Slack's API never redirects, so SLACK_API_URL is likely wrong. */
export class SlackRedirectError extends Error {
  override readonly name = 'SlackRedirectError';
  constructor(
    readonly status: number,
    readonly location: string | null,
  ) {
    super(`HTTP ${status}, a redirect to ${location ?? '(no location)'}, refused`);
  }
}

/**
 * An answer that came but cannot be read: its body not in the Content-Encoding it names, past
 * MAX_ANSWER_BYTES, or, with HTTP 200, not a JSON object. The client would take a body that is
 * not JSON as the error code `ok: false` names (`timeout`, `not_authed`), an answer from Slack.
 */
export class SlackBodyError extends Error {
  override readonly name = 'SlackBodyError';
}

/**
 * The longest answer read, decompressed. A post's answer echoes its message, a few kB; a
 * channel check's page holds up to 200 messages (HISTORY_PAGE_SIZE), at 40,000 characters of
 * text each at most. Read whole, an answer without bound would take the notifier's heap
 * (256 MB) and every push in flight with it.
 */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** Decompression bounded as the body is: a small answer may decompress to a great deal. */
const DECODE_BOUND = { maxOutputLength: MAX_ANSWER_BYTES };

/** `body`, read whole, or a SlackBodyError once it passes `max` bytes (the rest is not read). */
async function boundedBody(body: AsyncIterable<Buffer> & { destroy(): unknown }, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw new SlackBodyError(`the answer is longer than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export function undiciFetch(dispatcher: Agent = new Agent()): FetchFunction {
  return async (url, init: Init = {}) => {
    if (init.body !== undefined && typeof init.body !== 'string') return fetch(url, init);
    const href = String(url);
    const res = await request(href, {
      method: (init.method ?? 'GET') as 'GET' | 'POST',
      ...(init.headers ? { headers: init.headers } : {}),
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
      dispatcher,
    });
    const headers = headersOf(res.headers);
    const raw = await boundedBody(res.body, MAX_ANSWER_BYTES);
    if (res.statusCode >= 300 && res.statusCode < 400) {
      // Never followed: what fetch() does with redirect: 'error'.
      throw new SlackRedirectError(res.statusCode, headers.get('location'));
    }
    let body: Buffer;
    const encoding = headers.get('content-encoding');
    try {
      body = decoded(raw, encoding);
    } catch (err) {
      const passed = (err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
      throw new SlackBodyError(
        passed
          ? `the answer is longer than ${MAX_ANSWER_BYTES} bytes, decompressed`
          : `the answer's body is not ${String(encoding).trim()} as its Content-Encoding says`,
        { cause: err },
      );
    }
    // A Web API answer is a JSON object: with HTTP 200, anything else is no answer from Slack
    // (its first character is enough to tell; a cut-off object is the client's to find).
    if (res.statusCode === 200 && body[firstNonBlank(body)] !== 0x7b) {
      throw new SlackBodyError(
        `the answer is not a JSON object: ${JSON.stringify(body.subarray(0, 100).toString('utf8'))}`,
      );
    }
    const text = () => body.toString('utf8');
    return {
      ok: res.statusCode >= 200 && res.statusCode < 300,
      status: res.statusCode,
      statusText: STATUS_CODES[res.statusCode] ?? '',
      url: href,
      headers,
      text: async () => text(),
      json: async () => JSON.parse(text()) as unknown,
      arrayBuffer: async () => body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer,
    };
  };
}
