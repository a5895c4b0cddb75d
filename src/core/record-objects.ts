/**
 * Recording objects in the seen-set at commit: a run's own objects, and unrecorded objects it found
 * (left by a run that died before committing, or written by one that is committing right now).
 *
 * The rule that keeps `events/` exact: every stored id has exactly one line in a recorded object.
 * So an unrecorded object's line is a duplicate when its id is stored already. That id came from
 * another recorded object, and this line must go before the object is recorded. Lines are only ever
 * stripped from unrecorded objects, and stored ids only grow, so a strip decided against any version
 * of the metadata stays right, whoever commits first. The same goes for edits in `updates/`, whose
 * line is a duplicate when the retained fingerprint is its own, and for quarantined elements.
 *
 * Plain data in, plain data out: no I/O here.
 */
import { fingerprintEvent } from './fingerprint.js';
import { addIds, hasId } from './id-ranges.js';
import { advanced, type Ledger, type ObjectNameParts, released, withRecorded } from './object-ledger.js';
import { MAX_QUARANTINE_FINGERPRINTS, type ObjectKind, type SeenState, trimRetained } from './seen-set.js';

/** One line of an object: its event id (events, updates) and content fingerprint. */
export interface ObjectEntry {
  /** Undefined for quarantine lines, and for a line that is not an event (never stripped). */
  id: number | undefined;
  fp: string;
}

export interface TrackedObject {
  name: string;
  parts: ObjectNameParts;
  /** One entry per line of the object, in order. */
  entries: ObjectEntry[];
}

/** The entries of an object as stored (used for objects this run did not write). */
export function readObjectEntries(kind: ObjectKind, body: string, revisions = true): ObjectEntry[] {
  const entries: ObjectEntry[] = [];
  for (const line of body.split('\n')) {
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      entries.push({ id: undefined, fp: '' });
      continue;
    }
    if (kind === 'quarantine') {
      // The plan fingerprints the element's JSON text; the line wraps that text as `element`.
      const element = (value as { element?: unknown } | null)?.element;
      entries.push({ id: undefined, fp: fingerprintEvent(JSON.stringify(element) ?? 'null') });
      continue;
    }
    const id = (value as { id?: unknown } | null)?.id;
    entries.push(
      typeof id === 'number' && Number.isSafeInteger(id) && id > 0
        ? { id, fp: revisions ? fingerprintEvent(value) : '' }
        : { id: undefined, fp: '' },
    );
  }
  return entries;
}

export interface RecordInput {
  /** Unrecorded objects to record, this run's and others'. */
  objects: readonly TrackedObject[];
  /** Stored events whose content this run saw while the fingerprint was unknown: id → fingerprint. */
  learnedFps: ReadonlyMap<number, string>;
  /** Ids of the response: never trimmed from seen_ids. */
  protect: ReadonlySet<number>;
  maxSeenIds: number;
  newestEventUnix: number | undefined;
  now: Date;
  /** When this run listed the window (for ending declarations). */
  listedAtMs: number;
  /** This run's token, to leave the declarations it holds (all its objects are recorded by now). */
  releaseHolder?: string;
}

export interface Strip {
  name: string;
  /** Line indexes (0-based) that are duplicates. */
  remove: number[];
  /** Every line is a duplicate: the object goes. */
  all: boolean;
}

export interface RecordResult {
  state: SeenState & { ledger: Ledger };
  /** Duplicate lines to remove from unrecorded objects before the state is written. */
  strips: Strip[];
  /** Objects recorded (with at least one line kept, or none to strip). */
  recorded: number;
  /** Objects left for the next commit: they repeat a line of another unrecorded object. */
  deferred: number;
  /** Lines found to be duplicates. */
  duplicateLines: number;
}

