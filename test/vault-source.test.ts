import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CollectorError } from '../src/errors.js';
import { readOciKeyFromVault } from '../src/secrets/vault-source.js';
import { expectCollectorError } from './support/expect-failure.js';
import { startVaultServer, type VaultTestServer } from './support/vault-server.js';

// A throwaway key made for this run only: never committed.
const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'der' },
});
// OCI's fingerprint: MD5 of the DER public key as colon-separated hex pairs.
const fingerprint = (createHash('md5').update(publicKey).digest('hex').match(/../g) ?? []).join(':');
const fields = {
  user: 'ocid1.user.oc1..aaaaaaaatestuser',
  tenancy: 'ocid1.tenancy.oc1..aaaaaaaatesttenancy',
  fingerprint,
  private_key: privateKey,
  region: 'eu-stockholm-1',
};
// A line from the middle of the key body: if any part of the key leaks, this does.
const keyBodyLine = privateKey.split('\n')[5] ?? '';
const expectedKey = {
  user: fields.user,
  tenancy: fields.tenancy,
  fingerprint,
  privateKey,
  region: 'eu-stockholm-1',
};

const TOKEN = 'hvs.test-token-0123456789abcdef';
const ROLE_ID = 'role-7f3a9c21';
const SECRET_ID = 'secret-id-5b8e2d40-very-secret';

let vault: VaultTestServer;
let dir: string;

beforeAll(async () => {
  vault = await startVaultServer();
  vault.addToken(TOKEN);
  vault.addAppRole(ROLE_ID, SECRET_ID);
  vault.setSecret('secret/polisen-collector', fields, 2);
  vault.setSecret('kv/polisen-collector', fields, 1);
  dir = await mkdtemp(join(tmpdir(), 'vault-source-test-'));
});

afterAll(async () => {
  await vault.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vault.sealed = false;
  vault.stall = false;
  vault.delayMs = 0;
  vault.requests.length = 0;
});

/** Runs `fn`, which must fail, and returns the CollectorError. */
const failure = (fn: () => Promise<unknown>) => expectCollectorError(fn);

/** No secret in the message, the JSON form, or anything inspect shows (cause, hidden properties, stack). */
function expectNoSecrets(error: CollectorError, secrets: string[]) {
  expect(keyBodyLine.length).toBeGreaterThan(40);
  const views = [
    error.message,
    JSON.stringify(error),
    inspect(error, { depth: 20, showHidden: true }),
    inspect(error.cause, { depth: 20, showHidden: true }),
    String(error.stack),
  ];
  for (const view of views) {
    for (const secret of secrets) expect(view).not.toContain(secret);
    expect(view).not.toContain('-----BEGIN PRIVATE KEY-----');
    expect(view).not.toContain(keyBodyLine);
  }
  expect(error.message).not.toContain('\n');
}

