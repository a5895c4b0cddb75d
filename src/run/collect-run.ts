/**
 * One collection run, the imperative shell around the pure plan:
 *
 *   1. fetch the feed  ‖  read metadata/last_seen.json           (concurrently)
 *   2. reconcile claims of runs that died mid-write (only when there are any)
 *   3. plan (pure); record a claim for the objects about to be written (compare-and-swap)
 *   4. write every object concurrently, each create-only (if-none-match *)
 *   5. settle the claim: its ids become stored (compare-and-swap, re-read and re-apply on conflict)
 *
 * The claim in step 3 is what makes a SIGKILL at any moment safe: a later run finds the claim,
 * reads which of its objects exist, and records exactly those. Two runs never write the same id:
 * the compare-and-swap on the claim serialises them, and a live claim's ids are left to its owner.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { type ValidatedFeed, validateFeed } from '../core/event-validation.js';
import { countIds } from '../core/id-ranges.js';
import {
  assembleRunPlan,
  type Gap,
  type PlanCounts,
  type PlannedObject,
  type RunPlan,
} from '../core/run-plan.js';
import {
  type Claim,
  type ClaimedObject,
  MetadataFormatError,
  parseSeenState,
  type SeenState,
  serializeSeenState,
  settleClaim,
} from '../core/seen-set.js';
import { CollectorError, PreconditionFailedError } from '../errors.js';
import type { FeedResult } from '../feed/feed-client.js';
import type { Logger } from '../log.js';
import { isProcessAlive } from '../ops/run-lock.js';
import type { ObjectStore, StoredObject } from '../store/object-store.js';

export interface CollectOptions {
  dryRun: boolean;
  maxSeenIds: number;
  revisions: boolean;
  prefix: string;
  /** After this long a claim may be reconciled by any run, on any host. */
  claimTtlMs: number;
  /** Object writes must finish this long after the claim (well inside claimTtlMs). */
  writeBudgetMs: number;
  maxCasAttempts: number;
  /** Warn when the response shares no id with the store (off for backfill). */
  detectGaps?: boolean;
}

export const DEFAULT_COLLECT_OPTIONS: Omit<CollectOptions, 'dryRun' | 'maxSeenIds' | 'revisions' | 'prefix'> =
  {
    claimTtlMs: 15 * 60_000,
    writeBudgetMs: 5 * 60_000,
    maxCasAttempts: 8,
  };

