/**
 * The local servers every timed run talks to (feed, OCI Object Storage, Vault, all on 127.0.0.1) and the
 * environment of a `collect` run for each store set-up:
 *
 * - `local`: local directory store; only the feed is remote.
 * - `oci`: the OCI test server, credentials from an OCI config file (no network call for them).
 * - `vault`: the OCI test server, credentials from Vault through an AppRole login and a KV v2 read.
 *
 * The OCI key is the throwaway test key, written (0600) only into this run's temp directory for the
 * config-file set-up, as the secrets tests do; the directory is removed on close.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type FeedTestServer, startFeedServer } from '../../test/support/feed-server.js';
import { type OciTestObject, type OciTestServer, startOciServer } from '../../test/support/oci-server.js';
import { putKeyInVault } from '../../test/support/production-servers.js';
import { ociKeyId, testKey, testOciApiKey } from '../../test/support/test-keys.js';
import { startVaultServer, type VaultTestServer } from '../../test/support/vault-server.js';

export type StoreKind = 'local' | 'oci' | 'vault';

export const NAMESPACE = 'benchns';
export const BUCKET = 'bench';

export interface Rig {
  feed: FeedTestServer;
  oci: OciTestServer;
  vault: VaultTestServer;
  /** Temp root of everything on disk the benchmark makes. */
  root: string;
  /** The environment of a collect run (nothing inherited but PATH); `runDir` holds its store and state. */
  env(kind: StoreKind, runDir: string): Record<string, string>;
  /** Delays every answer of the servers a `kind` run talks to by `ms` (the others answer at once). */
  setDelay(kind: StoreKind, ms: number): void;
  /** A fresh directory under root. */
  tempDir(prefix: string): string;
  close(): Promise<void>;
}

export type OciSnapshot = Map<string, OciTestObject>;

export function snapshotOci(oci: OciTestServer): OciSnapshot {
  return new Map([...oci.objects].map(([k, v]) => [k, { ...v }]));
}

export function restoreOci(oci: OciTestServer, snapshot: OciSnapshot): void {
  oci.objects.clear();
  for (const [k, v] of snapshot) oci.objects.set(k, { ...v });
}

export async function startRig(): Promise<Rig> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'polisen-bench-'));
  const apiKey = testOciApiKey(testKey());
  const [feed, oci, vault] = await Promise.all([
    startFeedServer(),
    startOciServer({ publicKeyPem: testKey().publicKeyPem, keyId: ociKeyId(apiKey), namespace: NAMESPACE }),
    startVaultServer(),
  ]);

  const home = path.join(root, 'home');
  mkdirSync(path.join(home, '.oci'), { recursive: true, mode: 0o700 });
  const keyFile = path.join(home, '.oci', 'bench_key.pem');
  writeFileSync(keyFile, apiKey.privateKey, { mode: 0o600 });
  const configFile = path.join(home, '.oci', 'config');
  writeFileSync(
    configFile,
    [
      '[DEFAULT]',
      `user=${apiKey.user}`,
      `fingerprint=${apiKey.fingerprint}`,
      `tenancy=${apiKey.tenancy}`,
      `region=${apiKey.region}`,
      `key_file=${keyFile}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  const roleId = `bench-role-${randomBytes(4).toString('hex')}`;
  const secretId = randomBytes(16).toString('hex');
  vault.addAppRole(roleId, secretId);
  putKeyInVault(vault, apiKey);

  const ociStore = {
    COLLECTOR_STORE: `oci://${NAMESPACE}/${BUCKET}`,
    OCI_OBJECT_STORAGE_ENDPOINT: oci.url,
  };
  return {
    feed,
    oci,
    vault,
    root,
    env(kind, runDir) {
      const common = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        POLISEN_API_URL: feed.url,
        COLLECTOR_STATE_DIR: path.join(runDir, 'state'),
        POLISEN_PACING: 'off',
        API_CONTACT_EMAIL: 'bench@example.org',
      };
      if (kind === 'local') return { ...common, COLLECTOR_STORE: path.join(runDir, 'store') };
      if (kind === 'oci')
        return { ...common, ...ociStore, OCI_AUTH: 'config_file', OCI_CONFIG_FILE: configFile };
      return {
        ...common,
        ...ociStore,
        VAULT_ADDR: vault.url,
        VAULT_ROLE_ID: roleId,
        VAULT_SECRET_ID: secretId,
      };
    },
    setDelay(kind, ms) {
      feed.delayMs = ms;
      oci.faults.delayMs = kind === 'local' ? 0 : ms;
      vault.delayMs = kind === 'vault' ? ms : 0;
    },
    tempDir(prefix) {
      return mkdtempSync(path.join(root, prefix));
    },
    async close() {
      await Promise.all([feed.close(), oci.close(), vault.close()]);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
