import type { OciApiKey } from './credentials.js';

/**
 * Checks the fields of an OCI API key (as stored in Vault or read from an OCI config file) the way the old Python
 * collector did. Pure: no I/O. Errors name the field and the source but never echo a value, because a mistyped
 * field can hold a secret (a key pasted into the wrong field).
 */

const FINGERPRINT = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){15}$/;
/** eu-stockholm-1, us-ashburn-1, uk-gov-london-1, ap-dcc-canberra-1 … */
const REGION = /^[a-z]{2}(?:-[a-z0-9]+)+-[0-9]+$/;
const PEM_PRIVATE_KEY_HEADER = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/;
const ENCRYPTED_PEM = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,\s*ENCRYPTED/;

export function validateOciApiKey(
  fields: Record<string, unknown>,
  source: string,
): { key?: OciApiKey; errors: string[] } {
  const errors: string[] = [];
  const problem = (field: string, what: string) => errors.push(`${source}: field "${field}" ${what}`);

  const required = (field: string): string | undefined => {
    const value = fields[field];
    if (value === undefined || value === null || value === '') {
      problem(field, 'is missing');
      return undefined;
    }
    if (typeof value !== 'string') {
      problem(field, `is not a string (it is a ${describeType(value)})`);
      return undefined;
    }
    return value;
  };
  const optional = (field: string): string | undefined => {
    const value = fields[field];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') {
      problem(field, `is not a string (it is a ${describeType(value)})`);
      return undefined;
    }
    return value;
  };

  const user = required('user')?.trim();
  if (user !== undefined && !user.startsWith('ocid1.user.'))
    problem('user', 'does not start with "ocid1.user."');

  const tenancy = required('tenancy')?.trim();
  if (tenancy !== undefined && !tenancy.startsWith('ocid1.tenancy.')) {
    problem('tenancy', 'does not start with "ocid1.tenancy."');
  }

  const fingerprint = required('fingerprint')?.trim();
  if (fingerprint !== undefined && !FINGERPRINT.test(fingerprint)) {
    problem('fingerprint', 'is not of the form aa:bb:… (16 colon-separated hex pairs)');
  }

  const rawKey = required('private_key');
  const privateKey = rawKey === undefined ? undefined : unescapeNewlines(rawKey);
  const passphrase = optional('passphrase');
  if (privateKey !== undefined) {
    if (!PEM_PRIVATE_KEY_HEADER.test(privateKey)) {
      problem('private_key', 'does not contain a PEM header (-----BEGIN … PRIVATE KEY-----)');
    } else if (ENCRYPTED_PEM.test(privateKey) && passphrase === undefined) {
      problem('passphrase', 'is missing but the private key is encrypted');
    }
  }

  const region = optional('region')?.trim();
  if (region !== undefined && !REGION.test(region)) {
    problem('region', 'is not an OCI region identifier like eu-stockholm-1');
  }

  if (
    errors.length > 0 ||
    user === undefined ||
    tenancy === undefined ||
    fingerprint === undefined ||
    privateKey === undefined
  ) {
    return { errors };
  }
  const key: OciApiKey = { user, tenancy, fingerprint, privateKey };
  if (passphrase !== undefined) key.passphrase = passphrase;
  if (region !== undefined) key.region = region;
  return { key, errors };
}

/** A PEM pasted into Vault as one line keeps its newlines as literal "\n"; the key parser needs real ones. */
function unescapeNewlines(pem: string): string {
  return pem.includes('\n') || !pem.includes('\\n') ? pem : pem.replaceAll('\\n', '\n');
}

function describeType(value: unknown): string {
  if (Array.isArray(value)) return 'list';
  return typeof value;
}
