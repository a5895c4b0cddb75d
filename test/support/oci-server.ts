/**
 * An in-memory OCI Object Storage server for tests and benchmarks, on 127.0.0.1.
 * It checks the HTTP request signature of every request the way OCI does (draft-cavage
 * "Signature" scheme, rsa-sha256, keyId tenancy/user/fingerprint) so the real SDK's signing is exercised,
 * and speaks the subset of the API the collector uses: namespace, object GET/HEAD/PUT/DELETE
 * with if-match / if-none-match, and paginated listing.
 */
import { createHash, createPublicKey, createVerify, type KeyObject, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface OciTestObject {
  body: Buffer;
  etag: string;
  contentType: string;
  lastModified: Date;
}

export interface OciRequestRecord {
  method: string;
  /** The request target as received (percent-encoded path and query). */
  path: string;
  status: number;
}

export type OciFaultStatus = 429 | 500 | 502 | 503 | 504;

export interface OciServerFaults {
  /**
   * The next `count` requests answer `status` with an OCI error body (429 carries Retry-After when given).
   * With `afterApplying`, the request is carried out first and only its answer is replaced: a write that
   * happened although the client saw an error.
   */
  failNext(
    status: OciFaultStatus,
    count: number,
    options?: { retryAfterSeconds?: number; afterApplying?: boolean },
  ): void;
  /** Faults still queued. */
  readonly pending: number;
  /** Added before every answer, for benchmarks (ms). */
  delayMs: number;
  /** Status for an if-none-match: * conflict; OCI documents 409 in places and answers 412 in others. */
  ifNoneMatchConflictStatus: 409 | 412;
  /** Called for every request before it is answered (to count or observe traffic). */
  onRequest: ((request: { method: string; path: string }) => void) | undefined;
  /** Clears queued faults, the delay and the hook. */
  reset(): void;
}

export interface OciTestServer {
  /** Base URL, e.g. http://127.0.0.1:41234 (pass as the store's endpoint). */
  url: string;
  namespace: string;
  /** Key `${bucket}/${objectName}`. */
  objects: Map<string, OciTestObject>;
  requests: OciRequestRecord[];
  faults: OciServerFaults;
  /** Largest list page the server returns (OCI: 1000); set small to exercise pagination. */
  listPageSize: number;
  close(): Promise<void>;
}

export interface OciServerOptions {
  publicKeyPem: string;
  /** `${tenancy}/${user}/${fingerprint}` */
  keyId: string;
  namespace: string;
  listPageSize?: number;
}

interface Answer {
  status: number;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
}

interface QueuedFault {
  status: OciFaultStatus;
  retryAfterSeconds: number | undefined;
  afterApplying: boolean;
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
const EMPTY_SHA256 = createHash('sha256').digest('base64');

function errorAnswer(status: number, code: string, message: string, headers: Answer['headers'] = {}): Answer {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ code, message }),
  };
}

function jsonAnswer(value: unknown): Answer {
  return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

function parseSignatureParams(header: string): Map<string, string> | undefined {
  if (!header.startsWith('Signature ')) return undefined;
  const params = new Map<string, string>();
  for (const match of header.slice('Signature '.length).matchAll(/([a-zA-Z]+)="([^"]*)"/g)) {
    params.set(match[1]!, match[2]!);
  }
  return params;
}

