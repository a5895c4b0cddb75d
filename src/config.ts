/**
 * Settings from flags and the environment (flags win), validated at start. Pure: returns the
 * config plus every problem found (as changesets' validateConfig does), so the CLI can print one
 * clear line per problem and exit 2.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_API_URL = 'https://polisen.se/api/events';
export const DEFAULT_MAX_SEEN_IDS = 1000;
/** The feed returns the latest 500 events; the retained window must hold all of them. */
export const MIN_MAX_SEEN_IDS = 500;
export const DEFAULT_OCI_BUCKET = 'polisen-events-collector';
export const DEFAULT_OCI_REGION = 'eu-stockholm-1';

export type StoreConfig =
  | { kind: 'local'; dir: string }
  | { kind: 'oci'; namespace: string; bucket: string; region: string; endpoint: string | undefined };

export interface Config {
  apiUrl: string;
  store: StoreConfig;
  stateDir: string;
  userAgent: string;
  /** Whether the User-Agent names a contact (the API's rules ask for one). */
  userAgentHasContact: boolean;
  pacing: boolean;
  /** The API's rules: ≥ 10 s between calls, ≤ 60 an hour, ≤ 1,440 a day. Looser only for a loopback API. */
  pacingRules: { minIntervalMs: number; maxPerHour: number; maxPerDay: number };
  maxSeenIds: number;
  logLevel: string;
  revisions: boolean;
  prefix: string;
  metricsFile: string | undefined;
  pingUrl: string | undefined;
  locations: string[];
  types: string[];
  failIfLocked: boolean;
}

/** Flag values as commander gives them (undefined when not given). */
export interface Flags {
  apiUrl?: string;
  store?: string;
  stateDir?: string;
  userAgent?: string;
  maxSeenIds?: string;
  logLevel?: string;
  revisions?: boolean;
  storePrefix?: string;
  metricsFile?: string;
  pingUrl?: string;
  location?: string;
  type?: string;
  failIfLocked?: boolean;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);

function pick(flag: string | undefined, env: string | undefined): string | undefined {
  if (flag !== undefined) return flag;
  return env === undefined || env === '' ? undefined : env;
}

function parseBool(name: string, value: string | undefined, fallback: boolean, errors: string[]): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  errors.push(`${name}=${JSON.stringify(value)} is not on/off (use on, off, true, false, 1 or 0)`);
  return fallback;
}

export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function parseApiUrl(value: string, errors: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    errors.push(`POLISEN_API_URL / --api-url: ${JSON.stringify(value)} is not a URL`);
    return value;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    errors.push(
      `POLISEN_API_URL / --api-url: ${url.protocol}// is not allowed; the API is HTTPS only (plain http only for 127.0.0.1, ::1 or localhost)`,
    );
  }
  return url.toString();
}

function checkOciSettings(region: string, endpoint: string | undefined, errors: string[]): void {
  if (endpoint !== undefined) {
    try {
      const u = new URL(endpoint);
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) {
        errors.push('OCI_OBJECT_STORAGE_ENDPOINT must be https:// (plain http only for loopback hosts)');
      }
    } catch {
      errors.push(`OCI_OBJECT_STORAGE_ENDPOINT: ${JSON.stringify(endpoint)} is not a URL`);
    }
  }
  // Region ids have two or more parts before the number: eu-stockholm-1, us-gov-ashburn-1.
  if (!/^[a-z]+(-[a-z]+)+-\d+$/.test(region)) {
    errors.push(`OCI_REGION: ${JSON.stringify(region)} is not a region id like eu-stockholm-1`);
  }
}

function parseStore(value: string, env: NodeJS.ProcessEnv, errors: string[]): StoreConfig {
  const region = env.OCI_REGION || DEFAULT_OCI_REGION;
  const endpoint = env.OCI_OBJECT_STORAGE_ENDPOINT || undefined;
  if (value.startsWith('oci://')) {
    checkOciSettings(region, endpoint, errors);
    const m = /^oci:\/\/([^/]+)\/([^/]+)\/?$/.exec(value);
    if (!m) {
      errors.push(`COLLECTOR_STORE / --store: ${JSON.stringify(value)} must be oci://NAMESPACE/BUCKET`);
      return { kind: 'oci', namespace: '', bucket: '', region, endpoint };
    }
    return { kind: 'oci', namespace: m[1]!, bucket: m[2]!, region, endpoint };
  }
  if (value === 'oci') {
    checkOciSettings(region, endpoint, errors);
    if (!env.OCI_NAMESPACE)
      errors.push('COLLECTOR_STORE=oci needs OCI_NAMESPACE (or use --store oci://NAMESPACE/BUCKET)');
    return {
      kind: 'oci',
      namespace: env.OCI_NAMESPACE ?? '',
      bucket: env.OCI_BUCKET_NAME || DEFAULT_OCI_BUCKET,
      region,
      endpoint,
    };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && !value.startsWith('file:')) {
    errors.push(
      `COLLECTOR_STORE / --store: ${JSON.stringify(value)}: only a directory, file: URL or oci://NAMESPACE/BUCKET`,
    );
  }
  try {
    return { kind: 'local', dir: value.startsWith('file:') ? fileURLToPath(value) : path.resolve(value) };
  } catch {
    errors.push(`COLLECTOR_STORE / --store: ${JSON.stringify(value)} is not a valid file: URL`);
    return { kind: 'local', dir: value };
  }
}

function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_STATE_HOME || path.join(env.HOME || os.homedir(), '.local', 'state');
  return path.join(base, 'polisen-collector');
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function buildUserAgent(version: string, contact: string | undefined): string {
  return contact
    ? `polisen-collector/${version} (event archiver; contact: ${contact})`
    : `polisen-collector/${version} (event archiver)`;
}

