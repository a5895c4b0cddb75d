/**
 * The production path on loopback: an OCI Object Storage test server that verifies signatures and
 * a Vault test server holding the OCI API key, with the environment a CLI run needs to use them.
 */

import type { OciApiKey } from '../../src/secrets/credentials.js';
import { type OciTestServer, startOciServer } from './oci-server.js';
import { ociKeyId, testKey, testOciApiKey } from './test-keys.js';
import { startVaultServer, type VaultTestServer } from './vault-server.js';

export const TEST_NAMESPACE = 'testns';
export const TEST_BUCKET = 'polisen-events-collector';
export const TEST_VAULT_TOKEN = 'hvs.test-token-for-the-local-test-server';
export const TEST_ROLE_ID = 'test-role-id';
export const TEST_SECRET_ID = 'test-secret-id-for-the-local-test-server';

/** Stores an OCI API key in the Vault test server where the collector reads it (KV v2, secret/data/polisen-collector). */
export function putKeyInVault(vault: VaultTestServer, apiKey: OciApiKey): void {
  vault.setSecret(
    'secret/polisen-collector',
    {
      user: apiKey.user,
      tenancy: apiKey.tenancy,
      fingerprint: apiKey.fingerprint,
      private_key: apiKey.privateKey,
      region: apiKey.region ?? 'eu-stockholm-1',
    },
    2,
  );
}

export interface ProductionServers {
  oci: OciTestServer;
  vault: VaultTestServer;
  /** Environment for `collect` with the OCI store and credentials from Vault (token login). */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Every object of the bucket: name → body. */
  objects(): Map<string, Buffer>;
  close(): Promise<void>;
}

export async function startProductionServers(): Promise<ProductionServers> {
  const key = testKey();
  const apiKey = testOciApiKey(key);
  const [oci, vault] = await Promise.all([
    startOciServer({ publicKeyPem: key.publicKeyPem, keyId: ociKeyId(apiKey), namespace: TEST_NAMESPACE }),
    startVaultServer(),
  ]);
  vault.addToken(TEST_VAULT_TOKEN);
  vault.addAppRole(TEST_ROLE_ID, TEST_SECRET_ID);
  putKeyInVault(vault, apiKey);
  return {
    oci,
    vault,
    env: (extra = {}) => ({
      COLLECTOR_STORE: `oci://${TEST_NAMESPACE}/${TEST_BUCKET}`,
      OCI_OBJECT_STORAGE_ENDPOINT: oci.url,
      VAULT_ADDR: vault.url,
      VAULT_TOKEN: TEST_VAULT_TOKEN,
      ...extra,
    }),
    objects: () => {
      const out = new Map<string, Buffer>();
      for (const [key, object] of oci.objects) {
        if (key.startsWith(`${TEST_BUCKET}/`)) out.set(key.slice(TEST_BUCKET.length + 1), object.body);
      }
      return out;
    },
    close: async () => {
      await Promise.all([oci.close(), vault.close()]);
    },
  };
}
