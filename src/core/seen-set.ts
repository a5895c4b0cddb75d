/**
 * The seen-set: what the store already holds, as kept in `metadata/last_seen.json`.
 *
 * - `stored`: exact ranges of every event id ever written to `events/` (exact de-duplication, tiny).
 * - `retained`: the ids listed in `seen_ids` (the Python collector's field, highest first, at most
 *   MAX_SEEN_IDS) with a short content fingerprint each, to notice edits. Ids still in the feed are
 *   never trimmed from it.
 * - `ledger`: which objects of the recent partitions are recorded (object-ledger.ts), so that objects
 *   of a run that died before committing are found and recorded by the next one.
 *
 * Plain data in, plain data out: no I/O here.
 */
import { hash } from 'node:crypto';
import { FINGERPRINT_LENGTH } from './fingerprint.js';
import {
  addIds,
  countIds,
  decodeRanges,
  EMPTY_RANGES,
  encodeRanges,
  hasId,
  type IdRanges,
  rangesFromIds,
} from './id-ranges.js';
import { type Ledger, LedgerFormatError, parseLedger, serializeLedger } from './object-ledger.js';

export const METADATA_FORMAT = 'polisen-collector/3';
/** The previous format (claims in `pending`, no ledger): read and upgraded. */
export const METADATA_FORMAT_V2 = 'polisen-collector/2';
/** How many quarantine fingerprints are remembered, so one malformed element is quarantined once. */
export const MAX_QUARANTINE_FINGERPRINTS = 500;
const UNKNOWN_FP = '-'.repeat(FINGERPRINT_LENGTH);

export type ObjectKind = 'events' | 'updates' | 'quarantine';

/** An object named by a claim in a polisen-collector/2 file: recovered when the file is upgraded. */
export interface LegacyClaimObject {
  name: string;
  kind: ObjectKind;
}

export interface SeenState {
  /**
   * `new`: no metadata yet; `python`: written by the Python collector (seen_ids only); `v2`: by
   * polisen-collector/2 (claims, no ledger); `v3`: this format.
   */
  format: 'new' | 'python' | 'v2' | 'v3';
  stored: IdRanges;
  /** `stored` as read, with its encoding: serialising an unchanged `stored` reuses the text. */
  storedAsRead?: { ranges: IdRanges; encoded: string };
  /** Retained ids → fingerprint ('' when not known, e.g. after upgrading Python metadata). */
  retained: Map<number, string>;
  quarantineFps: string[];
  /** Undefined until the first commit of this format (a new store, or Python or v2 metadata). */
  ledger: Ledger | undefined;
  /** Objects of claims left in a v2 file: recovered, then forgotten, by the upgrade. */
  legacyClaims: LegacyClaimObject[];
  lastObjectUnix: number;
  newestEventUnix: number | undefined;
  lastUpdated: string | undefined;
  /** Top-level fields this version does not know, kept as they were. */
  extra: Record<string, unknown>;
}

export function emptySeenState(): SeenState {
  return {
    format: 'new',
    stored: EMPTY_RANGES,
    retained: new Map(),
    quarantineFps: [],
    ledger: undefined,
    legacyClaims: [],
    lastObjectUnix: 0,
    newestEventUnix: undefined,
    lastUpdated: undefined,
    extra: {},
  };
}

export class MetadataFormatError extends Error {
  override name = 'MetadataFormatError';
}

const KNOWN_FIELDS = new Set([
  'seen_ids',
  'last_updated',
  'total_tracked',
  'format',
  'stored_ids',
  'fingerprints',
  'fingerprints_of',
  'quarantine_fingerprints',
  'last_object_unix',
  'newest_event_unix',
  'window',
  // v2 only; its claims become legacyClaims.
  'pending',
]);

function isIdArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((id) => Number.isSafeInteger(id) && id > 0);
}

/**
 * Which seen_ids list the fingerprints were written for: if another writer (the Python collector)
 * rewrote seen_ids, the fingerprints no longer line up and must not be trusted (no invented edits).
 */
function seenIdsDigest(seenIds: readonly number[]): string {
  return hash('sha1', seenIds.join(','), 'base64').slice(0, 12);
}

