/**
 * OCI API keys for tests, generated in memory at test time (never written to disk, never committed).
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { OciApiKey } from '../../src/secrets/credentials.js';

export interface TestKey {
  /** PKCS#8 PEM, the format `openssl genrsa` + the OCI console produce today. */
  privateKeyPem: string;
  /** SPKI PEM: what you would upload to the OCI console. */
  publicKeyPem: string;
  /** OCI-style fingerprint: MD5 of the DER public key, 16 colon-separated hex pairs. */
  fingerprint: string;
}

export const TEST_TENANCY = 'ocid1.tenancy.oc1..aaaaaaaa7polisencollectortesttenancyq3kx5wz2m4n6p8r';
export const TEST_USER = 'ocid1.user.oc1..aaaaaaaa7polisencollectortestuserq3kx5wz2m4n6p8rt2vh';

/** The fingerprint the OCI console shows for a public key (`openssl rsa -pubout -outform DER | openssl md5 -c`). */
export function ociFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('md5').update(der).digest('hex').match(/../g)!.join(':');
}

/** A fresh RSA 2048 key pair each call (about 50–200 ms). */
export function createTestKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey, fingerprint: ociFingerprint(publicKey) };
}

let cached: TestKey | undefined;

/** The process-wide test key, generated on first use. */
export function testKey(): TestKey {
  cached ??= createTestKey();
  return cached;
}

/** Credentials as the collector receives them, for `key` (default: the process-wide test key). */
export function testOciApiKey(key: TestKey = testKey()): OciApiKey {
  return {
    user: TEST_USER,
    tenancy: TEST_TENANCY,
    fingerprint: key.fingerprint,
    privateKey: key.privateKeyPem,
    region: 'eu-stockholm-1',
  };
}

/** The keyId an OCI request signature carries for these credentials. */
export function ociKeyId(apiKey: Pick<OciApiKey, 'tenancy' | 'user' | 'fingerprint'>): string {
  return `${apiKey.tenancy}/${apiKey.user}/${apiKey.fingerprint}`;
}
