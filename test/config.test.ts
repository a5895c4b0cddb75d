import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Region } from 'oci-common';
import { describe, expect, it } from 'vitest';
import { type Flags, validateConfig } from '../src/config.js';

const VERSION = '1.2.3';
const HOME = '/home/tester';

function check(env: NodeJS.ProcessEnv, flags: Flags = {}) {
  return validateConfig({ HOME, ...env }, flags, VERSION);
}

/** The configuration is valid: no errors (warnings allowed). */
function valid(env: NodeJS.ProcessEnv, flags: Flags = {}) {
  const result = check(env, flags);
  expect(result.errors).toEqual([]);
  return result.config;
}

/** Exactly one error, and it matches. */
function oneError(env: NodeJS.ProcessEnv, pattern: RegExp, flags: Flags = {}): string {
  const { errors } = check(env, flags);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  return errors[0]!;
}

describe('validateConfig: defaults', () => {
  it('API url, ./data resolved, state dir under HOME/.local/state, sane numbers', () => {
    const config = valid({});
    expect(config.apiUrl).toBe('https://polisen.se/api/events');
    expect(config.store).toEqual({ kind: 'local', dir: path.join(process.cwd(), 'data') });
    expect(config.stateDir).toBe('/home/tester/.local/state/polisen-collector');
    expect(config.maxSeenIds).toBe(1000);
    expect(config.logLevel).toBe('info');
    expect(config.pacing).toBe(true);
    expect(config.revisions).toBe(true);
    expect(config.prefix).toBe('');
    expect(config.failIfLocked).toBe(false);
    expect(config.locations).toEqual([]);
    expect(config.metricsFile).toBeUndefined();
  });

  it('the state dir follows XDG_STATE_HOME when set (and ignores it when empty)', () => {
    expect(valid({ XDG_STATE_HOME: '/var/lib/xdg' }).stateDir).toBe('/var/lib/xdg/polisen-collector');
    expect(valid({ XDG_STATE_HOME: '' }).stateDir).toBe('/home/tester/.local/state/polisen-collector');
  });

  it('an empty environment variable counts as unset', () => {
    const config = valid({ POLISEN_API_URL: '', MAX_SEEN_IDS: '', LOG_LEVEL: '', COLLECTOR_STORE: '' });
    expect(config.apiUrl).toBe('https://polisen.se/api/events');
    expect(config.maxSeenIds).toBe(1000);
    expect(config.logLevel).toBe('info');
    expect(config.store).toEqual({ kind: 'local', dir: path.join(process.cwd(), 'data') });
  });
});

describe('validateConfig: flags win over the environment', () => {
  it('for every setting given both ways', () => {
    const env = {
      POLISEN_API_URL: 'https://env.example/api/events',
      COLLECTOR_STORE: '/srv/env-data',
      COLLECTOR_STATE_DIR: '/srv/env-state',
      MAX_SEEN_IDS: '800',
      LOG_LEVEL: 'warn',
      COLLECTOR_PREFIX: 'env',
      COLLECTOR_REVISIONS: 'on',
      POLISEN_USER_AGENT: 'env-agent/1 (ops@example.org)',
    };
    const flags: Flags = {
      apiUrl: 'https://flag.example/api/events',
      store: 'oci://flagns/flagbucket',
      stateDir: '/srv/flag-state',
      maxSeenIds: '700',
      logLevel: 'debug',
      storePrefix: 'flag',
      revisions: false,
      userAgent: 'flag-agent/1 (ops@example.org)',
    };
    const config = valid(env, flags);
    expect(config.apiUrl).toBe('https://flag.example/api/events');
    expect(config.store).toMatchObject({ kind: 'oci', namespace: 'flagns', bucket: 'flagbucket' });
    expect(config.stateDir).toBe('/srv/flag-state');
    expect(config.maxSeenIds).toBe(700);
    expect(config.logLevel).toBe('debug');
    expect(config.prefix).toBe('flag/');
    expect(config.revisions).toBe(false);
    expect(config.userAgent).toBe('flag-agent/1 (ops@example.org)');

    // And the environment is used when the flags are absent.
    const fromEnv = valid(env);
    expect(fromEnv.apiUrl).toBe('https://env.example/api/events');
    expect(fromEnv.store).toEqual({ kind: 'local', dir: '/srv/env-data' });
    expect(fromEnv.stateDir).toBe('/srv/env-state');
    expect(fromEnv.maxSeenIds).toBe(800);
    expect(fromEnv.logLevel).toBe('warn');
    expect(fromEnv.prefix).toBe('env/');
    expect(fromEnv.revisions).toBe(true);
  });
});

