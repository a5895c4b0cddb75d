import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { CollectorError } from '../errors.js';
import type { OciApiKey } from './credentials.js';
import { validateOciApiKey } from './validate-oci-key.js';

export const DEFAULT_OCI_PROFILE = 'DEFAULT';

/**
 * Reads an OCI API key from an OCI CLI config file (INI: [PROFILE] sections of user, fingerprint, key_file,
 * tenancy, region, pass_phrase). As in the OCI SDKs, a profile inherits the keys of [DEFAULT].
 * `key_file` may start with `~/`; a relative key_file is taken relative to the config file's directory, so the
 * result does not depend on the working directory of a cron job.
 */
export async function readOciKeyFromConfigFile(
  path: string,
  profile = DEFAULT_OCI_PROFILE,
  homeDir: string = homedir(),
): Promise<OciApiKey> {
  const configPath = expandHome(path, homeDir);
  const where = `OCI config file ${configPath} [${profile}]`;
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      `cannot read the OCI config file ${configPath} (${errorCode(error)}): check OCI_CONFIG_FILE`,
    );
  }

  const sections = parseIni(text, configPath);
  const own = sections.get(profile);
  if (own === undefined) {
    const names = [...sections.keys()];
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      `OCI config file ${configPath} has no profile [${profile}] (it has ${names.length > 0 ? names.map((n) => `[${n}]`).join(', ') : 'none'}): check OCI_PROFILE`,
    );
  }
  const settings = new Map([...(sections.get(DEFAULT_OCI_PROFILE) ?? []), ...own]);

  const keyFileSetting = settings.get('key_file');
  if (keyFileSetting === undefined || keyFileSetting === '') {
    throw new CollectorError('E_SECRETS_CONFIG', `${where}: field "key_file" is missing`);
  }
  const keyPath = resolveKeyFile(keyFileSetting, configPath, homeDir);
  let privateKey: string;
  try {
    privateKey = await readFile(keyPath, 'utf8');
  } catch (error) {
    throw new CollectorError(
      'E_SECRETS_CONFIG',
      `${where}: field "key_file": cannot read the key file ${keyPath} (${errorCode(error)})`,
    );
  }

  const { key, errors } = validateOciApiKey(
    {
      user: settings.get('user'),
      tenancy: settings.get('tenancy'),
      fingerprint: settings.get('fingerprint'),
      private_key: privateKey,
      passphrase: settings.get('pass_phrase'),
      region: settings.get('region'),
    },
    where,
  );
  if (!key) {
    // The validator speaks of Vault's field names; say what this file calls them.
    const renamed = errors.map((line) =>
      line
        .replace('field "private_key"', `field "key_file" (${keyPath})`)
        .replace('field "passphrase"', 'field "pass_phrase"'),
    );
    throw new CollectorError('E_SECRETS_CONFIG', renamed.join('; '));
  }
  return key;
}

/** Profile name → key → value. Never quotes a line back: a malformed line may hold a pass_phrase. */
function parseIni(text: string, configPath: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const lineNo = index + 1;
    if (line.startsWith('[') && line.endsWith(']')) {
      const name = line.slice(1, -1).trim();
      if (name === '') {
        throw new CollectorError(
          'E_SECRETS_CONFIG',
          `OCI config file ${configPath} line ${lineNo}: empty profile name`,
        );
      }
      current = sections.get(name) ?? new Map<string, string>();
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) {
      throw new CollectorError(
        'E_SECRETS_CONFIG',
        `OCI config file ${configPath} line ${lineNo}: expected "key = value" or "[PROFILE]"`,
      );
    }
    if (current === undefined) {
      throw new CollectorError(
        'E_SECRETS_CONFIG',
        `OCI config file ${configPath} line ${lineNo}: a setting before any [PROFILE] header`,
      );
    }
    current.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return sections;
}

function resolveKeyFile(setting: string, configPath: string, homeDir: string): string {
  const expanded = expandHome(setting, homeDir);
  return isAbsolute(expanded) ? expanded : resolve(dirname(configPath), expanded);
}

function expandHome(path: string, homeDir: string): string {
  if (path === '~') return homeDir;
  if (path.startsWith('~/') || path.startsWith('~\\')) return join(homeDir, path.slice(2));
  return path;
}

function errorCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'read error';
}
