/**
 * One collection run, the imperative shell around the pure core. Three round trips when all is well:
 *
 *   1. fetch the feed  ‖  read metadata/last_seen.json  ‖  list the window          (concurrently)
 *   2. write every object at once, each create-only (if-none-match *)
 *   3. record them in the metadata by compare-and-swap (if-match on the ETag read in 1)
 *
 * Objects are written before the metadata records them. A run killed between 2 and 3 leaves objects
 * the metadata does not know, and so does a run that is committing right now. Every run lists the
 * partitions where such objects can be (object-ledger.ts). It reads the ones it does not know, and
 * records them with its own commit, after stripping their lines that are stored already
 * (record-objects.ts). Further round trips only when needed:
 *   - unrecorded objects found: read them (and strip duplicates) before planning and committing;
 *   - objects outside the write window (old events, backfill): list and declare the partition first;
 *   - the first run on Python or v2 metadata: a compare-and-swap that records what is there;
 *   - a lost compare-and-swap: re-read the metadata and record again.
 * A SIGKILL at any moment leaves the store as it was or with unrecorded objects in the window. The
 * next run records those exactly once. Two runs at once may both write an event; the loser of the
 * compare-and-swap strips its copy before it commits, and if it dies first, the next run does.
 */
import { randomBytes } from 'node:crypto';
import { type ValidatedFeed, validateFeed } from '../core/event-validation.js';
import { countIds } from '../core/id-ranges.js';
import {
  advanceIsDue,
  emptyLedger,
  initialWindowFrom,
  isUnrecorded,
  type Ledger,
  type Listing,
  listingCovers,
  listingFor,
  OBJECT_KINDS,
  type ObjectNameParts,
  parseObjectName,
  unrecordedObjects,
  withDeclared,
  withRecorded,
} from '../core/object-ledger.js';
import { objectName } from '../core/partitioning.js';
import {
  type RecordInput,
  type RecordResult,
  readObjectEntries,
  recordObjects,
  stripLines,
  type TrackedObject,
} from '../core/record-objects.js';
import {
  assembleRunPlan,
  type Gap,
  type PlanCounts,
  type PlannedObject,
  plannedEntries,
  type RunPlan,
} from '../core/run-plan.js';
import {
  METADATA_FORMAT,
  MetadataFormatError,
  parseSeenState,
  type SeenState,
  serializeSeenState,
} from '../core/seen-set.js';
import { CollectorError, PreconditionFailedError } from '../errors.js';
import type { FeedResult } from '../feed/feed-client.js';
import type { Logger } from '../log.js';
import type { ObjectStore, StoredObject } from '../store/object-store.js';

export interface CollectOptions {
  dryRun: boolean;
  maxSeenIds: number;
  revisions: boolean;
  prefix: string;
  /** A partition declared for writing outside the window stays declared this long. */
  declareTtlMs: number;
  /** Object writes are abandoned this long after they start (well inside declareTtlMs). */
  writeBudgetMs: number;
  maxCasAttempts: number;
  /** Warn when the response shares no id with the store (off for backfill). */
  detectGaps?: boolean;
}

export const DEFAULT_COLLECT_OPTIONS: Omit<CollectOptions, 'dryRun' | 'maxSeenIds' | 'revisions' | 'prefix'> =
  {
    declareTtlMs: 15 * 60_000,
    writeBudgetMs: 5 * 60_000,
    maxCasAttempts: 8,
  };

/** Unrecorded objects read at once. */
const READ_CONCURRENCY = 16;
const JSONL = 'application/x-ndjson; charset=utf-8';

export interface CollectDeps {
  store: ObjectStore;
  fetchFeed: () => Promise<FeedResult>;
  logger: Logger;
  now?: () => Date;
}

export interface ObjectSummary {
  name: string;
  kind: string;
  lines: number;
  bytes: number;
}

