/**
 * The OCI store with the real oci-objectstorage SDK against a local server that verifies every
 * request signature with the test key's public half.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CircuitBreaker, SimpleAuthenticationDetailsProvider } from 'oci-common';
import { ObjectStorageClient } from 'oci-objectstorage';
import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  type MockInstance,
  vi,
} from 'vitest';
import { CollectorError, PreconditionFailedError } from '../src/errors.js';
import type { OciApiKey } from '../src/secrets/credentials.js';
import type { ObjectStore } from '../src/store/object-store.js';
import { createOciStore, type OciStoreOptions } from '../src/store/oci-store.js';
import { type OciTestServer, startOciServer } from './support/oci-server.js';
import { createTestKey, ociKeyId, testKey, testOciApiKey } from './support/test-keys.js';

const NAMESPACE = 'axaxnpcrorw5';
const BUCKET = 'polisen-events';

let server: OciTestServer;
let apiKey: OciApiKey;
const warnings: { obj: object; msg: string }[] = [];
const logger = { warn: (obj: object, msg: string) => warnings.push({ obj, msg }) };
let consoleSpies: MockInstance[] = [];

function store(overrides: Partial<OciStoreOptions> = {}): Promise<ObjectStore> {
  return createOciStore({
    namespace: NAMESPACE,
    bucket: BUCKET,
    region: 'eu-stockholm-1',
    endpoint: server.url,
    auth: { kind: 'api-key', key: apiKey },
    logger,
    ...overrides,
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

function requestsSince(index: number) {
  return server.requests.slice(index);
}

beforeAll(async () => {
  apiKey = testOciApiKey();
  server = await startOciServer({
    publicKeyPem: testKey().publicKeyPem,
    keyId: ociKeyId(apiKey),
    namespace: NAMESPACE,
  });
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  warnings.length = 0;
  server.faults.reset();
  server.listPageSize = 1000;
  consoleSpies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation(() => {}),
  );
});

afterEach(() => {
  const printed = consoleSpies.flatMap((spy) => spy.mock.calls);
  vi.restoreAllMocks();
  // The SDK calls console.warn for every failed request (even a 404); none of it may get through.
  expect(printed).toEqual([]);
});

describe('test server', () => {
  it('refuses an unsigned request with 401 NotAuthenticated', async () => {
    const response = await fetch(`${server.url}/n/${NAMESPACE}/b/${BUCKET}/o/anything`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ code: 'NotAuthenticated' });
    expect(response.headers.get('opc-request-id')).toMatch(/^[0-9A-F]{32}$/);
  });

  it('serves namespace, HEAD and DELETE to the SDK client', async () => {
    const s = await store();
    const { etag } = await s.put('server/head-delete.json', Buffer.from('abc'));
    const client = new ObjectStorageClient(
      {
        authenticationDetailsProvider: new SimpleAuthenticationDetailsProvider(
          apiKey.tenancy,
          apiKey.user,
          apiKey.fingerprint,
          apiKey.privateKey,
          null,
        ),
      },
      { circuitBreaker: new CircuitBreaker({ disableClientCircuitBreaker: true }) },
    );
    client.endpoint = server.url;
    expect((await client.getNamespace({})).value).toBe(NAMESPACE);
    const target = { namespaceName: NAMESPACE, bucketName: BUCKET, objectName: 'server/head-delete.json' };
    const head = await client.headObject(target);
    expect(head.eTag).toBe(etag);
    expect(head.contentLength).toBe(3);
    await client.deleteObject({ ...target, ifMatch: etag });
    expect(server.objects.has(`${BUCKET}/server/head-delete.json`)).toBe(false);
    expect(await s.get('server/head-delete.json')).toBeUndefined();
  });
});

describe('OCI store', () => {
  it('describes itself as oci://namespace/bucket', async () => {
    expect((await store()).description).toBe(`oci://${NAMESPACE}/${BUCKET}`);
  });

  it.each([
    'events/2024/03/01/events-1709251200.jsonl',
    'metadata/Västra Götaland/last seen å.json',
    'odd/a+b%20c?d#e&f=g.txt',
  ])('round-trips %j byte for byte', async (name) => {
    const s = await store();
    const body = Buffer.from(`{"id":1,"name":${JSON.stringify(name)}}\n`.repeat(50));
    const { etag } = await s.put(name, body, { contentType: 'application/x-ndjson' });
    expect(server.objects.get(`${BUCKET}/${name}`)?.body.equals(body)).toBe(true);
    const got = await s.get(name);
    expect(got?.body.equals(body)).toBe(true);
    expect(got?.etag).toBe(etag);
  });

  it('round-trips an empty object', async () => {
    const s = await store();
    await s.put('empty/zero.jsonl', Buffer.alloc(0));
    expect((await s.get('empty/zero.jsonl'))?.body.length).toBe(0);
  });

  it('returns undefined for a missing object, without retrying', async () => {
    const s = await store();
    const before = server.requests.length;
    expect(await s.get('missing/nothing-here.json')).toBeUndefined();
    expect(requestsSince(before).map((r) => r.status)).toEqual([404]);
  });

  it('gives a new ETag on every write', async () => {
    const s = await store();
    const first = await s.put('etag/one.json', Buffer.from('1'));
    const second = await s.put('etag/one.json', Buffer.from('1'));
    expect(second.etag).not.toBe(first.etag);
    expect((await s.get('etag/one.json'))?.etag).toBe(second.etag);
  });

  it('replaces with the current ETag and refuses a stale one', async () => {
    const s = await store();
    const { etag } = await s.put('cas/meta.json', Buffer.from('v1'));
    const next = await s.put('cas/meta.json', Buffer.from('v2'), { ifMatch: etag });
    const error = await rejection(s.put('cas/meta.json', Buffer.from('v3'), { ifMatch: etag }));
    expect(error).toBeInstanceOf(PreconditionFailedError);
    expect((error as CollectorError).code).toBe('E_STORE_PRECONDITION');
    const current = await s.get('cas/meta.json');
    expect(current?.body.toString()).toBe('v2');
    expect(current?.etag).toBe(next.etag);
  });

  it('creates with if-none-match * once, then refuses (412 and 409 alike)', async () => {
    const s = await store();
    await s.put('create/once.json', Buffer.from('first'), { ifNoneMatch: '*' });
    expect(
      await rejection(s.put('create/once.json', Buffer.from('second'), { ifNoneMatch: '*' })),
    ).toBeInstanceOf(PreconditionFailedError);
    server.faults.ifNoneMatchConflictStatus = 409;
    expect(
      await rejection(s.put('create/once.json', Buffer.from('third'), { ifNoneMatch: '*' })),
    ).toBeInstanceOf(PreconditionFailedError);
    expect((await s.get('create/once.json'))?.body.toString()).toBe('first');
  });

  it('lists a prefix across pages, sorted', async () => {
    const s = await store();
    const names = Array.from(
      { length: 10 },
      (_, i) => `list/2024/${String((i * 7) % 10).padStart(2, '0')}/e.jsonl`,
    );
    for (const name of names) await s.put(name, Buffer.from(name));
    await s.put('listx/outside.json', Buffer.from('x'));
    await s.put('lis', Buffer.from('x'));
    server.listPageSize = 3;
    const before = server.requests.length;
    expect(await s.list('list/')).toEqual([...names].sort());
    expect(requestsSince(before).filter((r) => r.method === 'GET')).toHaveLength(4);
    expect(await s.list('list/2024/0')).toEqual([...names].sort());
    expect(await s.list('nothing-under-here/')).toEqual([]);
    const all = await s.list('');
    expect(all).toContain('lis');
    expect(all).toEqual([...all].sort());
  });

  it('lists and pages through names with URL-special characters', async () => {
    const s = await store();
    const names = [
      'special/a&b=c',
      'special/a+b',
      'special/a b',
      'special/a#b',
      'special/a%2Fb',
      'special/a?b',
      'special/å',
    ];
    for (const name of names) await s.put(name, Buffer.from(name));
    server.listPageSize = 1;
    expect(await s.list('special/')).toEqual([...names].sort());
    expect(await s.list('special/a+')).toEqual(['special/a+b']);
    expect(await s.list('special/a&')).toEqual(['special/a&b=c']);
    expect(await s.list('special/a%')).toEqual(['special/a%2Fb']);
  });

  it('reports a wrong namespace as a configuration error', async () => {
    const s = await store({ namespace: 'not-my-namespace' });
    const error = await rejection(s.list('events/'));
    expect(error).toMatchObject({ code: 'E_STORE_CONFIG' });
    expect((error as Error).message).toContain('NamespaceNotFound');
  });
});

describe('OCI store failures', () => {
  it('fails fast with E_STORE_AUTH when the signature is refused, naming the bucket and no key material', async () => {
    const wrong = createTestKey();
    // Same keyId as the registered key, signed with another private key: the server must check the signature.
    const s = await store({ auth: { kind: 'api-key', key: { ...apiKey, privateKey: wrong.privateKeyPem } } });
    const before = server.requests.length;
    const started = Date.now();
    const error = await rejection(s.get('events/x.jsonl'));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error).toBeInstanceOf(CollectorError);
    expect(error).toMatchObject({ code: 'E_STORE_AUTH', exitCode: 2 });
    const message = (error as Error).message;
    expect(message).toContain(BUCKET);
    expect(message).toMatch(/signature/);
    for (const secret of [wrong.privateKeyPem, apiKey.privateKey]) {
      for (const line of secret.split('\n').filter((l) => l.length > 20)) expect(message).not.toContain(line);
    }
    expect(message).not.toMatch(/-----BEGIN|Signature version=|keyId=/);
    expect(message).toContain(apiKey.fingerprint);
    expect(requestsSince(before).map((r) => r.status)).toEqual([401]);
    await expect(s.put('events/x.jsonl', Buffer.from('x'))).rejects.toMatchObject({ code: 'E_STORE_AUTH' });
    expect(server.objects.has(`${BUCKET}/events/x.jsonl`)).toBe(false);
  });

  it('refuses a private key it cannot parse before any request', async () => {
    const error = await rejection(
      store({ auth: { kind: 'api-key', key: { ...apiKey, privateKey: 'not a key' } } }),
    );
    expect(error).toMatchObject({ code: 'E_STORE_AUTH' });
    expect((error as Error).message).not.toContain('not a key');
  });

  it('rides out a 503 burst shorter than maxAttempts', async () => {
    const s = await store({ maxAttempts: 3 });
    server.faults.failNext(503, 2);
    const before = server.requests.length;
    await s.put('retry/ok.json', Buffer.from('ok'));
    expect(requestsSince(before).map((r) => r.status)).toEqual([503, 503, 200]);
    // Our retry lines only: the SDK's own lines for these failures are not forwarded.
    expect(warnings.map((w) => w.msg)).toEqual(Array(2).fill('OCI Object Storage request failed; retrying'));
    expect((await s.get('retry/ok.json'))?.body.toString()).toBe('ok');
  });

  it('gives up with E_STORE after maxAttempts on a longer burst', async () => {
    const s = await store({ maxAttempts: 3 });
    server.faults.failNext(503, 5);
    const started = Date.now();
    const error = await rejection(s.get('retry/ok.json'));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error).toMatchObject({ code: 'E_STORE' });
    expect((error as Error).message).toMatch(
      /get of "retry\/ok\.json".*HTTP 503 ServiceUnavailable.*after 3 attempts/,
    );
    expect(server.faults.pending).toBe(2);
  });

  it('stops retrying when the next wait would pass maxTotalMs', async () => {
    const s = await store({ maxAttempts: 50, maxTotalMs: 1200 });
    server.faults.failNext(500, 100);
    const before = server.requests.length;
    const started = Date.now();
    await expect(s.get('retry/ok.json')).rejects.toMatchObject({ code: 'E_STORE' });
    expect(Date.now() - started).toBeLessThan(1200 + 500);
    const attempts = requestsSince(before).length;
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThan(6);
  });

  it('waits as long as a 429 Retry-After asks', async () => {
    const s = await store();
    await s.put('retry/throttled.json', Buffer.from('t'));
    server.faults.failNext(429, 1, { retryAfterSeconds: 1 });
    const started = Date.now();
    expect((await s.get('retry/throttled.json'))?.body.toString()).toBe('t');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(warnings.find((w) => w.msg.includes('retrying'))?.obj).toMatchObject({
      status: 429,
      delayMs: 1000,
    });
  });

  it('gives up at once when Retry-After is beyond the retry budget', async () => {
    const s = await store({ maxTotalMs: 5000 });
    server.faults.failNext(429, 1, { retryAfterSeconds: 60 });
    const started = Date.now();
    const error = await rejection(s.get('retry/throttled.json'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect((error as Error).message).toMatch(/HTTP 429 TooManyRequests.*wait 60 s/);
  });

  it('treats a conditional write that landed before a 500 as done', async () => {
    const s = await store();
    server.faults.failNext(500, 1, { afterApplying: true });
    const { etag } = await s.put('ambiguous/created.json', Buffer.from('mine'), { ifNoneMatch: '*' });
    expect(etag).toBe(server.objects.get(`${BUCKET}/ambiguous/created.json`)?.etag);
    // Someone else's bytes under the name are a real conflict.
    server.faults.failNext(500, 1);
    await expect(
      s.put('ambiguous/created.json', Buffer.from('other'), { ifNoneMatch: '*' }),
    ).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it('retries a request that times out, then reports the timeout', async () => {
    const s = await store({ maxAttempts: 2, requestTimeoutMs: 150 });
    server.faults.delayMs = 400;
    const error = await rejection(s.get('slow/x.json'));
    expect(error).toMatchObject({ code: 'E_STORE' });
    expect((error as Error).message).toMatch(/timed out after 2 attempts/);
  });

  it('reports a refused connection as E_STORE after its attempts', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const s = await store({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2 });
    const error = await rejection(s.list('events/'));
    expect(error).toMatchObject({ code: 'E_STORE' });
    expect((error as Error).message).toMatch(/network error \(ECONNREFUSED\) after 2 attempts/);
  });

  it('stops when the caller aborts', async () => {
    const s = await store();
    server.faults.delayMs = 2000;
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('run cancelled')), 100);
    const error = await rejection(s.get('slow/x.json', { signal: controller.signal }));
    expect((error as Error).message).toBe('run cancelled');
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