export interface CollectDeps {
  store: ObjectStore;
  fetchFeed: () => Promise<FeedResult>;
  logger: Logger;
  now?: () => Date;
  host?: string;
  pid?: number;
  isPidAlive?: (pid: number) => boolean;
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
  reconciledClaims: number;
  casRetries: number;
  responseBytes: number;
  bytesWritten: number;
  metadataBytes: number;
  seenIds: number;
  storedIds: number;
  ms: Record<
    'fetch' | 'readMetadata' | 'reconcile' | 'plan' | 'claim' | 'writeObjects' | 'commit' | 'total',
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

/** Which claimed entries an existing object really holds (a line per event; quarantine is all or nothing). */
export function entriesPresent(claimed: ClaimedObject, body: Buffer): ClaimedObject {
  if (claimed.kind === 'quarantine') return claimed;
  const present = new Set<number>();
  for (const line of body.toString('utf8').split('\n')) {
    if (line === '') continue;
    try {
      const id = (JSON.parse(line) as { id?: unknown }).id;
      if (typeof id === 'number') present.add(id);
    } catch {
      // An unparseable line holds no claimed id.
    }
  }
  const ids: number[] = [];
  const fps: string[] = [];
  claimed.ids.forEach((id, i) => {
    if (present.has(id)) {
      ids.push(id);
      fps.push(claimed.fps[i] ?? '');
    }
  });
  return { ...claimed, ids, fps };
}

export async function runCollect(deps: CollectDeps, options: CollectOptions): Promise<RunSummary> {
  const now = deps.now ?? (() => new Date());
  const host = deps.host ?? os.hostname();
  const pid = deps.pid ?? process.pid;
  const isPidAlive = deps.isPidAlive ?? isProcessAlive;
  const { store, logger } = deps;
  const metaName = metadataName(options.prefix);
  const run = `${Math.floor(now().getTime() / 1000)}-${randomBytes(4).toString('hex')}`;
  const started = performance.now();
  const ms: RunSummary['ms'] = {
    fetch: 0,
    readMetadata: 0,
    reconcile: 0,
    plan: 0,
    claim: 0,
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

  // 1. The feed and the metadata at once: one round trip on the critical path.
  const [feedResult, initialMeta] = await Promise.all([
    timed('fetch', deps.fetchFeed),
    timed('readMetadata', () => store.get(metaName)),
  ]);
  const feed: ValidatedFeed = validateFeed(feedResult.events);
  for (const q of feed.quarantined.slice(0, 5)) {
    logger.warn({ index: q.index, reason: q.reason }, 'feed element quarantined');
  }

  let meta = initialMeta;
  let plan: RunPlan | undefined;
  let reconciledClaims = 0;
  let casRetries = 0;
  let state: SeenState;
  for (let attempt = 1; ; attempt++) {
    state = parseState(meta, metaName);
    const reconciled = await timed('reconcile', () =>
      reconcileDeadClaims(state, deps, options, feed, now(), host, pid, isPidAlive),
    );
    state = reconciled.state;
    const t0 = performance.now();
    plan = assembleRunPlan(state, feed, now(), { ...options, run, host, pid });
    ms.plan += performance.now() - t0;
    if (options.dryRun || (!plan.metadataChanged && reconciled.count === 0)) {
      reconciledClaims = reconciled.count;
      break;
    }
    const body = Buffer.from(serializeSeenState(plan.next, now()));
    try {
      const { etag } = await timed('claim', () =>
        store.put(metaName, body, meta ? { ifMatch: meta.etag } : { ifNoneMatch: '*' }),
      );
      meta = { body, etag };
      reconciledClaims = reconciled.count;
      break;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      if (attempt >= options.maxCasAttempts) {
        throw new CollectorError(
          'E_CONFLICT',
          `${metaName} changed under this run ${attempt} times in a row`,
        );
      }
      casRetries++;
      logger.debug({ attempt }, 'metadata changed by another run; re-reading');
      await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      meta = await timed('readMetadata', () => store.get(metaName));
    }
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
    reconciledClaims,
    casRetries,
    responseBytes: feedResult.bodyBytes,
    bytesWritten: 0,
    metadataBytes: meta?.body.length ?? 0,
    seenIds: plan.next.retained.size,
    storedIds: 0,
    ms,
  };
  if (options.dryRun || !plan.claim) {
    summary.storedIds = countIds(plan.next.stored);
    ms.total = performance.now() - started;
    return summary;
  }

  // 4. All objects at once, create-only, within the write budget of the claim.
  const claim = plan.claim;
  const deadline = AbortSignal.timeout(options.writeBudgetMs);
  const results = await timed('writeObjects', () =>
    Promise.allSettled(plan.objects.map((object) => writeObject(store, object, deadline))),
  );
  const written: ClaimedObject[] = [];
  results.forEach((result, i) => {
    const object = plan.objects[i]!;
    if (result.status === 'fulfilled') {
      written.push(claim.objects[i]!);
      summary.bytesWritten += summary.objects[i]!.bytes;
    } else {
      summary.failedObjects.push(object.name);
      logger.error({ object: object.name, err: describe(result.reason) }, 'object write failed');
    }
  });

  // 5. Settle the claim: exactly the objects that exist become stored.
  const committed = await timed('commit', () =>
    settleOwnClaim(store, metaName, { object: meta!, state: plan.next }, run, written, plan.feedIds, options),
  );
  summary.casRetries += committed.retries;
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
        `${summary.failedObjects.length} of ${plan.objects.length} objects could not be written (first: ${summary.failedObjects[0]}: ${describe(cause)}); the rest were committed`,
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

async function writeObject(store: ObjectStore, object: PlannedObject, signal: AbortSignal): Promise<void> {
  const body = Buffer.from(object.body);
  try {
    await store.put(object.name, body, {
      ifNoneMatch: '*',
      signal,
      contentType: 'application/x-ndjson; charset=utf-8',
    });
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
    // The name exists. Only our own earlier attempt with the same bytes may own it.
    const existing = await store.get(object.name, { signal });
    if (!existing?.body.equals(body)) {
      throw new CollectorError(
        'E_STORE',
        `${object.name} already exists with other content; it was left as it is`,
      );
    }
  }
}

async function settleOwnClaim(
  store: ObjectStore,
  metaName: string,
  claimed: { object: StoredObject; state: SeenState },
  run: string,
  written: ClaimedObject[],
  feedIds: Set<number>,
  options: CollectOptions,
): Promise<{ state: SeenState; bytes: number; retries: number }> {
  let meta: StoredObject | undefined = claimed.object;
  for (let attempt = 1; ; attempt++) {
    // The first attempt starts from the claim as this run wrote it (no need to parse it back).
    const current = attempt === 1 ? claimed.state : parseState(meta, metaName);
    const next = settleClaim(current, run, written, feedIds, options.maxSeenIds);
    if (!current.pending.some((c) => c.run === run)) {
      // Another run reconciled our claim (it outlived its deadline): it recorded what existed then.
      return { state: current, bytes: meta?.body.length ?? 0, retries: attempt - 1 };
    }
    const body = Buffer.from(serializeSeenState(next, new Date()));
    try {
      await store.put(metaName, body, meta ? { ifMatch: meta.etag } : { ifNoneMatch: '*' });
      return { state: next, bytes: body.length, retries: attempt - 1 };
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      if (attempt >= options.maxCasAttempts * 4) {
        throw new CollectorError(
          'E_CONFLICT',
          `${metaName} changed under this run ${attempt} times while committing`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.random() * 20 * Math.min(attempt, 10)));
      meta = await store.get(metaName);
    }
  }
}

function claimIsDead(
  claim: Claim,
  now: Date,
  host: string,
  pid: number,
  isPidAlive: (pid: number) => boolean,
): boolean {
  if (Date.parse(claim.deadline) <= now.getTime()) return true;
  // On this host a claim's owner can be asked directly: no need to wait for the deadline.
  return claim.host === host && (claim.pid === pid || !isPidAlive(claim.pid));
}

async function reconcileDeadClaims(
  state: SeenState,
  deps: CollectDeps,
  options: CollectOptions,
  feed: ValidatedFeed,
  now: Date,
  host: string,
  pid: number,
  isPidAlive: (pid: number) => boolean,
): Promise<{ state: SeenState; count: number }> {
  const dead = state.pending.filter((c) => claimIsDead(c, now, host, pid, isPidAlive));
  if (dead.length === 0) return { state, count: 0 };
  const protect = new Set(feed.events.map((e) => e.id));
  const found = await Promise.all(
    dead.map(async (claim) => {
      const existing = await Promise.all(
        claim.objects.map(async (object) => {
          const stored = await deps.store.get(object.name);
          return stored ? entriesPresent(object, stored.body) : undefined;
        }),
      );
      return { claim, existing: existing.filter((o): o is ClaimedObject => o !== undefined) };
    }),
  );
  let next = state;
  for (const { claim, existing } of found) {
    deps.logger.warn(
      {
        run: claim.run,
        host: claim.host,
        pid: claim.pid,
        claimedAt: claim.claimedAt,
        objectsFound: existing.length,
        objectsClaimed: claim.objects.length,
      },
      'reconciled the claim of a run that did not finish',
    );
    next = settleClaim(next, claim.run, existing, protect, options.maxSeenIds);
  }
  return { state: next, count: dead.length };
}
