import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CollectorError } from '../src/errors.js';
import { createPinger, type PingKind } from '../src/ops/healthcheck-ping.js';
import { type PingServer, startPingServer } from './support/ping-server.js';

const CHECK = '5c6f1b2e-1d7a-4c2e-9f41-0123456789ab';
let server: PingServer;

beforeAll(async () => {
  server = await startPingServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
  server.respondWith(200);
  server.hang(false);
});

function collectErrors() {
  const errors: { message: string; kind: PingKind }[] = [];
  return { errors, onError: (error: Error, kind: PingKind) => errors.push({ message: error.message, kind }) };
}

/** A port nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('createPinger', () => {
  it('pings <url>/start, <url> and <url>/fail with one run id, GET without body and POST with one', async () => {
    const { errors, onError } = collectErrors();
    const pinger = createPinger(`${server.origin}/ping/${CHECK}/`, {
      userAgent: 'polisen-collector/9.9',
      onError,
    });
    expect(pinger.enabled).toBe(true);
    await pinger.start();
    await pinger.success('fetched 500, new 12');
    await pinger.fail('E_FEED_HTTP the API answered 503');

    expect(errors).toEqual([]);
    expect(server.requests.map((r) => [r.method, r.path, r.body])).toEqual([
      ['GET', `/ping/${CHECK}/start`, ''],
      ['POST', `/ping/${CHECK}`, 'fetched 500, new 12'],
      ['POST', `/ping/${CHECK}/fail`, 'E_FEED_HTTP the API answered 503'],
    ]);
    const rids = new Set(server.requests.map((r) => r.query.rid));
    expect(rids.size).toBe(1);
    expect([...rids][0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.requests.every((r) => r.userAgent === 'polisen-collector/9.9')).toBe(true);
    expect(server.requests[1]?.contentType).toMatch(/^text\/plain/);
  });

  it('truncates a body to the 100 kB healthchecks.io keeps', async () => {
    await createPinger(`${server.origin}/${CHECK}`).fail('x'.repeat(150_000));
    expect(server.requests[0]?.body.length).toBe(100_000);
  });

  it('reports a non-2xx answer through onError, resolves, and keeps the check id out of the message', async () => {
    server.respondWith(404);
    const { errors, onError } = collectErrors();
    await expect(createPinger(`${server.origin}/${CHECK}`, { onError }).success()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]?.kind).toBe('success');
    expect(errors[0]?.message).toContain('HTTP 404');
    expect(errors[0]?.message).toContain(server.origin);
    expect(errors[0]?.message).not.toContain(CHECK);
  });

  it('resolves quickly without throwing when nothing listens on the port', async () => {
    const port = await closedPort();
    const { errors, onError } = collectErrors();
    const started = performance.now();
    await createPinger(`http://127.0.0.1:${port}/${CHECK}`, { onError }).start();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toMatch(/ECONNREFUSED|connect/);
  });

  it('gives up after timeoutMs when the server never answers', async () => {
    server.hang(true);
    const { errors, onError } = collectErrors();
    const started = performance.now();
    await createPinger(`${server.origin}/${CHECK}`, { timeoutMs: 300, onError }).success();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expect(server.requests).toHaveLength(1);
    expect(errors[0]?.message).toContain('timed out after 300 ms');
  });

  it('does not throw when the onError callback throws', async () => {
    server.respondWith(500);
    const pinger = createPinger(`${server.origin}/${CHECK}`, {
      onError: () => {
        throw new Error('logger broke');
      },
    });
    await expect(pinger.fail('boom')).resolves.toBeUndefined();
    expect(server.requests).toHaveLength(1);
  });

  it('is a no-op without a URL', async () => {
    for (const url of [undefined, '', '  ']) {
      const pinger = createPinger(url);
      expect(pinger.enabled).toBe(false);
      await pinger.start();
      await pinger.success('x');
      await pinger.fail('y');
    }
    expect(server.requests).toHaveLength(0);
  });

  it('rejects a URL that is not http(s) when created', () => {
    for (const url of ['hc-ping.com/abc', 'ftp://example.org/x', 'not a url']) {
      expect(() => createPinger(url)).toThrow(CollectorError);
      try {
        createPinger(url);
      } catch (error) {
        expect((error as CollectorError).code).toBe('E_CONFIG');
      }
    }
  });
});