export interface RunSummary {
  outcome: 'success' | 'dry-run' | 'failed';
  counts: PlanCounts;
  objects: ObjectSummary[];
  failedObjects: string[];
  gap: Gap | undefined;
  /** Objects of other runs (dead, or committing at the same time) this run found and recorded. */
  recoveredObjects: number;
  /** Lines removed because another object holds them already (two runs wrote the same event). */
  duplicatesRemoved: number;
  /** Partitions declared for writing outside the window. */
  declaredPartitions: number;
  casRetries: number;
  responseBytes: number;
  bytesWritten: number;
  metadataBytes: number;
  seenIds: number;
  storedIds: number;
  ms: Record<
    'fetch' | 'readMetadata' | 'list' | 'recover' | 'plan' | 'declare' | 'writeObjects' | 'commit' | 'total',
    number
  >;
}

export function metadataName(prefix: string): string {
  return `${prefix}metadata/last_seen.json`;
}

function parseState(object: StoredObject | undefined, name: string): SeenState {
  try {
    return parseSeenState(object?.body.toString('utf8'));
  } catch (error) {
    if (error instanceof MetadataFormatError) {
      throw new CollectorError('E_METADATA', `${name} is unreadable: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

type LedgerState = SeenState & { ledger: Ledger };

/** An object in the store this run knows the bytes of: its own, or an unrecorded one it read. */
interface Held extends TrackedObject {
  body: string;
  etag: string;
  own: boolean;
  /** Named by a v2 claim: recorded by the upgrade even outside the window. */
  mustRecord?: boolean;
}

/** What the store was listed for, and the names seen. */
interface Listed {
  coverage: Listing;
  names: Set<string>;
}

function listWindow(
  store: ObjectStore,
  prefix: string,
  listing: Listing,
  onlyPartitions = false,
): Promise<string[]>[] {
  const calls: Promise<string[]>[] = [];
  if (!onlyPartitions) {
    for (const kind of OBJECT_KINDS) {
      calls.push(store.list(`${prefix}${kind}/`, { start: `${prefix}${kind}/${listing.from}/` }));
    }
  }
  for (const p of listing.partitions) calls.push(store.list(`${prefix}${p}/`));
  return calls;
}

/** Lists what `needed` asks for that `listed` does not cover yet. */
async function extendListing(
  store: ObjectStore,
  prefix: string,
  listed: Listed,
  needed: Listing,
): Promise<void> {
  const fromNeeded = needed.from < listed.coverage.from;
  const partitions = needed.partitions.filter(
    (p) => !listed.coverage.partitions.includes(p) && p.slice(p.indexOf('/') + 1) < listed.coverage.from,
  );
  const from = fromNeeded ? needed.from : listed.coverage.from;
  const results = await Promise.all(listWindow(store, prefix, { from, partitions }, !fromNeeded));
  for (const names of results) for (const name of names) listed.names.add(name);
  listed.coverage = { from, partitions: [...listed.coverage.partitions, ...partitions] };
}

function partsOf(prefix: string, name: string): ObjectNameParts {
  const parts = parseObjectName(prefix, name);
  if (!parts) throw new CollectorError('E_INTERNAL', `object name ${name} does not parse`);
  return parts;
}

export async function runCollect(deps: CollectDeps, options: CollectOptions): Promise<RunSummary> {
  const now = deps.now ?? (() => new Date());
  const { store, logger } = deps;
  const prefix = options.prefix;
  const metaName = metadataName(prefix);
  const started = performance.now();
  const ms: RunSummary['ms'] = {
    fetch: 0,
    readMetadata: 0,
    list: 0,
    recover: 0,
    plan: 0,
    declare: 0,
    writeObjects: 0,
    commit: 0,
    total: 0,
  };
  const timed = async <T>(phase: keyof RunSummary['ms'], fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      ms[phase] += performance.now() - t0;
    }
  };

  // This run's name in the declarations it makes (never in an object name).
  const holder = `${Math.floor(now().getTime() / 1000)}-${randomBytes(4).toString('hex')}`;

  // 1. Feed, metadata and the window's listing at once: one round trip on the critical path.
  // `listedAtMs` is taken before the listing goes out, so "listed after t" is never claimed too early.
  const listedAtMs = now().getTime();
  const firstListing: Listing = { from: initialWindowFrom(new Date(listedAtMs)), partitions: [] };
  const [feedResult, initialMeta, firstNames] = await Promise.all([
    timed('fetch', deps.fetchFeed),
    timed('readMetadata', () => store.get(metaName)),
    timed('list', () => Promise.all(listWindow(store, prefix, firstListing))),
  ]);
  const feed: ValidatedFeed = validateFeed(feedResult.events);
  for (const q of feed.quarantined.slice(0, 5)) {
    logger.warn({ index: q.index, reason: q.reason }, 'feed element quarantined');
  }
  const listed: Listed = { coverage: firstListing, names: new Set(firstNames.flat()) };

  let meta = initialMeta;
  let state: LedgerState;
  let plan: RunPlan;
  let casRetries = 0;
  let declaredPartitions = 0;
  /** Unrecorded objects of other runs, read once and kept up to date with what this run does to them. */
  const found = new Map<string, Held>();
  const conflict = async (attempt: number, what: string): Promise<void> => {
    if (attempt >= options.maxCasAttempts) {
      throw new CollectorError(
        'E_CONFLICT',
        `${metaName} changed under this run ${attempt} times in a row (${what})`,
      );
    }
    casRetries++;
    logger.debug({ attempt, what }, 'metadata changed by another run; re-reading');
    await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    meta = await timed('readMetadata', () => store.get(metaName));
  };

  for (let attempt = 1; ; attempt++) {
    const parsed = parseState(meta, metaName);
    // No ledger yet (a new store, Python or v2 metadata): one is made first, see below.
    const upgrading = parsed.ledger === undefined;
    const base: LedgerState =
      parsed.ledger !== undefined
        ? { ...parsed, ledger: parsed.ledger }
        : { ...parsed, ledger: emptyLedger(listed.coverage.from) };
    const needed = listingFor(base.ledger);
    if (!listingCovers(listed.coverage, needed)) {
      await timed('list', () => extendListing(store, prefix, listed, needed));
    }
    if (upgrading) {
      // What is in the window now was written by earlier writers, whose metadata (if any) stores its
      // ids: it is recorded as it is, before this run writes anything, so that no other run making a
      // ledger at the same time can take an object of this version for one of those.
      const upgraded = await timed('recover', () =>
        upgradeState(store, prefix, base, parsed.legacyClaims, listed, found, options.revisions),
      );
      if (options.dryRun) {
        state = upgraded;
      } else {
        const committed = await timed('declare', () =>
          commit(store, metaName, { meta, state: upgraded }, [], found, {
            input: recordInput(feed.ids, undefined, options, listedAtMs),
            alwaysWrite: true,
            retries: 0,
            now,
            onRetry: () => casRetries++,
            logger,
          }),
        );
        if (committed === undefined) {
          await conflict(attempt, 'upgrade');
          continue;
        }
        meta = committed.meta;
        for (const c of parsed.legacyClaims) found.delete(c.name);
        if (parsed.format !== 'new') {
          logger.info(
            { from: committed.state.ledger.from },
            `upgraded ${metaName} to the ${METADATA_FORMAT} format`,
          );
        }
        attempt = 0;
        continue;
      }
    } else {
      state = base;
    }

    // Objects of runs that did not commit (or are committing now): read before planning, so that this
    // run does not write their events again.
    const unrecorded = unrecordedObjects(state.ledger, prefix, listed.names).filter(
      (o) => !found.has(o.name),
    );
    if (unrecorded.length > 0)
      await timed('recover', () => readFound(store, unrecorded, found, options.revisions));
    const foundNow = heldToRecord(state.ledger, found.values());
    const t0 = performance.now();
    const planState =
      foundNow.length === 0
        ? state
        : recordObjects(state, {
            ...recordInput(feed.ids, undefined, options, listedAtMs),
            objects: foundNow,
            now: now(),
          }).state;
    plan = assembleRunPlan(planState, feed, now(), { ...options, holder });
    ms.plan += performance.now() - t0;

    if (plan.toDeclare.length === 0 || options.dryRun) break;
    // 2'. Outside the window: declare the partitions first (listing them, to record what is there).
    const partitions = [...new Set(plan.toDeclare)];
    const declared = await timed('declare', async () => {
      await extendListing(store, prefix, listed, { from: listed.coverage.from, partitions });
      const existing = [...listed.names]
        .map((n) => parseObjectName(prefix, n))
        .filter((p): p is ObjectNameParts => p !== undefined && partitions.includes(p.partition));
      const next: LedgerState = {
        ...state,
        ledger: withDeclared(
          state.ledger,
          partitions,
          now().getTime() + options.declareTtlMs,
          existing,
          holder,
        ),
      };
      const body = Buffer.from(serializeSeenState(next, now()));
      try {
        const { etag } = await store.put(
          metaName,
          body,
          meta ? { ifMatch: meta.etag } : { ifNoneMatch: '*' },
        );
        meta = { body, etag };
        return true;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        return false;
      }
    });
    if (!declared) {
      await conflict(attempt, 'declare');
      continue;
    }
    declaredPartitions += partitions.length;
    logger.debug({ partitions }, 'declared partitions outside the window');
    attempt = 0;
  }

  const summary: RunSummary = {
    outcome: options.dryRun ? 'dry-run' : 'success',
    counts: plan.counts,
    objects: plan.objects.map((o) => ({
      name: o.name,
      kind: o.kind,
      lines: o.kind === 'quarantine' ? o.fps.length : o.ids.length,
      bytes: Buffer.byteLength(o.body),
    })),
    failedObjects: [],
    gap: plan.gap,
    recoveredObjects: 0,
    duplicatesRemoved: 0,
    declaredPartitions,
    casRetries,
    responseBytes: feedResult.bodyBytes,
    bytesWritten: 0,
    metadataBytes: meta?.body.length ?? 0,
    seenIds: 0,
    storedIds: 0,
    ms,
  };
  const foundAtStart = found.size;
  if (options.dryRun) {
    const result = recordObjects(state, {
      ...recordInput(feed.ids, plan, options, listedAtMs),
      objects: heldToRecord(state.ledger, found.values()),
      now: now(),
    });
    summary.recoveredObjects = foundAtStart;
    summary.seenIds = result.state.retained.size;
    summary.storedIds = countIds(result.state.stored);
    ms.total = performance.now() - started;
    return summary;
  }

  // 2. All objects at once, create-only, within the write budget.
  const deadline = AbortSignal.timeout(options.writeBudgetMs);
  const results = await timed('writeObjects', () =>
    Promise.allSettled(plan.objects.map((object) => writeOwnObject(store, prefix, object, deadline))),
  );
  const own: Held[] = [];
  const writtenObjects: ObjectSummary[] = [];
  results.forEach((result, i) => {
    const object = plan.objects[i]!;
    if (result.status === 'fulfilled') {
      own.push(result.value);
      if (!result.value.own) return;
      summary.bytesWritten += summary.objects[i]!.bytes;
      writtenObjects.push({ ...summary.objects[i]!, name: result.value.name });
    } else {
      summary.failedObjects.push(object.name);
      logger.error({ object: object.name, err: describe(result.reason) }, 'object write failed');
    }
  });

  // 3. Record them (and what was found) in the metadata.
  const committed = await timed('commit', () =>
    commit(store, metaName, { meta, state }, own, found, {
      // Its declarations end with this commit, unless a write failed: that one may still land.
      input: {
        ...recordInput(feed.ids, plan, options, listedAtMs),
        ...(summary.failedObjects.length === 0 ? { releaseHolder: holder } : {}),
      },
      alwaysWrite: plan.metadataChanged || declaredPartitions > 0,
      retries: options.maxCasAttempts * 4,
      now,
      onRetry: () => casRetries++,
      logger,
    }),
  );
  if (committed === undefined) throw new CollectorError('E_INTERNAL', 'the commit gave up without an error');
  if (foundAtStart > 0) {
    logger.warn(
      { objects: foundAtStart, duplicateLines: committed.duplicatesRemoved },
      `recorded ${foundAtStart} object${foundAtStart === 1 ? '' : 's'} that another run had written without recording (it died, or was committing at the same time)`,
    );
  }
  summary.recoveredObjects = foundAtStart;
  summary.duplicatesRemoved = committed.duplicatesRemoved;
  if (summary.failedObjects.length === 0) summary.objects = writtenObjects;
  // What this run stored in the end: a concurrent run may have stored some of it first.
  summary.counts.new -= committed.ownRemoved.events;
  summary.counts.alreadySeen += committed.ownRemoved.events;
  summary.counts.updated -= committed.ownRemoved.updates;
  summary.counts.quarantined -= committed.ownRemoved.quarantine;
  summary.counts.quarantineRepeated += committed.ownRemoved.quarantine;
  summary.casRetries = casRetries;
  summary.metadataBytes = committed.bytes;
  summary.seenIds = committed.state.retained.size;
  summary.storedIds = countIds(committed.state.stored);
  ms.total = performance.now() - started;
  if (summary.failedObjects.length > 0) {
    summary.outcome = 'failed';
    const first = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    const cause = first.reason as unknown;
    throw Object.assign(
      new CollectorError(
        cause instanceof CollectorError ? cause.code : 'E_STORE',
        `${summary.failedObjects.length} of ${plan.objects.length} objects could not be written (first: ${summary.failedObjects[0]}: ${describe(cause)}); the rest were recorded`,
        { cause },
      ),
      { summary },
    );
  }
  return summary;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

type RecordBase = Omit<RecordInput, 'objects' | 'now'>;

function recordInput(
  protect: ReadonlySet<number>,
  plan: RunPlan | undefined,
  options: CollectOptions,
  listedAtMs: number,
): RecordBase {
  return {
    learnedFps: plan?.learnedFps ?? new Map<number, string>(),
    protect,
    maxSeenIds: options.maxSeenIds,
    newestEventUnix: plan?.newestNewUnix,
    listedAtMs,
  };
}

/** Held objects the ledger is responsible for and has not recorded (the others were recorded by someone). */
function heldToRecord(ledger: Ledger, held: Iterable<Held>): Held[] {
  const out: Held[] = [];
  for (const h of held) {
    if (h.mustRecord || isUnrecorded(ledger, h.parts)) out.push(h);
  }
  return out;
}

async function readFound(
  store: ObjectStore,
  objects: readonly (ObjectNameParts & { name: string })[],
  found: Map<string, Held>,
  revisions: boolean,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < objects.length) {
      const o = objects[next++]!;
      const stored = await store.get(o.name);
      // Gone since the listing: all its lines were duplicates and another run removed it.
      if (stored === undefined) continue;
      const body = stored.body.toString('utf8');
      found.set(o.name, {
        name: o.name,
        parts: o,
        body,
        etag: stored.etag,
        entries: readObjectEntries(o.kind, body, revisions),
        own: false,
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, objects.length) }, worker));
}

/**
 * The state to write when a store gets its ledger (new store, Python or v2 metadata): every object listed
 * in the window is recorded as it is (its writer's metadata stores its ids), but those named by v2
 * claims (writes that had not settled), which are read into `found`, to be recorded wherever they are.
 */
async function upgradeState(
  store: ObjectStore,
  prefix: string,
  base: LedgerState,
  legacyClaims: SeenState['legacyClaims'],
  listed: Listed,
  found: Map<string, Held>,
  revisions: boolean,
): Promise<LedgerState> {
  const claimed = new Set(legacyClaims.map((c) => c.name));
  const snapshot: ObjectNameParts[] = [];
  for (const name of listed.names) {
    const parts = parseObjectName(prefix, name);
    if (parts && !claimed.has(name)) snapshot.push(parts);
  }
  const claimedObjects = legacyClaims.flatMap((c) => {
    const parts = parseObjectName(prefix, c.name);
    return parts && !found.has(c.name) ? [{ ...parts, name: c.name }] : [];
  });
  await readFound(store, claimedObjects, found, revisions);
  for (const name of claimed) {
    const h = found.get(name);
    if (h) h.mustRecord = true;
  }
  return { ...base, ledger: withRecorded(base.ledger, snapshot) };
}

/** Writes one of this run's objects; on a name taken by another object, under the next free second. */
async function writeOwnObject(
  store: ObjectStore,
  prefix: string,
  object: PlannedObject,
  signal: AbortSignal,
): Promise<Held> {
  const body = Buffer.from(object.body);
  const first = partsOf(prefix, object.name);
  for (let bump = 0; ; bump++) {
    const name =
      bump === 0 ? object.name : objectName(prefix, object.kind, object.datePath, first.unix + bump);
    try {
      const { etag } = await store.put(name, body, { ifNoneMatch: '*', signal, contentType: JSONL });
      return held(prefix, name, object, etag);
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      // The name exists. The same bytes are as good as ours: another run planned exactly this in the
      // same second (the store itself settles our own retried attempts). It is recorded once, by
      // whichever run commits first, and counted by the run that wrote it.
      const existing = await store.get(name, { signal });
      if (existing?.body.equals(body)) return { ...held(prefix, name, object, existing.etag), own: false };
      if (bump >= 9) {
        throw new CollectorError(
          'E_STORE',
          `${name} and the 9 names after it already exist with other content`,
        );
      }
    }
  }
}

function held(prefix: string, name: string, object: PlannedObject, etag: string): Held {
  return {
    name,
    parts: partsOf(prefix, name),
    entries: plannedEntries(object),
    body: object.body,
    etag,
    own: true,
  };
}

interface CommitContext {
  input: RecordBase;
  /** Write the metadata even when no object is to be recorded (fingerprints learned, upgrade). */
  alwaysWrite: boolean;
  /** Lost compare-and-swaps to re-read and retry; 0: give up at the first (the caller re-plans). */
  retries: number;
  now: () => Date;
  onRetry: () => void;
  logger: Logger;
}

interface Committed {
  state: LedgerState;
  meta: StoredObject | undefined;
  bytes: number;
  duplicatesRemoved: number;
  /** Lines of this run's own objects that turned out to be stored already (by a concurrent run). */
  ownRemoved: Record<'events' | 'updates' | 'quarantine', number>;
}

/**
 * Records this run's objects and the ones it found, by compare-and-swap; strips duplicate lines from
 * unrecorded objects first. Loops on a lost compare-and-swap (re-reading the metadata), on an object
 * changed under it (re-reading the object), and after a commit that left objects for the next one.
 * Undefined when it lost a compare-and-swap with no retries left to it.
 */
async function commit(
  store: ObjectStore,
  metaName: string,
  start: { meta: StoredObject | undefined; state: LedgerState },
  own: readonly Held[],
  found: Map<string, Held>,
  ctx: CommitContext,
): Promise<Committed | undefined> {
  let { meta, state } = start;
  const held = new Map<string, Held>([...found, ...own.map((o) => [o.name, o] as const)]);
  const planned = new Map(own.map((o) => [o.name, o.entries.length]));
  const done = (bytes: number): Committed => {
    const ownRemoved = { events: 0, updates: 0, quarantine: 0 };
    for (const o of own) {
      const kept = o.own && held.has(o.name) ? o.entries.length : 0;
      ownRemoved[o.parts.kind] += planned.get(o.name)! - kept;
    }
    return { state, meta, bytes, duplicatesRemoved, ownRemoved };
  };
  let duplicatesRemoved = 0;
  let written = false;
  let casFailures = 0;
  for (let step = 0; step < 1000; step++) {
    const pending = heldToRecord(state.ledger, held.values());
    const result: RecordResult = recordObjects(state, { ...ctx.input, objects: pending, now: ctx.now() });
    if (result.strips.length > 0) {
      const changed = await applyStrips(store, result, held, found);
      duplicatesRemoved += changed.removed;
      if (changed.retry) continue;
    }
    const mustWrite =
      pending.length > 0 ||
      (!written && (ctx.alwaysWrite || advanceIsDue(state.ledger, ctx.now(), ctx.input.listedAtMs)));
    if (!mustWrite) return done(meta?.body.length ?? 0);
    const body = Buffer.from(serializeSeenState(result.state, ctx.now()));
    try {
      const { etag } = await store.put(metaName, body, meta ? { ifMatch: meta.etag } : { ifNoneMatch: '*' });
      meta = { body, etag };
      state = result.state;
      written = true;
      if (result.deferred === 0) return done(body.length);
      ctx.logger.debug(
        { deferred: result.deferred },
        'objects repeating another unrecorded object: recorded next',
      );
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      if (casFailures++ >= ctx.retries) {
        if (ctx.retries === 0) return undefined;
        throw new CollectorError(
          'E_CONFLICT',
          `${metaName} changed under this run ${casFailures} times while it was recording its objects`,
        );
      }
      ctx.onRetry();
      await new Promise((r) => setTimeout(r, Math.random() * 20 * Math.min(casFailures, 10)));
      meta = await store.get(metaName);
      const parsed = parseState(meta, metaName);
      if (parsed.ledger === undefined) {
        throw new CollectorError(
          'E_CONFLICT',
          `${metaName} was replaced by an older writer (format ${parsed.format}) while this run was recording its objects`,
          {
            hint: 'stop other versions of the collector on this store; the next run upgrades the metadata again',
          },
        );
      }
      state = { ...parsed, ledger: parsed.ledger };
    }
  }
  throw new CollectorError('E_INTERNAL', `recording the objects of this run in ${metaName} did not settle`);
}

/** Removes duplicate lines (or whole objects); reports whether an object changed under us first. */
async function applyStrips(
  store: ObjectStore,
  result: RecordResult,
  held: Map<string, Held>,
  found: Map<string, Held>,
): Promise<{ retry: boolean; removed: number }> {
  let retry = false;
  let removed = 0;
  await Promise.all(
    result.strips.map(async (strip) => {
      const h = held.get(strip.name)!;
      try {
        if (strip.all) {
          await store.delete(h.name, { ifMatch: h.etag });
          held.delete(h.name);
          found.delete(h.name);
        } else {
          const body = stripLines(h.body, strip.remove);
          const { etag } = await store.put(h.name, Buffer.from(body), {
            ifMatch: h.etag,
            contentType: JSONL,
          });
          const drop = new Set(strip.remove);
          Object.assign(h, { body, etag, entries: h.entries.filter((_, i) => !drop.has(i)) });
        }
        removed += strip.remove.length;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        // Another run stripped it first: read it again and decide anew.
        retry = true;
        const current = await store.get(h.name);
        if (current === undefined) {
          held.delete(h.name);
          found.delete(h.name);
          return;
        }
        const body = current.body.toString('utf8');
        // Fingerprints as the object was written: the revisions setting of its writer is not known.
        Object.assign(h, { body, etag: current.etag, entries: readObjectEntries(h.parts.kind, body) });
      }
    }),
  );
  return { retry, removed };
}
