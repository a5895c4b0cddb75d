/**
 * The audit of a store, as a pure accumulator: objects are fed in one at a time (name and body) and the
 * metadata once; `report()` says what is wrong. No I/O here (src/run/audit-store.ts reads the store).
 *
 * Memory is bounded by the number of distinct ids (a Map of numbers: about 30,000 a year), never by the
 * number of lines; example lists are capped, counts are not.
 */
import { CollectorError } from '../errors.js';
import { parseEventDatetime } from './event-datetime.js';
import { countIds, hasId, type IdRanges } from './id-ranges.js';
import { isUnrecorded, parseObjectName } from './object-ledger.js';
import { MetadataFormatError, parseSeenState, type SeenState } from './seen-set.js';

export const DEFAULT_EXAMPLE_LIMIT = 50;

export type AuditedKind = 'events' | 'updates' | 'quarantine';

export interface AuditOptions {
  /** The store prefix ('' or e.g. 'stockholm/'), stripped from object names before they are read. */
  prefix?: string;
  /**
   * Whether every object of the store is fed (no name filter). Checks that need the whole store (ids the
   * metadata lists that no object holds, updates without an event) are skipped otherwise.
   */
  wholeStore?: boolean;
  exampleLimit?: number;
}

/** Object names listed per duplicated id (the count of copies is exact). */
export const HOLDERS_LISTED = 20;

export interface DuplicateExample {
  id: number;
  /** Lines with this id in events/. */
  copies: number;
  /** The first HOLDERS_LISTED objects holding it, in the order read (an object twice if it holds two lines). */
  objects: string[];
}

export interface MisplacedExample {
  id: number;
  object: string;
  /** The date directory the event's own datetime names. */
  expected: string;
}

export interface UnparseableExample {
  object: string;
  /** 1-based. */
  line: number;
  reason: string;
}

export interface CountWithExamples<T> {
  count: number;
  examples: T[];
}

export interface AuditReport {
  ok: boolean;
  /** One line per kind of problem found; empty when ok. */
  problems: string[];
  /** Things worth knowing that are not inconsistencies. */
  notes: string[];
  wholeStore: boolean;
  objects: { events: number; updates: number; quarantine: number; bytes: number };
  /** Objects whose name is not `<kind>/YYYY/MM/DD/<kind>-<unix>.jsonl` (read all the same). */
  unexpectedNames: CountWithExamples<string>;
  events: { lines: number; distinctIds: number };
  /** Ids with more than one line in events/; `extraLines` = lines beyond the first of each. */
  duplicates: CountWithExamples<DuplicateExample> & { extraLines: number };
  /** Lines of events/ and updates/ in a date directory other than their datetime's. */
  misplaced: CountWithExamples<MisplacedExample>;
  unparseable: CountWithExamples<UnparseableExample>;
  /** `withoutEvent`: update lines whose id has no line in events/ (null when not auditing the whole store). */
  updates: { lines: number; distinctIds: number; withoutEvent: CountWithExamples<number> | null };
  quarantine: { lines: number };
  metadata: MetadataReport;
}

export interface MetadataReport {
  /**
   * `missing`: no metadata/last_seen.json; `python`: the Python collector's seen_ids-only file; `v2`:
   * polisen-collector's previous format; `v3`: this one.
   */
  format: 'missing' | 'python' | 'v2' | 'v3' | 'unreadable';
  error?: string;
  bytes: number;
  lastUpdated?: string;
  /** Ids the metadata records as stored (for Python metadata: the seen_ids). */
  storedIds: number;
  seenIds: number;
  /** Ids with a line in events/ that the metadata does not record (a run would store them again). */
  notRecorded: CountWithExamples<number>;
  /** Ids in events/ held only by unrecorded objects (the next run records them). */
  unrecordedIds: number;
  /** Ids the metadata records that no object in events/ holds (null when not auditing the whole store). */
  notFound: CountWithExamples<number> | null;
  /**
   * Objects in the window the metadata has not recorded: written by a run that died before committing,
   * or that is committing now (for v2 metadata: named by its pending claims). The next run records them.
   */
  unrecordedObjects: CountWithExamples<string>;
  /** The window's start (`YYYY/MM/DD`) and declared partitions, for v3 metadata. */
  window?: { from: string; declared: string[] };
}