describe('validateConfig: API url', () => {
  it.each([
    'http://127.0.0.1:8080/api/events',
    'http://localhost:3000/api/events',
    'http://[::1]:3000/api/events',
    'https://polisen.se/api/events?locationname=Stockholm',
  ])('%s is allowed', (url) => {
    expect(valid({ POLISEN_API_URL: url }).apiUrl).toBe(new URL(url).toString());
  });

  it.each([
    'http://example.org/api/events',
    'http://polisen.se/api/events',
    'http://localhost.example.org/api/events',
    'http://127.0.0.1.nip.io/api/events',
    'ftp://polisen.se/api/events',
  ])('%s is rejected, naming HTTPS', (url) => {
    oneError({ POLISEN_API_URL: url }, /HTTPS/);
  });

  it('a value that is not a URL is rejected', () => {
    oneError({ POLISEN_API_URL: 'polisen.se/api/events' }, /POLISEN_API_URL/);
  });
});

describe('validateConfig: numbers and levels', () => {
  it.each(['499', '0', 'abc', '1e3', '-600', '600.5', '100001'])('MAX_SEEN_IDS=%s is rejected', (value) => {
    const message = oneError({ MAX_SEEN_IDS: value }, /MAX_SEEN_IDS/);
    expect(message).toContain('500');
  });

  it.each([
    ['500', 500],
    ['1000', 1000],
    [' 2500 ', 2500],
  ])('MAX_SEEN_IDS=%s is %d', (value, expected) => {
    expect(valid({ MAX_SEEN_IDS: value }).maxSeenIds).toBe(expected);
  });

  it('an invalid LOG_LEVEL is rejected; case does not matter', () => {
    oneError({ LOG_LEVEL: 'verbose' }, /LOG_LEVEL/);
    expect(valid({ LOG_LEVEL: 'WARN' }).logLevel).toBe('warn');
  });
});

describe('validateConfig: store', () => {
  it('oci://ns/bucket, with the default region and no endpoint', () => {
    expect(valid({ COLLECTOR_STORE: 'oci://axaxnpcrorw5/archive' }).store).toEqual({
      kind: 'oci',
      namespace: 'axaxnpcrorw5',
      bucket: 'archive',
      region: 'eu-stockholm-1',
      endpoint: undefined,
    });
  });

  it('OCI_REGION and OCI_OBJECT_STORAGE_ENDPOINT are used', () => {
    const store = valid({
      COLLECTOR_STORE: 'oci://ns/bucket',
      OCI_REGION: 'eu-frankfurt-1',
      OCI_OBJECT_STORAGE_ENDPOINT: 'http://127.0.0.1:9000',
    }).store;
    expect(store).toEqual({
      kind: 'oci',
      namespace: 'ns',
      bucket: 'bucket',
      region: 'eu-frankfurt-1',
      endpoint: 'http://127.0.0.1:9000',
    });
  });

  it('a plain-http endpoint that is not loopback is rejected', () => {
    oneError(
      { COLLECTOR_STORE: 'oci://ns/bucket', OCI_OBJECT_STORAGE_ENDPOINT: 'http://objectstorage.example.org' },
      /OCI_OBJECT_STORAGE_ENDPOINT/,
    );
  });

  it('COLLECTOR_STORE=oci takes OCI_NAMESPACE and the default bucket', () => {
    expect(valid({ COLLECTOR_STORE: 'oci', OCI_NAMESPACE: 'axaxnpcrorw5' }).store).toEqual({
      kind: 'oci',
      namespace: 'axaxnpcrorw5',
      bucket: 'polisen-events-collector',
      region: 'eu-stockholm-1',
      endpoint: undefined,
    });
    expect(
      valid({ COLLECTOR_STORE: 'oci', OCI_NAMESPACE: 'ns', OCI_BUCKET_NAME: 'other' }).store,
    ).toMatchObject({ bucket: 'other' });
  });

  it('COLLECTOR_STORE=oci without OCI_NAMESPACE is an error naming it', () => {
    oneError({ COLLECTOR_STORE: 'oci' }, /OCI_NAMESPACE/);
  });

  it('oci:// without a bucket is an error', () => {
    oneError({ COLLECTOR_STORE: 'oci://only-namespace' }, /oci:\/\/NAMESPACE\/BUCKET/);
  });

  it('a file: URL is a local directory (percent-decoded)', () => {
    const dir = path.join(os.tmpdir(), 'polisen data');
    expect(valid({ COLLECTOR_STORE: pathToFileURL(dir).href }).store).toEqual({ kind: 'local', dir });
  });

  it('a relative directory is resolved', () => {
    expect(valid({ COLLECTOR_STORE: 'archive/polisen' }).store).toEqual({
      kind: 'local',
      dir: path.join(process.cwd(), 'archive', 'polisen'),
    });
  });

  it('other URL schemes are rejected', () => {
    oneError({ COLLECTOR_STORE: 's3://bucket/prefix' }, /COLLECTOR_STORE/);
  });

  it.each(['eu-stockholm-1', 'us-ashburn-1', 'ap-singapore-2'])('OCI_REGION=%s is accepted', (region) => {
    expect(valid({ COLLECTOR_STORE: 'oci://ns/b', OCI_REGION: region }).store).toMatchObject({ region });
  });

  it('OCI settings left in the environment do not fail a local-store run', () => {
    expect(
      check({ COLLECTOR_STORE: './x', OCI_REGION: 'Stockholm', OCI_OBJECT_STORAGE_ENDPOINT: 'nope' }).errors,
    ).toEqual([]);
  });

  it('OCI_REGION that is not a region id is rejected', () => {
    oneError({ COLLECTOR_STORE: 'oci://ns/b', OCI_REGION: 'Stockholm' }, /OCI_REGION/);
  });

  // Three-word region ids (us-gov-ashburn-1, uk-gov-london-1, eu-dcc-milan-1) are real too.
  it('accepts every region id oci-common knows', () => {
    const rejected = Region.values()
      .map((r) => r.regionId)
      .filter((region) => check({ COLLECTOR_STORE: 'oci://ns/b', OCI_REGION: region }).errors.length > 0);
    expect(rejected).toEqual([]);
  });
});

