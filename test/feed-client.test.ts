import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { CollectorError } from '../src/errors.js';
import { type FeedOptions, type FeedRetryInfo, fetchFeed } from '../src/feed/feed-client.js';
import { type FeedTestServer, MALFORMED_BODY, startFeedServer } from './support/feed-server.js';
import { loadReplay, REPLAY_SKIP_REASON, replayFileAvailable, responseBody } from './support/replay-file.js';

const USER_AGENT = 'polisen-collector-test/0.1 (+https://example.invalid/contact)';
/** Tiny delays so retry tests take milliseconds. */
const FAST_RETRY = { maxAttempts: 4, minDelayMs: 5, maxDelayMs: 50, maxTotalMs: 10_000 };

const open: FeedTestServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((server) => server.close()));
});

async function serve(body: string = EVENTS_BODY): Promise<FeedTestServer> {
  const server = await startFeedServer({ responses: [body] });
  open.push(server);
  return server;
}

function fetchFrom(server: FeedTestServer, extra: Partial<FeedOptions> = {}) {
  return fetchFeed({ url: server.url, userAgent: USER_AGENT, retry: FAST_RETRY, ...extra });
}

/** The CollectorError a failing call rejects with. */
async function failure(call: Promise<unknown>): Promise<CollectorError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof CollectorError)) throw new Error(`expected a CollectorError, got ${String(error)}`);
  // Self-contained first line: the request, then what went wrong, on one line.
  expect(error.message).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/api\/events (failed|aborted): /);
  expect(error.message).not.toMatch(/[\r\n]/);
  return error;
}

/** 500 events shaped like the real feed's, with non-ASCII text. */
function makeEvents(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, k) => ({
    id: 600_000 - k,
    datetime: `2024-03-${String(1 + (k % 28)).padStart(2, '0')} ${k % 24}:05:01 +01:00`,
    name: `${1 + (k % 28)} mars 21:15, Trafikolycka, Göteborg`,
    summary: `Händelse nummer ${k}: en personbil och en lastbil har kolliderat på E6 i höjd med Åbro.`,
    url: `/aktuellt/handelser/2024/mars/${k}/trafikolycka-goteborg/`,
    type: 'Trafikolycka',
    location: { name: 'Göteborg', gps: '57.70887,11.97456' },
  }));
}
const EVENTS = makeEvents(500);
const EVENTS_BODY = JSON.stringify(EVENTS);

