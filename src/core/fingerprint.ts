/**
 * A short content fingerprint of an event, to notice edits of published events. It runs on all 500
 * events of every response, so it hashes the values in place (no intermediate JSON text, no crypto
 * object per event), visiting keys in one fixed order: a reordered object is not an edit, a changed
 * value in any field is.
 */
import type { FeedEvent } from './event-validation.js';

/** 8 base64url characters: 48 bits, so a real edit is missed with odds of about 1 in 2.8e14. */
export const FINGERPRINT_LENGTH = 8;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
/** The API's own key order; events in that order (all of them, in practice) need no sorting. */
export const EVENT_KEYS: readonly string[] = ['id', 'datetime', 'name', 'summary', 'url', 'type', 'location'];
export const LOCATION_KEYS: readonly string[] = ['name', 'gps'];
const NO_KEYS: readonly string[] = [];

/** 1 for the characters JSON.stringify escapes (quote, backslash, controls) or may (lone surrogates). */
const ESCAPED = new Uint8Array(0x10000);
ESCAPED.fill(1, 0, 0x20);
ESCAPED[0x22] = 1;
ESCAPED[0x5c] = 1;
ESCAPED.fill(1, 0xd800, 0xe000);

/** Two 32-bit multiplicative lanes, fed pairs of UTF-16 units. */
class Hasher {
  a = 0x811c9dc5;
  b = 0x2f8a7c13;
  /** Whether every value fed was a string JSON writes as it is, between quotes (see textVerbatim). */
  verbatim = true;

  /** One token: its text, closed by its length and a type tag ("ab"+"c" ≠ "a"+"bc", 1 ≠ "1"). */
  text(text: string, tag: number): void {
    let a = this.a;
    let b = this.b;
    const n = text.length;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      const w = (text.charCodeAt(i) << 16) | text.charCodeAt(i + 1);
      a = Math.imul(a ^ w, 0x01000193);
      b = Math.imul(b ^ w, 0x5bd1e995);
      b ^= b >>> 13;
    }
    if (i < n) {
      a = Math.imul(a ^ text.charCodeAt(i), 0x01000193);
      b = Math.imul(b ^ text.charCodeAt(i), 0x5bd1e995);
    }
    this.a = Math.imul(a ^ (n * 8 + tag + 0x9e3700), 0x01000193);
    this.b = Math.imul(b ^ (n * 8 + tag + 0x79b900), 0x5bd1e995);
  }

  /**
   * text(), also keeping `verbatim` (a table lookup per character), for the strings of events that are
   * written. A loop of its own: a flag tested in the shared loop slowed every fingerprint down.
   */
  textVerbatim(text: string, tag: number): void {
    let a = this.a;
    let b = this.b;
    let escaped = 0;
    const n = text.length;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      const hi = text.charCodeAt(i);
      const lo = text.charCodeAt(i + 1);
      escaped |= ESCAPED[hi]! | ESCAPED[lo]!;
      const w = (hi << 16) | lo;
      a = Math.imul(a ^ w, 0x01000193);
      b = Math.imul(b ^ w, 0x5bd1e995);
      b ^= b >>> 13;
    }
    if (i < n) {
      const c = text.charCodeAt(i);
      escaped |= ESCAPED[c]!;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.a = Math.imul(a ^ (n * 8 + tag + 0x9e3700), 0x01000193);
    this.b = Math.imul(b ^ (n * 8 + tag + 0x79b900), 0x5bd1e995);
    if (escaped !== 0) this.verbatim = false;
  }

  digest(): string {
    const a = Math.imul(this.a ^ (this.a >>> 16), 0x85ebca6b);
    const b = Math.imul(this.b ^ (this.b >>> 15), 0xc2b2ae35);
    const hi = a >>> 8;
    const lo = ((a & 0xff) << 16) | (b >>> 16);
    // One string from eight character codes: eight one-character concatenations cost more.
    return String.fromCharCode(
      CODES[(hi >>> 18) & 63]!,
      CODES[(hi >>> 12) & 63]!,
      CODES[(hi >>> 6) & 63]!,
      CODES[hi & 63]!,
      CODES[(lo >>> 18) & 63]!,
      CODES[(lo >>> 12) & 63]!,
      CODES[(lo >>> 6) & 63]!,
      CODES[lo & 63]!,
    );
  }
}

const STRING = 1;
const SCALAR = 2;
const KEY = 3;
const OPEN = 4;
const CLOSE = 5;

function hasExactly(keys: readonly string[], known: readonly string[]): boolean {
  return keys.length === known.length && keys.every((k, i) => k === known[i]);
}

function hasSameSet(keys: readonly string[], known: readonly string[]): boolean {
  return keys.length === known.length && known.every((k) => keys.includes(k));
}

