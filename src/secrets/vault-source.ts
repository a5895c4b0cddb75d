import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import type NodeVault from 'node-vault';
import { CollectorError, type ErrorCode } from '../errors.js';
import type { OciApiKey } from './credentials.js';
import { validateOciApiKey } from './validate-oci-key.js';

export const DEFAULT_VAULT_SECRET_PATH = 'secret/data/polisen-collector';
export const DEFAULT_VAULT_TIMEOUT_MS = 10_000;

export interface VaultSourceOptions {
  /** VAULT_ADDR, e.g. https://vault.example:8200 */
  addr: string;
  token?: string;
  tokenFile?: string;
  roleId?: string;
  secretId?: string;
  secretIdFile?: string;
  /** KV path; default secret/data/polisen-collector (KV v2). */
  secretPath?: string;
  kvVersion?: 1 | 2 | 'auto';
  namespace?: string;
  /** Deadline for the whole read (login included); default 10 000 ms. */
  timeoutMs?: number;
}

type VaultClient = NodeVault.client;
type KvShape = 'v1' | 'v2' | 'either';

/**
 * Reads the OCI API key from one Vault KV secret: a token (or an AppRole login), then one KV read.
 * Every failure is a CollectorError with a one-line message that never contains a token, secret id or key:
 * node-vault/axios errors carry the request config (headers, login body), so they are never passed on as they are.
 */
export async function readOciKeyFromVault(options: VaultSourceOptions): Promise<OciApiKey> {
  const addr = parseVaultAddr(options.addr);
  const timeoutMs = options.timeoutMs ?? DEFAULT_VAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      'VAULT_TIMEOUT_MS must be a positive number of milliseconds',
    );
  }
  const secretPath = normalizeSecretPath(options.secretPath ?? DEFAULT_VAULT_SECRET_PATH);
  const plan = planKvRead(secretPath, options.kvVersion ?? 'auto');
  // Known secret values, scrubbed from every message we build (server error texts included).
  const secrets = new Set<string>();
  for (const value of [options.token, options.secretId]) if (value) secrets.add(value);

  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());
  // Our own agent, so that the sockets of a request still hanging at the deadline can be destroyed.
  const httpAgent = addr.protocol === 'http:' ? new HttpAgent({ keepAlive: false }) : undefined;
  const requestOptions = () => ({ timeout: remaining(), ...(httpAgent ? { httpAgent } : {}) });
  const timeoutError = () =>
    new CollectorError(
      'E_SECRETS_UNAVAILABLE',
      `Vault at ${addr.display} (VAULT_ADDR) did not answer within ${timeoutMs} ms (VAULT_TIMEOUT_MS)`,
    );

  const work = async (): Promise<OciApiKey> => {
    const auth = await resolveAuth(options, secrets);
    const { default: createVaultClient } = await import('node-vault');
    const client: VaultClient = createVaultClient({
      endpoint: addr.endpoint,
      apiVersion: 'v1',
      ...(auth.kind === 'token' ? { token: auth.token } : {}),
      ...(options.namespace ? { namespace: options.namespace } : {}),
    });
    // node-vault falls back to process.env (VAULT_TOKEN, VAULT_NAMESPACE, VAULT_PREFIX) for what is not passed;
    // only the options given here count, so an AppRole login never sends a stray VAULT_TOKEN.
    client.token = auth.kind === 'token' ? auth.token : '';
    Object.assign(client, { namespace: options.namespace ?? '', pathPrefix: '' });

    if (auth.kind === 'approle') {
      let login: unknown;
      try {
        login = await client.approleLogin({
          role_id: auth.roleId,
          secret_id: auth.secretId,
          requestOptions: requestOptions(),
        });
      } catch (error) {
        throw describeVaultFailure(error, {
          stage: 'login',
          addr,
          secretPath: plan.path,
          timeoutMs,
          secrets,
        });
      }
      const clientToken = pick(pick(login, 'auth'), 'client_token');
      if (typeof clientToken !== 'string' || clientToken === '') {
        throw new CollectorError(
          'E_SECRETS_UNAVAILABLE',
          `Vault AppRole login at ${addr.display} returned no token`,
        );
      }
      secrets.add(clientToken);
      client.token = clientToken;
    }

    let body: unknown;
    try {
      body = await client.read(plan.path, requestOptions());
    } catch (error) {
      throw describeVaultFailure(error, {
        stage: auth.kind === 'token' ? 'read-with-token' : 'read-with-approle',
        addr,
        secretPath: plan.path,
        timeoutMs,
        secrets,
      });
    }
    const source = `Vault secret ${plan.path}`;
    const fields = extractKvFields(body, plan.shape, source);
    const { key, errors } = validateOciApiKey(fields, source);
    if (!key) throw new CollectorError('E_SECRETS_CONFIG', errors.join('; '));
    return key;
  };

  let timer: NodeJS.Timeout | undefined;
  const overall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), timeoutMs);
  });
  try {
    return await Promise.race([work(), overall]);
  } finally {
    clearTimeout(timer);
    httpAgent?.destroy();
  }
}