/** Headers a signature must cover. PUT of an object body is exempt from the body headers, as in OCI. */
function requiredSignedHeaders(method: string, isObjectPut: boolean): string[][] {
  const required = [['(request-target)'], ['host'], ['date', 'x-date']];
  if (['POST', 'PUT', 'PATCH'].includes(method) && !isObjectPut) {
    required.push(['content-length'], ['content-type'], ['x-content-sha256']);
  }
  return required;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** undefined when the request is authentic, else the reason it is not. */
function verifySignature(
  req: IncomingMessage,
  body: Buffer,
  isObjectPut: boolean,
  keyId: string,
  publicKey: KeyObject,
): string | undefined {
  const authorization = headerValue(req, 'authorization');
  if (authorization === undefined) return 'missing Authorization header';
  const params = parseSignatureParams(authorization);
  if (params === undefined) return 'Authorization is not a Signature';
  if (params.get('version') !== '1') return 'unsupported signature version';
  if (params.get('keyId') !== keyId) return 'unknown keyId';
  if (params.get('algorithm') !== 'rsa-sha256') return 'unsupported algorithm';
  const signature = params.get('signature');
  if (!signature) return 'missing signature';
  const signed = (params.get('headers') ?? 'date').toLowerCase().split(' ').filter(Boolean);
  const method = req.method ?? 'GET';
  for (const alternatives of requiredSignedHeaders(method, isObjectPut)) {
    if (!alternatives.some((name) => signed.includes(name)))
      return `signature does not cover ${alternatives.join('/')}`;
  }
  const lines: string[] = [];
  for (const name of signed) {
    if (name === '(request-target)') {
      lines.push(`(request-target): ${method.toLowerCase()} ${req.url ?? '/'}`);
      continue;
    }
    const value = headerValue(req, name);
    if (value === undefined) return `signed header ${name} is missing`;
    lines.push(`${name}: ${value}`);
  }
  const dateHeader = signed.includes('x-date') ? headerValue(req, 'x-date') : headerValue(req, 'date');
  const date = Date.parse(dateHeader ?? '');
  if (Number.isNaN(date) || Math.abs(Date.now() - date) > MAX_CLOCK_SKEW_MS)
    return 'date is missing or skewed';
  if (signed.includes('x-content-sha256')) {
    const expected = body.length === 0 ? EMPTY_SHA256 : createHash('sha256').update(body).digest('base64');
    if (headerValue(req, 'x-content-sha256') !== expected) return 'x-content-sha256 does not match the body';
  }
  const verifier = createVerify('RSA-SHA256');
  verifier.update(lines.join('\n'));
  return verifier.verify(publicKey, signature, 'base64') ? undefined : 'signature mismatch';
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const unquote = (etag: string): string =>
  etag
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');

export async function startOciServer(options: OciServerOptions): Promise<OciTestServer> {
  const publicKey = createPublicKey(options.publicKeyPem);
  const objects = new Map<string, OciTestObject>();
  const requests: OciRequestRecord[] = [];
  const queued: QueuedFault[] = [];

  const faults: OciServerFaults = {
    failNext(status, count, faultOptions = {}) {
      for (let i = 0; i < count; i++) {
        queued.push({
          status,
          retryAfterSeconds: faultOptions.retryAfterSeconds,
          afterApplying: faultOptions.afterApplying ?? false,
        });
      }
    },
    get pending() {
      return queued.length;
    },
    delayMs: 0,
    ifNoneMatchConflictStatus: 412,
    onRequest: undefined,
    reset() {
      queued.length = 0;
      this.delayMs = 0;
      this.ifNoneMatchConflictStatus = 412;
      this.onRequest = undefined;
    },
  };

  function faultAnswer(fault: QueuedFault): Answer {
    const codes: Record<OciFaultStatus, string> = {
      429: 'TooManyRequests',
      500: 'InternalServerError',
      502: 'BadGateway',
      503: 'ServiceUnavailable',
      504: 'GatewayTimeout',
    };
    const headers: Answer['headers'] = {};
    if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = fault.retryAfterSeconds;
    return errorAnswer(fault.status, codes[fault.status], `injected fault ${fault.status}`, headers);
  }

  function objectHeaders(object: OciTestObject): Record<string, string | number> {
    return {
      etag: object.etag,
      'content-type': object.contentType,
      'content-length': object.body.length,
      'last-modified': object.lastModified.toUTCString(),
    };
  }

  function handleObject(req: IncomingMessage, body: Buffer, bucket: string, name: string): Answer {
    const key = `${bucket}/${name}`;
    const existing = objects.get(key);
    const ifMatch = headerValue(req, 'if-match');
    const ifNoneMatch = headerValue(req, 'if-none-match');
    const notFound = () =>
      errorAnswer(404, 'ObjectNotFound', `The object '${name}' was not found in the bucket '${bucket}'`);
    const ifMatchFails =
      ifMatch !== undefined && (existing === undefined || unquote(ifMatch) !== unquote(existing.etag));
    const ifMatchFailed = () =>
      errorAnswer(412, 'IfMatchFailed', `The If-Match header '${ifMatch}' does not match the current ETag`);
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        if (existing === undefined) return req.method === 'HEAD' ? { status: 404 } : notFound();
        if (ifMatchFails) return ifMatchFailed();
        return {
          status: 200,
          headers: objectHeaders(existing),
          body: req.method === 'HEAD' ? undefined : existing.body,
        };
      }
      case 'PUT': {
        if (headerValue(req, 'content-length') === undefined) {
          return errorAnswer(411, 'MissingContentLength', 'Content-Length is required');
        }
        if (ifMatchFails) return ifMatchFailed();
        if (ifNoneMatch !== undefined) {
          if (ifNoneMatch.trim() !== '*')
            return errorAnswer(400, 'InvalidParameter', "If-None-Match must be '*'");
          if (existing !== undefined) {
            return errorAnswer(
              faults.ifNoneMatchConflictStatus,
              'IfNoneMatchFailed',
              `The object '${name}' already exists`,
            );
          }
        }
        const object: OciTestObject = {
          body,
          etag: randomUUID(),
          contentType: headerValue(req, 'content-type') ?? 'application/octet-stream',
          lastModified: new Date(),
        };
        objects.set(key, object);
        return {
          status: 200,
          headers: {
            etag: object.etag,
            'last-modified': object.lastModified.toUTCString(),
            'opc-content-md5': createHash('md5').update(body).digest('base64'),
          },
        };
      }
      case 'DELETE': {
        if (existing === undefined) return notFound();
        if (ifMatchFails) return ifMatchFailed();
        objects.delete(key);
        return { status: 204 };
      }
      default:
        return errorAnswer(405, 'MethodNotAllowed', `${req.method} is not supported on objects`);
    }
  }

  function handleList(url: URL, bucket: string): Answer {
    const prefix = url.searchParams.get('prefix') ?? '';
    const start = url.searchParams.get('start') ?? '';
    const limitParam = Number(url.searchParams.get('limit') ?? 1000);
    const limit = Math.max(
      1,
      Math.min(Number.isFinite(limitParam) ? limitParam : 1000, 1000, server.listPageSize),
    );
    const fields = new Set((url.searchParams.get('fields') ?? 'name').split(','));
    const bucketPrefix = `${bucket}/`;
    const names = [...objects.keys()]
      .filter((key) => key.startsWith(bucketPrefix))
      .map((key) => key.slice(bucketPrefix.length))
      .filter((name) => name.startsWith(prefix) && name >= start)
      .sort();
    const page = names.slice(0, limit);
    const summaries = page.map((name) => {
      const object = objects.get(bucketPrefix + name)!;
      const summary: Record<string, unknown> = { name };
      if (fields.has('size')) summary.size = object.body.length;
      if (fields.has('etag')) summary.etag = object.etag;
      if (fields.has('timeCreated')) summary.timeCreated = object.lastModified.toISOString();
      return summary;
    });
    const next = names[limit];
    return jsonAnswer(
      next === undefined ? { objects: summaries } : { objects: summaries, nextStartWith: next },
    );
  }

  function route(req: IncomingMessage, body: Buffer): Answer {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').slice(1);
    if (parts[0] !== 'n') return errorAnswer(404, 'NotFound', `no route for ${url.pathname}`);
    if (parts.length === 1) {
      return req.method === 'GET'
        ? jsonAnswer(server.namespace)
        : errorAnswer(405, 'MethodNotAllowed', 'GET only');
    }
    if (decodeURIComponent(parts[1] ?? '') !== server.namespace) {
      return errorAnswer(
        404,
        'NamespaceNotFound',
        `You do not have authorization to perform this request, or the requested resource could not be found.`,
      );
    }
    if (parts[2] !== 'b' || parts[3] === undefined || parts[4] !== 'o') {
      return errorAnswer(404, 'NotFound', `no route for ${url.pathname}`);
    }
    const bucket = decodeURIComponent(parts[3]);
    // Object names are one path segment, percent-encoded ('/' is %2F), as the SDK sends them.
    if (parts.length === 5) {
      return req.method === 'GET'
        ? handleList(url, bucket)
        : errorAnswer(405, 'MethodNotAllowed', 'GET only');
    }
    const name = decodeURIComponent(parts.slice(5).join('/'));
    if (name === '') return errorAnswer(400, 'InvalidParameter', 'empty object name');
    return handleObject(req, body, bucket, name);
  }

  async function answer(req: IncomingMessage): Promise<Answer> {
    const body = await readBody(req);
    if (body === undefined)
      return errorAnswer(413, 'RequestEntityTooLarge', 'body too large for the test server');
    faults.onRequest?.({ method: req.method ?? 'GET', path: req.url ?? '/' });
    if (faults.delayMs > 0) await sleep(faults.delayMs);
    const fault = queued.shift();
    if (fault !== undefined && !fault.afterApplying) return faultAnswer(fault);
    const isObjectPut = req.method === 'PUT' && /^\/n\/[^/]+\/b\/[^/]+\/o\/./.test(req.url ?? '');
    const refused = verifySignature(req, body, isObjectPut, options.keyId, publicKey);
    if (refused !== undefined) {
      return errorAnswer(
        401,
        'NotAuthenticated',
        `The required information to complete authentication was not provided or was incorrect (${refused}).`,
      );
    }
    const result = route(req, body);
    return fault === undefined ? result : faultAnswer(fault);
  }

  function send(req: IncomingMessage, res: ServerResponse, result: Answer): void {
    const body = typeof result.body === 'string' ? Buffer.from(result.body) : result.body;
    res.statusCode = result.status;
    res.setHeader('opc-request-id', randomUUID().replaceAll('-', '').toUpperCase());
    for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
    if (body !== undefined) res.setHeader('content-length', body.length);
    else if (!res.hasHeader('content-length') && result.status !== 204) res.setHeader('content-length', 0);
    requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', status: result.status });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  const http = createServer((req, res) => {
    answer(req).then(
      (result) => send(req, res, result),
      (error: unknown) => send(req, res, errorAnswer(500, 'InternalServerError', String(error))),
    );
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = http.address() as AddressInfo;

  const server: OciTestServer = {
    url: `http://127.0.0.1:${port}`,
    namespace: options.namespace,
    objects,
    requests,
    faults,
    listPageSize: options.listPageSize ?? 1000,
    close: () =>
      new Promise<void>((resolve, reject) => {
        http.close((error) => (error ? reject(error) : resolve()));
        http.closeAllConnections();
      }),
  };
  return server;
}
