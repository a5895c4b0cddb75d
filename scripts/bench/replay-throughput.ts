/**
 * Figure 4, replay throughput: the whole recorded file (10,184 responses) through runCollect in one
 * child process (replay-child.mjs) on the local store: responses per second. The child runs with the
 * settings of the product's long-lived processes (LONG_LIVED_NODE_FLAGS, LONG_LIVED_ENV), as `backfill` does. One replay takes about two
 * minutes, so the "runs" of the median are ten consecutive slices of that one replay.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LONG_LIVED_NODE_FLAGS, longLivedEnv } from '../../src/ops/long-lived-runtime.js';
import type { Replay } from '../../test/support/replay-file.js';
import { measureNodeOk } from './measure-child.js';
import { writeReplayCache } from './replay-cache.js';
import { fmt, median, type Row } from './stats.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'replay-child.mjs');
export const REPLAY_SLICES = 10;

/** What replay-child.mjs prints. */
export interface ReplayResult {
  responses: number;
  /** Runs that failed: the recorded non-array bodies (E_FEED_BODY), as under cron. */
  failedRuns: number;
  objectsWritten: number;
  eventsNew: number;
  /** Reading the cache into Buffers. */
  loadMs: number;
  /** RSS after a full GC, right before the first run. */
  rssBeforeFirstKb: number;
  /** Highest RSS sampled (every 2 ms) during and right after the first run. */
  firstRunPeakRssKb: number;
  /** The runs after the first, in consecutive slices; peakRssKb: highest RSS sampled so far. */
  slices: { responses: number; ms: number; peakRssKb: number }[];
  /** The kernel's peak RSS after the first run and at the end. */
  kernelMaxRssFirstKb: number;
  kernelMaxRssEndKb: number;
  heapAfterGcFirstMb: number;
  heapAfterGcEndMb: number;
}

export interface ReplayRun extends ReplayResult {
  wallMs: number;
  /** Peak RSS of the whole child, from GNU time. */
  maxRssKb: number;
}

/** Replays the first `limit` responses (default: all) in a fresh child process. */
export async function runReplay(replay: Replay, limit?: number): Promise<ReplayRun> {
  const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'polisen-bench-cache-'));
  try {
    writeReplayCache(replay, cacheDir);
    const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    if (process.env.TMPDIR) base.TMPDIR = process.env.TMPDIR;
    // A process that runs collection after collection: it runs with the settings `backfill` is relaunched
    // with (src/ops/long-lived-runtime.ts), not the defaults a cron run gets.
    const env = longLivedEnv(base) as Record<string, string>;
    const args = [...LONG_LIVED_NODE_FLAGS, '--expose-gc', CHILD, cacheDir, String(REPLAY_SLICES)];
    const run = await measureNodeOk(limit === undefined ? args : [...args, String(limit)], env, 15 * 60_000);
    const last = run.stdout.trim().split('\n').at(-1) ?? '';
    return { ...(JSON.parse(last) as ReplayResult), wallMs: run.wallMs, maxRssKb: run.maxRssKb };
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

export function replayThroughputRows(replay: ReplayRun): Row[] {
  const rates = replay.slices.map((s) => (s.responses * 1000) / s.ms);
  const runMs = replay.slices.reduce((sum, s) => sum + s.ms, 0);
  const runs = replay.slices.reduce((sum, s) => sum + s.responses, 0);
  return [
    {
      group: '4',
      figure: 'replay of the whole 2023 file through runCollect, local store',
      value: median(rates),
      unit: 'responses/s',
      detail:
        `median of ${rates.length} slices (${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}); ` +
        `${runs} runs after the first in ${fmt(runMs / 1000)} s (${fmt(runMs / runs)} ms each), ` +
        `${replay.eventsNew} new events in ${replay.objectsWritten} objects, ${replay.failedRuns} runs failed on non-array bodies (as recorded); ` +
        `loading the file took ${fmt(replay.loadMs)} ms`,
    },
  ];
}
