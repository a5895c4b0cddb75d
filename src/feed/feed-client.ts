/**
 * The HTTP client of the feed: one GET of the Polisen events API with bounded retries, timeouts, decompression
 * and a body size cap; returns the parsed JSON array (its elements are validated elsewhere).
 *
 * Retries are a small loop here rather than undici's `interceptors.retry`: its RetryHandler resumes a body that
 * failed mid-way with a Range request (the feed changes every minute and the API ignores Range, so that fails),
 * has no jitter and no bound on the total time, and does not report the number of attempts. Every retry here is
 * a fresh, whole GET. Redirects use undici's own `interceptors.redirect`.
 */
import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { CollectorError } from '../errors.js';
import { Agent, redirectInterceptor, request } from '../http/undici-parts.js';
import { BodyDecodeError, BodyTooLargeError, readBody } from './read-body.js';

export type FeedRetryOptions = {
  /** Attempts in all, the first included (default 5). */
  maxAttempts?: number;
  /** Delay before the first retry; doubled each time, with jitter (default 1000). */
  minDelayMs?: number;
  /** Longest delay between attempts; a longer Retry-After gives up instead (default 30000). */
  maxDelayMs?: number;
  /** Bound on the whole call, attempts and delays included (default 180000). */
  maxTotalMs?: number;
};

export type FeedRetryInfo = { attempt: number; delayMs: number; reason: string };

export type FeedOptions = {
  url: string;
  userAgent: string;
  signal?: AbortSignal;
  /** TCP + TLS connect timeout (default 10 s); applies only when no `dispatcher` is given. */
  connectTimeoutMs?: number;
  /** Time to the response headers (default 30 s). */
  headersTimeoutMs?: number;
  /** Longest silence while the body arrives (default 30 s). */
  bodyTimeoutMs?: number;
  /** Cap on the decompressed body (default 10 MB). */
  maxBodyBytes?: number;
  retry?: FeedRetryOptions;
  /** A caller's dispatcher (kept open); otherwise each call uses its own Agent and closes it. */
  dispatcher?: Dispatcher;
  onRetry?: (info: FeedRetryInfo) => void;
  /**
   * Awaited before every attempt, retries included (the pacer: each attempt is an API call). Its
   * CollectorError ends the call as it is; aborted by the signal it gets, the call fails as aborted.
   */
  beforeAttempt?: (attempt: number, signal: AbortSignal) => Promise<void>;
};

export type FeedResult = {
  events: unknown[];
  /** Decompressed body size. */
  bodyBytes: number;
  /** Bytes received on the wire (compressed). */
  wireBytes: number;
  status: number;
  attempts: number;
  ms: number;
};

export const FEED_DEFAULTS = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  maxBodyBytes: 10_000_000,
  maxAttempts: 5,
  minDelayMs: 1_000,
  maxDelayMs: 30_000,
  maxTotalMs: 180_000,
  maxRedirections: 3,
} as const;

const SNIPPET_CHARS = 80;

/** Why one attempt failed: retried, or final. */
type Failure = {
  retry: boolean;
  /** Short text for onRetry and the final message, e.g. `HTTP 503 Service Unavailable`. */
  reason: string;
  code: 'E_FEED_NETWORK' | 'E_FEED_HTTP' | 'E_FEED_NOT_FOUND' | 'E_FEED_BODY' | 'E_FEED_TOO_LARGE';
  cause?: unknown;
  retryAfterMs?: number;
};

/** An attempt's answer that is final and not an exception from undici. */
class AttemptFailure extends Error {
  constructor(readonly failure: Failure) {
    super(failure.reason);
  }
}

