/**
 * The seen-set: what the store already holds, as kept in `metadata/last_seen.json`.
 *
 * - `stored`: exact ranges of every event id ever written to `events/` (exact de-duplication, tiny).
 * - `retained`: the ids listed in `seen_ids` (the Python collector's field, highest first, at most
 *   MAX_SEEN_IDS) with a short content fingerprint each, to notice edits. Ids still in the feed are
 *   never trimmed from it.
 * - `pending`: claims of runs that are writing objects right now, or that died doing so; the next
 *   run reconciles a dead claim from the objects that exist (see collect-run.ts).
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

export const METADATA_FORMAT = 'polisen-collector/2';
/** How many quarantine fingerprints are remembered, so one malformed element is quarantined once. */
export const MAX_QUARANTINE_FINGERPRINTS = 500;
const UNKNOWN_FP = '-'.repeat(FINGERPRINT_LENGTH);

export type ObjectKind = 'events' | 'updates' | 'quarantine';

export interface ClaimedObject {
  name: string;
  kind: ObjectKind;
  /** Event ids in the object (empty for quarantine). */
  ids: number[];
  /** Fingerprints aligned with ids; for quarantine, the fingerprints of the quarantined elements. */
  fps: string[];
}

export interface Claim {
  run: string;
  host: string;
  pid: number;
  claimedAt: string;
  /** After this moment any run may reconcile the claim, even from another host. */
  deadline: string;
  newestEventUnix?: number;
  objects: ClaimedObject[];
}

export interface SeenState {
  /** `new`: no metadata yet; `python`: written by the Python collector (seen_ids only). */
  format: 'new' | 'python' | 'v2';
  stored: IdRanges;
  /** `stored` as read, with its encoding: serialising an unchanged `stored` reuses the text. */
  storedAsRead?: { ranges: IdRanges; encoded: string };
  /** Retained ids → fingerprint ('' when not known, e.g. after upgrading Python metadata). */
  retained: Map<number, string>;
  quarantineFps: string[];
  pending: Claim[];
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
    pending: [],
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

function parseClaim(value: unknown, index: number): Claim {
  const c = value as Partial<Claim> | null;
  const ok =
    c !== null &&
    typeof c === 'object' &&
    typeof c.run === 'string' &&
    typeof c.host === 'string' &&
    typeof c.pid === 'number' &&
    typeof c.claimedAt === 'string' &&
    typeof c.deadline === 'string' &&
    Array.isArray(c.objects) &&
    c.objects.every(
      (o) =>
        typeof o?.name === 'string' &&
        (o.kind === 'events' || o.kind === 'updates' || o.kind === 'quarantine') &&
        isIdArray(o.ids) &&
        Array.isArray(o.fps),
    );
  if (!ok) throw new MetadataFormatError(`"pending[${index}]" is not a valid claim`);
  return c as Claim;
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

  if (d.format !== undefined && d.format !== METADATA_FORMAT) {
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
  const pending = Array.isArray(d.pending) ? d.pending.map(parseClaim) : [];
  return {
    format: 'v2',
    stored,
    ...(storedAsRead?.ranges === stored ? { storedAsRead } : {}),
    retained,
    quarantineFps:
      typeof d.quarantine_fingerprints === 'string'
        ? chunk(d.quarantine_fingerprints, FINGERPRINT_LENGTH)
        : [],
    pending,
    lastObjectUnix: typeof d.last_object_unix === 'number' ? d.last_object_unix : 0,
    newestEventUnix: typeof d.newest_event_unix === 'number' ? d.newest_event_unix : undefined,
    lastUpdated,
    extra,
  };
}

/** Serialises the state; the Python collector's fields come first and keep their meaning. */
export function serializeSeenState(state: SeenState, now: Date): string {
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
    pending: state.pending,
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

/**
 * Applies objects that are known to exist in the store: their ids become stored, their fingerprints
 * retained. Used when a run commits its own claim and when a dead run's claim is reconciled.
 */
export function applyStoredObjects(
  state: SeenState,
  objects: readonly ClaimedObject[],
  protect: ReadonlySet<number>,
  maxSeenIds: number,
  newestEventUnix?: number,
): SeenState {
  const retained = new Map(state.retained);
  const storedIds: number[] = [];
  const quarantineFps = [...state.quarantineFps];
  for (const object of objects) {
    if (object.kind === 'quarantine') {
      quarantineFps.push(...object.fps);
      continue;
    }
    if (object.kind === 'events') storedIds.push(...object.ids);
    object.ids.forEach((id, i) => {
      retained.set(id, object.fps[i] ?? '');
    });
  }
  return {
    ...state,
    stored: storedIds.length > 0 ? addIds(state.stored, storedIds) : state.stored,
    retained: trimRetained(retained, protect, maxSeenIds),
    quarantineFps: quarantineFps.slice(-MAX_QUARANTINE_FINGERPRINTS),
    newestEventUnix:
      newestEventUnix === undefined
        ? state.newestEventUnix
        : Math.max(state.newestEventUnix ?? 0, newestEventUnix),
  };
}

/** Removes a claim (by run id) and applies the objects of it that exist. */
export function settleClaim(
  state: SeenState,
  run: string,
  existing: readonly ClaimedObject[],
  protect: ReadonlySet<number>,
  maxSeenIds: number,
): SeenState {
  const claim = state.pending.find((c) => c.run === run);
  const rest = state.pending.filter((c) => c.run !== run);
  return applyStoredObjects(
    { ...state, pending: rest },
    existing,
    protect,
    maxSeenIds,
    claim?.newestEventUnix,
  );
}

/** Every id some claim (live or dead) is writing, so no other run writes it too. */
export function claimedEventIds(claims: readonly Claim[]): Set<number> {
  const ids = new Set<number>();
  for (const claim of claims) {
    for (const object of claim.objects) for (const id of object.ids) ids.add(id);
  }
  return ids;
}
