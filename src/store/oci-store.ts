/**
 * The object store on OCI Object Storage, through the official SDK (oci-objectstorage + oci-common).
 * Loaded lazily (`await import()`), so the SDK's ~20 MB and ~200 ms are paid only when it is used.
 *
 * Retries: the SDK's own retrier is switched off and replaced by a small loop here, because the SDK's
 * (8 attempts, up to 30 s apart by default) ignores Retry-After, retries 429 only with one service code,
 * checks its time budget before sleeping rather than after, hides the transport error behind a plain
 * object, and writes a console.warn line for every failure. The loop below retries network errors,
 * timeouts, 429 and 5xx with exponential backoff and jitter, honours Retry-After, and stops at
 * maxAttempts or when the next wait would exceed maxTotalMs. The SDK's circuit breaker is off too:
 * a 30-minute cron job gains nothing from a breaker that outlives one request burst.
 *
 * Logging: the SDK logs through `LOG.logger` (routed to our logger) and also calls console.* directly
 * (its retrier, the instance-principal federation client). Those direct calls are redirected only while
 * one of our SDK calls is on the async stack (see oci-sdk-scope.ts), so stdout stays clean and nobody
 * else's console output is touched.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CircuitBreaker,
  DefaultRequestSigner,
  FetchHttpClient,
  type HttpClient,
  type HttpRequest,
  InstancePrincipalsAuthenticationDetailsProviderBuilder,
  MaxAttemptsTerminationStrategy,
  NoRetryConfigurationDetails,
  OciError,
  type RequestSigner,
  type RetryConfiguration,
  SimpleAuthenticationDetailsProvider,
} from 'oci-common';
import { ObjectStorageClient } from 'oci-objectstorage';
import { fetch as undiciFetch } from 'undici';
import { CollectorError, PreconditionFailedError } from '../errors.js';
import type { OciAuth } from '../secrets/credentials.js';
import type { DeleteOptions, ListOptions, ObjectStore, PutOptions, StoredObject } from './object-store.js';
import {
  consoleSink,
  type OciStoreLogger,
  routeSdkConsole,
  routeSdkLog,
  type SdkCallScope,
  sdkScope,
} from './oci-sdk-scope.js';

export type { OciStoreLogger };

export interface OciStoreOptions {
  namespace: string;
  bucket: string;
  /** Region id, e.g. eu-stockholm-1; ignored when endpoint is given. */
  region: string;
  /** Overrides the region's endpoint (tests: http://127.0.0.1:PORT). */
  endpoint?: string;
  auth: OciAuth;
  logger?: OciStoreLogger;
  /** Attempts per request, first one included (default 3). */
  maxAttempts?: number;
  /** No retry is started once waiting for it would pass this many ms since the first attempt (default 20 000). */
  maxTotalMs?: number;
  /** One attempt (request and, for get, reading the body) is aborted after this many ms (default 30 000). */
  requestTimeoutMs?: number;
}

const DEFAULT_MAX_ATTEMPTS = 3;
const DEFAULT_MAX_TOTAL_MS = 20_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 8_000;
/** Bounds the pagination loop: 10 000 pages of 1000 names is far beyond any real archive. */
const MAX_LIST_PAGES = 10_000;
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
/** Lines the SDK retrier prints for each failed call; our own errors and retry logs say more. */
/**
 * The SDK sends through the global `fetch`. Importing undici 7's index (this module does, for its fetch;
 * any other module might) installs its Agent as the process-wide dispatcher, which Node 20's bundled
 * fetch (undici 6) then drives with headers it rejects ("invalid content-length header",
 * UND_ERR_INVALID_ARG on every PUT). Routing the SDK through undici 7's own fetch keeps one consistent
 * HTTP stack in the process, whatever else loads undici.
 */
globalThis.fetch = undiciFetch as unknown as typeof globalThis.fetch;

/**
 * The SDK's fetch client, made per request so each attempt carries its own abort signal, and watched so
 * the retry loop sees Retry-After and the real transport error.
 */

class ScopedHttpClient implements HttpClient {
  constructor(private readonly signer: RequestSigner) {}