export async function fetchFeed(options: FeedOptions): Promise<FeedResult> {
  const url = parseUrl(options.url);
  const label = `GET ${displayUrl(url)}`;
  const maxAttempts = Math.max(1, options.retry?.maxAttempts ?? FEED_DEFAULTS.maxAttempts);
  const minDelayMs = options.retry?.minDelayMs ?? FEED_DEFAULTS.minDelayMs;
  const maxDelayMs = options.retry?.maxDelayMs ?? FEED_DEFAULTS.maxDelayMs;
  const maxTotalMs = options.retry?.maxTotalMs ?? FEED_DEFAULTS.maxTotalMs;

  const started = performance.now();
  const elapsed = (): number => performance.now() - started;
  // The total bound also cuts an attempt in flight, so the call never outlives maxTotalMs.
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(), maxTotalMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal;

  const base =
    options.dispatcher ??
    new Agent({ connect: { timeout: options.connectTimeoutMs ?? FEED_DEFAULTS.connectTimeoutMs } });
  const ownAgent = base === options.dispatcher ? undefined : base;
  const dispatcher = base.compose(redirectInterceptor({ maxRedirections: FEED_DEFAULTS.maxRedirections }));

  const tally = (attempts: number): string =>
    attempts > 1 ? ` (${attempts} attempts in ${seconds(elapsed())})` : '';

  try {
    for (let attempt = 1; ; attempt++) {
      let failure: Failure;
      try {
        await options.beforeAttempt?.(attempt, signal);
        const answer = await attemptOnce(url, options, dispatcher, signal);
        return { ...answer, attempts: attempt, ms: Math.round(elapsed()) };
      } catch (error) {
        if (options.signal?.aborted) {
          const reason: unknown = options.signal.reason;
          if (reason instanceof CollectorError) throw reason;
          throw new CollectorError('E_FEED_NETWORK', `${label} aborted: ${describeReason(reason)}`, {
            cause: reason,
          });
        }
        // The pacer's own refusal (budget spent, lock stuck) is not a network failure to retry.
        if (error instanceof CollectorError) throw error;
        if (deadline.signal.aborted) {
          throw new CollectorError(
            'E_FEED_NETWORK',
            `${label} failed: no complete answer within ${seconds(maxTotalMs)} (${attempt} attempt${attempt > 1 ? 's' : ''})`,
            { cause: error },
          );
        }
        failure = error instanceof AttemptFailure ? error.failure : networkFailure(error, url);
      }

      let giveUp = '';
      let delayMs = 0;
      if (failure.retry && attempt < maxAttempts) {
        if (failure.retryAfterMs !== undefined && failure.retryAfterMs > maxDelayMs) {
          giveUp = `; the server asked to wait ${seconds(failure.retryAfterMs)}, over the ${seconds(maxDelayMs)} retry limit`;
        } else {
          delayMs = failure.retryAfterMs ?? backoff(attempt, minDelayMs, maxDelayMs);
          if (elapsed() + delayMs >= maxTotalMs)
            giveUp = `; no time left to retry within ${seconds(maxTotalMs)}`;
        }
      }
      if (!failure.retry || attempt >= maxAttempts || giveUp !== '') {
        throw new CollectorError(
          failure.code,
          `${label} failed: ${failure.reason}${tally(attempt)}${giveUp}`,
          {
            cause: failure.cause,
          },
        );
      }

      options.onRetry?.({ attempt, delayMs, reason: failure.reason });
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        // Aborted while waiting: the next attempt's request sees the aborted signal and reports it.
      }
    }
  } finally {
    clearTimeout(deadlineTimer);
    // destroy, not close: nothing of this call is still in flight that is worth waiting for.
    await ownAgent?.destroy();
  }
}

async function attemptOnce(
  url: URL,
  options: FeedOptions,
  dispatcher: Dispatcher,
  signal: AbortSignal,
): Promise<Omit<FeedResult, 'attempts' | 'ms'>> {
  const maxBodyBytes = options.maxBodyBytes ?? FEED_DEFAULTS.maxBodyBytes;
  const response = await request(url, dispatcher, {
    method: 'GET',
    signal,
    headers: {
      'user-agent': options.userAgent,
      accept: 'application/json',
      'accept-encoding': 'gzip, br',
    },
    headersTimeout: options.headersTimeoutMs ?? FEED_DEFAULTS.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs ?? FEED_DEFAULTS.bodyTimeoutMs,
  });
  const status = response.statusCode;

  if (status < 200 || status > 299) {
    // Read (a bounded part of) the error page so the connection can be reused, then report the status.
    await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    throw new AttemptFailure(statusFailure(status, response.headers));
  }

  let read: Awaited<ReturnType<typeof readBody>>;
  try {
    read = await readBody(response.body, response.headers['content-encoding'], maxBodyBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      throw new AttemptFailure({
        retry: false,
        code: 'E_FEED_TOO_LARGE',
        reason: `${error.message} (maxBodyBytes ${maxBodyBytes})`,
        cause: error,
      });
    }
    if (error instanceof BodyDecodeError) {
      throw new AttemptFailure({ retry: false, code: 'E_FEED_BODY', reason: error.message, cause: error });
    }
    throw error;
  }

  return {
    events: parseEvents(read.bytes, status),
    bodyBytes: read.bodyBytes,
    wireBytes: read.wireBytes,
    status,
  };
}

