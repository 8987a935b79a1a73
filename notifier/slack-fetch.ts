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
      return gunzipSync(body);
    case 'deflate':
      return inflateSync(body);
    case 'br':
      return brotliDecompressSync(body);
    default:
      return body;
  }
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

/** An answer whose body is not in the Content-Encoding it names: it came, but cannot be read. */
export class SlackBodyError extends Error {
  override readonly name = 'SlackBodyError';
  constructor(
    readonly encoding: string,
    options: { cause: unknown },
  ) {
    super(`the answer's body is not ${encoding} as its Content-Encoding says`, options);
  }
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
    const raw = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode >= 300 && res.statusCode < 400) {
      // Never followed: what fetch() does with redirect: 'error'.
      throw new SlackRedirectError(res.statusCode, headers.get('location'));
    }
    let body: Buffer;
    try {
      body = decoded(raw, headers.get('content-encoding'));
    } catch (err) {
      throw new SlackBodyError(String(headers.get('content-encoding')).trim(), { cause: err });
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