export interface AuditAccumulator {
  addObject(name: string, body: string): void;
  addMetadata(body: string | undefined): void;
  report(): AuditReport;
  /** Distinct ids with a line in events/ (read only: for callers that compare with what they expected). */
  eventIds(): ReadonlySet<number>;
}

const LAYOUT = /^(events|updates|quarantine)\/(\d{4}\/\d{2}\/\d{2})\/(events|updates|quarantine)-\d+\.jsonl$/;
const LOOSE = /^(events|updates|quarantine)\//;
const DATE_DIR = /(?:^|\/)(\d{4}\/\d{2}\/\d{2})\//;

interface Capped<T> {
  count: number;
  examples: T[];
}

function push<T>(target: Capped<T>, item: T, limit: number): void {
  target.count++;
  if (target.examples.length < limit) target.examples.push(item);
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

/** "1 id is" / "2 ids are". */
function counted(n: number, noun: string, singularVerb: string, pluralVerb: string): string {
  return `${plural(n, noun)} ${n === 1 ? singularVerb : pluralVerb}`;
}

export function createAuditAccumulator(options: AuditOptions = {}): AuditAccumulator {
  const prefix = options.prefix ?? '';
  const wholeStore = options.wholeStore ?? true;
  const limit = options.exampleLimit ?? DEFAULT_EXAMPLE_LIMIT;

  const objects = { events: 0, updates: 0, quarantine: 0, bytes: 0 };
  const unexpectedNames: Capped<string> = { count: 0, examples: [] };
  const misplaced: Capped<MisplacedExample> = { count: 0, examples: [] };
  const unparseable: Capped<UnparseableExample> = { count: 0, examples: [] };
  // Object names are interned: the id maps hold small numbers, not strings.
  const names: string[] = [];
  /** events/ object index → event ids in it (to tell which ids only unrecorded objects hold). */
  const idsOfObject = new Map<number, number[]>();
  /** id → index of the first object holding it. */
  const firstHolder = new Map<number, number>();
  /** Only for ids seen more than once: copies, and the first holders (bounded per id). */
  const duplicateHolders = new Map<number, { copies: number; holders: number[] }>();
  let eventLines = 0;
  let extraLines = 0;
  const updateIds = new Set<number>();
  let updateLines = 0;
  let quarantineLines = 0;
  let metadataBody: string | undefined;
  let metadataFed = false;

  function addEventLine(id: number, objectIndex: number): void {
    eventLines++;
    const first = firstHolder.get(id);
    if (first === undefined) {
      firstHolder.set(id, objectIndex);
      return;
    }
    extraLines++;
    const duplicate = duplicateHolders.get(id);
    if (!duplicate) {
      duplicateHolders.set(id, { copies: 2, holders: [first, objectIndex] });
      return;
    }
    duplicate.copies++;
    if (duplicate.holders.length < HOLDERS_LISTED) duplicate.holders.push(objectIndex);
  }

  function addObject(name: string, body: string): void {
    const relative = name.startsWith(prefix) ? name.slice(prefix.length) : name;
    const kind = LOOSE.exec(relative)?.[1] as AuditedKind | undefined;
    if (kind === undefined) {
      push(unexpectedNames, name, limit);
      return;
    }
    const layout = LAYOUT.exec(relative);
    if (!layout || layout[3] !== kind) push(unexpectedNames, name, limit);
    const dateDir = layout?.[2] ?? DATE_DIR.exec(relative)?.[1];
    objects[kind]++;
    objects.bytes += Buffer.byteLength(body);
    const objectIndex = names.push(name) - 1;

    const lines = body.split('\n');
    // A final newline ends the last line; it does not start an empty one.
    if (lines.at(-1) === '') lines.pop();
    lines.forEach((text, i) => {
      const line = readLine(kind, text);
      if (line.type === 'bad') {
        push(unparseable, { object: name, line: i + 1, reason: line.reason }, limit);
      } else if (line.type === 'quarantine') {
        quarantineLines++;
      } else {
        if (dateDir !== undefined && line.datePath !== dateDir) {
          push(misplaced, { id: line.id, object: name, expected: line.datePath }, limit);
        }
        if (kind === 'events') {
          addEventLine(line.id, objectIndex);
          const list = idsOfObject.get(objectIndex);
          if (list) list.push(line.id);
          else idsOfObject.set(objectIndex, [line.id]);
        } else {
          updateLines++;
          updateIds.add(line.id);
        }
      }
    });
  }

  function addMetadata(body: string | undefined): void {
    metadataFed = true;
    metadataBody = body;
  }

  function metadataReport(problems: string[], notes: string[]): MetadataReport {
    const base: MetadataReport = {
      format: 'missing',
      bytes: metadataBody === undefined ? 0 : Buffer.byteLength(metadataBody),
      storedIds: 0,
      seenIds: 0,
      notRecorded: { count: 0, examples: [] },
      unrecordedIds: 0,
      notFound: wholeStore ? { count: 0, examples: [] } : null,
      unrecordedObjects: { count: 0, examples: [] },
    };
    let state: SeenState;
    try {
      state = parseSeenState(metadataBody);
    } catch (error) {
      if (!(error instanceof MetadataFormatError)) throw error;
      problems.push(`metadata/last_seen.json is unreadable: ${error.message}`);
      return { ...base, format: 'unreadable', error: error.message, notFound: null };
    }
    const report: MetadataReport = {
      ...base,
      format: metadataBody === undefined ? 'missing' : state.format === 'new' ? 'missing' : state.format,
      ...(state.lastUpdated === undefined ? {} : { lastUpdated: state.lastUpdated }),
      storedIds: countIds(state.stored),
      seenIds: state.retained.size,
      ...(state.ledger
        ? { window: { from: state.ledger.from, declared: [...state.ledger.declared.keys()] } }
        : {}),
    };

    // Unrecorded objects: those the ledger answers for and does not list (v2: named by pending claims).
    const claimed = new Set(state.legacyClaims.map((c) => c.name));
    const unrecordedIndexes = new Set<number>();
    names.forEach((name, index) => {
      const parts = parseObjectName(prefix, name);
      const unrecorded = state.ledger
        ? parts !== undefined && isUnrecorded(state.ledger, parts)
        : claimed.has(name);
      if (!unrecorded) return;
      unrecordedIndexes.add(index);
      push(report.unrecordedObjects, name, limit);
    });
    const pendingIds = new Set<number>();
    for (const index of unrecordedIndexes) for (const id of idsOfObject.get(index) ?? []) pendingIds.add(id);

    for (const id of firstHolder.keys()) {
      if (hasId(state.stored, id)) continue;
      if (pendingIds.has(id)) report.unrecordedIds++;
      else push(report.notRecorded, id, limit);
    }
    if (report.notFound) report.notFound = idsNotHeld(state.stored, firstHolder, limit);

    if (report.format === 'python') {
      notes.push(
        `metadata is in the Python collector's format (seen_ids only, ${plural(report.seenIds, 'id')}); the next collect run upgrades it`,
      );
      if (report.notRecorded.count > 0) {
        // The Python format never listed more than its seen window: expected, but worth knowing.
        notes.push(
          `${counted(report.notRecorded.count, 'id', 'is', 'are')} in events/ but older than the Python seen_ids window; a run would store such an id again if the feed brought them back`,
        );
      }
    } else if (report.notRecorded.count > 0) {
      problems.push(
        `${counted(report.notRecorded.count, 'id', 'is', 'are')} in events/ but not recorded in the metadata (a run would store ${report.notRecorded.count === 1 ? 'it' : 'them'} again)`,
      );
    }
    if (report.notFound && report.notFound.count > 0) {
      problems.push(
        `${counted(report.notFound.count, 'id', 'is', 'are')} recorded in the metadata but in no events/ object (lost?)`,
      );
    }
    if (report.unrecordedObjects.count > 0) {
      notes.push(
        `${counted(report.unrecordedObjects.count, 'object', 'is', 'are')} not recorded in the metadata yet (written by a run that died before committing, or that is committing now; ${plural(report.unrecordedIds, 'id')} only there): the next collect run records ${report.unrecordedObjects.count === 1 ? 'it' : 'them'}`,
      );
    }
    return report;
  }

  function report(): AuditReport {
    const problems: string[] = [];
    const notes: string[] = [];
    const duplicateExamples: DuplicateExample[] = [];
    for (const [id, { copies, holders }] of duplicateHolders) {
      if (duplicateExamples.length >= limit) break;
      duplicateExamples.push({ id, copies, objects: holders.map((k) => names[k]!) });
    }
    if (duplicateHolders.size > 0) {
      problems.push(
        `${counted(duplicateHolders.size, 'id', 'is', 'are')} stored more than once in events/ (${plural(extraLines, 'extra line')})`,
      );
    }
    if (misplaced.count > 0)
      problems.push(
        `${counted(misplaced.count, 'line', 'is', 'are')} outside the date directory of ${misplaced.count === 1 ? 'its' : 'their'} datetime`,
      );
    if (unparseable.count > 0) problems.push(`${counted(unparseable.count, 'line', 'is', 'are')} unreadable`);

    let withoutEvent: CountWithExamples<number> | null = null;
    if (wholeStore) {
      withoutEvent = { count: 0, examples: [] };
      for (const id of updateIds) if (!firstHolder.has(id)) push(withoutEvent, id, limit);
      if (withoutEvent.count > 0)
        problems.push(
          `${counted(withoutEvent.count, 'id', 'has', 'have')} a line in updates/ but none in events/`,
        );
    }
    if (unexpectedNames.count > 0) {
      notes.push(`${plural(unexpectedNames.count, 'object')} with a name outside the usual layout`);
    }
    if (!metadataFed) throw new CollectorError('E_INTERNAL', 'audit: report() before addMetadata()');
    const metadata = metadataReport(problems, notes);
    if (!wholeStore)
      notes.push('a name filter was given: whole-store checks (lost ids, orphan updates) skipped');

    return {
      ok: problems.length === 0,
      problems,
      notes,
      wholeStore,
      objects: { ...objects },
      unexpectedNames: { count: unexpectedNames.count, examples: [...unexpectedNames.examples] },
      events: { lines: eventLines, distinctIds: firstHolder.size },
      duplicates: { count: duplicateHolders.size, extraLines, examples: duplicateExamples },
      misplaced: { count: misplaced.count, examples: [...misplaced.examples] },
      unparseable: { count: unparseable.count, examples: [...unparseable.examples] },
      updates: { lines: updateLines, distinctIds: updateIds.size, withoutEvent },
      quarantine: { lines: quarantineLines },
      metadata,
    };
  }

  return { addObject, addMetadata, report, eventIds: () => new Set(firstHolder.keys()) };
}

type Line =
  | { type: 'event'; id: number; datePath: string }
  | { type: 'quarantine' }
  | { type: 'bad'; reason: string };

/** What one line holds, or why it cannot be read. */
function readLine(kind: AuditedKind, text: string): Line {
  const bad = (reason: string): Line => ({ type: 'bad', reason });
  if (text.trim() === '') return bad('empty line');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    return bad(`not JSON (${(error as Error).message})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return bad('not a JSON object');
  const record = doc as Record<string, unknown>;
  if (kind === 'quarantine') {
    return typeof record.reason === 'string' && 'element' in record
      ? { type: 'quarantine' }
      : bad('quarantine line without "reason" and "element"');
  }
  const id = record.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0)
    return bad('missing or non-integer "id"');
  const time = parseEventDatetime(record.datetime);
  if (!time) return bad(`unparseable "datetime" in event ${id}`);
  return { type: 'event', id, datePath: time.datePath };
}

/**
 * Ids of the ranges that no object holds. Scans range by range and stops after `limit` examples, so a corrupt
 * range of a billion ids costs at most (ids held + limit) steps for the examples; the count is exact.
 */
function idsNotHeld(stored: IdRanges, held: ReadonlyMap<number, unknown>, limit: number): Capped<number> {
  let heldAndStored = 0;
  for (const id of held.keys()) if (hasId(stored, id)) heldAndStored++;
  const result: Capped<number> = { count: countIds(stored) - heldAndStored, examples: [] };
  for (let r = 0; r < stored.length && result.examples.length < Math.min(limit, result.count); r += 2) {
    for (let id = stored[r]!; id <= stored[r + 1]! && result.examples.length < limit; id++) {
      if (!held.has(id)) result.examples.push(id);
    }
  }
  return result;
}
