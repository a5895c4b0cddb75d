import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOciKeyFromConfigFile } from '../src/secrets/oci-config-file.js';
import { describeCredentialSettingsProblems, resolveOciAuth } from '../src/secrets/resolve-credentials.js';
import { validateOciApiKey } from '../src/secrets/validate-oci-key.js';
import { expectCollectorError } from './support/expect-failure.js';
import { startVaultServer, type VaultTestServer } from './support/vault-server.js';

// Throwaway keys made for this run only: never committed.
const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'der' },
});
const encryptedKey = generateKeyPairSync('rsa', {
  modulusLength: 1024,
  privateKeyEncoding: {
    type: 'pkcs8',
    format: 'pem',
    cipher: 'aes-256-cbc',
    passphrase: 'pass-phrase-271828',
  },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
}).privateKey;
const fingerprint = (createHash('md5').update(publicKey).digest('hex').match(/../g) ?? []).join(':');
const keyBodyLine = privateKey.split('\n')[5] ?? '';

const USER = 'ocid1.user.oc1..aaaaaaaauser';
const TENANCY = 'ocid1.tenancy.oc1..aaaaaaaatenancy';
const good = { user: USER, tenancy: TENANCY, fingerprint, private_key: privateKey, region: 'eu-stockholm-1' };
const SOURCE = 'Vault secret secret/data/polisen-collector';

/** Runs `fn`, which must fail, and returns the CollectorError. */
const failure = (fn: () => Promise<unknown>) => expectCollectorError(fn);

