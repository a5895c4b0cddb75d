/**
 * Figure 3, core throughput: the pure CPU work of one run, in process, exactly as runCollect sequences
 * it: parse the metadata, validate (filter) the response, plan (seen-set, partitioning, JSONL), record
 * the run's objects in the seen-set and serialise the metadata (the commit's first attempt). µs per
 * event, for one real 500-event response with 0, 5 and 500 new events, and for 100,000 events at once
 * (a long backfill).
 */
import { validateFeed } from '../../src/core/event-validation.js';
import { emptyLedger, initialWindowFrom, parseObjectName } from '../../src/core/object-ledger.js';
import { recordObjects, type TrackedObject } from '../../src/core/record-objects.js';
import { assembleRunPlan, plannedEntries } from '../../src/core/run-plan.js';
import { parseSeenState, serializeSeenState } from '../../src/core/seen-set.js';
import type { Replay } from '../../test/support/replay-file.js';
import type { Scenario } from './scenario.js';
import { fmt, median, type Row } from './stats.js';

const MAX_SEEN_IDS = 1000;
const STAGES = ['metadata in', 'validate', 'plan', 'metadata out'] as const;
type Stage = (typeof STAGES)[number];

export interface CoreOptions {
  runs: number;
  log: (line: string) => void;
}

/** One run's core work; returns the metadata it would write last (undefined: nothing to write). */
function coreRun(
  metadata: string | undefined,
  events: readonly unknown[],
  now: Date,
  spent: Record<Stage, number>,
): string | undefined {
  let t = performance.now();
  const lap = (stage: Stage) => {
    const t1 = performance.now();
    spent[stage] += t1 - t;
    t = t1;
  };
  const parsed = parseSeenState(metadata);
  // As runCollect: a new store's run starts from an empty window.
  const state = { ...parsed, ledger: parsed.ledger ?? emptyLedger(initialWindowFrom(now)) };
  lap('metadata in');
  const feed = validateFeed(events);
  lap('validate');
  const plan = assembleRunPlan(state, feed, now, {
    maxSeenIds: MAX_SEEN_IDS,
    revisions: true,
    prefix: '',
    writeBudgetMs: 5 * 60_000,
    holder: 'bench',
  });
  lap('plan');
  if (plan.objects.length === 0 && !plan.metadataChanged) return undefined;
  // As the commit's first attempt: the objects as written, recorded, and the metadata serialised.
  const objects: TrackedObject[] = plan.objects.map((o) => ({
    name: o.name,
    parts: parseObjectName('', o.name)!,
    entries: plannedEntries(o),
  }));
  const recorded = recordObjects(state, {
    objects,
    learnedFps: plan.learnedFps,
    protect: feed.ids,
    maxSeenIds: MAX_SEEN_IDS,
    newestEventUnix: plan.newestNewUnix,
    now,
    listedAtMs: now.getTime(),
  });
  const committed = serializeSeenState(recorded.state, now);
  lap('metadata out');
  return committed;
}

interface Case {
  label: string;
  metadata: string | undefined;
  events: unknown[];
  expectNew: number;
}

function timeCase(c: Case, iterations: number, batches: number, now: Date) {
  const spent: Record<Stage, number> = { 'metadata in': 0, validate: 0, plan: 0, 'metadata out': 0 };
  let sink = 0;
  const once = () => {
    sink += coreRun(c.metadata, c.events, now, spent)?.length ?? 0;
  };
  for (let i = 0; i < iterations; i++) once(); // warm-up (JIT)
  for (const s of STAGES) spent[s] = 0;
  const perRun: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) once();
    perRun.push((performance.now() - t0) / iterations);
  }
  if (sink === 0 && c.expectNew > 0) throw new Error(`${c.label}: the core wrote nothing`);
  const total = iterations * batches;
  const stages = STAGES.map((s) => `${s} ${fmt(spent[s] / total)}`).join(', ');
  return { msPerRun: median(perRun), stages };
}

/** 100,000 distinct events from the recorded ones: their ids shifted by multiples of 10^7, dates kept. */
function backfillEvents(replay: Replay, count: number): unknown[] {
  const byId = new Map<number, Record<string, unknown>>();
  for (const v of replay.versions) {
    const event = v as Record<string, unknown>;
    byId.set(event.id as number, event);
  }
  const base = [...byId.values()];
  const out: unknown[] = [];
  for (let k = 0; out.length < count; k++) {
    for (const event of base) {
      if (out.length === count) break;
      out.push({ ...event, id: (event.id as number) + k * 10_000_000 });
    }
  }
  return out;
}

export function measureCore(replay: Replay, scenario: Scenario, options: CoreOptions): Row[] {
  const now = new Date();
  const spent: Record<Stage, number> = { 'metadata in': 0, validate: 0, plan: 0, 'metadata out': 0 };
  const full = scenario.full;
  const newest5 = new Set(
    full
      .map((e) => (e as { id: number }).id)
      .sort((a, b) => b - a)
      .slice(0, 5),
  );
  const cases: Case[] = [
    { label: '0 new', metadata: coreRun(undefined, full, now, spent), events: full, expectNew: 0 },
    {
      label: '5 new',
      metadata: coreRun(
        undefined,
        full.filter((e) => !newest5.has((e as { id: number }).id)),
        now,
        spent,
      ),
      events: full,
      expectNew: 5,
    },
    { label: '500 new', metadata: undefined, events: full, expectNew: 500 },
  ];
  const rows: Row[] = [];
  const batches = Math.max(options.runs, 5);
  // Warm every case before timing any, so the first one timed does not pay for the JIT of all.
  for (const c of cases) for (let i = 0; i < 50; i++) coreRun(c.metadata, c.events, now, spent);
  for (const c of cases) {
    const { msPerRun, stages } = timeCase(c, 20, batches, now);
    const value = (msPerRun * 1000) / c.events.length;
    options.log(`  core, 500 events, ${c.label}: ${fmt(msPerRun)} ms per response`);
    rows.push({
      group: '3',
      figure: `core, one 500-event response, ${c.label}`,
      value,
      unit: 'µs/event',
      max: 2, // 1 ms per 500-event response
      detail: `${fmt(msPerRun)} ms per response (target ≤ 1 ms); median of ${batches} batches of 20; ms by stage: ${stages}`,
    });
  }
  const backfill = backfillEvents(replay, 100_000);
  const { msPerRun, stages } = timeCase(
    { label: 'backfill', metadata: undefined, events: backfill, expectNew: backfill.length },
    1,
    5,
    now,
  );
  options.log(`  core, 100,000 events: ${fmt(msPerRun)} ms`);
  rows.push({
    group: '3',
    figure: 'core, 100,000 events at once (backfill), all new',
    value: (msPerRun * 1000) / backfill.length,
    unit: 'µs/event',
    detail: `${fmt(msPerRun)} ms in all; median of 5 runs; ms by stage: ${stages}`,
  });
  return rows;
}