describe('fetchFeed against the local feed server', () => {
  it('decodes gzip, counting wire and decoded bytes, and sends User-Agent and Accept headers', async () => {
    const server = await serve();
    server.encodings = ['gzip'];
    const result = await fetchFrom(server);

    expect(result.events).toEqual(EVENTS);
    expect(result.status).toBe(200);
    expect(result.attempts).toBe(1);
    expect(result.bodyBytes).toBe(Buffer.byteLength(EVENTS_BODY));
    expect(result.wireBytes).toBe(gzipSync(EVENTS_BODY).length);
    expect(server.requests).toHaveLength(1);
    const [request] = server.requests;
    expect(request?.method).toBe('GET');
    expect(request?.headers['user-agent']).toBe(USER_AGENT);
    expect(request?.headers['accept-encoding']).toBe('gzip, br');
    expect(request?.headers.accept).toBe('application/json');
  });

  it('decodes br, and reads an uncompressed body when the server sends one', async () => {
    const server = await serve();
    server.encodings = ['br'];
    const br = await fetchFrom(server);
    expect(br.events).toEqual(EVENTS);
    expect(br.wireBytes).toBeLessThan(br.bodyBytes / 4);

    server.encodings = [];
    const plain = await fetchFrom(server);
    expect(plain.events).toEqual(EVENTS);
    expect(plain.wireBytes).toBe(plain.bodyBytes);
  });

  it('reports an empty 200 body as E_FEED_BODY after a single request (the next run retries)', async () => {
    const server = await serve();
    server.fault('empty');
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_BODY');
    expect(error.message).toContain('empty body (HTTP 200, 0 bytes)');
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 503 HTML page and then succeeds', async () => {
    const server = await serve();
    server.fault('html503');
    const retries: FeedRetryInfo[] = [];
    const result = await fetchFrom(server, { onRetry: (info) => retries.push(info) });
    expect(result.events).toHaveLength(500);
    expect(result.attempts).toBe(2);
    expect(server.requests).toHaveLength(2);
    expect(retries).toEqual([
      { attempt: 1, delayMs: expect.any(Number), reason: 'HTTP 503 Service Unavailable' },
    ]);
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(FAST_RETRY.minDelayMs / 2);
    expect(retries[0]?.delayMs).toBeLessThanOrEqual(FAST_RETRY.minDelayMs);
  });

  it('awaits beforeAttempt before every attempt, retries included, and ends on its CollectorError', async () => {
    const server = await serve();
    server.fault('html503', 2);
    const seen: { attempt: number; requestsBefore: number }[] = [];
    const result = await fetchFrom(server, {
      beforeAttempt: async (attempt) => {
        seen.push({ attempt, requestsBefore: server.requests.length });
      },
    });
    expect(result.attempts).toBe(3);
    expect(seen).toEqual([0, 1, 2].map((n) => ({ attempt: n + 1, requestsBefore: n })));

    server.fault('html503');
    const refused = new CollectorError('E_PACING_BUDGET', 'no slot within the hour');
    const before = server.requests.length;
    await expect(
      fetchFrom(server, {
        beforeAttempt: async (attempt) => {
          if (attempt > 1) throw refused;
        },
      }),
    ).rejects.toBe(refused);
    expect(server.requests.length - before).toBe(1);
  });

  it('honours Retry-After in seconds on 429', async () => {
    const server = await serve();
    server.fault('429', 1, { retryAfter: 1 });
    const retries: FeedRetryInfo[] = [];
    const result = await fetchFrom(server, {
      retry: { ...FAST_RETRY, maxDelayMs: 5000 },
      onRetry: (info) => retries.push(info),
    });
    expect(result.attempts).toBe(2);
    expect(retries[0]?.delayMs).toBe(1000);
    const gap = (server.requests[1]?.at ?? 0) - (server.requests[0]?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(2500);
  });

  it('honours Retry-After as an HTTP date, and gives up at once when it is beyond maxDelayMs', async () => {
    const server = await serve();
    server.fault('429', 1, { retryAfter: new Date(Date.now() + 1500) });
    const retries: FeedRetryInfo[] = [];
    await fetchFrom(server, {
      retry: { ...FAST_RETRY, maxDelayMs: 5000 },
      onRetry: (info) => retries.push(info),
    });
    // HTTP dates have whole seconds: the wait is between 0.5 and 1.5 s.
    expect(retries[0]?.delayMs).toBeGreaterThan(400);
    expect(retries[0]?.delayMs).toBeLessThanOrEqual(1500);

    server.fault('429', 1, { retryAfter: 3600 });
    const error = await failure(fetchFrom(server, { retry: { ...FAST_RETRY, maxDelayMs: 30_000 } }));
    expect(error.code).toBe('E_FEED_HTTP');
    expect(error.message).toContain('HTTP 429 Too Many Requests; the server asked to wait 3600 s');
    expect(server.requests).toHaveLength(3);
  });

  it('reports 404 as E_FEED_NOT_FOUND after exactly one request', async () => {
    const server = await serve();
    server.fault('status', 1, { status: 404 });
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_NOT_FOUND');
    expect(error.message).toContain('HTTP 404 Not Found');
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry other 4xx statuses', async () => {
    const server = await serve();
    server.fault('status', 1, { status: 403 });
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_HTTP');
    expect(error.message).toContain('HTTP 403 Forbidden');
    expect(server.requests).toHaveLength(1);
  });

  it('gives up on a persistent 500 after maxAttempts, naming the status and the attempts', async () => {
    const server = await serve();
    server.fault('status', 10, { status: 500 });
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_HTTP');
    expect(error.message).toMatch(/failed: HTTP 500 Internal Server Error \(4 attempts in \d+\.\d s\)$/);
    expect(server.requests).toHaveLength(FAST_RETRY.maxAttempts);
  });

  it('stops retrying when the next delay would pass maxTotalMs', async () => {
    const server = await serve();
    server.fault('status', 50, { status: 502 });
    const started = performance.now();
    const error = await failure(
      fetchFrom(server, { retry: { maxAttempts: 50, minDelayMs: 100, maxDelayMs: 400, maxTotalMs: 700 } }),
    );
    const ms = performance.now() - started;
    expect(error.code).toBe('E_FEED_HTTP');
    expect(error.message).toContain('no time left to retry within 0.7 s');
    expect(ms).toBeLessThan(700);
    // Delays are half fixed, half random: 50–100, 100–200, 200–400, then 200–400 ms (capped). The first
    // three always fit in 0.7 s; a fourth fits only when the draws are low (at least 550 ms in all).
    expect(server.requests.length).toBeGreaterThanOrEqual(3);
    expect(server.requests.length).toBeLessThanOrEqual(5);
  });

  it('reports a truncated JSON body as E_FEED_BODY with the position, not retried', async () => {
    const server = await serve();
    server.fault('truncated');
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_BODY');
    expect(error.message).toMatch(/invalid JSON at position \d+/);
    expect(error.message).toContain('body starts "[{"id":600000,');
    expect(server.requests).toHaveLength(1);
  });

  it('reports a JSON object as E_FEED_BODY, quoting the start of the body', async () => {
    const server = await serve();
    server.fault('notArray');
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_BODY');
    expect(error.message).toContain('JSON object, not an array; body starts "{"error":"x"}"');
  });

  it('quotes at most 80 characters of a non-JSON body, on one line', async () => {
    const server = await serve();
    const page = `<!DOCTYPE html>\n<html>\n<body>\u0007${'Underhåll pågår. '.repeat(20)}</body></html>`;
    server.setBody(page);
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_BODY');
    const quoted = /body starts "(.*)…"$/.exec(error.message)?.[1];
    expect(quoted).toBe(page.slice(0, 80).replaceAll('\n', ' ').replaceAll('\u0007', ' '));
  });

  it('gets the queued responses in order, then the last again, each after the server delay', async () => {
    const server = await serve();
    const bodies = [makeEvents(3), makeEvents(2), makeEvents(1)].map((events) => JSON.stringify(events));
    server.setResponses(bodies);
    server.delayMs = 100;
    server.fault('truncated');
    await expect(fetchFrom(server)).rejects.toMatchObject({ code: 'E_FEED_BODY' });
    const lengths: number[] = [];
    for (let k = 0; k < 4; k++) {
      const result = await fetchFrom(server);
      expect(result.ms).toBeGreaterThanOrEqual(95);
      lengths.push(result.events.length);
    }
    expect(lengths).toEqual([3, 2, 1, 1]);
  });

  it('returns elements as they are: validating them is not its job', async () => {
    const server = await serve(MALFORMED_BODY);
    const result = await fetchFrom(server);
    expect(result.events).toEqual(JSON.parse(MALFORMED_BODY));
  });

  it('times out a body that stalls, retrying it', async () => {
    const server = await serve();
    server.fault('stall', 2);
    const error = await failure(
      fetchFrom(server, { bodyTimeoutMs: 150, retry: { ...FAST_RETRY, maxAttempts: 2 } }),
    );
    expect(error.code).toBe('E_FEED_NETWORK');
    expect(error.message).toContain(`the response body from ${new URL(server.url).host} stalled`);
    expect(error.message).toContain('(UND_ERR_BODY_TIMEOUT) (2 attempts in');
    expect(server.requests).toHaveLength(2);

    server.fault('stall');
    const result = await fetchFrom(server, { bodyTimeoutMs: 150 });
    expect(result.attempts).toBe(2);
    expect(result.events).toEqual(EVENTS);
  });

  it('times out a server that never sends headers', async () => {
    const server = await serve();
    server.fault('stallHeaders', 5);
    const error = await failure(
      fetchFrom(server, { headersTimeoutMs: 150, retry: { ...FAST_RETRY, maxAttempts: 1 } }),
    );
    expect(error.code).toBe('E_FEED_NETWORK');
    expect(error.message).toContain('(UND_ERR_HEADERS_TIMEOUT)');
    expect(server.requests).toHaveLength(1);
  });

  it('cuts an attempt in flight at maxTotalMs', async () => {
    const server = await serve();
    server.fault('stallHeaders', 5);
    const started = performance.now();
    const error = await failure(fetchFrom(server, { retry: { ...FAST_RETRY, maxTotalMs: 300 } }));
    expect(performance.now() - started).toBeLessThan(1500);
    expect(error.code).toBe('E_FEED_NETWORK');
    expect(error.message).toContain('failed: no complete answer within 0.3 s (1 attempt)');
  });

  it('stops at the caller’s abort signal', async () => {
    const server = await serve();
    server.fault('stallHeaders', 5);
    const error = await failure(fetchFrom(server, { signal: AbortSignal.timeout(100) }));
    expect(error.code).toBe('E_FEED_NETWORK');
    expect(error.message).toMatch(/aborted: .*timeout/i);
  });

  it.each([
    { encoding: 'none', encodings: [] },
    { encoding: 'gzip', encodings: ['gzip' as const] },
    { encoding: 'br', encodings: ['br' as const] },
  ])('stops an oversized body ($encoding) at the cap with E_FEED_TOO_LARGE', async ({ encodings }) => {
    const server = await serve();
    server.encodings = encodings;
    server.fault('oversized', 1, { bytes: 50_000_000 });
    const started = performance.now();
    const error = await failure(fetchFrom(server, { maxBodyBytes: 200_000 }));
    expect(error.code).toBe('E_FEED_TOO_LARGE');
    expect(error.message).toContain('response body exceeds the 200 kB cap (maxBodyBytes 200000)');
    expect(server.requests).toHaveLength(1);
    // Early stop: 50 MB would take far longer to stream and decode.
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('retries a reset connection, and names the cause when resets persist', async () => {
    const server = await serve();
    server.fault('reset');
    const result = await fetchFrom(server);
    expect(result.attempts).toBe(2);
    expect(result.events).toHaveLength(500);

    server.fault('reset', 10);
    const error = await failure(fetchFrom(server));
    expect(error.code).toBe('E_FEED_NETWORK');
    expect(error.message).toMatch(/\((ECONNRESET|UND_ERR_SOCKET)\) \(4 attempts in/);
  });

  it('reports a refused connection as E_FEED_NETWORK naming the host and ECONNREFUSED', async () => {
    const server = await serve();
    const { host } = new URL(server.url);
    await server.close();
    const retries: FeedRetryInfo[] = [];
    const error = await failure(fetchFrom(server, { onRetry: (info) => retries.push(info) }));
    expect(error.code).toBe('E_FEED_NETWORK');
    expect(error.message).toContain(`connection to ${host} refused (ECONNREFUSED) (4 attempts in`);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
  });

  it('follows a redirect', async () => {
    const server = await serve();
    server.handler((_request, url) =>
      url.pathname === '/old' ? { status: 301, body: '', headers: { location: '/api/events' } } : undefined,
    );
    const result = await fetchFeed({ url: server.url.replace('/api/events', '/old'), userAgent: USER_AGENT });
    expect(result.events).toEqual(EVENTS);
    expect(server.requests.map((r) => r.url)).toEqual(['/old', '/api/events']);
  });

  it('rejects an unsupported or corrupt content-encoding as E_FEED_BODY', async () => {
    const server = await serve();
    server.encodings = [];
    server.handler(() => ({ body: EVENTS_BODY, headers: { 'content-encoding': 'zstd-ish' } }));
    const unsupported = await failure(fetchFrom(server));
    expect(unsupported.code).toBe('E_FEED_BODY');
    expect(unsupported.message).toContain('unsupported content-encoding "zstd-ish"');

    server.handler(() => ({ body: EVENTS_BODY, headers: { 'content-encoding': 'gzip' } }));
    const corrupt = await failure(fetchFrom(server));
    expect(corrupt.code).toBe('E_FEED_BODY');
    expect(corrupt.message).toContain('cannot decode the gzip body');
    expect(server.requests).toHaveLength(2);
  });

  it('rejects a URL that is not http(s) as E_CONFIG', async () => {
    await expect(
      fetchFeed({ url: 'ftp://polisen.se/api/events', userAgent: USER_AGENT }),
    ).rejects.toMatchObject({
      code: 'E_CONFIG',
    });
    await expect(fetchFeed({ url: 'polisen.se/api/events', userAgent: USER_AGENT })).rejects.toMatchObject({
      code: 'E_CONFIG',
    });
  });

  it.skipIf(!replayFileAvailable())('returns a recorded response element for element', async () => {
    const replay = await loadReplay();
    // A response from the middle of the year, and the one short response.
    const picked = [
      replay.responses[Math.floor(replay.responses.length / 2)],
      replay.responses.find((r) => r.versions !== undefined && r.versions.length < 500),
    ];
    for (const response of picked) {
      if (response?.versions === undefined) throw new Error('expected a recorded array response');
      const server = await serve(responseBody(replay, response));
      for (const encodings of [['gzip'], ['br'], []] as const) {
        server.encodings = [...encodings];
        const result = await fetchFrom(server);
        expect(result.events).toHaveLength(response.versions.length);
        result.events.forEach((event, k) => {
          expect(event).toEqual(replay.versions[response.versions?.[k] ?? -1]);
        });
      }
    }
  });
  if (!replayFileAvailable()) console.warn(REPLAY_SKIP_REASON);
});