function chunk(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function parseLegacyClaims(value: unknown): LegacyClaimObject[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new MetadataFormatError('"pending" is not a list of claims');
  const out: LegacyClaimObject[] = [];
  value.forEach((claim: unknown, index) => {
    const objects = (claim as { objects?: unknown } | null)?.objects;
    if (!Array.isArray(objects)) throw new MetadataFormatError(`"pending[${index}]" is not a valid claim`);
    for (const o of objects as { name?: unknown; kind?: unknown }[]) {
      if (
        typeof o?.name !== 'string' ||
        (o.kind !== 'events' && o.kind !== 'updates' && o.kind !== 'quarantine')
      ) {
        throw new MetadataFormatError(`"pending[${index}]" is not a valid claim`);
      }
      out.push({ name: o.name, kind: o.kind });
    }
  });
  return out;
}

/** Reads `metadata/last_seen.json` as written by this collector or by the Python one (seen_ids only). */
export function parseSeenState(body: string | undefined): SeenState {
  if (body === undefined) return emptySeenState();
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (error) {
    throw new MetadataFormatError(`not valid JSON (${(error as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new MetadataFormatError('not a JSON object');
  }
  const d = doc as Record<string, unknown>;
  if (!isIdArray(d.seen_ids))
    throw new MetadataFormatError('"seen_ids" is missing or not a list of positive integers');
  const seenIds = d.seen_ids;
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (!KNOWN_FIELDS.has(k)) extra[k] = v;
  const lastUpdated = typeof d.last_updated === 'string' ? d.last_updated : undefined;

  if (d.format !== undefined && d.format !== METADATA_FORMAT && d.format !== METADATA_FORMAT_V2) {
    // Reading a newer format as an older one would drop what it records; refuse instead.
    throw new MetadataFormatError(
      `"format" is ${JSON.stringify(d.format)}, not ${METADATA_FORMAT}: written by another version of polisen-collector`,
    );
  }
  if (d.format === undefined) {
    // The Python collector's file: every listed id is stored; nothing else is known.
    return {
      ...emptySeenState(),
      format: 'python',
      stored: rangesFromIds(seenIds),
      retained: new Map(seenIds.map((id) => [id, ''])),
      lastUpdated,
      extra,
    };
  }

  let stored: IdRanges;
  let storedAsRead: SeenState['storedAsRead'];
  try {
    stored = typeof d.stored_ids === 'string' ? decodeRanges(d.stored_ids) : EMPTY_RANGES;
    if (typeof d.stored_ids === 'string') storedAsRead = { ranges: stored, encoded: d.stored_ids };
  } catch (error) {
    throw new MetadataFormatError(`"stored_ids" is corrupt (${(error as Error).message})`);
  }
  // seen_ids are stored by definition, even if an older writer forgot to record them in stored_ids.
  if (!seenIds.every((id) => hasId(stored, id))) stored = addIds(stored, seenIds);
  const fpsAligned = typeof d.fingerprints === 'string' && d.fingerprints_of === seenIdsDigest(seenIds);
  const fps = fpsAligned ? chunk(d.fingerprints as string, FINGERPRINT_LENGTH) : [];
  const retained = new Map<number, string>();
  seenIds.forEach((id, i) => {
    const fp = fps[i];
    retained.set(id, fp === undefined || fp === UNKNOWN_FP ? '' : fp);
  });
  const v3 = d.format === METADATA_FORMAT;
  let ledger: Ledger | undefined;
  if (v3) {
    try {
      ledger = parseLedger(d.window);
    } catch (error) {
      if (error instanceof LedgerFormatError) throw new MetadataFormatError(error.message);
      throw error;
    }
  }
  return {
    format: v3 ? 'v3' : 'v2',
    stored,
    ...(storedAsRead?.ranges === stored ? { storedAsRead } : {}),
    retained,
    quarantineFps:
      typeof d.quarantine_fingerprints === 'string'
        ? chunk(d.quarantine_fingerprints, FINGERPRINT_LENGTH)
        : [],
    ledger,
    legacyClaims: v3 ? [] : parseLegacyClaims(d.pending),
    lastObjectUnix: typeof d.last_object_unix === 'number' ? d.last_object_unix : 0,
    newestEventUnix: typeof d.newest_event_unix === 'number' ? d.newest_event_unix : undefined,
    lastUpdated,
    extra,
  };
}

/** Serialises the state (with its ledger); the Python collector's fields come first and keep their meaning. */
export function serializeSeenState(state: SeenState & { ledger: Ledger }, now: Date): string {
  const seenIds = descending(state.retained.keys());
  const doc: Record<string, unknown> = {
    seen_ids: seenIds,
    last_updated: now.toISOString(),
    total_tracked: countIds(state.stored),
    format: METADATA_FORMAT,
    stored_ids:
      state.storedAsRead?.ranges === state.stored ? state.storedAsRead.encoded : encodeRanges(state.stored),
    fingerprints: seenIds.map((id) => state.retained.get(id) || UNKNOWN_FP).join(''),
    fingerprints_of: seenIdsDigest(seenIds),
    quarantine_fingerprints: state.quarantineFps.join(''),
    last_object_unix: state.lastObjectUnix,
    newest_event_unix: state.newestEventUnix ?? null,
    window: serializeLedger(state.ledger),
    ...state.extra,
  };
  return `${JSON.stringify(doc)}\n`;
}

/**
 * Keeps at most `max` retained ids: first those in `protect` (still in the feed), then the highest.
 * Returns the same map when nothing needs trimming.
 */
export function trimRetained(
  retained: Map<number, string>,
  protect: ReadonlySet<number>,
  max: number,
): Map<number, string> {
  if (retained.size <= max) return retained;
  // Split first, then sort numbers natively: this runs on every run that stores something.
  const protectedIds: number[] = [];
  const others: number[] = [];
  for (const id of retained.keys()) (protect.has(id) ? protectedIds : others).push(id);
  const keep = descending(protectedIds).slice(0, max);
  if (keep.length < max) keep.push(...descending(others).slice(0, max - keep.length));
  return new Map(keep.map((id) => [id, retained.get(id)!]));
}

/**
 * Highest first. The ids usually come nearly in order (parsed highest first, a few new ones appended),
 * which the array sort exploits (it merges the runs): 7 × faster than the typed-array sort and its
 * copies. In no particular order (a first run, a backfill) numbers sort faster natively.
 */
function descending(ids: Iterable<number>): number[] {
  const out = [...ids];
  let ascents = 0;
  for (let i = 1; i < out.length; i++) if (out[i - 1]! < out[i]!) ascents++;
  if (ascents <= 16) return out.sort((a, b) => b - a);
  const sorted = new Float64Array(out.length);
  for (let i = 0; i < out.length; i++) sorted[i] = out[i]!;
  sorted.sort();
  for (let i = 0; i < out.length; i++) out[i] = sorted[out.length - 1 - i]!;
  return out;
}