interface VaultAddr {
  /** What node-vault is given (no trailing slash). */
  endpoint: string;
  /** Safe to print: no user info. */
  display: string;
  protocol: string;
}

function parseVaultAddr(raw: string): VaultAddr {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      'VAULT_ADDR is not a URL (expected e.g. https://vault.example:8200)',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      `VAULT_ADDR must be an http:// or https:// URL, not ${url.protocol}`,
    );
  }
  const path = url.pathname.replace(/\/+$/, '');
  return { endpoint: raw.replace(/\/+$/, ''), display: `${url.origin}${path}`, protocol: url.protocol };
}

function normalizeSecretPath(path: string): string {
  const trimmed = path.trim().replace(/^\/+|\/+$/g, '');
  if (
    trimmed === '' ||
    trimmed.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')
  ) {
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      `VAULT_SECRET_PATH "${path}" is not a Vault path like secret/data/polisen-collector`,
    );
  }
  return trimmed;
}

/** Which path to read and which response shape to accept. */
function planKvRead(path: string, kvVersion: 1 | 2 | 'auto'): { path: string; shape: KvShape } {
  const segments = path.split('/');
  const hasDataSegment = segments.slice(1).includes('data');
  if (kvVersion === 1) return { path, shape: 'v1' };
  if (kvVersion === 2) {
    if (hasDataSegment) return { path, shape: 'v2' };
    if (segments.length < 2) {
      throw new CollectorError(
        'E_SECRETS_CONFIG',
        `VAULT_SECRET_PATH "${path}" has no secret name after the mount`,
      );
    }
    return { path: [segments[0], 'data', ...segments.slice(1)].join('/'), shape: 'v2' };
  }
  return { path, shape: 'either' };
}

type VaultAuth = { kind: 'token'; token: string } | { kind: 'approle'; roleId: string; secretId: string };

async function resolveAuth(options: VaultSourceOptions, secrets: Set<string>): Promise<VaultAuth> {
  if (options.token) return { kind: 'token', token: options.token };
  if (options.tokenFile) {
    const token = await readSecretFile(options.tokenFile, 'VAULT_TOKEN_FILE', 'token');
    secrets.add(token);
    return { kind: 'token', token };
  }
  if (options.roleId) {
    let secretId = options.secretId;
    if (!secretId && options.secretIdFile) {
      secretId = await readSecretFile(options.secretIdFile, 'VAULT_SECRET_ID_FILE', 'secret id');
      secrets.add(secretId);
    }
    if (!secretId) {
      throw new CollectorError(
        'E_SECRETS_CONFIG',
        'VAULT_ROLE_ID is set but neither VAULT_SECRET_ID nor VAULT_SECRET_ID_FILE is: AppRole login needs both',
      );
    }
    return { kind: 'approle', roleId: options.roleId, secretId };
  }
  throw new CollectorError(
    'E_SECRETS_CONFIG',
    'VAULT_ADDR is set but no Vault credentials are: set VAULT_TOKEN or VAULT_TOKEN_FILE, or VAULT_ROLE_ID with VAULT_SECRET_ID or VAULT_SECRET_ID_FILE',
  );
}

async function readSecretFile(path: string, setting: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = errorCode(error) ?? 'read error';
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      `cannot read the Vault ${what} file ${path} (${setting}): ${code}`,
    );
  }
  const value = text.trim();
  if (value === '')
    throw new CollectorError('E_SECRETS_CONFIG', `the Vault ${what} file ${path} (${setting}) is empty`);
  return value;
}

function extractKvFields(body: unknown, shape: KvShape, source: string): Record<string, unknown> {
  const data = pick(body, 'data');
  const nested = pick(data, 'data');
  const looksV2 = isRecord(data) && 'metadata' in data && (isRecord(nested) || nested === null);
  if (shape === 'v2' || (shape === 'either' && looksV2)) {
    if (isRecord(nested)) return nested;
    if (isRecord(data) && nested === null) {
      throw new CollectorError(
        'E_SECRETS_CONFIG',
        `${source} has no current version (deleted or destroyed): write the OCI key fields again`,
      );
    }
    if (shape === 'v2') {
      throw new CollectorError(
        'E_SECRETS_CONFIG',
        `${source} is not a KV v2 secret (no data.data in the answer): check VAULT_SECRET_PATH and VAULT_KV_VERSION`,
      );
    }
  }
  if (isRecord(data)) return data;
  throw new CollectorError('E_SECRETS_CONFIG', `${source} holds no key/value data`);
}

