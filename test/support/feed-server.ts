/**
 * A stand-in for `https://polisen.se/api/events` on 127.0.0.1: serves given bodies (e.g. recorded responses), gzip
 * or br as the request asks, records every request, and injects the faults the real feed and networks produce.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { brotliCompressSync, createBrotliCompress, createGzip, gzipSync, constants as zlib } from 'node:zlib';

export type FeedEncoding = 'br' | 'gzip';

export type FaultKind =
  | 'empty'
  | 'html503'
  | 'status'
  | '429'
  | 'truncated'
  | 'stall'
  | 'stallHeaders'
  | 'oversized'
  | 'reset'
  | 'malformed'
  | 'notArray';

export type FaultOptions = {
  /** `status`: the status to answer (default 500). */
  status?: number;
  /** `429`: Retry-After as seconds, an HTTP date, or a raw header value (default 1 second). */
  retryAfter?: number | Date | string;
  /** `oversized`: bytes of (uncompressed) JSON to stream (default 11 MiB, over the client's 10 MB cap). */
  bytes?: number;
};

export type RecordedRequest = { method: string; url: string; headers: IncomingHttpHeaders; at: number };

/** What a custom route answers; the server adds content-type, compression and content-length. */
export type FeedReply = { status?: number; body: string; headers?: Record<string, string> };

/** A custom route: return a reply, or undefined to fall through to the default `/api/events` route. */
export type FeedRoute = (
  request: IncomingMessage,
  url: URL,
) => FeedReply | undefined | Promise<FeedReply | undefined>;

export type FeedTestServer = {
  /** `http://127.0.0.1:PORT/api/events` */
  readonly url: string;
  /** Every request received, faulted ones included, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Milliseconds added before every answer (for benchmarks and timeout tests). */
  delayMs: number;
  /** Encodings the server is willing to use, in preference order; it uses the first the request accepts. */
  encodings: FeedEncoding[];
  /** Serves this body to every later request. */
  setBody(body: string): void;
  /** Serves these bodies one per request, then repeats the last. */
  setResponses(bodies: string[]): void;
  /** Answers the next `count` requests with this fault (faults queue in the order given; none uses up a body). */
  fault(kind: FaultKind, count?: number, options?: FaultOptions): void;
  /** Installs (or with undefined removes) a custom route, tried after faults and before the default route. */
  handler(route: FeedRoute | undefined): void;
  /** Closes the server and destroys every socket, stalled ones included. */
  close(): Promise<void>;
};

export type FeedServerOptions = { responses?: string[] };

/** A JSON array whose elements the event validator must reject: no integer id, unparseable datetime. */
export const MALFORMED_BODY = JSON.stringify([
  {
    id: 500001,
    datetime: '2024-03-31 9:05:01 +02:00',
    name: '31 mars 08.50, Trafikolycka, Uppsala',
    summary: 'Two cars collided.',
    url: '/aktuellt/handelser/2024/mars/31/31-mars-0850-trafikolycka-uppsala/',
    type: 'Trafikolycka',
    location: { name: 'Uppsala', gps: '59.858564,17.638927' },
  },
  {
    datetime: '2024-03-31 10:00:00 +02:00',
    name: 'no id',
    type: 'Övrigt',
    location: { name: 'Lund', gps: '0,0' },
  },
  { id: '500003', datetime: '2024-03-31 10:01:00 +02:00', name: 'string id', type: 'Övrigt' },
  { id: 500004.5, datetime: '2024-03-31 10:02:00 +02:00', name: 'fractional id', type: 'Övrigt' },
  { id: 500005, datetime: 'igår kväll', name: 'unparseable datetime', type: 'Övrigt' },
  { id: 500006, datetime: '2024-02-30 25:61:00 +02:00', name: 'impossible datetime', type: 'Övrigt' },
  null,
]);

const NOT_ARRAY_BODY = '{"error":"x"}';
const HTML_503 =
  '<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n' +
  '<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>\n';
