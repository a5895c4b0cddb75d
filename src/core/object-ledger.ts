/**
 * The object ledger: which objects of the recent partitions the metadata has recorded.
 *
 * A run writes its objects first and records them in `metadata/last_seen.json` after (three round
 * trips: feed ‖ metadata ‖ listing, objects, metadata). A run killed in between leaves objects that
 * are not recorded; so does a run that is writing right now. Every run lists the partitions where such
 * objects can be (the window) and compares the names with the ledger: an object it does not know is
 * read and recorded by whichever run sees it first (see record-objects.ts).
 *
 * - The window is every partition dated `from` or later, plus partitions declared for a while.
 * - A run writes without declaring only into partitions dated today − WRITE_WINDOW_DAYS or later
 *   (UTC date; later too, since Swedish dates run ahead of UTC). The real feed's new events and edits
 *   fall there in all but about 4 runs a year; other writes (old events, backfill) declare their
 *   partition first, which costs one compare-and-swap more.
 * - A commit moves `from` up to today − WRITE_WINDOW_DAYS − WINDOW_MARGIN_DAYS, having listed and
 *   recorded everything below. The margin keeps it behind any run still writing. A run that started
 *   two days ago has finished long since (its writes are bounded by a budget of minutes), and hosts
 *   that share a store keep their clocks within a day of each other.
 * - A declaration names its holders, the runs writing there: a run adds itself (compare-and-swap) before
 *   writing into a declared partition, and removes itself when it has recorded its objects. A
 *   partition without holders leaves the window at once: everything written there is recorded. A
 *   holder that died stays until `until`, by which its writes have long ended; a run that listed the
 *   partition after `until` (recording what it found) then drops the declaration.
 *
 * Plain data in, plain data out: no I/O here.
 */
import type { ObjectKind } from './seen-set.js';

/** Fast writes go into partitions dated at most this many days before today (UTC). */
export const WRITE_WINDOW_DAYS = 7;
/** How far the window's start trails the oldest fast write. */
export const WINDOW_MARGIN_DAYS = 2;
export const OBJECT_KINDS: readonly ObjectKind[] = ['events', 'updates', 'quarantine'];

export interface Ledger {
  /** `YYYY/MM/DD`: every object in a partition dated this or later is recorded here or unrecorded. */
  from: string;
  /** Partition (`events/2024/03/01`) → unix seconds in the names of its recorded objects, ascending. */
  recorded: Map<string, number[]>;
  /** Declared partitions outside the window → until when (ms since the epoch) and by which runs. */
  declared: Map<string, Declaration>;
}

export interface Declaration {
  untilMs: number;
  /** Runs writing there (run tokens); each removes itself once its objects are recorded. */
  holders: string[];
}

export interface ObjectNameParts {
  kind: ObjectKind;
  /** `events/2024/03/01` */
  partition: string;
  /** `2024/03/01` */
  datePath: string;
  unix: number;
}

const NAME =
  /^(events|updates|quarantine)\/(\d{4}\/\d{2}\/\d{2})\/(?:events|updates|quarantine)-(\d{1,15})\.jsonl$/;

/** The parts of a collector object name below the store prefix, or undefined for any other name. */
export function parseObjectName(prefix: string, name: string): ObjectNameParts | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const m = NAME.exec(name.slice(prefix.length));
  if (!m || !name.endsWith(`/${m[1]}-${m[3]}.jsonl`)) return undefined;
  return { kind: m[1] as ObjectKind, partition: `${m[1]}/${m[2]}`, datePath: m[2]!, unix: Number(m[3]) };
}

const DAY_MS = 86_400_000;

/** The UTC date `days` after `now` (negative: before), as `YYYY/MM/DD`. */
export function datePathDaysFrom(now: Date, days: number): string {
  return new Date(now.getTime() + days * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '/');
}

/** Where the window starts when nothing is known yet: as a commit today would leave it, and a day more. */
export function initialWindowFrom(now: Date): string {
  return datePathDaysFrom(now, -(WRITE_WINDOW_DAYS + WINDOW_MARGIN_DAYS + 1));
}

export function emptyLedger(from: string): Ledger {
  return { from, recorded: new Map(), declared: new Map() };
}

export function partitionOf(kind: ObjectKind, datePath: string): string {
  return `${kind}/${datePath}`;
}

/** `YYYY/MM/DD` dates compare as strings. */
function laterDatePath(a: string, b: string): string {
  return a > b ? a : b;
}

function datePathOfPartition(partition: string): string {
  return partition.slice(partition.indexOf('/') + 1);
}

/** Whether the ledger is responsible for this partition (objects there are recorded or unrecorded). */
export function inWindow(ledger: Ledger, partition: string): boolean {
  return datePathOfPartition(partition) >= ledger.from || ledger.declared.has(partition);
}

export function isRecorded(ledger: Ledger, parts: ObjectNameParts): boolean {
  const list = ledger.recorded.get(parts.partition);
  return list !== undefined && binaryHas(list, parts.unix);
}

