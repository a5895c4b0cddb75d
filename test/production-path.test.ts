/**
 * The production path end to end: Vault → credentials → OCI Object Storage, the real node-vault and
 * oci-objectstorage clients in the built CLI talking to the local test servers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { localEnv, runCli, summaryLine, tempDir } from './support/cli.js';
import { type FeedTestServer, startFeedServer } from './support/feed-server.js';
import {
  type ProductionServers,
  startProductionServers,
  TEST_BUCKET,
  TEST_ROLE_ID,
  TEST_SECRET_ID,
  TEST_VAULT_TOKEN,
} from './support/production-servers.js';
import { loadReplay, REPLAY_SKIP_REASON, replayFileAvailable, responseBody } from './support/replay-file.js';
import { census, duplicates } from './support/store-contents.js';
import { syntheticEvent } from './support/store-fixtures.js';
import { createTestKey, testKey, testOciApiKey } from './support/test-keys.js';

let feed: FeedTestServer;
let servers: ProductionServers;
const temp = tempDir('polisen-prod-');
let bucketCounter = 0;
let bucket: string;

const body = JSON.stringify([
  syntheticEvent(7002, '2024-08-02 1:00:00 +02:00'),
  syntheticEvent(7001, '2024-08-01 23:00:00 +02:00'),
]);

beforeAll(async () => {
  [feed, servers] = await Promise.all([startFeedServer(), startProductionServers()]);
  feed.setBody(body);
});
afterAll(async () => {
  await Promise.all([feed.close(), servers.close()]);
  temp.cleanup();
});
beforeEach(() => {
  bucket = `bucket-${++bucketCounter}`;
  servers.vault.sealed = false;
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...localEnv(feed.url, path.join(temp.dir, bucket)),
    ...servers.env(),
    COLLECTOR_STORE: `oci://${servers.oci.namespace}/${bucket}`,
    ...extra,
  };
}

function bucketObjects(): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [key, object] of servers.oci.objects) {
    if (key.startsWith(`${bucket}/`)) out.set(key.slice(bucket.length + 1), object.body);
  }
  return out;
}

function puts(): number {
  return servers.oci.requests.filter((r) => r.method === 'PUT' && r.path.includes(`/b/${bucket}/`)).length;
}

/** One error line on stdout, nothing on stderr, every stdout line JSON (no SDK console output). */
function expectOneErrorLine(result: Awaited<ReturnType<typeof runCli>>): string {
  expect(result.stderr).toBe('');
  expect(result.stdout.trim().split('\n').length).toBe(result.lines.length);
  const errors = result.lines.filter((l) => l.level === 'error');
  expect(errors).toHaveLength(1);
  return String(errors[0]!.msg);
}