function keysInOrder(record: Record<string, unknown>, known: readonly string[]): string[] {
  const keys = Object.keys(record);
  if (hasExactly(keys, known)) return keys;
  // Known keys in their order, then the others sorted: one order whatever order the object came in.
  const present = new Set(keys);
  return [...known.filter((k) => present.has(k)), ...keys.filter((k) => !known.includes(k)).sort()];
}

/** Feeds the values in the fixed key order; key names only when the keys are not the expected set. */
function visit(h: Hasher, value: unknown, known: readonly string[]): void {
  if (typeof value === 'string') {
    h.text(value, STRING);
  } else if (value === null || typeof value !== 'object') {
    h.text(String(value), SCALAR);
  } else if (Array.isArray(value)) {
    h.text('[', OPEN);
    for (const item of value) visit(h, item, NO_KEYS);
    h.text(']', CLOSE);
  } else {
    const record = value as Record<string, unknown>;
    const keys = keysInOrder(record, known);
    const named = !hasSameSet(keys, known);
    h.text('{', OPEN);
    for (const key of keys) {
      if (named) h.text(key, KEY);
      visit(h, record[key], key === 'location' && known === EVENT_KEYS ? LOCATION_KEYS : NO_KEYS);
    }
    h.text('}', CLOSE);
  }
}

/** Whether the object's own keys are exactly `known`, in that order. */
export function keysAre(record: object, known: readonly string[]): boolean {
  const keys = Object.keys(record);
  if (keys.length !== known.length) return false;
  for (let i = 0; i < keys.length; i++) if (keys[i] !== known[i]) return false;
  return true;
}

function isPrimitive(value: unknown): boolean {
  return value === null || typeof value !== 'object';
}

function primitive(h: Hasher, value: unknown, verbatim: boolean): void {
  if (typeof value === 'string') {
    if (verbatim) h.textVerbatim(value, STRING);
    else h.text(value, STRING);
  } else {
    h.text(String(value), SCALAR);
    h.verbatim = false;
  }
}

/**
 * The tokens `visit` feeds for an event in the API's own shape (its keys in the API's order, a
 * location of name and gps, no other nesting), with plain property reads: the generic walk's key
 * lists and keyed lookups cost more than the hashing itself. Returns false, having fed nothing, for
 * any other shape. `verbatim`: also keep h.verbatim.
 */
function visitApiEvent(h: Hasher, value: unknown, verbatim = false): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const e = value as Record<string, unknown>;
  const location = e.location;
  if (location === null || typeof location !== 'object' || Array.isArray(location)) return false;
  const l = location as Record<string, unknown>;
  const { id, datetime, name, summary, url, type } = e;
  if (
    !(
      isPrimitive(id) &&
      isPrimitive(datetime) &&
      isPrimitive(name) &&
      isPrimitive(summary) &&
      isPrimitive(url) &&
      isPrimitive(type) &&
      isPrimitive(l.name) &&
      isPrimitive(l.gps) &&
      keysAre(e, EVENT_KEYS) &&
      keysAre(l, LOCATION_KEYS)
    )
  )
    return false;
  h.text('{', OPEN);
  // A number id is written as String writes it (validated ids are positive safe integers).
  if (typeof id === 'number') h.text(String(id), SCALAR);
  else primitive(h, id, verbatim);
  primitive(h, datetime, verbatim);
  primitive(h, name, verbatim);
  primitive(h, summary, verbatim);
  primitive(h, url, verbatim);
  primitive(h, type, verbatim);
  h.text('{', OPEN);
  primitive(h, l.name, verbatim);
  primitive(h, l.gps, verbatim);
  h.text('}', CLOSE);
  h.text('}', CLOSE);
  return true;
}

export function fingerprintEvent(event: unknown): string {
  const h = new Hasher();
  if (!visitApiEvent(h, event)) visit(h, event, EVENT_KEYS);
  return h.digest();
}

/**
 * fingerprintEvent of a validated event. For one that is written, it also notes on the event whether
 * its JSONL line can come from the template (`verbatim`, see eventLine): the hash reads every
 * character anyway, so here the check costs a table lookup per character, where on its own (a regular
 * expression per value) it cost most of what the template saves.
 */
export function fingerprintFeedEvent(event: FeedEvent, written: boolean): string {
  const h = new Hasher();
  const apiShape = visitApiEvent(h, event.raw, written);
  if (!apiShape) visit(h, event.raw, EVENT_KEYS);
  if (written) event.verbatim = apiShape && h.verbatim;
  return h.digest();
}

/** JSON with keys in that same fixed order at every level: equal text for equal content. */
export function canonicalJson(value: unknown, known: readonly string[] = EVENT_KEYS): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, NO_KEYS)).join(',')}]`;
  const record = value as Record<string, unknown>;
  return `{${keysInOrder(record, known)
    .map(
      (k) =>
        `${JSON.stringify(k)}:${canonicalJson(record[k], k === 'location' && known === EVENT_KEYS ? LOCATION_KEYS : NO_KEYS)}`,
    )
    .join(',')}}`;
}