describe('validateOciApiKey', () => {
  it('accepts a complete key and maps the fields', () => {
    const { key, errors } = validateOciApiKey({ ...good, passphrase: 'pw-1234' }, SOURCE);
    expect(errors).toEqual([]);
    expect(key).toEqual({
      user: USER,
      tenancy: TENANCY,
      fingerprint,
      privateKey,
      passphrase: 'pw-1234',
      region: 'eu-stockholm-1',
    });
  });

  it('leaves out optional fields that are absent or empty, and trims the identifiers', () => {
    const { key } = validateOciApiKey(
      { ...good, user: ` ${USER}\n`, fingerprint: fingerprint.toUpperCase(), region: '', passphrase: null },
      SOURCE,
    );
    expect(key).toEqual({ user: USER, tenancy: TENANCY, fingerprint: fingerprint.toUpperCase(), privateKey });
  });

  it('accepts a PEM stored on one line with literal \\n', () => {
    const { key } = validateOciApiKey({ ...good, private_key: privateKey.replaceAll('\n', '\\n') }, SOURCE);
    expect(key?.privateKey).toBe(privateKey);
  });

  it.each([
    ['user', { user: 'ocid1.group.oc1..x' }, 'field "user" does not start with "ocid1.user."'],
    [
      'tenancy',
      { tenancy: 'ocid1.compartment.oc1..x' },
      'field "tenancy" does not start with "ocid1.tenancy."',
    ],
    [
      'fingerprint (too short)',
      { fingerprint: 'aa:bb:cc' },
      'field "fingerprint" is not of the form aa:bb:…',
    ],
    [
      'fingerprint (not hex)',
      { fingerprint: fingerprint.replace(/^../, 'zz') },
      'field "fingerprint" is not',
    ],
    ['fingerprint (dashes)', { fingerprint: fingerprint.replaceAll(':', '-') }, 'field "fingerprint" is not'],
    [
      'private_key',
      { private_key: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC' },
      'field "private_key" does not contain a PEM',
    ],
    [
      'public key as private',
      { private_key: '-----BEGIN PUBLIC KEY-----\nx\n' },
      'field "private_key" does not',
    ],
    ['region', { region: 'Stockholm' }, 'field "region" is not an OCI region identifier'],
    ['missing user', { user: undefined }, 'field "user" is missing'],
    ['empty tenancy', { tenancy: '' }, 'field "tenancy" is missing'],
    ['non-string fingerprint', { fingerprint: 42 }, 'field "fingerprint" is not a string (it is a number)'],
    ['list as private key', { private_key: ['x'] }, 'field "private_key" is not a string (it is a list)'],
    ['encrypted key, no passphrase', { private_key: encryptedKey }, 'field "passphrase" is missing'],
  ])('rejects %s', (_name, change, expected) => {
    const { key, errors } = validateOciApiKey({ ...good, ...change }, SOURCE);
    expect(key).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(`${SOURCE}: ${expected}`);
  });

  it('accepts an encrypted key with its passphrase and a PKCS#1 RSA key', () => {
    expect(validateOciApiKey({ ...good, private_key: encryptedKey, passphrase: 'x' }, SOURCE).errors).toEqual(
      [],
    );
    const rsa = `-----BEGIN RSA PRIVATE KEY-----\n${keyBodyLine}\n-----END RSA PRIVATE KEY-----\n`;
    expect(validateOciApiKey({ ...good, private_key: rsa }, SOURCE).errors).toEqual([]);
  });

  it('reports every problem at once and echoes no value', () => {
    const { errors } = validateOciApiKey(
      {
        user: privateKey,
        tenancy: 'pass-phrase-value',
        fingerprint: 'secret-ish',
        private_key: 'hunter2-key',
      },
      'src',
    );
    expect(errors).toHaveLength(4);
    const all = errors.join('\n');
    for (const value of [
      keyBodyLine,
      'BEGIN PRIVATE KEY-----',
      'pass-phrase-value',
      'secret-ish',
      'hunter2-key',
    ]) {
      expect(all).not.toContain(value);
    }
  });
});

describe('readOciKeyFromConfigFile', () => {
  let dir: string;
  let home: string;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oci-config-test-'));
    home = join(dir, 'home');
    await mkdir(join(home, '.oci'), { recursive: true });
    await mkdir(join(dir, 'keys'));
    await writeFile(join(home, '.oci', 'home_key.pem'), privateKey, { mode: 0o600 });
    await writeFile(join(dir, 'keys', 'relative.pem'), privateKey, { mode: 0o600 });
    await writeFile(join(dir, 'encrypted.pem'), encryptedKey, { mode: 0o600 });
    await writeFile(join(dir, 'not-a-key.pem'), 'hello\n');
    config = join(dir, 'config');
    await writeFile(
      config,
      [
        '# OCI CLI config',
        '[DEFAULT]',
        `user=${USER}`,
        `fingerprint = ${fingerprint}`,
        'key_file=~/.oci/home_key.pem',
        `tenancy=${TENANCY}`,
        'region=eu-stockholm-1',
        '',
        '; a second profile, inheriting tenancy and fingerprint from DEFAULT',
        '[RELATIVE]',
        'user=ocid1.user.oc1..other',
        'key_file=keys/relative.pem',
        'region=eu-frankfurt-1',
        '',
        '[ENCRYPTED]',
        `key_file=${join(dir, 'encrypted.pem')}`,
        'pass_phrase=pass-phrase-271828',
        '',
        '[NO_PASSPHRASE]',
        `key_file=${join(dir, 'encrypted.pem')}`,
        '',
        '[BAD]',
        'user=ocid1.users.oc1..typo',
        'fingerprint=12:34',
        `key_file=${join(dir, 'not-a-key.pem')}`,
        '',
        '[MISSING_KEY]',
        `key_file=${join(dir, 'nope.pem')}`,
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the DEFAULT profile, expanding ~ in key_file', async () => {
    expect(await readOciKeyFromConfigFile(config, undefined, home)).toEqual({
      user: USER,
      tenancy: TENANCY,
      fingerprint,
      privateKey,
      region: 'eu-stockholm-1',
    });
  });

  it('inherits from DEFAULT and reads a relative key_file next to the config file', async () => {
    expect(await readOciKeyFromConfigFile(config, 'RELATIVE', home)).toEqual({
      user: 'ocid1.user.oc1..other',
      tenancy: TENANCY,
      fingerprint,
      privateKey,
      region: 'eu-frankfurt-1',
    });
  });

  it('maps pass_phrase to passphrase', async () => {
    const key = await readOciKeyFromConfigFile(config, 'ENCRYPTED', home);
    expect(key.passphrase).toBe('pass-phrase-271828');
    expect(key.privateKey).toBe(encryptedKey);
  });

  it('names the file, the profile and the field of each problem', async () => {
    const error = await failure(() => readOciKeyFromConfigFile(config, 'BAD', home));
    expect(error.code).toBe('E_SECRETS_CONFIG');
    const where = `OCI config file ${config} [BAD]`;
    expect(error.message).toContain(`${where}: field "user" does not start with "ocid1.user."`);
    expect(error.message).toContain(`${where}: field "fingerprint" is not of the form`);
    expect(error.message).toContain(
      `${where}: field "key_file" (${join(dir, 'not-a-key.pem')}) does not contain`,
    );
    const noPass = await failure(() => readOciKeyFromConfigFile(config, 'NO_PASSPHRASE', home));
    expect(noPass.message).toContain('[NO_PASSPHRASE]: field "pass_phrase" is missing');
  });

  it('fails clearly on a missing key file, profile or config file', async () => {
    const noKey = await failure(() => readOciKeyFromConfigFile(config, 'MISSING_KEY', home));
    expect(noKey.message).toContain(
      `[MISSING_KEY]: field "key_file": cannot read the key file ${join(dir, 'nope.pem')}`,
    );
    expect(noKey.message).toContain('ENOENT');
    const noProfile = await failure(() => readOciKeyFromConfigFile(config, 'PROD', home));
    expect(noProfile.message).toContain('has no profile [PROD]');
    expect(noProfile.message).toContain('[RELATIVE]');
    const noFile = await failure(() => readOciKeyFromConfigFile(join(dir, 'absent'), 'DEFAULT', home));
    expect(noFile.message).toContain(join(dir, 'absent'));
  });

  it('reports a malformed line by number, without quoting it', async () => {
    const broken = join(dir, 'broken-config');
    await writeFile(broken, '[DEFAULT]\nuser=ocid1.user.oc1..x\nmy-secret-passphrase\n');
    const error = await failure(() => readOciKeyFromConfigFile(broken, 'DEFAULT', home));
    expect(error.message).toContain('line 3');
    expect(error.message).not.toContain('my-secret-passphrase');
    const noHeader = join(dir, 'no-header-config');
    await writeFile(noHeader, 'user=ocid1.user.oc1..x\n');
    expect((await failure(() => readOciKeyFromConfigFile(noHeader, 'DEFAULT', home))).message).toContain(
      'line 1',
    );
  });
});

describe('resolveOciAuth', () => {
  const TOKEN = 'hvs.resolve-test-token-4242';
  let vault: VaultTestServer;
  let dir: string;
  let homeWithConfig: string;
  let emptyHome: string;
  let explicitConfig: string;

  beforeAll(async () => {
    vault = await startVaultServer();
    vault.addToken(TOKEN);
    vault.addAppRole('role-1', 'secret-id-1-abcdef');
    vault.setSecret('secret/polisen-collector', { ...good, user: 'ocid1.user.oc1..fromvault' }, 2);
    vault.setSecret('kv/collector', { ...good, user: 'ocid1.user.oc1..fromkv1' }, 1);
    dir = await mkdtemp(join(tmpdir(), 'resolve-credentials-test-'));
    homeWithConfig = join(dir, 'home');
    emptyHome = join(dir, 'empty-home');
    await mkdir(join(homeWithConfig, '.oci'), { recursive: true });
    await mkdir(emptyHome);
    await writeFile(join(homeWithConfig, '.oci', 'key.pem'), privateKey, { mode: 0o600 });
    const profile = (name: string, user: string) =>
      `[${name}]\nuser=${user}\nfingerprint=${fingerprint}\nkey_file=~/.oci/key.pem\ntenancy=${TENANCY}\n`;
    await writeFile(
      join(homeWithConfig, '.oci', 'config'),
      `${profile('DEFAULT', 'ocid1.user.oc1..fromhome')}${profile('OTHER', 'ocid1.user.oc1..other')}`,
    );
    explicitConfig = join(dir, 'explicit-config');
    await writeFile(explicitConfig, profile('DEFAULT', 'ocid1.user.oc1..explicit'));
  });

  afterAll(async () => {
    await vault.close();
    await rm(dir, { recursive: true, force: true });
  });

  const userOf = (result: Awaited<ReturnType<typeof resolveOciAuth>>) =>
    result.auth.kind === 'api-key' ? result.auth.key.user : result.auth.kind;

  it('prefers Vault when VAULT_ADDR is set, over any config file', async () => {
    const result = await resolveOciAuth({
      HOME: homeWithConfig,
      OCI_CONFIG_FILE: explicitConfig,
      VAULT_ADDR: vault.url,
      VAULT_TOKEN: TOKEN,
    });
    expect(userOf(result)).toBe('ocid1.user.oc1..fromvault');
    expect(result.source).toBe('vault:secret/data/polisen-collector');
    expect(result.source).not.toContain(TOKEN);
  });

  it('passes the Vault settings through (AppRole, KV v1 path, version, timeout)', async () => {
    const result = await resolveOciAuth({
      HOME: emptyHome,
      VAULT_ADDR: `${vault.url}/`,
      VAULT_ROLE_ID: 'role-1',
      VAULT_SECRET_ID: 'secret-id-1-abcdef',
      VAULT_SECRET_PATH: 'kv/collector',
      VAULT_KV_VERSION: '1',
      VAULT_TIMEOUT_MS: '5000',
      VAULT_NAMESPACE: 'ns1',
    });
    expect(userOf(result)).toBe('ocid1.user.oc1..fromkv1');
    expect(result.source).toBe('vault:kv/collector');
    expect(vault.requests.at(-1)?.namespace).toBe('ns1');
  });

  it('uses OCI_CONFIG_FILE and OCI_PROFILE when there is no VAULT_ADDR', async () => {
    const result = await resolveOciAuth({ HOME: homeWithConfig, OCI_CONFIG_FILE: explicitConfig });
    expect(userOf(result)).toBe('ocid1.user.oc1..explicit');
    expect(result.source).toBe(`config_file:${explicitConfig}[DEFAULT]`);
    const other = await resolveOciAuth({ HOME: homeWithConfig, OCI_PROFILE: 'OTHER' });
    expect(userOf(other)).toBe('ocid1.user.oc1..other');
    expect(other.source).toBe(`config_file:${join(homeWithConfig, '.oci', 'config')}[OTHER]`);
  });

  it('falls back to ~/.oci/config', async () => {
    expect(userOf(await resolveOciAuth({ HOME: homeWithConfig }))).toBe('ocid1.user.oc1..fromhome');
  });

  it('honours OCI_AUTH over the automatic order', async () => {
    const vaultEnv = { HOME: homeWithConfig, VAULT_ADDR: vault.url, VAULT_TOKEN: TOKEN };
    expect(await resolveOciAuth({ ...vaultEnv, OCI_AUTH: 'instance_principal' })).toEqual({
      auth: { kind: 'instance-principal' },
      source: 'instance_principal',
    });
    expect(userOf(await resolveOciAuth({ ...vaultEnv, OCI_AUTH: 'config_file' }))).toBe(
      'ocid1.user.oc1..fromhome',
    );
    expect(userOf(await resolveOciAuth({ ...vaultEnv, OCI_AUTH: 'api_key' }))).toBe(
      'ocid1.user.oc1..fromvault',
    );
    expect(userOf(await resolveOciAuth({ HOME: homeWithConfig, OCI_AUTH: 'api_key' }))).toBe(
      'ocid1.user.oc1..fromhome',
    );
    expect(userOf(await resolveOciAuth({ ...vaultEnv, HOME: emptyHome, OCI_AUTH: 'vault' }))).toBe(
      'ocid1.user.oc1..fromvault',
    );
  });

  it('fails with what to set when nothing is configured', async () => {
    const error = await failure(() => resolveOciAuth({ HOME: emptyHome }));
    expect(error.code).toBe('E_SECRETS_CONFIG');
    for (const name of [
      'VAULT_ADDR',
      'VAULT_TOKEN',
      'VAULT_ROLE_ID',
      'OCI_CONFIG_FILE',
      'OCI_AUTH=instance_principal',
    ]) {
      expect(error.message).toContain(name);
    }
    const forced = await failure(() => resolveOciAuth({ HOME: emptyHome, OCI_AUTH: 'config_file' }));
    expect(forced.message).toContain(join(emptyHome, '.oci', 'config'));
  });

  it('fails before any request on bad settings', async () => {
    const before = vault.requests.length;
    const error = await failure(() => resolveOciAuth({ HOME: emptyHome, VAULT_ADDR: vault.url }));
    expect(error.code).toBe('E_SECRETS_CONFIG');
    expect(error.message).toContain('VAULT_TOKEN');
    expect((await failure(() => resolveOciAuth({ HOME: emptyHome, OCI_AUTH: 'vault' }))).message).toContain(
      'VAULT_ADDR',
    );
    expect((await failure(() => resolveOciAuth({ OCI_AUTH: 'kerberos' }))).message).toContain('OCI_AUTH');
    expect(vault.requests.length).toBe(before);
  });

  it('keeps Vault errors as they are (a wrong token stays E_SECRETS_CONFIG, without the token)', async () => {
    const error = await failure(() =>
      resolveOciAuth({ HOME: emptyHome, VAULT_ADDR: vault.url, VAULT_TOKEN: 'hvs.not-known-77777' }),
    );
    expect(error.code).toBe('E_SECRETS_CONFIG');
    expect(error.message).not.toContain('hvs.not-known-77777');
  });
});

describe('describeCredentialSettingsProblems', () => {
  it('finds nothing wrong in complete settings', () => {
    expect(describeCredentialSettingsProblems({})).toEqual([]);
    expect(
      describeCredentialSettingsProblems({ VAULT_ADDR: 'https://vault:8200', VAULT_TOKEN: 't' }),
    ).toEqual([]);
    expect(
      describeCredentialSettingsProblems({
        VAULT_ADDR: 'http://127.0.0.1:8200',
        VAULT_ROLE_ID: 'r',
        VAULT_SECRET_ID_FILE: '/run/secrets/sid',
        VAULT_KV_VERSION: 'auto',
        VAULT_TIMEOUT_MS: '2500',
      }),
    ).toEqual([]);
    expect(
      describeCredentialSettingsProblems({ OCI_AUTH: 'instance-principal', VAULT_ADDR: 'nonsense' }),
    ).toEqual([]);
  });

  it.each([
    [{ VAULT_ADDR: 'vault.example:8200', VAULT_TOKEN: 't' }, 'VAULT_ADDR is not an http:// or https:// URL'],
    [{ VAULT_ADDR: 'https://vault:8200' }, 'set VAULT_TOKEN or VAULT_TOKEN_FILE, or VAULT_ROLE_ID'],
    [
      { VAULT_ADDR: 'https://vault:8200', VAULT_ROLE_ID: 'r' },
      'VAULT_ROLE_ID is set without VAULT_SECRET_ID',
    ],
    [{ VAULT_ADDR: 'https://vault:8200', VAULT_SECRET_ID: 's' }, 'set without VAULT_ROLE_ID'],
    [
      { VAULT_ADDR: 'https://v', VAULT_TOKEN: 't', VAULT_KV_VERSION: '3' },
      'VAULT_KV_VERSION must be 1, 2 or auto',
    ],
    [{ VAULT_ADDR: 'https://v', VAULT_TOKEN: 't', VAULT_TIMEOUT_MS: '10s' }, 'VAULT_TIMEOUT_MS must be'],
    [{ VAULT_ADDR: 'https://v', VAULT_TOKEN: 't', VAULT_TIMEOUT_MS: '0' }, 'VAULT_TIMEOUT_MS must be'],
    [{ VAULT_ADDR: 'https://v', VAULT_TOKEN: 't', VAULT_SECRET_PATH: 'secret/../x' }, 'VAULT_SECRET_PATH'],
    [{ OCI_AUTH: 'vault', VAULT_TOKEN: 't' }, 'OCI_AUTH=vault needs VAULT_ADDR'],
    [{ OCI_AUTH: 'password' }, 'OCI_AUTH must be one of'],
  ])('reports %o', (env, expected) => {
    const problems = describeCredentialSettingsProblems(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(expected);
  });

  it('never repeats a secret value', () => {
    const problems = describeCredentialSettingsProblems({
      VAULT_ADDR: 'not-a-url-secretish',
      VAULT_SECRET_ID: 'sid-value-999',
      VAULT_KV_VERSION: 'kv-value-888',
    });
    expect(problems.length).toBeGreaterThanOrEqual(3);
    for (const value of ['not-a-url-secretish', 'sid-value-999', 'kv-value-888']) {
      expect(problems.join('\n')).not.toContain(value);
    }
  });
});
