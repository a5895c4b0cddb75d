/**
 * Dead man's switch pings in the healthchecks.io convention: `<url>/start` when a run starts, `<url>` when it
 * succeeds, `<url>/fail` when it fails. A `rid` query parameter (one per pinger) pairs start with its end so
 * the service can show run durations even when runs overlap.
 *
 * Monitoring must never break collecting: pings never throw, each is bounded by timeoutMs, and a failure
 * is only reported through `onError`. The ping URL is a credential of sorts (anyone holding it can ping), so
 * error messages show only its origin.
 */

import { randomUUID } from 'node:crypto';
import { CollectorError } from '../errors.js';
import { Agent, request } from '../http/undici-parts.js';

export type PingKind = 'start' | 'success' | 'fail';

export interface PingerOptions {
  /** Bound on each ping, connect to body end. Default 5,000. */
  timeoutMs?: number;
  /** Default `polisen-collector`. */
  userAgent?: string;
  /** Called when a ping fails (network, timeout, non-2xx). The message never contains the full URL. */
  onError?: (error: Error, kind: PingKind) => void;
  /** Pairs start/success/fail of one run; default a random UUID. */
  runId?: string;
}

export interface Pinger {
  /** False when no URL was configured; every ping is then a no-op. */
  readonly enabled: boolean;
  start(body?: string): Promise<void>;
  success(body?: string): Promise<void>;
  fail(body?: string): Promise<void>;
}

/** healthchecks.io keeps at most 100 kB of a ping body. */
const MAX_BODY_BYTES = 100_000;

/**
 * A pinger for the check at `url` (e.g. `https://hc-ping.com/<uuid>`), or a no-op one when url is undefined or
 * empty. Throws CollectorError E_CONFIG at once when url is not an http(s) URL; the pings themselves never throw.
 * A ping with a body is a POST (the service shows the body, e.g. the error line), without one a GET.
 */
export function createPinger(url: string | undefined, options: PingerOptions = {}): Pinger {
  if (url === undefined || url.trim() === '') {
    const noop = async () => {};
    return { enabled: false, start: noop, success: noop, fail: noop };
  }
  let base: URL;
  try {
    base = new URL(url.trim());
  } catch {
    base = new URL('invalid:');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new CollectorError('E_CONFIG', 'the healthcheck ping URL is not an http(s) URL', {
      hint: 'set it to the check URL, e.g. https://hc-ping.com/<uuid>',
    });
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  const userAgent = options.userAgent ?? 'polisen-collector';
  const runId = options.runId ?? randomUUID();
  const path = base.pathname.replace(/\/+$/, '');

  const ping = async (kind: PingKind, body: string | undefined): Promise<void> => {
    // One connection pool per ping, closed after it, so a ping never keeps the process alive.
    const agent = new Agent({ connect: { timeout: timeoutMs } });
    const target = new URL(base);
    target.pathname = kind === 'success' ? path || '/' : `${path}/${kind}`;
    target.searchParams.set('rid', runId);
    try {
      const response = await request(target, agent, {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          'user-agent': userAgent,
          ...(body === undefined ? {} : { 'content-type': 'text/plain; charset=utf-8' }),
        },
        body: body === undefined ? undefined : Buffer.from(body, 'utf8').subarray(0, MAX_BODY_BYTES),
        signal: AbortSignal.timeout(timeoutMs),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await response.body.dump({ limit: 64 * 1024 });
      if (response.statusCode < 200 || response.statusCode > 299) {
        throw new Error(`answered HTTP ${response.statusCode}`);
      }
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      const reason = isTimeout(error) ? `timed out after ${timeoutMs} ms` : why;
      try {
        options.onError?.(new Error(`healthcheck ping "${kind}" to ${base.origin} failed: ${reason}`), kind);
      } catch {
        // A throwing callback must not turn a ping into a failed run.
      }
    } finally {
      await agent.destroy().catch(() => {});
    }
  };

  return {
    enabled: true,
    start: (body) => ping('start', body),
    success: (body) => ping('success', body),
    fail: (body) => ping('fail', body),
  };
}

function isTimeout(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'TimeoutError' ||
      ('code' in error &&
        (error.code === 'UND_ERR_HEADERS_TIMEOUT' || error.code === 'UND_ERR_BODY_TIMEOUT')))
  );
}
