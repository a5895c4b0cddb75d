/**
 * The pure heart of a run (as changesets' assembleReleasePlan): given what the store holds and one
 * validated feed response, decide what to write and what the metadata becomes. No I/O.
 */
import { utcDatePath } from './event-datetime.js';
import type { FeedEvent, ValidatedFeed } from './event-validation.js';
import { fingerprintEvent, fingerprintFeedEvent } from './fingerprint.js';
import { hasId } from './id-ranges.js';
import { objectName, type Partition, partitionEvents, toJsonl } from './partitioning.js';
import {
  type Claim,
  type ClaimedObject,
  claimedEventIds,
  type ObjectKind,
  type SeenState,
  trimRetained,
} from './seen-set.js';

export interface PlanOptions {
  maxSeenIds: number;
  /** Store edits of already stored events in updates/. */
  revisions: boolean;
  /** Object name prefix ('' or e.g. 'stockholm/'). */
  prefix: string;
  claimTtlMs: number;
  /** Warn when the response shares no id with the store (off for backfill, which fetches old days). */
  detectGaps?: boolean;
  run: string;
  host: string;
  pid: number;
}

export interface PlannedObject extends ClaimedObject {
  kind: ObjectKind;
  body: string;
  /** Partition date directory. */
  datePath: string;
}

export interface PlanCounts {
  fetched: number;
  valid: number;
  new: number;
  updated: number;
  alreadySeen: number;
  /** Claimed by another run that is writing right now. */
  inFlight: number;
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
  /** The claim to record before writing objects (undefined when there is nothing to write). */
  claim: Claim | undefined;
  /** The state to write now: with the claim and fingerprint adoptions. */
  next: SeenState;
  /** Whether the metadata must be written even without objects (fingerprints learned, upgrade). */
  metadataChanged: boolean;
  counts: PlanCounts;
  gap: Gap | undefined;
  /** Ids of the response, protected from trimming when the claim is settled. */
  feedIds: Set<number>;
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
  state: SeenState,
  feed: ValidatedFeed,
  now: Date,
  options: PlanOptions,
): RunPlan {
  const inFlightIds = claimedEventIds(state.pending);
  const retained = new Map(state.retained);
  let metadataChanged = state.format === 'python';
  const fresh: FeedEvent[] = [];
  const edited: FeedEvent[] = [];
  const fps = new Map<number, string>();
  const counts: PlanCounts = {
    fetched: feed.events.length + feed.quarantined.length + feed.repeatedInResponse,
    valid: feed.events.length,
    new: 0,
    updated: 0,
    alreadySeen: 0,
    inFlight: 0,
    quarantined: 0,
    quarantineRepeated: 0,
    repeatedInResponse: feed.repeatedInResponse,
  };
  let sharesStoredId = false;
  let oldestUnix = Number.POSITIVE_INFINITY;
  let newestNewUnix: number | undefined;

  for (const event of feed.events) {
    oldestUnix = Math.min(oldestUnix, event.time.unixSeconds);
    if (inFlightIds.has(event.id)) {
      counts.inFlight++;
      sharesStoredId = true;
      continue;
    }
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
      if (known !== fp) {
        retained.set(event.id, fp);
        metadataChanged = true;
      }
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

  // Elements already quarantined, or being quarantined by a run in flight, are not written again.
  const knownQuarantine = new Set(state.quarantineFps);
  for (const claim of state.pending) {
    for (const object of claim.objects)
      if (object.kind === 'quarantine') for (const fp of object.fps) knownQuarantine.add(fp);
  }
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

  const feedIds = new Set(feed.events.map((e) => e.id));
  const gap =
    options.detectGaps !== false && state.stored.length > 0 && feed.events.length > 0 && !sharesStoredId
      ? { fromUnix: state.newestEventUnix, toUnix: oldestUnix }
      : undefined;

  let claim: Claim | undefined;
  let next: SeenState = { ...state, retained: trimRetained(retained, feedIds, options.maxSeenIds) };
  if (objects.length > 0) {
    claim = {
      run: options.run,
      host: options.host,
      pid: options.pid,
      claimedAt: now.toISOString(),
      deadline: new Date(now.getTime() + options.claimTtlMs).toISOString(),
      ...(newestNewUnix === undefined ? {} : { newestEventUnix: newestNewUnix }),
      objects: objects.map(({ name, kind, ids, fps: objectFps }) => ({ name, kind, ids, fps: objectFps })),
    };
    next = { ...next, pending: [...next.pending, claim], lastObjectUnix: unix };
  }
  return {
    objects,
    claim,
    next,
    metadataChanged: metadataChanged || claim !== undefined,
    counts,
    gap,
    feedIds,
  };
}
