/**
 * The pure heart of a run (as changesets' assembleReleasePlan): given what the store holds and one
 * validated feed response, decide what to write and what the metadata becomes. No I/O.
 */
import { utcDatePath } from './event-datetime.js';
import type { FeedEvent, ValidatedFeed } from './event-validation.js';
import { fingerprintEvent, fingerprintFeedEvent } from './fingerprint.js';
import { hasId } from './id-ranges.js';
import { isWritable, type Ledger, partitionOf } from './object-ledger.js';
import { objectName, type Partition, partitionEvents, toJsonl } from './partitioning.js';
import type { ObjectEntry } from './record-objects.js';
import type { ObjectKind, SeenState } from './seen-set.js';

export interface PlanOptions {
  maxSeenIds: number;
  /** Store edits of already stored events in updates/. */
  revisions: boolean;
  /** Object name prefix ('' or e.g. 'stockholm/'). */
  prefix: string;
  /** How long the run may take to write its objects (a partition must stay writable that long). */
  writeBudgetMs: number;
  /** This run's token in declarations (object-ledger.ts). */
  holder: string;
  /** Warn when the response shares no id with the store (off for backfill, which fetches old days). */
  detectGaps?: boolean;
}

export interface PlannedObject {
  name: string;
  kind: ObjectKind;
  body: string;
  /** Partition date directory. */
  datePath: string;
  /** Event ids, one per line (empty for quarantine). */
  ids: number[];
  /** Fingerprints, one per line. */
  fps: string[];
}

export interface PlanCounts {
  fetched: number;
  valid: number;
  new: number;
  updated: number;
  alreadySeen: number;
  quarantined: number;
  /** Quarantined before (same element), not written again. */
  quarantineRepeated: number;
  repeatedInResponse: number;
}

export interface Gap {
  /** Unix seconds of the newest event stored before (undefined: unknown, e.g. Python metadata). */
  fromUnix: number | undefined;
  /** Unix seconds of the oldest event in this response. */
  toUnix: number;
}

export interface RunPlan {
  objects: PlannedObject[];
  /** Unix seconds in the objects' names. */
  unix: number;
  /** Partitions of objects outside the write window: to declare before writing (object-ledger.ts). */
  toDeclare: string[];
  /** Stored events whose fingerprint was not known: id → fingerprint seen now. */
  learnedFps: Map<number, string>;
  /** Newest datetime of a new event (unix seconds), for gap warnings. */
  newestNewUnix: number | undefined;
  /** Whether the metadata must be written even without objects (fingerprints learned, upgrade). */
  metadataChanged: boolean;
  counts: PlanCounts;
  gap: Gap | undefined;
}

/** A planned object's lines as the ledger records them: event id and fingerprint (quarantine: fingerprint). */
export function plannedEntries(object: PlannedObject): ObjectEntry[] {
  return object.kind === 'quarantine'
    ? object.fps.map((fp) => ({ id: undefined, fp }))
    : object.ids.map((id, i) => ({ id, fp: object.fps[i] ?? '' }));
}

interface Quarantined {
  index: number;
  line: string;
  reason: string;
}

function quarantineLine(q: Quarantined, now: Date): string {
  return `{"reason":${JSON.stringify(q.reason)},"received_at":${JSON.stringify(now.toISOString())},"index":${q.index},"element":${q.line}}`;
}

function toPlanned(
  partitions: Partition[],
  kind: 'events' | 'updates',
  fps: Map<number, string>,
): PlannedObject[] {
  return partitions.map((p) => ({
    name: p.name,
    kind,
    body: p.body,
    datePath: p.datePath,
    ids: p.events.map((e) => e.id),
    fps: p.events.map((e) => fps.get(e.id) ?? ''),
  }));
}

export function assembleRunPlan(
  state: SeenState & { ledger: Ledger },
  feed: ValidatedFeed,
  now: Date,
  options: PlanOptions,
): RunPlan {
  const retained = state.retained;
  const learnedFps = new Map<number, string>();
  const fresh: FeedEvent[] = [];
  const edited: FeedEvent[] = [];
  const fps = new Map<number, string>();
  const counts: PlanCounts = {
    fetched: feed.events.length + feed.quarantined.length + feed.repeatedInResponse,
    valid: feed.events.length,
    new: 0,
    updated: 0,
    alreadySeen: 0,
    quarantined: 0,
    quarantineRepeated: 0,
    repeatedInResponse: feed.repeatedInResponse,
  };
  let sharesStoredId = false;
  let oldestUnix = Number.POSITIVE_INFINITY;
  let newestNewUnix: number | undefined;

  for (const event of feed.events) {
    oldestUnix = Math.min(oldestUnix, event.time.unixSeconds);
    const isNew = !hasId(state.stored, event.id);
    // New events are written: their fingerprint also tells whether the line can come from the template.
    const fp = options.revisions ? fingerprintFeedEvent(event, isNew) : '';
    if (isNew) {
      fresh.push(event);
      fps.set(event.id, fp);
      newestNewUnix = Math.max(newestNewUnix ?? 0, event.time.unixSeconds);
      continue;
    }
    sharesStoredId = true;
    counts.alreadySeen++;
    const known = retained.get(event.id);
    if (known === undefined || known === '' || !options.revisions) {
      // Stored, but its content is not known (outside the window, or Python metadata): learn it now.
      // A revision cannot be told from the first sighting here, and none may be invented.
      if (known !== fp) learnedFps.set(event.id, fp);
    } else if (known !== fp) {
      edited.push(event);
      fps.set(event.id, fp);
    }
  }
  counts.new = fresh.length;
  counts.updated = edited.length;

  const unix = Math.max(Math.floor(now.getTime() / 1000), state.lastObjectUnix + 1);
  const objects = [
    ...toPlanned(partitionEvents(fresh, options.prefix, 'events', unix), 'events', fps),
    ...toPlanned(partitionEvents(edited, options.prefix, 'updates', unix), 'updates', fps),
  ];

  // Elements already quarantined are not written again.
  const knownQuarantine = new Set(state.quarantineFps);
  const quarantineFps: string[] = [];
  const quarantineLines: string[] = [];
  for (const q of feed.quarantined) {
    const fp = fingerprintEvent(q.line);
    if (knownQuarantine.has(fp)) {
      counts.quarantineRepeated++;
      continue;
    }
    knownQuarantine.add(fp);
    quarantineFps.push(fp);
    quarantineLines.push(quarantineLine(q, now));
  }
  counts.quarantined = quarantineLines.length;
  if (quarantineLines.length > 0) {
    const datePath = utcDatePath(now);
    objects.push({
      name: objectName(options.prefix, 'quarantine', datePath, unix),
      kind: 'quarantine',
      body: toJsonl(quarantineLines),
      datePath,
      ids: [],
      fps: quarantineFps,
    });
  }

  const toDeclare = objects
    .filter((o) => !isWritable(state.ledger, o.kind, o.datePath, now, options.writeBudgetMs, options.holder))
    .map((o) => partitionOf(o.kind, o.datePath));
  const gap =
    options.detectGaps !== false && state.stored.length > 0 && feed.events.length > 0 && !sharesStoredId
      ? { fromUnix: state.newestEventUnix, toUnix: oldestUnix }
      : undefined;
  return {
    objects,
    unix,
    toDeclare,
    learnedFps,
    newestNewUnix,
    metadataChanged: learnedFps.size > 0 || state.format !== 'v3',
    counts,
    gap,
  };
}