describe('readOciKeyFromVault: happy paths', () => {
  it('reads a KV v2 secret with a token, in one request', async () => {
    const key = await readOciKeyFromVault({ addr: vault.url, token: TOKEN });
    expect(key).toEqual(expectedKey);
    expect(vault.requests).toEqual([
      { method: 'GET', path: '/v1/secret/data/polisen-collector', token: TOKEN, namespace: undefined },
    ]);
  });

  it('reads a KV v1 secret with a token (auto-detected and forced)', async () => {
    expect(
      await readOciKeyFromVault({ addr: vault.url, token: TOKEN, secretPath: 'kv/polisen-collector' }),
    ).toEqual(expectedKey);
    expect(
      await readOciKeyFromVault({
        addr: vault.url,
        token: TOKEN,
        secretPath: '/kv/polisen-collector/',
        kvVersion: 1,
      }),
    ).toEqual(expectedKey);
    expect(vault.requests.map((r) => r.path)).toEqual([
      '/v1/kv/polisen-collector',
      '/v1/kv/polisen-collector',
    ]);
  });

  it('inserts the data/ segment when KV v2 is forced on a path without it', async () => {
    const key = await readOciKeyFromVault({
      addr: vault.url,
      token: TOKEN,
      secretPath: 'secret/polisen-collector',
      kvVersion: 2,
    });
    expect(key).toEqual(expectedKey);
    expect(vault.requests.map((r) => r.path)).toEqual(['/v1/secret/data/polisen-collector']);
  });

  it('accepts either shape on a path with a data/ segment when the version is auto', async () => {
    vault.setSecret('team/data/app', fields, 1); // a v1 mount whose secret name happens to be "data/app"
    vault.setSecret('apps/collector', fields, 2);
    expect(await readOciKeyFromVault({ addr: vault.url, token: TOKEN, secretPath: 'team/data/app' })).toEqual(
      expectedKey,
    );
    expect(
      await readOciKeyFromVault({ addr: vault.url, token: TOKEN, secretPath: 'apps/data/collector' }),
    ).toEqual(expectedKey);
  });

  it('logs in with AppRole and reads KV v2 with the client token, not the secret id', async () => {
    const key = await readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID, secretId: SECRET_ID });
    expect(key).toEqual(expectedKey);
    expect(vault.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1/auth/approle/login',
      'GET /v1/secret/data/polisen-collector',
    ]);
    const read = vault.requests[1];
    expect(read?.token).toMatch(/^hvs\./);
    expect(read?.token).not.toBe(SECRET_ID);
  });

  it('logs in with AppRole and reads KV v1', async () => {
    const key = await readOciKeyFromVault({
      addr: vault.url,
      roleId: ROLE_ID,
      secretId: SECRET_ID,
      secretPath: 'kv/polisen-collector',
      kvVersion: 1,
    });
    expect(key).toEqual(expectedKey);
    expect(vault.requests.map((r) => r.path)).toEqual(['/v1/auth/approle/login', '/v1/kv/polisen-collector']);
  });

  it('does not send a VAULT_TOKEN from process.env with the AppRole login', async () => {
    const saved = process.env.VAULT_TOKEN;
    process.env.VAULT_TOKEN = 'stray-env-token';
    try {
      await readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID, secretId: SECRET_ID });
    } finally {
      if (saved === undefined) delete process.env.VAULT_TOKEN;
      else process.env.VAULT_TOKEN = saved;
    }
    expect(vault.requests[0]?.token).toBeUndefined();
  });

  it('reads the token and the secret id from files', async () => {
    const tokenFile = join(dir, 'token');
    const secretIdFile = join(dir, 'secret-id');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    await writeFile(secretIdFile, `${SECRET_ID}\n`, { mode: 0o600 });
    expect(await readOciKeyFromVault({ addr: vault.url, tokenFile })).toEqual(expectedKey);
    expect(vault.requests[0]?.token).toBe(TOKEN);
    expect(await readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID, secretIdFile })).toEqual(
      expectedKey,
    );
    expect(vault.requests.map((r) => r.path)).toEqual([
      '/v1/secret/data/polisen-collector',
      '/v1/auth/approle/login',
      '/v1/secret/data/polisen-collector',
    ]);
  });

  it('sends the namespace header', async () => {
    await readOciKeyFromVault({ addr: vault.url, token: TOKEN, namespace: 'team-a' });
    expect(vault.requests[0]?.namespace).toBe('team-a');
  });

  it('honours the delay option of the test server', async () => {
    vault.delayMs = 120;
    const started = performance.now();
    await readOciKeyFromVault({ addr: vault.url, token: TOKEN });
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });
});