const JSON_TYPE = 'application/json; charset=utf-8';
const OVERSIZED_ELEMENT = `${JSON.stringify({ id: 1, name: 'x'.repeat(200), summary: 'y'.repeat(300) })},`;

type Fault = { kind: FaultKind; options: FaultOptions };

export async function startFeedServer(options: FeedServerOptions = {}): Promise<FeedTestServer> {
  let queue: string[] = [...(options.responses ?? ['[]'])];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();
  const compressed = new Map<string, Buffer>();
  const requests: RecordedRequest[] = [];
  let route: FeedRoute | undefined;
  let closed = false;

  const state = { delayMs: 0, encodings: ['br', 'gzip'] as FeedEncoding[] };

  function nextBody(): string {
    const body = queue.length > 1 ? queue.shift() : queue[0];
    return body ?? '';
  }

  /** Faults break the body that would be served next without using it up, so "fault, then OK" serves it whole. */
  function peekBody(): string {
    return queue[0] ?? '';
  }

  function negotiate(request: IncomingMessage): FeedEncoding | undefined {
    const accepted = parseAcceptEncoding(request.headers['accept-encoding']);
    return state.encodings.find((encoding) => accepted.has(encoding));
  }

  /** Compressed bodies are cached: recorded responses repeat, and benchmarks should time the client. */
  function encode(body: string, encoding: FeedEncoding | undefined): Buffer {
    const raw = Buffer.from(body, 'utf8');
    if (encoding === undefined || raw.length === 0) return raw;
    const key = `${encoding}\0${body}`;
    let out = compressed.get(key);
    if (out === undefined) {
      // Quality 5: what servers typically use for dynamic content; 11 (the default) is far slower.
      out = encoding === 'gzip' ? gzipSync(raw) : brotliCompressSync(raw, brotliOptions(raw.length));
      if (compressed.size > 64) compressed.clear();
      compressed.set(key, out);
    }
    return out;
  }

  function send(
    request: IncomingMessage,
    response: ServerResponse,
    reply: FeedReply,
    contentType = JSON_TYPE,
  ): void {
    const encoding = negotiate(request);
    const payload = encode(reply.body, encoding);
    response.statusCode = reply.status ?? 200;
    response.setHeader('content-type', contentType);
    response.setHeader('vary', 'accept-encoding');
    if (encoding !== undefined && payload.length > 0) response.setHeader('content-encoding', encoding);
    response.setHeader('content-length', payload.length);
    for (const [name, value] of Object.entries(reply.headers ?? {})) response.setHeader(name, value);
    response.end(request.method === 'HEAD' ? undefined : payload);
  }

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    requests.push({
      method: request.method ?? '',
      url: request.url ?? '',
      headers: request.headers,
      at: Date.now(),
    });
    if (state.delayMs > 0) await sleep(state.delayMs);
    if (closed) return;

    const fault = faults.shift();
    if (fault !== undefined) {
      injectFault(fault, request, response);
      return;
    }
    const custom = await route?.(request, url);
    if (custom !== undefined) {
      send(request, response, custom);
      return;
    }
    if (url.pathname !== '/api/events') {
      send(request, response, { status: 404, body: 'not found\n' }, 'text/plain; charset=utf-8');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(request, response, { status: 405, body: '', headers: { allow: 'GET, HEAD' } });
      return;
    }
    send(request, response, { body: nextBody() });
  }

  function injectFault(
    { kind, options: o }: Fault,
    request: IncomingMessage,
    response: ServerResponse,
  ): void {
    switch (kind) {
      case 'empty':
        send(request, response, { body: '' });
        return;
      case 'html503':
        send(request, response, { status: 503, body: HTML_503 }, 'text/html; charset=utf-8');
        return;
      case 'status': {
        const status = o.status ?? 500;
        send(request, response, { status, body: `HTTP ${status}\n` }, 'text/plain; charset=utf-8');
        return;
      }
      case '429': {
        const after = o.retryAfter ?? 1;
        const value = after instanceof Date ? after.toUTCString() : String(after);
        send(request, response, { status: 429, body: '', headers: { 'retry-after': value } });
        return;
      }
      case 'truncated': {
        const body = peekBody();
        send(request, response, { body: body.slice(0, Math.max(1, Math.floor(body.length / 2))) });
        return;
      }
      case 'stall': {
        // Headers and the first part of the body go out; the rest never comes.
        const encoding = negotiate(request);
        const payload = encode(peekBody(), encoding);
        response.writeHead(200, {
          'content-type': JSON_TYPE,
          'content-length': payload.length,
          ...(encoding === undefined ? {} : { 'content-encoding': encoding }),
        });
        response.write(payload.subarray(0, Math.floor(payload.length / 2)));
        return;
      }
      case 'stallHeaders':
        return; // never answers; close() destroys the socket
      case 'oversized':
        streamOversized(request, response, o.bytes ?? 11 * 1024 * 1024);
        return;
      case 'reset':
        request.socket.destroy();
        return;
      case 'malformed':
        send(request, response, { body: MALFORMED_BODY });
        return;
      case 'notArray':
        send(request, response, { body: NOT_ARRAY_BODY });
        return;
    }
  }

  /** A valid JSON array of `bytes` bytes, streamed chunked (no content-length), compressed if asked. */
  function streamOversized(request: IncomingMessage, response: ServerResponse, bytes: number): void {
    const encoding = negotiate(request);
    response.writeHead(200, {
      'content-type': JSON_TYPE,
      ...(encoding === undefined ? {} : { 'content-encoding': encoding }),
    });
    const sink =
      encoding === undefined
        ? response
        : encoding === 'gzip'
          ? createGzip()
          : createBrotliCompress(brotliOptions(bytes));
    if (sink !== response) {
      sink.pipe(response);
      // The client hanging up (e.g. at its size cap) must not leave the compressor waiting for a drain.
      response.on('close', () => sink.destroy());
    }
    const perChunk = Math.max(1, Math.floor(65_536 / OVERSIZED_ELEMENT.length));
    const chunk = OVERSIZED_ELEMENT.repeat(perChunk);
    let written = 0;
    sink.write('[');
    const pump = (): void => {
      while (!closed && !response.destroyed && written + chunk.length < bytes) {
        written += chunk.length;
        if (!sink.write(chunk)) {
          sink.once('drain', pump);
          return;
        }
      }
      if (!closed && !response.destroyed) sink.end(`${OVERSIZED_ELEMENT}{"id":2}]`);
    };
    pump();
  }

  const server = createServer((request, response) => {
    answer(request, response).catch((error: unknown) => {
      // A broken test route: answer 500 so the failing test shows it, rather than hanging.
      if (!response.headersSent) send(request, response, { status: 500, body: String(error) }, 'text/plain');
      else response.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/api/events`,
    requests,
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    get encodings() {
      return state.encodings;
    },
    set encodings(list: FeedEncoding[]) {
      state.encodings = list;
    },
    setBody(body) {
      queue = [body];
    },
    setResponses(bodies) {
      if (bodies.length === 0) throw new Error('setResponses needs at least one body');
      queue = [...bodies];
    },
    fault(kind, count = 1, faultOptions = {}) {
      for (let k = 0; k < count; k++) faults.push({ kind, options: faultOptions });
    },
    handler(next) {
      route = next;
    },
    async close() {
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await done;
    },
  };
}

function brotliOptions(size: number) {
  return {
    params: { [zlib.BROTLI_PARAM_QUALITY]: 5, [zlib.BROTLI_PARAM_SIZE_HINT]: size },
  };
}

/** Codings with q > 0 in an Accept-Encoding header. */
function parseAcceptEncoding(header: string | undefined): Set<string> {
  const accepted = new Set<string>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (name && (q === undefined || Number(q.slice(2)) > 0)) accepted.add(name);
  }
  return accepted;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
