import { hash } from 'node:crypto';

/**
 * A short content fingerprint of an event, independent of key order, so that a revision is only
 * reported when a value really changed (a reordered object is not an edit).
 */
export function fingerprintEvent(event: unknown): string {
  return hash('sha1', canonicalJson(event), 'base64').slice(0, FINGERPRINT_LENGTH);
}

/** 8 base64 characters: 48 bits, enough that a false "unchanged" is practically impossible. */
export const FINGERPRINT_LENGTH = 8;

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}