  async send(
    req: HttpRequest,
    forceExcludeBody?: boolean,
    targetService?: string,
    operationName?: string,
    timestamp?: string,
    endpoint?: string,
    apiReferenceLink?: string,
  ): Promise<Response> {
    const scope = sdkScope.getStore();
    const client = new FetchHttpClient(
      this.signer,
      null,
      scope?.signal ? { signal: scope.signal } : undefined,
    );
    try {
      const response = await client.send(
        req,
        forceExcludeBody,
        targetService,
        operationName,
        timestamp,
        endpoint,
        apiReferenceLink,
      );
      if (scope) scope.retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      return response;
    } catch (error) {
      if (scope) scope.transportError = error;
      throw error;
    }
  }
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

// ---------------------------------------------------------------------------------------------
// Errors

interface Operation {
  /** get, put, list */
  name: string;
  /** Object name or list prefix, for messages. */
  target: string;
  signal?: AbortSignal;
}

type Failure =
  | { kind: 'http'; error: OciError }
  | { kind: 'transport'; error: unknown; detail: string }
  | { kind: 'aborted'; reason: unknown }
  | { kind: 'other'; error: unknown };

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function classify(error: unknown, scope: SdkCallScope, userSignal: AbortSignal | undefined): Failure {
  if (userSignal?.aborted) return { kind: 'aborted', reason: userSignal.reason };
  if (error instanceof OciError) return { kind: 'http', error };
  const cause = scope.transportError ?? error;
  const name = (cause as Error | undefined)?.name;
  if (name === 'TimeoutError') return { kind: 'transport', error: cause, detail: 'the request timed out' };
  // fetch rejects with TypeError ('fetch failed', 'terminated') for DNS, connect, TLS and reset errors.
  if (cause instanceof TypeError && scope.transportError !== undefined) {
    const inner = (cause as Error & { cause?: unknown }).cause;
    const code = errorCode(inner);
    const detail = code ?? (inner instanceof Error ? inner.message : cause.message);
    return { kind: 'transport', error: cause, detail: `network error (${detail})` };
  }
  if (cause instanceof TruncatedBodyError || (cause instanceof TypeError && cause.message === 'terminated')) {
    return {
      kind: 'transport',
      error: cause,
      detail: 'network error (connection closed while reading the body)',
    };
  }
  return { kind: 'other', error: cause };
}

function isRetryable(failure: Failure): boolean {
  if (failure.kind === 'transport') return true;
  return failure.kind === 'http' && RETRYABLE_STATUS.has(failure.error.statusCode);
}

function authFailure(failure: Failure): OciError | undefined {
  if (failure.kind !== 'http') return undefined;
  return failure.error.statusCode === 401 || failure.error.statusCode === 403 ? failure.error : undefined;
}

/** OCI's own message, trimmed; it names the resource, never the credentials. */
function ociMessage(error: OciError): string {
  const message = String(error.message ?? '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\.$/, '');
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

function describeHttp(error: OciError): string {
  const requestId = error.opcRequestId ? `, opc-request-id ${error.opcRequestId}` : '';
  return `HTTP ${error.statusCode} ${error.serviceCode}: ${ociMessage(error)}${requestId}`;
}

// ---------------------------------------------------------------------------------------------

class OciStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly client: ObjectStorageClient,
    private readonly options: OciStoreOptions,
  ) {
    this.description = `oci://${options.namespace}/${options.bucket}`;
  }

  async get(name: string, options: { signal?: AbortSignal } = {}): Promise<StoredObject | undefined> {
    try {
      return await this.call({ name: 'get', target: name, signal: options.signal }, async () => {
        const response = await this.client.getObject({
          namespaceName: this.options.namespace,
          bucketName: this.options.bucket,
          objectName: name,
        });
        const body = await readAll(response.value, response.contentLength);
        return { body, etag: response.eTag };
      });
    } catch (error) {
      if (
        error instanceof OciStoreHttpError &&
        error.oci.statusCode === 404 &&
        error.oci.serviceCode === 'ObjectNotFound'
      ) {
        return undefined;
      }
      throw this.toCollectorError('get', name, error);
    }
  }

  async put(name: string, body: Buffer, options: PutOptions = {}): Promise<{ etag: string }> {
    const conditional = options.ifMatch !== undefined || options.ifNoneMatch !== undefined;
    let ambiguous = false;
    try {
      return await this.call(
        { name: 'put', target: name, signal: options.signal },
        async () => {
          const response = await this.client.putObject({
            namespaceName: this.options.namespace,
            bucketName: this.options.bucket,
            objectName: name,
            // Set so the SDK neither reads nor copies the body to learn its length.
            contentLength: body.length,
            putObjectBody: body,
            ifMatch: options.ifMatch,
            ifNoneMatch: options.ifNoneMatch,
            contentType: options.contentType,
          });
          return { etag: response.eTag };
        },
        (failure) => {
          // The server may have stored the body even though we saw an error (429 means it did not).
          if (failure.kind === 'transport' || (failure.kind === 'http' && failure.error.statusCode >= 500)) {
            ambiguous = true;
          }
        },
      );
    } catch (error) {
      if (error instanceof OciStoreHttpError && isPreconditionFailure(error.oci, conditional)) {
        // A retried conditional write can lose to its own earlier attempt: if the object now holds
        // exactly our bytes, that attempt succeeded.
        if (ambiguous) {
          const current = await this.get(name, { signal: options.signal });
          if (current?.body.equals(body)) return { etag: current.etag };
        }
        throw new PreconditionFailedError(name, { cause: error.oci });
      }
      throw this.toCollectorError('put', name, error);
    }
  }

  async delete(name: string, options: DeleteOptions): Promise<boolean> {
    try {
      await this.call({ name: 'delete', target: name, signal: options.signal }, () =>
        this.client.deleteObject({
          namespaceName: this.options.namespace,
          bucketName: this.options.bucket,
          objectName: name,
          ifMatch: options.ifMatch,
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof OciStoreHttpError) {
        if (error.oci.statusCode === 404 && error.oci.serviceCode === 'ObjectNotFound') return false;
        if (isPreconditionFailure(error.oci, true))
          throw new PreconditionFailedError(name, { cause: error.oci });
      }
      throw this.toCollectorError('delete', name, error);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<string[]> {
    const names: string[] = [];
    let start: string | undefined = options.start;
    try {
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const pageStart = start;
        const response = await this.call({ name: 'list', target: prefix, signal: options.signal }, () =>
          this.client.listObjects({
            namespaceName: this.options.namespace,
            bucketName: this.options.bucket,
            // The SDK puts query values into the URL unencoded ('&', '#', '+', '%' would break it).
            prefix: prefix === '' ? undefined : encodeURIComponent(prefix),
            start: pageStart === undefined ? undefined : encodeURIComponent(pageStart),
            fields: 'name',
          }),
        );
        for (const object of response.listObjects.objects) names.push(object.name);
        const next = response.listObjects.nextStartWith;
        if (next === undefined || next === null || next === '') return names.sort();
        if (pageStart !== undefined && next <= pageStart) {
          throw new CollectorError(
            'E_STORE',
            `OCI Object Storage list of prefix "${prefix}" in ${this.description} did not advance (nextStartWith "${next}")`,
          );
        }
        start = next;
      }
      throw new CollectorError(
        'E_STORE',
        `OCI Object Storage list of prefix "${prefix}" in ${this.description} returned more than ${MAX_LIST_PAGES} pages`,
      );
    } catch (error) {
      throw this.toCollectorError('list', prefix, error);
    }
  }

  /**
   * Runs one SDK call with retries. Failures that end the call are thrown as OciStoreHttpError
   * (HTTP answers, for the caller to map) or CollectorError.
   */
  private async call<T>(
    operation: Operation,
    attempt: () => Promise<T>,
    onFailure?: (failure: Failure) => void,
  ): Promise<T> {
    const maxAttempts = this.options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    const maxTotalMs = this.options.maxTotalMs ?? DEFAULT_MAX_TOTAL_MS;
    const timeoutMs = this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const sink = consoleSink(this.options.logger);
    const started = Date.now();
    for (let attemptNumber = 1; ; attemptNumber++) {
      routeSdkConsole();
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = operation.signal ? AbortSignal.any([operation.signal, timeout]) : timeout;
      const scope: SdkCallScope = { console: sink, signal };
      let failure: Failure;
      try {
        return await sdkScope.run(scope, attempt);
      } catch (error) {
        failure = classify(error, scope, operation.signal);
      }
      onFailure?.(failure);
      if (failure.kind === 'aborted') throw failure.reason;
      const elapsed = Date.now() - started;
      const attempts = `after ${attemptNumber} attempt${attemptNumber === 1 ? '' : 's'} in ${elapsed} ms`;
      const refused = authFailure(failure);
      if (refused !== undefined) throw this.authError(refused);
      if (!isRetryable(failure) || attemptNumber >= maxAttempts)
        throw this.finalError(operation, failure, attempts);
      const backoff = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attemptNumber - 1));
      const jittered = backoff / 2 + Math.random() * (backoff / 2);
      const delayMs = Math.round(Math.max(jittered, scope.retryAfterMs ?? 0));
      if (elapsed + delayMs > maxTotalMs) {
        const why =
          scope.retryAfterMs !== undefined && scope.retryAfterMs >= jittered
            ? `; the server asked to wait ${Math.round(scope.retryAfterMs / 1000)} s, beyond the ${maxTotalMs} ms retry budget`
            : '';
        throw this.finalError(operation, failure, attempts + why);
      }
      const logger = this.options.logger;
      (logger?.debug ?? logger?.warn)?.call(
        logger,
        {
          store: this.description,
          operation: operation.name,
          object: operation.target,
          attempt: attemptNumber,
          status: failure.kind === 'http' ? failure.error.statusCode : undefined,
          serviceCode: failure.kind === 'http' ? failure.error.serviceCode : undefined,
          delayMs,
        },
        'OCI Object Storage request failed; retrying',
      );
      try {
        await sleep(delayMs, undefined, operation.signal ? { signal: operation.signal } : undefined);
      } catch {
        throw operation.signal?.reason;
      }
    }
  }

  private authError(error: OciError): CollectorError {
    const auth = this.options.auth;
    const who =
      auth.kind === 'api-key'
        ? `the API key of user ${auth.key.user} with fingerprint ${auth.key.fingerprint} was not accepted (wrong key, fingerprint, user or tenancy) or lacks a policy for the bucket`
        : 'the instance principal was not accepted or lacks a policy for the bucket';
    return new CollectorError(
      'E_STORE_AUTH',
      `OCI Object Storage refused the request signature for bucket "${this.options.bucket}" in namespace "${this.options.namespace}" (${describeHttp(error)}): ${who}`,
      { cause: error },
    );
  }

  private finalError(operation: Operation, failure: Failure, attempts: string): Error {
    if (failure.kind === 'http') return new OciStoreHttpError(operation, failure.error, attempts);
    const what = `OCI Object Storage ${operation.name} of "${operation.target}" in ${this.description} failed`;
    if (failure.kind === 'transport') {
      return new CollectorError('E_STORE', `${what}: ${failure.detail} ${attempts}`, {
        cause: failure.error,
      });
    }
    const error = failure.kind === 'other' ? failure.error : undefined;
    if (error instanceof CollectorError) return error;
    const detail = error instanceof Error ? error.message : String(errorCode(error) ?? error);
    return new CollectorError('E_STORE', `${what}: ${detail}`, { cause: error });
  }

  private toCollectorError(operationName: string, target: string, error: unknown): unknown {
    if (!(error instanceof OciStoreHttpError)) return error;
    const oci = error.oci;
    const what = `OCI Object Storage ${operationName} of "${target}" in ${this.description} failed: ${describeHttp(oci)}`;
    if (
      oci.statusCode === 404 &&
      (oci.serviceCode === 'BucketNotFound' || oci.serviceCode === 'NamespaceNotFound')
    ) {
      return new CollectorError('E_STORE_CONFIG', what, {
        cause: oci,
        hint: 'check the namespace and bucket names, and that a policy lets this user or instance read and write the bucket',
      });
    }
    return new CollectorError('E_STORE', `${what} ${error.attempts}`, { cause: oci });
  }
}

/** An HTTP error answer that ended a call; mapped to a CollectorError by the operation that knows its meaning. */
class OciStoreHttpError extends Error {
  constructor(
    operation: Operation,
    readonly oci: OciError,
    readonly attempts: string,
  ) {
    super(`${operation.name} ${operation.target}: HTTP ${oci.statusCode} ${oci.serviceCode}`);
    this.name = 'OciStoreHttpError';
  }
}

function isPreconditionFailure(error: OciError, conditional: boolean): boolean {
  if (error.statusCode === 412) return true;
  if (error.serviceCode === 'IfMatchFailed' || error.serviceCode === 'IfNoneMatchFailed') return true;
  // 409 on a conditional write (e.g. ConcurrentObjectUpdate) is another writer winning the race.
  return conditional && error.statusCode === 409;
}

class TruncatedBodyError extends Error {
  override name = 'TruncatedBodyError';
}

async function readAll(value: unknown, contentLength: number | undefined): Promise<Buffer> {
  if (value === undefined || value === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  // Native fetch gives a web ReadableStream, node-fetch a Readable: both are async iterables of bytes.
  for await (const chunk of value as AsyncIterable<Uint8Array>) {
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    total += chunk.byteLength;
  }
  if (contentLength !== undefined && total !== contentLength) {
    throw new TruncatedBodyError(`read ${total} of ${contentLength} bytes`);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

// ---------------------------------------------------------------------------------------------

async function createSigner(auth: OciAuth, logger: OciStoreLogger | undefined): Promise<RequestSigner> {
  if (auth.kind === 'api-key') {
    const key = auth.key;
    try {
      const provider = new SimpleAuthenticationDetailsProvider(
        key.tenancy,
        key.user,
        key.fingerprint,
        key.privateKey,
        key.passphrase ?? null,
      );
      // Parses the private key now, so a bad key fails before the first request.
      return new DefaultRequestSigner(provider);
    } catch (error) {
      throw new CollectorError(
        'E_STORE_AUTH',
        `the OCI private key for user ${key.user} could not be read (${(error as Error).name}); it must be an unencrypted PEM key, or an encrypted one with its passphrase`,
        { cause: error, hint: 'check the private key and passphrase stored for the collector' },
      );
    }
  }
  const scope: SdkCallScope = { console: consoleSink(logger) };
  routeSdkConsole();
  try {
    const provider = await sdkScope.run(scope, () =>
      new InstancePrincipalsAuthenticationDetailsProviderBuilder().build(),
    );
    return new DefaultRequestSigner(provider);
  } catch (error) {
    throw new CollectorError(
      'E_STORE_AUTH',
      `could not obtain OCI instance principal credentials from the instance metadata service (${(error as Error).message ?? String(error)})`,
      {
        cause: error,
        hint: 'run on an OCI compute instance in a dynamic group with a policy for the bucket, or use an API key',
      },
    );
  }
}

export async function createOciStore(options: OciStoreOptions): Promise<ObjectStore> {
  for (const field of ['namespace', 'bucket'] as const) {
    if (!options[field]) throw new CollectorError('E_STORE_CONFIG', `the OCI ${field} is empty`);
  }
  if (!options.endpoint && !options.region) {
    throw new CollectorError('E_STORE_CONFIG', 'the OCI region is empty and no endpoint is set');
  }
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new CollectorError('E_STORE_CONFIG', `maxAttempts must be a positive integer, got ${maxAttempts}`);
  }
  if (options.logger) routeSdkLog(options.logger);
  const signer = await createSigner(options.auth, options.logger);
  // One attempt per SDK call: retries are ours (see the top of this file).
  const retryConfiguration: RetryConfiguration = {
    ...NoRetryConfigurationDetails,
    terminationStrategy: new MaxAttemptsTerminationStrategy(1),
    retryCondition: () => false,
  };
  const client = new ObjectStorageClient(
    { httpClient: new ScopedHttpClient(signer) },
    { retryConfiguration, circuitBreaker: new CircuitBreaker({ disableClientCircuitBreaker: true }) },
  );
  const scope: SdkCallScope = { console: consoleSink(options.logger) };
  routeSdkConsole();
  sdkScope.run(scope, () => {
    if (options.endpoint) client.endpoint = options.endpoint.replace(/\/+$/, '');
    else client.regionId = options.region;
  });
  return new OciStore(client, options);
}