/** The body as a JSON array, or an E_FEED_BODY failure saying what it was instead. Never retried: the next run is. */
function parseEvents(bytes: Buffer, status: number): unknown[] {
  // TextDecoder drops a UTF-8 byte order mark, which JSON.parse would reject.
  const text = new TextDecoder('utf-8').decode(bytes);
  const bodyFailure = (what: string): AttemptFailure =>
    new AttemptFailure({ retry: false, code: 'E_FEED_BODY', reason: what });

  if (text.trim() === '') {
    throw bodyFailure(
      bytes.length === 0
        ? `empty body (HTTP ${status}, 0 bytes)`
        : `empty body (HTTP ${status}, ${bytes.length} bytes of whitespace)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw bodyFailure(
      `${describeJsonError(error, text)} in ${bytes.length} bytes; body starts ${snippet(text)}`,
    );
  }
  if (!Array.isArray(parsed)) {
    throw bodyFailure(`JSON ${jsonKind(parsed)}, not an array; body starts ${snippet(text)}`);
  }
  return parsed;
}

function statusFailure(status: number, headers: Record<string, string | string[] | undefined>): Failure {
  const reason = `HTTP ${status}${STATUS_CODES[status] ? ` ${STATUS_CODES[status]}` : ''}`;
  if (status === 404) return { retry: false, code: 'E_FEED_NOT_FOUND', reason };
  if (status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers['retry-after']);
    return {
      retry: true,
      code: 'E_FEED_HTTP',
      reason,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  if (status >= 300 && status < 400) {
    const location = headers.location;
    const where = typeof location === 'string' ? ` to ${location.slice(0, 200)}` : '';
    return {
      retry: false,
      code: 'E_FEED_HTTP',
      reason: `${reason}${where} (too many redirects or unsupported)`,
    };
  }
  return { retry: false, code: 'E_FEED_HTTP', reason };
}

const NETWORK_REASONS: Record<string, (host: string) => string> = {
  ECONNREFUSED: (host) => `connection to ${host} refused`,
  ECONNRESET: (host) => `connection to ${host} reset`,
  UND_ERR_SOCKET: (host) => `connection to ${host} closed before the response was complete`,
  UND_ERR_CONNECT_TIMEOUT: (host) => `no connection to ${host} within the connect timeout`,
  UND_ERR_HEADERS_TIMEOUT: (host) => `no response headers from ${host} within the headers timeout`,
  UND_ERR_BODY_TIMEOUT: (host) => `the response body from ${host} stalled past the body timeout`,
  ENOTFOUND: (host) => `cannot resolve ${host}`,
  EAI_AGAIN: (host) => `cannot resolve ${host} (DNS temporarily unavailable)`,
  ETIMEDOUT: (host) => `connection to ${host} timed out`,
  EHOSTUNREACH: (host) => `${host} is unreachable`,
  ENETUNREACH: (host) => `network unreachable for ${host}`,
};

/** Codes for which a retry cannot help: a programming or configuration error. */
const NOT_RETRIED_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_ARG_TYPE']);

function networkFailure(error: unknown, url: URL): Failure {
  const code = errorCode(error);
  const host = url.host;
  if (code === undefined) {
    return {
      retry: false,
      code: 'E_FEED_NETWORK',
      reason: `request to ${host} failed: ${describeReason(error)}`,
      cause: error,
    };
  }
  const describe = NETWORK_REASONS[code];
  const text = describe ? describe(host) : `request to ${host} failed: ${describeReason(error)}`;
  return {
    retry: !NOT_RETRIED_CODES.has(code),
    code: 'E_FEED_NETWORK',
    reason: `${text} (${code})`,
    cause: error,
  };
}

/** The error's code, looking through undici's wrappers and Node's AggregateError (happy eyeballs). */
function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR' && code !== 'UND_ERR_REQ_RETRY') return code;
    current =
      current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : current.cause;
  }
  return undefined;
}

/** Exponential backoff with equal jitter: half the step fixed, half random, so clients do not retry in step. */
function backoff(attempt: number, minDelayMs: number, maxDelayMs: number): number {
  const step = Math.min(maxDelayMs, minDelayMs * 2 ** (attempt - 1));
  return Math.round(step / 2 + Math.random() * (step / 2));
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now. */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function describeJsonError(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position !== undefined) return `invalid JSON at position ${position}`;
  if (/unexpected end/i.test(message)) return `invalid JSON at position ${text.length} (ends early)`;
  // V8 echoes the body after the token ("…, "<body>" is not valid JSON"); keep only the token part.
  const token = /^Unexpected token '.{1,4}'/.exec(message)?.[0] ?? message.slice(0, 60);
  return `invalid JSON (${sanitise(token)})`;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  return typeof value === 'object' ? 'object' : typeof value;
}

/** The first characters of a body, safe for one log line: control characters shown as spaces, quoted. */
function snippet(text: string): string {
  const head = text.slice(0, SNIPPET_CHARS);
  return `"${sanitise(head)}${text.length > SNIPPET_CHARS ? '…' : ''}"`;
}

function sanitise(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
}

function describeReason(reason: unknown): string {
  return sanitise(reason instanceof Error ? reason.message : String(reason)).slice(0, 200);
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CollectorError(
      'E_CONFIG',
      `invalid feed URL "${sanitise(raw).slice(0, 200)}": not an absolute URL`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CollectorError(
      'E_CONFIG',
      `invalid feed URL ${displayUrl(url)}: only http and https are supported`,
    );
  }
  return url;
}

/** The URL without any user:password part, for messages. */
function displayUrl(url: URL): string {
  const shown = new URL(url.href);
  shown.username = '';
  shown.password = '';
  return shown.href;
}