function byName(a: TrackedObject, b: TrackedObject): number {
  return a.parts.unix - b.parts.unix || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export function recordObjects(state: SeenState & { ledger: Ledger }, input: RecordInput): RecordResult {
  const retained = new Map(state.retained);
  const added = new Set<number>();
  const addedUpdates = new Set<string>();
  const quarantineFps = [...state.quarantineFps];
  const knownQuarantine = new Set(quarantineFps);
  const addedQuarantine = new Set<string>();
  const strips: Strip[] = [];
  const recorded: ObjectNameParts[] = [];
  let deferred = 0;
  let lastObjectUnix = state.lastObjectUnix;
  let duplicateLines = 0;

  // Oldest first, so that of two unrecorded copies the earlier object is recorded first.
  for (const object of [...input.objects].sort(byName)) {
    const kind = object.parts.kind;
    const remove: number[] = [];
    // A line is stripped only when the metadata already stores it (a fact no commit can undo). A
    // line that only collides with another unrecorded object of this batch waits for the next
    // commit: another run may see just one of the two and keep that one.
    let collides = false;
    object.entries.forEach((entry, i) => {
      if (kind === 'quarantine') {
        if (knownQuarantine.has(entry.fp)) remove.push(i);
        else if (addedQuarantine.has(entry.fp)) collides = true;
      } else if (entry.id === undefined) {
        // Not an event line: kept as it is.
      } else if (kind === 'events') {
        if (hasId(state.stored, entry.id)) remove.push(i);
        else if (added.has(entry.id)) collides = true;
      } else if (entry.fp !== '' && state.retained.get(entry.id) === entry.fp) {
        remove.push(i);
      } else if (addedUpdates.has(`${entry.id}:${entry.fp}`)) {
        collides = true;
      }
    });
    lastObjectUnix = Math.max(lastObjectUnix, object.parts.unix);
    if (collides) {
      deferred++;
      continue;
    }
    const drop = new Set(remove);
    object.entries.forEach((entry, i) => {
      if (drop.has(i)) return;
      if (kind === 'quarantine') {
        addedQuarantine.add(entry.fp);
        quarantineFps.push(entry.fp);
      } else if (entry.id !== undefined) {
        if (kind === 'events') added.add(entry.id);
        else addedUpdates.add(`${entry.id}:${entry.fp}`);
        retained.set(entry.id, entry.fp);
      }
    });
    duplicateLines += remove.length;
    const all = remove.length > 0 && remove.length === object.entries.length;
    if (remove.length > 0) strips.push({ name: object.name, remove, all });
    if (!all) recorded.push(object.parts);
  }
  // Learned after the objects: seeing content is not a version of it, so it never strips a line.
  for (const [id, fp] of input.learnedFps) {
    const known = retained.get(id);
    if ((known === undefined || known === '') && hasId(state.stored, id)) retained.set(id, fp);
  }

  // The window moves only when everything unrecorded in it is recorded by this commit.
  const withThese = withRecorded(state.ledger, recorded);
  const ledger =
    deferred > 0
      ? withThese
      : advanced(
          input.releaseHolder === undefined ? withThese : released(withThese, input.releaseHolder),
          input.now,
          input.listedAtMs,
        );
  return {
    state: {
      ...state,
      stored: added.size > 0 ? addIds(state.stored, [...added]) : state.stored,
      retained: trimRetained(retained, input.protect, input.maxSeenIds),
      quarantineFps: quarantineFps.slice(-MAX_QUARANTINE_FINGERPRINTS),
      ledger,
      lastObjectUnix,
      newestEventUnix:
        input.newestEventUnix === undefined
          ? state.newestEventUnix
          : Math.max(state.newestEventUnix ?? 0, input.newestEventUnix),
    },
    strips,
    recorded: recorded.length,
    deferred,
    duplicateLines,
  };
}

/** The body without the stripped lines (entries and lines correspond one to one). */
export function stripLines(body: string, remove: readonly number[]): string {
  const drop = new Set(remove);
  const kept: string[] = [];
  let index = 0;
  for (const line of body.split('\n')) {
    if (line === '') continue;
    if (!drop.has(index)) kept.push(line);
    index++;
  }
  return kept.length === 0 ? '' : `${kept.join('\n')}\n`;
}
