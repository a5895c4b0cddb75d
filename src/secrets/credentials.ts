/** The OCI API-key credentials the collector needs, however they were obtained (Vault, OCI config file). */
export interface OciApiKey {
  /** ocid1.user.… */
  user: string;
  /** ocid1.tenancy.… */
  tenancy: string;
  /** aa:bb:…: 16 colon-separated hex pairs */
  fingerprint: string;
  /** PEM private key. A secret: never log it. */
  privateKey: string;
  /** Passphrase of the private key, if any. A secret: never log it. */
  passphrase?: string;
  region?: string;
}

/** How the OCI store authenticates. */
export type OciAuth = { kind: 'api-key'; key: OciApiKey } | { kind: 'instance-principal' };