/** An object the ledger answers for and has not recorded: a run wrote it and has not committed (yet). */
export function isUnrecorded(ledger: Ledger, parts: ObjectNameParts): boolean {
  return inWindow(ledger, parts.partition) && !isRecorded(ledger, parts);
}

function binaryHas(sorted: readonly number[], value: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = sorted[mid]!;
    if (v === value) return true;
    if (v < value) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/**
 * Whether a run may write into this partition without declaring it first: a recent date inside the
 * window, or a declaration that this run holds and that outlasts its write budget.
 */
export function isWritable(
  ledger: Ledger,
  kind: ObjectKind,
  datePath: string,
  now: Date,
  writeBudgetMs: number,
  holder: string,
): boolean {
  if (datePath >= ledger.from && datePath >= datePathDaysFrom(now, -WRITE_WINDOW_DAYS)) return true;
  const declaration = ledger.declared.get(partitionOf(kind, datePath));
  return (
    declaration?.holders.includes(holder) === true && declaration.untilMs >= now.getTime() + writeBudgetMs
  );
}

/** What a run lists to see every object the ledger is responsible for. */
export interface Listing {
  /** Each kind is listed from `${kind}/${from}/` on (everything later too). */
  from: string;
  /** Partitions listed one by one (declared ones below `from`). */
  partitions: string[];
}

export function listingFor(ledger: Ledger): Listing {
  return {
    from: ledger.from,
    partitions: [...ledger.declared.keys()].filter((p) => datePathOfPartition(p) < ledger.from).sort(),
  };
}

/** Whether what was listed (`done`) covers what `needed` asks for. */
export function listingCovers(done: Listing, needed: Listing): boolean {
  if (done.from > needed.from) return false;
  return needed.partitions.every((p) => datePathOfPartition(p) >= done.from || done.partitions.includes(p));
}

/** Names the ledger is responsible for but has not recorded: objects of runs that have not committed. */
export function unrecordedObjects(
  ledger: Ledger,
  prefix: string,
  names: Iterable<string>,
): (ObjectNameParts & { name: string })[] {
  const out: (ObjectNameParts & { name: string })[] = [];
  for (const name of names) {
    const parts = parseObjectName(prefix, name);
    if (parts === undefined || !isUnrecorded(ledger, parts)) continue;
    out.push({ ...parts, name });
  }
  return out;
}

/** The ledger with these objects recorded (objects outside its window are left out: nobody looks there). */
export function withRecorded(ledger: Ledger, objects: readonly ObjectNameParts[]): Ledger {
  const fresh = objects.filter((o) => isUnrecorded(ledger, o));
  if (fresh.length === 0) return ledger;
  const recorded = new Map(ledger.recorded);
  for (const o of fresh) {
    const list = recorded.get(o.partition);
    recorded.set(o.partition, list === undefined ? [o.unix] : insertSorted(list, o.unix));
  }
  return { ...ledger, recorded };
}

function insertSorted(list: readonly number[], value: number): number[] {
  let i = list.length;
  while (i > 0 && list[i - 1]! > value) i--;
  return [...list.slice(0, i), value, ...list.slice(i)];
}

/**
 * Declares partitions for `holder` until `untilMs`. `existing` are the names listed there just before:
 * outside the window every one of them was recorded by some commit (nothing unrecorded outlives the
 * window or a declaration), so they go into the ledger as recorded.
 */
export function withDeclared(
  ledger: Ledger,
  partitions: readonly string[],
  untilMs: number,
  existing: readonly ObjectNameParts[],
  holder: string,
): Ledger {
  const declared = new Map(ledger.declared);
  for (const p of partitions) {
    const before = declared.get(p);
    declared.set(p, {
      untilMs: Math.max(untilMs, before?.untilMs ?? 0),
      holders: before?.holders.includes(holder) ? before.holders : [...(before?.holders ?? []), holder],
    });
  }
  const next = { ...ledger, declared };
  // Inside the window the ledger is exact already: an object it does not know there is unrecorded.
  const outside = new Set(partitions.filter((p) => !inWindow(ledger, p)));
  return withRecorded(
    next,
    existing.filter((o) => outside.has(o.partition)),
  );
}

/** The ledger without `holder` in its declarations; a partition with no holder left is dropped. */
export function released(ledger: Ledger, holder: string): Ledger {
  if (![...ledger.declared.values()].some((d) => d.holders.includes(holder))) return ledger;
  const declared = new Map<string, Declaration>();
  for (const [p, d] of ledger.declared) {
    const holders = d.holders.filter((h) => h !== holder);
    if (holders.length > 0) declared.set(p, { ...d, holders });
  }
  return withoutUndeclared({ ...ledger, declared });
}

/** Drops what the ledger recorded in partitions it no longer answers for. */
function withoutUndeclared(ledger: Ledger): Ledger {
  const recorded = new Map<string, number[]>();
  for (const [p, list] of ledger.recorded) if (inWindow(ledger, p)) recorded.set(p, list);
  return { ...ledger, recorded };
}

/**
 * The ledger as a commit leaves it: the window's start moved up to today − window − margin, and
 * declarations dropped that ended before this run listed them (their holders died). The run must have
 * listed the whole window (`listedAtMs` is when) and recorded every unrecorded object in it.
 */
export function advanced(ledger: Ledger, now: Date, listedAtMs: number): Ledger {
  const from = laterDatePath(datePathDaysFrom(now, -(WRITE_WINDOW_DAYS + WINDOW_MARGIN_DAYS)), ledger.from);
  const declared = new Map<string, Declaration>();
  for (const [p, d] of ledger.declared) {
    if (d.untilMs >= listedAtMs && datePathOfPartition(p) < from) declared.set(p, d);
  }
  if (from === ledger.from && declared.size === ledger.declared.size) return ledger;
  return withoutUndeclared({ from, recorded: ledger.recorded, declared });
}

/** Whether a run with nothing else to write should still commit, to move the window or drop declarations. */
export function advanceIsDue(ledger: Ledger, now: Date, listedAtMs: number): boolean {
  if (advanced(ledger, now, listedAtMs).declared.size !== ledger.declared.size) return true;
  // A window that starts before initialWindowFrom would no longer be covered by a run's first listing.
  return ledger.from < initialWindowFrom(now);
}

// ---------------------------------------------------------------------------------------------
// In metadata/last_seen.json: {"from": "YYYY/MM/DD", "objects": {partition: [first, delta, …]},
// "declared": {partition: {"until": ISO time, "by": [run, …]}}}. Deltas keep it small: about 3 KB for
// the window of a busy feed.

export class LedgerFormatError extends Error {
  override name = 'LedgerFormatError';
}

const DATE_PATH = /^\d{4}\/\d{2}\/\d{2}$/;
const PARTITION = /^(events|updates|quarantine)\/\d{4}\/\d{2}\/\d{2}$/;

export function serializeLedger(ledger: Ledger): Record<string, unknown> {
  const objects: Record<string, number[]> = {};
  for (const p of [...ledger.recorded.keys()].sort()) {
    const list = ledger.recorded.get(p)!;
    if (list.length === 0) continue;
    const deltas = new Array<number>(list.length);
    deltas[0] = list[0]!;
    for (let i = 1; i < list.length; i++) deltas[i] = list[i]! - list[i - 1]!;
    objects[p] = deltas;
  }
  const declared: Record<string, { until: string; by: string[] }> = {};
  for (const p of [...ledger.declared.keys()].sort()) {
    const d = ledger.declared.get(p)!;
    declared[p] = { until: new Date(d.untilMs).toISOString(), by: d.holders };
  }
  return { from: ledger.from, objects, declared };
}

export function parseLedger(value: unknown): Ledger {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new LedgerFormatError('"window" is not an object');
  }
  const v = value as Record<string, unknown>;
  if (typeof v.from !== 'string' || !DATE_PATH.test(v.from)) {
    throw new LedgerFormatError('"window.from" is not a YYYY/MM/DD date');
  }
  const recorded = new Map<string, number[]>();
  const objects = v.objects ?? {};
  if (objects === null || typeof objects !== 'object' || Array.isArray(objects)) {
    throw new LedgerFormatError('"window.objects" is not an object');
  }
  for (const [p, deltas] of Object.entries(objects as Record<string, unknown>)) {
    if (!PARTITION.test(p) || !Array.isArray(deltas) || deltas.length === 0) {
      throw new LedgerFormatError(`"window.objects" has an invalid entry for ${JSON.stringify(p)}`);
    }
    const list = new Array<number>(deltas.length);
    let unix = 0;
    for (let i = 0; i < deltas.length; i++) {
      const d = deltas[i];
      if (!Number.isSafeInteger(d) || (d as number) < (i === 0 ? 0 : 1)) {
        throw new LedgerFormatError(`"window.objects" of ${p} is not an ascending list of unix seconds`);
      }
      unix += d as number;
      list[i] = unix;
    }
    recorded.set(p, list);
  }
  const declared = new Map<string, Declaration>();
  const decl = v.declared ?? {};
  if (decl === null || typeof decl !== 'object' || Array.isArray(decl)) {
    throw new LedgerFormatError('"window.declared" is not an object');
  }
  for (const [p, entry] of Object.entries(decl as Record<string, unknown>)) {
    const e = entry as { until?: unknown; by?: unknown } | null;
    const ms = typeof e?.until === 'string' ? Date.parse(e.until) : Number.NaN;
    const by = e?.by;
    if (
      !PARTITION.test(p) ||
      Number.isNaN(ms) ||
      !Array.isArray(by) ||
      by.length === 0 ||
      !by.every((h) => typeof h === 'string')
    ) {
      throw new LedgerFormatError(`"window.declared" has an invalid entry for ${JSON.stringify(p)}`);
    }
    declared.set(p, { untilMs: ms, holders: by as string[] });
  }
  return { from: v.from, recorded, declared };
}