describe('readOciKeyFromVault: failures', () => {
  it('403 for a wrong token: E_SECRETS_CONFIG naming VAULT_TOKEN, the token nowhere', async () => {
    const wrong = 'hvs.wrong-token-9876543210';
    const error = await failure(() => readOciKeyFromVault({ addr: vault.url, token: wrong }));
    expect(error.code).toBe('E_SECRETS_CONFIG');
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(/refused the token/);
    expect(error.message).toContain('VAULT_TOKEN');
    expect(error.message).toContain('permission denied');
    expectNoSecrets(error, [wrong, TOKEN]);
  });

  it('refused AppRole login: E_SECRETS_CONFIG naming VAULT_ROLE_ID, the secret id nowhere', async () => {
    const wrongSecretId = 'wrong-secret-id-31415926';
    const error = await failure(() =>
      readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID, secretId: wrongSecretId }),
    );
    expect(error.code).toBe('E_SECRETS_CONFIG');
    expect(error.message).toMatch(/refused the AppRole login/);
    expect(error.message).toContain('VAULT_ROLE_ID');
    expectNoSecrets(error, [wrongSecretId, SECRET_ID]);
  });

  it('404: E_SECRETS_CONFIG naming the path', async () => {
    const error = await failure(() =>
      readOciKeyFromVault({ addr: vault.url, token: TOKEN, secretPath: 'secret/data/no-such-secret' }),
    );
    expect(error.code).toBe('E_SECRETS_CONFIG');
    expect(error.message).toContain('secret/data/no-such-secret');
    expect(error.message).toContain('404');
    expectNoSecrets(error, [TOKEN]);
  });

  it('a deleted KV v2 version: E_SECRETS_CONFIG', async () => {
    vault.setSecret('secret/deleted', null, 2);
    const error = await failure(() =>
      readOciKeyFromVault({ addr: vault.url, token: TOKEN, secretPath: 'secret/data/deleted' }),
    );
    expect(error.code).toBe('E_SECRETS_CONFIG');
    expect(error.message).toMatch(/no current version/);
  });

  it('sealed (503): E_SECRETS_UNAVAILABLE saying Vault is sealed', async () => {
    vault.sealed = true;
    const error = await failure(() => readOciKeyFromVault({ addr: vault.url, token: TOKEN }));
    expect(error.code).toBe('E_SECRETS_UNAVAILABLE');
    expect(error.exitCode).toBe(1);
    expect(error.message).toMatch(/sealed/);
    const login = await failure(() =>
      readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID, secretId: SECRET_ID }),
    );
    expect(login.code).toBe('E_SECRETS_UNAVAILABLE');
    expectNoSecrets(login, [SECRET_ID]);
  });

  it('a stalled Vault: E_SECRETS_UNAVAILABLE within about timeoutMs', async () => {
    vault.stall = true;
    const started = performance.now();
    const error = await failure(() => readOciKeyFromVault({ addr: vault.url, token: TOKEN, timeoutMs: 300 }));
    const elapsed = performance.now() - started;
    expect(error.code).toBe('E_SECRETS_UNAVAILABLE');
    expect(error.message).toContain('VAULT_ADDR');
    expect(error.message).toContain('300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expectNoSecrets(error, [TOKEN]);
  });

  it('a stalled AppRole login times out too, without the secret id in the error', async () => {
    vault.stall = true;
    const error = await failure(() =>
      readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID, secretId: SECRET_ID, timeoutMs: 200 }),
    );
    expect(error.code).toBe('E_SECRETS_UNAVAILABLE');
    expectNoSecrets(error, [SECRET_ID]);
  });

  it('an unreachable port: E_SECRETS_UNAVAILABLE naming VAULT_ADDR', async () => {
    const port = await freePort();
    const error = await failure(() =>
      readOciKeyFromVault({ addr: `http://127.0.0.1:${port}`, token: TOKEN, timeoutMs: 2000 }),
    );
    expect(error.code).toBe('E_SECRETS_UNAVAILABLE');
    expect(error.message).toContain('VAULT_ADDR');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    expect(error.message).toContain('ECONNREFUSED');
    expectNoSecrets(error, [TOKEN]);
    expect((error.cause as { code?: string }).code).toBe('ECONNREFUSED');
    // axios errors carry the request config, here with the login body: it must not come along
    const login = await failure(() =>
      readOciKeyFromVault({ addr: `http://127.0.0.1:${port}`, roleId: ROLE_ID, secretId: SECRET_ID }),
    );
    expect(login.code).toBe('E_SECRETS_UNAVAILABLE');
    expectNoSecrets(login, [SECRET_ID]);
  });

  it('bad fields: E_SECRETS_CONFIG listing each problem, no value echoed', async () => {
    vault.setSecret('secret/bad', {
      user: privateKey, // a key pasted into the wrong field must not be echoed either
      tenancy: 'ocid1.compartment.oc1..x',
      fingerprint: 'aa:bb',
      private_key: 'not a pem',
      region: 'Stockholm',
    });
    const error = await failure(() =>
      readOciKeyFromVault({ addr: vault.url, token: TOKEN, secretPath: 'secret/data/bad' }),
    );
    expect(error.code).toBe('E_SECRETS_CONFIG');
    for (const field of ['user', 'tenancy', 'fingerprint', 'private_key', 'region']) {
      expect(error.message).toContain(`Vault secret secret/data/bad: field "${field}"`);
    }
    expect(error.message).not.toContain('not a pem');
    expect(error.message).not.toContain('Stockholm');
    expectNoSecrets(error, [TOKEN]);
  });

  it('missing fields: E_SECRETS_CONFIG naming them', async () => {
    vault.setSecret('secret/partial', { user: fields.user });
    const error = await failure(() =>
      readOciKeyFromVault({ addr: vault.url, token: TOKEN, secretPath: 'secret/data/partial' }),
    );
    expect(error.message).toContain('field "tenancy" is missing');
    expect(error.message).toContain('field "fingerprint" is missing');
    expect(error.message).toContain('field "private_key" is missing');
  });

  it('no token and no AppRole: E_SECRETS_CONFIG without any request', async () => {
    const error = await failure(() => readOciKeyFromVault({ addr: vault.url }));
    expect(error.code).toBe('E_SECRETS_CONFIG');
    expect(error.message).toContain('VAULT_TOKEN');
    expect(vault.requests).toEqual([]);
  });

  it('a role id without a secret id, an unreadable token file, an empty secret-id file', async () => {
    expect(
      (await failure(() => readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID }))).message,
    ).toContain('VAULT_SECRET_ID');
    const missing = join(dir, 'no-such-token');
    const unreadable = await failure(() => readOciKeyFromVault({ addr: vault.url, tokenFile: missing }));
    expect(unreadable.code).toBe('E_SECRETS_CONFIG');
    expect(unreadable.message).toContain(missing);
    expect(unreadable.message).toContain('ENOENT');
    const empty = join(dir, 'empty-secret-id');
    await writeFile(empty, '\n');
    expect(
      (await failure(() => readOciKeyFromVault({ addr: vault.url, roleId: ROLE_ID, secretIdFile: empty })))
        .message,
    ).toMatch(/is empty/);
    expect(vault.requests).toEqual([]);
  });

  it('a VAULT_ADDR that is not an http(s) URL: E_SECRETS_CONFIG', async () => {
    for (const addr of ['vault:8200', 'ftp://vault', 'not a url']) {
      const error = await failure(() => readOciKeyFromVault({ addr, token: TOKEN }));
      expect(error.code).toBe('E_SECRETS_CONFIG');
      expect(error.message).toContain('VAULT_ADDR');
    }
  });
});

describe('the Vault test server', () => {
  it('answers token lookup-self for known tokens only', async () => {
    const ok = await fetch(`${vault.url}/v1/auth/token/lookup-self`, { headers: { 'x-vault-token': TOKEN } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { data: { ttl: number } }).data.ttl).toBeGreaterThan(0);
    const denied = await fetch(`${vault.url}/v1/auth/token/lookup-self`, {
      headers: { 'x-vault-token': 'nope' },
    });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ errors: ['permission denied'] });
    const missing = await fetch(`${vault.url}/v1/secret/data/none`, { headers: { 'x-vault-token': TOKEN } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ errors: [] });
  });
});

/** A port nothing listens on: bound, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