describe('validateConfig: several problems at once', () => {
  it('one error per problem', () => {
    const { errors } = check({
      POLISEN_API_URL: 'http://example.org/api/events',
      MAX_SEEN_IDS: 'lots',
      LOG_LEVEL: 'chatty',
      POLISEN_PACING: 'sometimes',
      COLLECTOR_STORE: 's3://bucket',
    });
    expect(errors).toHaveLength(5);
    for (const name of [
      'POLISEN_API_URL',
      'MAX_SEEN_IDS',
      'LOG_LEVEL',
      'POLISEN_PACING',
      'COLLECTOR_STORE',
    ]) {
      expect(errors.filter((e) => e.includes(name))).toHaveLength(1);
    }
  });
});

describe('validateConfig: User-Agent and contact', () => {
  it('no contact: a warning, and the agent names the version', () => {
    const { config, errors, warnings } = check({});
    expect(errors).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/API_CONTACT_EMAIL/);
    expect(config.userAgentHasContact).toBe(false);
    expect(config.userAgent).toContain(VERSION);
  });

  it('API_CONTACT_EMAIL goes into the User-Agent; no warning', () => {
    const { config, errors, warnings } = check({ API_CONTACT_EMAIL: 'ops@example.org' });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(config.userAgent).toContain('ops@example.org');
    expect(config.userAgent).toContain(VERSION);
    expect(config.userAgentHasContact).toBe(true);
  });

  it('an explicit User-Agent counts as having a contact', () => {
    const { config, warnings } = check({
      POLISEN_USER_AGENT: 'my-archiver/2 (+https://example.org/contact)',
    });
    expect(config.userAgent).toBe('my-archiver/2 (+https://example.org/contact)');
    expect(warnings).toEqual([]);
  });

  it('a contact that is not an e-mail address, or a multi-line agent, is an error', () => {
    oneError({ API_CONTACT_EMAIL: 'ops at example' }, /API_CONTACT_EMAIL/);
    oneError({ POLISEN_USER_AGENT: 'agent\r\nX-Injected: 1' }, /POLISEN_USER_AGENT/);
  });
});

describe('validateConfig: pacing', () => {
  it.each([
    ['off', false],
    ['OFF', false],
    ['0', false],
    ['false', false],
    ['on', true],
    ['1', true],
  ])('POLISEN_PACING=%s → %s', (value, expected) => {
    expect(valid({ POLISEN_PACING: value }).pacing).toBe(expected);
  });

  it('unset → on', () => {
    expect(valid({}).pacing).toBe(true);
  });

  it('an invalid value is an error naming POLISEN_PACING', () => {
    oneError({ POLISEN_PACING: 'sometimes' }, /POLISEN_PACING/);
  });
});