interface FailureContext {
  stage: 'login' | 'read-with-token' | 'read-with-approle';
  addr: VaultAddr;
  secretPath: string;
  timeoutMs: number;
  secrets: Set<string>;
}

const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Turns a node-vault / axios error into a CollectorError whose message and cause hold no secret. */
function describeVaultFailure(error: unknown, context: FailureContext): CollectorError {
  const { addr, secretPath, timeoutMs, stage } = context;
  const make = (code: ErrorCode, message: string) =>
    new CollectorError(code, scrub(message, context.secrets), {
      cause: sanitizedCause(error, context.secrets),
    });

  const status = vaultStatus(error);
  if (status !== undefined) {
    const said = serverMessage(error);
    const detail = `HTTP ${status}${said ? `: ${said}` : ''}`;
    if (stage === 'login' && (status === 400 || status === 401 || status === 403)) {
      return make(
        'E_SECRETS_CONFIG',
        `Vault at ${addr.display} refused the AppRole login (${detail}): check VAULT_ROLE_ID and VAULT_SECRET_ID / VAULT_SECRET_ID_FILE`,
      );
    }
    if (status === 401 || status === 403) {
      const what =
        stage === 'read-with-token'
          ? 'check VAULT_TOKEN / VAULT_TOKEN_FILE and that the token policy allows reading it'
          : 'check that the policies of the AppRole (VAULT_ROLE_ID) allow reading it';
      const whose = stage === 'read-with-token' ? 'the token' : 'the token from the AppRole login';
      return make('E_SECRETS_CONFIG', `Vault refused ${whose} reading ${secretPath} (${detail}): ${what}`);
    }
    if (status === 404) {
      return make(
        'E_SECRETS_CONFIG',
        `Vault has no secret at ${secretPath} (HTTP 404): check VAULT_SECRET_PATH (KV v2: <mount>/data/<name>, KV v1: <mount>/<name>) and VAULT_KV_VERSION`,
      );
    }
    if (status === 503 && /sealed/i.test(said)) {
      return make(
        'E_SECRETS_UNAVAILABLE',
        `Vault at ${addr.display} is sealed (HTTP 503): it must be unsealed`,
      );
    }
    if (status === 429 || status >= 500) {
      return make('E_SECRETS_UNAVAILABLE', `Vault at ${addr.display} is unavailable (${detail})`);
    }
    return make(
      'E_SECRETS_CONFIG',
      `Vault at ${addr.display} rejected the request for ${secretPath} (${detail})`,
    );
  }

  const code = errorCode(error);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return make(
      'E_SECRETS_UNAVAILABLE',
      `Vault at ${addr.display} (VAULT_ADDR) did not answer within ${timeoutMs} ms (VAULT_TIMEOUT_MS)`,
    );
  }
  if (code !== undefined && /CERT|SSL|TLS/.test(code)) {
    return make(
      'E_SECRETS_CONFIG',
      `the TLS certificate of Vault at ${addr.display} (VAULT_ADDR) is not trusted (${code}): set NODE_EXTRA_CA_CERTS`,
    );
  }
  return make(
    'E_SECRETS_UNAVAILABLE',
    `Vault at ${addr.display} (VAULT_ADDR) could not be reached (${code ?? 'network error'})`,
  );
}

/** Status of node-vault's ApiResponseError ({ response: { statusCode, body } }); axios errors have none. */
function vaultStatus(error: unknown): number | undefined {
  const status = pick(pick(error, 'response'), 'statusCode');
  return typeof status === 'number' ? status : undefined;
}

/** The first entry of Vault's {"errors": [...]}, shortened: it is shown to a human in one line. */
function serverMessage(error: unknown): string {
  const errors = pick(pick(pick(error, 'response'), 'body'), 'errors');
  const first = Array.isArray(errors) ? errors[0] : undefined;
  if (typeof first !== 'string') return '';
  const line = first.replace(/\s+/g, ' ').trim();
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

/** A stand-in for the original error with only its name, code, status and scrubbed message: no config, no headers. */
function sanitizedCause(error: unknown, secrets: Set<string>): Error {
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  const cause = new Error(scrub(message, secrets).slice(0, 300));
  cause.name = name;
  const code = errorCode(error);
  const status = vaultStatus(error);
  if (code !== undefined) Object.assign(cause, { code });
  if (status !== undefined) Object.assign(cause, { statusCode: status });
  return cause;
}

function scrub(text: string, secrets: Set<string>): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.replaceAll(secret, '[redacted]');
  return out;
}

function errorCode(error: unknown): string | undefined {
  const code = pick(error, 'code');
  return typeof code === 'string' ? code : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pick(value: unknown, key: string): unknown {
  return isRecord(value) || value instanceof Error
    ? (value as unknown as Record<string, unknown>)[key]
    : undefined;
}
