import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An in-memory stand-in for the parts of the HashiCorp Vault HTTP API the collector uses: token lookup-self,
 * AppRole login, KV v1 and KV v2 reads. Answers as Vault does (status codes and {"errors": [...]} bodies), on
 * 127.0.0.1, with switches for a sealed Vault, slow answers and no answer at all.
 */

export interface VaultRequestRecord {
  method: string;
  /** URL path without the query, e.g. /v1/secret/data/polisen-collector */
  path: string;
  /** X-Vault-Token as sent (test tokens only). */
  token: string | undefined;
  namespace: string | undefined;
}

export interface VaultTestServer {
  /** http://127.0.0.1:<port> (VAULT_ADDR) */
  url: string;
  /**
   * Stores a secret. `path` includes the mount: KV v2 `secret/polisen-collector` is served at
   * /v1/secret/data/polisen-collector (a path already holding the data/ segment is taken as is);
   * KV v1 `kv/polisen-collector` at /v1/kv/polisen-collector. `data: null` is a deleted KV v2 version.
   */
  setSecret(path: string, data: Record<string, unknown> | null, kvVersion?: 1 | 2): void;
  addToken(token: string): void;
  addAppRole(roleId: string, secretId: string): void;
  /** Every call answers 503 {"errors":["Vault is sealed"]}. */
  sealed: boolean;
  /** Wait this long before each answer. */
  delayMs: number;
  /** Never answer (the socket stays open until close()). */
  stall: boolean;
  readonly requests: VaultRequestRecord[];
  close(): Promise<void>;
}

export interface VaultServerOptions {
  sealed?: boolean;
  delayMs?: number;
  stall?: boolean;
}

interface StoredSecret {
  kvVersion: 1 | 2;
  data: Record<string, unknown> | null;
  createdTime: string;
}

export async function startVaultServer(options: VaultServerOptions = {}): Promise<VaultTestServer> {
  const secrets = new Map<string, StoredSecret>();
  const tokens = new Set<string>();
  const appRoles = new Map<string, string>();
  const requests: VaultRequestRecord[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const answer = (res: ServerResponse, status: number, body: unknown) => {
    const send = () => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (state.delayMs <= 0) return send();
    const timer = setTimeout(() => {
      timers.delete(timer);
      send();
    }, state.delayMs);
    timers.add(timer);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, rawBody: string) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const token = header(req, 'x-vault-token');
    requests.push({ method: req.method ?? 'GET', path, token, namespace: header(req, 'x-vault-namespace') });
    if (state.stall) return; // the request stays open: the client must give up on its own
    if (state.sealed) return answer(res, 503, { errors: ['Vault is sealed'] });

    if (path === '/v1/auth/approle/login') {
      if (req.method !== 'POST' && req.method !== 'PUT') return answer(res, 405, { errors: [] });
      const body = parseJson(rawBody);
      const roleId = typeof body.role_id === 'string' ? body.role_id : undefined;
      const secretId = typeof body.secret_id === 'string' ? body.secret_id : undefined;
      if (roleId === undefined || secretId === undefined || appRoles.get(roleId) !== secretId) {
        return answer(res, 400, { errors: ['invalid role or secret ID'] });
      }
      const clientToken = `hvs.${randomBytes(12).toString('hex')}`;
      tokens.add(clientToken);
      return answer(res, 200, {
        ...envelope(),
        auth: {
          client_token: clientToken,
          accessor: randomBytes(8).toString('hex'),
          policies: ['default', 'polisen-collector'],
          token_policies: ['default', 'polisen-collector'],
          lease_duration: 3600,
          renewable: true,
        },
      });
    }

    if (token === undefined || !tokens.has(token)) return answer(res, 403, { errors: ['permission denied'] });

    if (path === '/v1/auth/token/lookup-self') {
      return answer(res, 200, {
        ...envelope(),
        data: { id: token, policies: ['default'], ttl: 3600, renewable: true, type: 'service' },
      });
    }

    const secret = secrets.get(path.replace(/^\/v1\//, ''));
    if (secret === undefined) return answer(res, 404, { errors: [] });
    if (req.method !== 'GET') return answer(res, 405, { errors: ['unsupported operation'] });
    if (secret.kvVersion === 1)
      return answer(res, 200, { ...envelope(), lease_duration: 2764800, data: secret.data });
    return answer(res, 200, {
      ...envelope(),
      data: {
        data: secret.data,
        metadata: {
          created_time: secret.createdTime,
          custom_metadata: null,
          deletion_time: secret.data === null ? secret.createdTime : '',
          destroyed: false,
          version: 1,
        },
      },
    });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  const state: VaultTestServer = {
    url: `http://127.0.0.1:${port}`,
    sealed: options.sealed ?? false,
    delayMs: options.delayMs ?? 0,
    stall: options.stall ?? false,
    requests,
    setSecret(path, data, kvVersion = 2) {
      const segments = path.replace(/^\/+|\/+$/g, '').split('/');
      const key =
        kvVersion === 2 && segments[1] !== 'data'
          ? [segments[0], 'data', ...segments.slice(1)].join('/')
          : segments.join('/');
      secrets.set(key, { kvVersion, data, createdTime: new Date().toISOString() });
    },
    addToken(token) {
      tokens.add(token);
    },
    addAppRole(roleId, secretId) {
      appRoles.set(roleId, secretId);
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}

function envelope() {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    wrap_info: null,
    warnings: null,
    auth: null,
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
