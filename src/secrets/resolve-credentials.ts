import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CollectorError } from '../errors.js';
import type { OciAuth } from './credentials.js';
import { DEFAULT_OCI_PROFILE, readOciKeyFromConfigFile } from './oci-config-file.js';
import { DEFAULT_VAULT_SECRET_PATH, readOciKeyFromVault } from './vault-source.js';

/** OCI_AUTH values; unset means: Vault if VAULT_ADDR is set, else an OCI config file if there is one. */
const AUTH_MODES = ['vault', 'config_file', 'api_key', 'instance_principal'] as const;
type AuthMode = (typeof AUTH_MODES)[number] | 'auto';

const NOTHING_CONFIGURED =
  'no OCI credentials are configured: set VAULT_ADDR with VAULT_TOKEN (or VAULT_TOKEN_FILE, or VAULT_ROLE_ID and ' +
  'VAULT_SECRET_ID / VAULT_SECRET_ID_FILE), or OCI_CONFIG_FILE (or create ~/.oci/config), ' +
  'or OCI_AUTH=instance_principal on an OCI instance';

/**
 * Resolves the OCI credentials once, at start. Order: an explicit OCI_AUTH; else Vault when VAULT_ADDR is set;
 * else the OCI config file (OCI_CONFIG_FILE or ~/.oci/config). `source` is safe to log.
 */
export async function resolveOciAuth(env: NodeJS.ProcessEnv): Promise<{ auth: OciAuth; source: string }> {
  const problems = describeCredentialSettingsProblems(env);
  if (problems.length > 0) throw new CollectorError('E_SECRETS_CONFIG', problems.join('; '));

  const mode = parseAuthMode(env.OCI_AUTH);
  if (mode === 'instance_principal')
    return { auth: { kind: 'instance-principal' }, source: 'instance_principal' };

  const vaultAddr = nonEmpty(env.VAULT_ADDR);
  if (mode === 'vault' || ((mode === 'auto' || mode === 'api_key') && vaultAddr !== undefined)) {
    const secretPath = nonEmpty(env.VAULT_SECRET_PATH) ?? DEFAULT_VAULT_SECRET_PATH;
    const key = await readOciKeyFromVault({
      addr: vaultAddr ?? '',
      token: nonEmpty(env.VAULT_TOKEN),
      tokenFile: nonEmpty(env.VAULT_TOKEN_FILE),
      roleId: nonEmpty(env.VAULT_ROLE_ID),
      secretId: nonEmpty(env.VAULT_SECRET_ID),
      secretIdFile: nonEmpty(env.VAULT_SECRET_ID_FILE),
      secretPath,
      kvVersion: parseKvVersion(env.VAULT_KV_VERSION) ?? 'auto',
      namespace: nonEmpty(env.VAULT_NAMESPACE),
      timeoutMs: parseTimeoutMs(env.VAULT_TIMEOUT_MS),
    });
    return { auth: { kind: 'api-key', key }, source: `vault:${secretPath.replace(/^\/+|\/+$/g, '')}` };
  }

  const home = nonEmpty(env.HOME) ?? homedir();
  const configFile = nonEmpty(env.OCI_CONFIG_FILE);
  const defaultConfig = join(home, '.oci', 'config');
  if (configFile === undefined && !existsSync(defaultConfig)) {
    if (mode === 'auto') throw new CollectorError('E_SECRETS_CONFIG', NOTHING_CONFIGURED);
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      `OCI_AUTH=${mode} needs an OCI config file but ${defaultConfig} does not exist: set OCI_CONFIG_FILE${mode === 'api_key' ? ' or VAULT_ADDR' : ''}`,
    );
  }
  const path = configFile ?? defaultConfig;
  const profile = nonEmpty(env.OCI_PROFILE) ?? DEFAULT_OCI_PROFILE;
  const key = await readOciKeyFromConfigFile(path, profile, home);
  return { auth: { kind: 'api-key', key }, source: `config_file:${path}[${profile}]` };
}

/** Start-up check of the credential settings (pure: no I/O). Each entry is one line for a human. */
export function describeCredentialSettingsProblems(env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  const mode = parseAuthMode(env.OCI_AUTH);
  if (mode === undefined) {
    problems.push(`OCI_AUTH must be one of ${AUTH_MODES.join(', ')} (or unset)`);
    return problems;
  }
  const vaultAddr = nonEmpty(env.VAULT_ADDR);
  const usesVault = mode === 'vault' || ((mode === 'auto' || mode === 'api_key') && vaultAddr !== undefined);
  if (!usesVault) return problems;

  if (vaultAddr === undefined) {
    problems.push('OCI_AUTH=vault needs VAULT_ADDR (e.g. https://vault.example:8200)');
  } else if (!isHttpUrl(vaultAddr)) {
    problems.push('VAULT_ADDR is not an http:// or https:// URL (e.g. https://vault.example:8200)');
  }

  const hasToken = nonEmpty(env.VAULT_TOKEN) !== undefined || nonEmpty(env.VAULT_TOKEN_FILE) !== undefined;
  const hasRoleId = nonEmpty(env.VAULT_ROLE_ID) !== undefined;
  const hasSecretId =
    nonEmpty(env.VAULT_SECRET_ID) !== undefined || nonEmpty(env.VAULT_SECRET_ID_FILE) !== undefined;
  if (!hasToken) {
    if (!hasRoleId && !hasSecretId) {
      problems.push(
        'Vault is used but no Vault credentials are set: set VAULT_TOKEN or VAULT_TOKEN_FILE, or VAULT_ROLE_ID with VAULT_SECRET_ID or VAULT_SECRET_ID_FILE',
      );
    } else if (!hasSecretId) {
      problems.push(
        'VAULT_ROLE_ID is set without VAULT_SECRET_ID or VAULT_SECRET_ID_FILE: AppRole login needs both',
      );
    } else if (!hasRoleId) {
      problems.push(
        'VAULT_SECRET_ID / VAULT_SECRET_ID_FILE is set without VAULT_ROLE_ID: AppRole login needs both',
      );
    }
  }
  if (nonEmpty(env.VAULT_KV_VERSION) !== undefined && parseKvVersion(env.VAULT_KV_VERSION) === undefined) {
    problems.push('VAULT_KV_VERSION must be 1, 2 or auto');
  }
  if (nonEmpty(env.VAULT_TIMEOUT_MS) !== undefined && parseTimeoutMs(env.VAULT_TIMEOUT_MS) === undefined) {
    problems.push('VAULT_TIMEOUT_MS must be a whole number of milliseconds above 0');
  }
  const secretPath = nonEmpty(env.VAULT_SECRET_PATH);
  if (secretPath !== undefined && /(^|\/)\.\.?(\/|$)/.test(secretPath)) {
    problems.push('VAULT_SECRET_PATH must not contain . or .. segments');
  }
  return problems;
}

function parseAuthMode(raw: string | undefined): AuthMode | undefined {
  const value = nonEmpty(raw)?.toLowerCase().replaceAll('-', '_');
  if (value === undefined) return 'auto';
  return (AUTH_MODES as readonly string[]).includes(value) ? (value as AuthMode) : undefined;
}

function parseKvVersion(raw: string | undefined): 1 | 2 | 'auto' | undefined {
  const value = nonEmpty(raw)?.toLowerCase();
  if (value === '1') return 1;
  if (value === '2') return 2;
  if (value === 'auto') return 'auto';
  return undefined;
}

function parseTimeoutMs(raw: string | undefined): number | undefined {
  const value = nonEmpty(raw);
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const ms = Number(value);
  return ms > 0 ? ms : undefined;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}