export function validateConfig(
  env: NodeJS.ProcessEnv,
  flags: Flags,
  version: string,
): { config: Config; errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const apiUrl = parseApiUrl(pick(flags.apiUrl, env.POLISEN_API_URL) ?? DEFAULT_API_URL, errors);
  const store = parseStore(pick(flags.store, env.COLLECTOR_STORE) ?? './data', env, errors);

  const stateDirRaw = pick(flags.stateDir, env.COLLECTOR_STATE_DIR);
  const stateDir = stateDirRaw ? path.resolve(stateDirRaw) : defaultStateDir(env);

  const contact = env.API_CONTACT_EMAIL || undefined;
  if (contact !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(contact)) {
    errors.push(`API_CONTACT_EMAIL: ${JSON.stringify(contact)} is not an e-mail address`);
  }
  const explicitAgent = pick(flags.userAgent, env.POLISEN_USER_AGENT);
  if (explicitAgent !== undefined && (explicitAgent.trim() === '' || /[\r\n]/.test(explicitAgent))) {
    errors.push('POLISEN_USER_AGENT / --user-agent must be one non-empty line');
  }
  const userAgent = explicitAgent ?? buildUserAgent(version, contact);
  const userAgentHasContact = explicitAgent !== undefined || contact !== undefined;
  if (!userAgentHasContact) {
    warnings.push(
      'the API asks for a User-Agent with a contact: set API_CONTACT_EMAIL (or POLISEN_USER_AGENT)',
    );
  }

  const pacingRaw = env.POLISEN_PACING;
  const pacing = parseBool('POLISEN_PACING', pacingRaw, true, errors);

  const apiIsLoopback = (() => {
    try {
      return isLoopbackHost(new URL(apiUrl).hostname);
    } catch {
      return false;
    }
  })();
  const rule = (name: string, fallback: number, looser: (n: number) => boolean): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < 1) {
      errors.push(`${name}=${JSON.stringify(raw)} must be a whole number above 0`);
      return fallback;
    }
    if (looser(n) && !apiIsLoopback) {
      errors.push(
        `${name}=${raw} would break the API's published rules; only a loopback POLISEN_API_URL (a local mirror) may go beyond them`,
      );
      return fallback;
    }
    return n;
  };
  const pacingRules = {
    minIntervalMs: rule('POLISEN_MIN_INTERVAL_MS', 10_000, (n) => n < 10_000),
    maxPerHour: rule('POLISEN_MAX_CALLS_PER_HOUR', 60, (n) => n > 60),
    maxPerDay: rule('POLISEN_MAX_CALLS_PER_DAY', 1440, (n) => n > 1440),
  };

  const maxRaw = pick(flags.maxSeenIds, env.MAX_SEEN_IDS);
  let maxSeenIds = DEFAULT_MAX_SEEN_IDS;
  if (maxRaw !== undefined) {
    const n = Number(maxRaw);
    if (!/^\d+$/.test(maxRaw.trim()) || !Number.isSafeInteger(n) || n < MIN_MAX_SEEN_IDS || n > 100_000) {
      errors.push(
        `MAX_SEEN_IDS / --max-seen-ids: ${JSON.stringify(maxRaw)} must be a whole number from ${MIN_MAX_SEEN_IDS} (the feed's 500 events) to 100000`,
      );
    } else {
      maxSeenIds = n;
    }
  }

  const logLevel = (pick(flags.logLevel, env.LOG_LEVEL) ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel))
    errors.push(`LOG_LEVEL: ${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);

  const revisions =
    flags.revisions === false
      ? false
      : parseBool('COLLECTOR_REVISIONS', env.COLLECTOR_REVISIONS, true, errors);

  let prefix = pick(flags.storePrefix, env.COLLECTOR_PREFIX) ?? '';
  if (prefix !== '') {
    if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/?$/.test(prefix)) {
      errors.push(
        `COLLECTOR_PREFIX / --store-prefix: ${JSON.stringify(prefix)} may hold letters, digits, _ - and / only`,
      );
    }
    if (!prefix.endsWith('/')) prefix = `${prefix}/`;
  }

  const metricsFile = pick(flags.metricsFile, env.METRICS_FILE);
  if (metricsFile !== undefined && !metricsFile.endsWith('.prom')) {
    errors.push('METRICS_FILE / --metrics-file must end in .prom (node_exporter reads only *.prom files)');
  }
  const pingUrl = pick(flags.pingUrl, env.HEALTHCHECK_URL);
  if (pingUrl !== undefined) {
    try {
      const u = new URL(pingUrl);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
    } catch {
      errors.push(`HEALTHCHECK_URL / --ping-url: ${JSON.stringify(pingUrl)} is not an http(s) URL`);
    }
  }
  const failIfLocked =
    flags.failIfLocked === true ||
    parseBool('COLLECTOR_FAIL_IF_LOCKED', env.COLLECTOR_FAIL_IF_LOCKED, false, errors);

  return {
    config: {
      apiUrl,
      store,
      stateDir,
      userAgent,
      userAgentHasContact,
      pacing,
      pacingRules,
      maxSeenIds,
      logLevel,
      revisions,
      prefix,
      metricsFile: metricsFile === undefined ? undefined : path.resolve(metricsFile),
      pingUrl,
      locations: splitList(pick(flags.location, env.POLISEN_LOCATION)),
      types: splitList(pick(flags.type, env.POLISEN_TYPE)),
      failIfLocked,
    },
    errors,
    warnings,
  };
}