describe('collect with the OCI store and credentials from Vault', () => {
  it('stores events with a Vault token, then finds nothing new', async () => {
    const first = await runCli(['collect'], env());
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout.trim().split('\n').length).toBe(first.lines.length);
    expect(summaryLine(first)).toMatchObject({ outcome: 'success', new: 2, objects: 2 });
    const c = census(bucketObjects());
    expect(duplicates(c)).toEqual([]);
    expect([...c.events.keys()].sort()).toEqual([7001, 7002]);
    expect(c.misplaced).toBe(0);
    const second = await runCli(['collect'], env());
    expect(summaryLine(second)).toMatchObject({ outcome: 'success', new: 0, alreadySeen: 2, objects: 0 });
    expect(first.stdout + second.stdout).not.toContain(TEST_VAULT_TOKEN);
  });

  it('logs in with AppRole', async () => {
    const result = await runCli(
      ['collect'],
      env({ VAULT_TOKEN: '', VAULT_ROLE_ID: TEST_ROLE_ID, VAULT_SECRET_ID: TEST_SECRET_ID }),
    );
    expect(result.code, result.stdout).toBe(0);
    expect(summaryLine(result)).toMatchObject({ new: 2 });
    expect(result.stdout).not.toContain(TEST_SECRET_ID);
  });

  it('--dry-run reads the bucket and writes nothing', async () => {
    const result = await runCli(['collect', '--dry-run'], env());
    expect(result.code).toBe(0);
    expect(summaryLine(result)).toMatchObject({ outcome: 'dry-run', new: 2 });
    expect(puts()).toBe(0);
    expect(bucketObjects().size).toBe(0);
  });

  it('a key the server does not know: one clear line, exit 2, nothing written', async () => {
    const wrong = testOciApiKey(createTestKey());
    servers.vault.setSecret(
      'secret/wrong-key',
      {
        user: wrong.user,
        tenancy: wrong.tenancy,
        fingerprint: testKey().fingerprint,
        private_key: wrong.privateKey,
      },
      2,
    );
    const result = await runCli(['collect'], env({ VAULT_SECRET_PATH: 'secret/data/wrong-key' }));
    expect(result.code).toBe(2);
    expect(expectOneErrorLine(result)).toMatch(/E_STORE_AUTH/);
    expect(result.stdout).not.toContain('PRIVATE KEY');
    expect(bucketObjects().size).toBe(0);
  });

  it('a wrong Vault token: one clear line, exit 2, nothing written, the token never printed', async () => {
    const token = 'hvs.wrong-token-must-not-be-printed';
    const result = await runCli(['collect'], env({ VAULT_TOKEN: token }));
    expect(result.code).toBe(2);
    expect(expectOneErrorLine(result)).toMatch(/VAULT_TOKEN/);
    expect(result.stdout).not.toContain(token);
    expect(puts()).toBe(0);
  });

  it('a sealed Vault: one clear line, exit 1, nothing written', async () => {
    servers.vault.sealed = true;
    const result = await runCli(['collect'], env());
    expect(result.code).toBe(1);
    expect(expectOneErrorLine(result)).toMatch(/sealed/i);
    expect(puts()).toBe(0);
  });

  it('reads credentials from an OCI config file when Vault is not configured', async () => {
    const dir = path.join(temp.dir, 'oci-config');
    mkdirSync(dir, { recursive: true });
    const key = testOciApiKey();
    writeFileSync(path.join(dir, 'key.pem'), key.privateKey, { mode: 0o600 });
    writeFileSync(
      path.join(dir, 'config'),
      `[DEFAULT]\nuser=${key.user}\nfingerprint=${key.fingerprint}\ntenancy=${key.tenancy}\nregion=eu-stockholm-1\nkey_file=${path.join(dir, 'key.pem')}\n`,
    );
    const result = await runCli(
      ['collect'],
      env({ VAULT_ADDR: '', VAULT_TOKEN: '', OCI_CONFIG_FILE: path.join(dir, 'config') }),
    );
    expect(result.code, result.stdout).toBe(0);
    expect(summaryLine(result)).toMatchObject({ new: 2 });
  });

  it.skipIf(!replayFileAvailable())(
    'replays a slice of the recorded feed onto OCI: every id once, none misplaced',
    async () => {
      const replay = await loadReplay();
      // 25 consecutive recorded responses, one collect process each, as cron runs it.
      const slice = replay.responses.slice(1070, 1095);
      const expected = new Set<number>();
      let emptyBodies = 0;
      for (const response of slice) {
        feed.setBody(responseBody(replay, response));
        const result = await runCli(['collect'], env());
        if (response.versions) {
          for (const v of response.versions) expected.add((replay.versions[v] as { id: number }).id);
          expect(result.code, result.stdout).toBe(0);
        } else {
          emptyBodies++;
          expect(result.code).toBe(1);
        }
      }
      expect(emptyBodies).toBe(1); // response 1083 of the file is an empty body
      const c = census(bucketObjects());
      expect(duplicates(c)).toEqual([]);
      expect(new Set(c.events.keys())).toEqual(expected);
      expect(c.misplaced).toBe(0);
      expect(c.unrecorded).toEqual([]);
      feed.setBody(body);
    },
    120_000,
  );
  if (!replayFileAvailable()) it.skip(REPLAY_SKIP_REASON, () => {});

  it('uses the default bucket with COLLECTOR_STORE=oci and OCI_NAMESPACE', async () => {
    bucket = TEST_BUCKET;
    const result = await runCli(
      ['collect'],
      env({ COLLECTOR_STORE: 'oci', OCI_NAMESPACE: servers.oci.namespace }),
    );
    expect(result.code, result.stdout).toBe(0);
    expect(bucketObjects().has('metadata/last_seen.json')).toBe(true);
  });
});
