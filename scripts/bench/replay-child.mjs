/**
 * Child process of figures 4 and 5: replays every recorded response, in order, through runCollect (the
 * run function the CLI calls, from the build in dist/, so no TypeScript loader sits in this process's
 * memory) on a LocalStore in a temp directory, each at its recorded time. Prints one JSON line (the
 * ReplayResult of replay-throughput.ts): time and peak RSS per slice of the file, and the heap after a
 * full GC after the first run and at the end.
 *
 * The recorded data comes from the cache replay-cache.ts writes, read into Buffers: off the V8 heap and
 * with no garbage, so the memory figures are the collector's. Each body is rebuilt as the API sent it
 * and parsed per run, as the feed client does.
 *
 * Usage: node --expose-gc scripts/bench/replay-child.mjs CACHE_DIR [SLICES] [N]
 *        (N: replay only the first N responses, to try the script quickly)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { DEFAULT_MAX_SEEN_IDS } from '../../dist/src/config.js';
import { CollectorError } from '../../dist/src/errors.js';
import { DEFAULT_COLLECT_OPTIONS, runCollect } from '../../dist/src/run/collect-run.js';
import { LocalStore } from '../../dist/src/store/local-store.js';

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

/** The reading side of replay-cache.ts (same file layout). */
function readReplayCache(dir) {
  const text = readFileSync(path.join(dir, 'versions.txt'));
  const versionIndex = readFileSync(path.join(dir, 'versions.idx'));
  const responseIndex = readFileSync(path.join(dir, 'responses.idx'));
  const responses = JSON.parse(readFileSync(path.join(dir, 'responses.json'), 'utf8'));
  const body = (response) => {
    if (response.offset < 0) return '';
    const parts = [OPEN];
    for (let i = 0; i < response.count; i++) {
      const v = responseIndex.readInt32LE(4 * (response.offset + i));
      const start = versionIndex.readDoubleLE(v * 16);
      if (i > 0) parts.push(COMMA);
      parts.push(text.subarray(start, start + versionIndex.readDoubleLE(v * 16 + 8)));
    }
    parts.push(CLOSE);
    return Buffer.concat(parts).toString('utf8');
  };
  return { responses, body };
}

/** The recorded body, parsed as the feed client parses it; a non-array body fails as it does. */
function feedOf(cache, response) {
  return async () => {
    const body = cache.body(response);
    let events;
    try {
      events = JSON.parse(body);
    } catch {
      events = undefined;
    }
    if (!Array.isArray(events)) {
      throw new CollectorError('E_FEED_BODY', 'the feed answered a body that is not a JSON array');
    }
    const bytes = Buffer.byteLength(body);
    return { events, bodyBytes: bytes, wireBytes: bytes, status: 200, attempts: 1, ms: 0 };
  };
}

const gc = globalThis.gc ?? (() => {});

function heapAfterGcMb() {
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

/**
 * The kernel's peak RSS cannot be reset, so peaks are also sampled: every 2 ms (a run awaits I/O often
 * enough for the timer to fire) and after every run.
 */
function rssSampler() {
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage.rss() / 1024);
  };
  const timer = setInterval(sample, 2);
  timer.unref();
  return {
    sample,
    peak: () => peak,
    stop: () => clearInterval(timer),
  };
}

async function main() {
  const [cacheDir, slicesArg, limitArg] = process.argv.slice(2);
  if (!cacheDir) throw new Error('usage: replay-child.mjs CACHE_DIR [SLICES] [N]');
  const t0 = performance.now();
  const cache = readReplayCache(cacheDir);
  const loadMs = performance.now() - t0;
  const responses = cache.responses.slice(0, limitArg === undefined ? undefined : Number(limitArg));
  const sliceSize = Math.ceil(responses.length / Number(slicesArg ?? 10));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'polisen-bench-replay-'));
  const store = new LocalStore(dir);
  const logger = pino({ level: 'silent' });
  const options = {
    ...DEFAULT_COLLECT_OPTIONS,
    dryRun: false,
    maxSeenIds: DEFAULT_MAX_SEEN_IDS,
    revisions: true,
    prefix: '',
  };
  const result = {
    responses: 0,
    failedRuns: 0,
    objectsWritten: 0,
    eventsNew: 0,
    loadMs,
    rssBeforeFirstKb: 0,
    firstRunPeakRssKb: 0,
    slices: [],
    kernelMaxRssFirstKb: 0,
    kernelMaxRssEndKb: 0,
    heapAfterGcFirstMb: 0,
    heapAfterGcEndMb: 0,
  };
  gc();
  result.rssBeforeFirstKb = process.memoryUsage.rss() / 1024;
  const rss = rssSampler();
  rss.sample();
  try {
    let sliceStart = performance.now();
    let inSlice = 0;
    for (const response of responses) {
      const at = new Date(response.at);
      try {
        const summary = await runCollect(
          { store, logger, now: () => at, fetchFeed: feedOf(cache, response) },
          options,
        );
        result.objectsWritten += summary.objects.length;
        result.eventsNew += summary.counts.new;
      } catch (error) {
        if (!(error instanceof CollectorError) || error.code !== 'E_FEED_BODY') throw error;
        result.failedRuns++;
      }
      rss.sample();
      result.responses++;
      inSlice++;
      if (result.responses === 1) {
        result.firstRunPeakRssKb = rss.peak();
        result.kernelMaxRssFirstKb = process.resourceUsage().maxRSS;
        result.heapAfterGcFirstMb = heapAfterGcMb();
        sliceStart = performance.now(); // the slices time the runs after the first
        inSlice = 0;
      } else if (inSlice === sliceSize || result.responses === responses.length) {
        result.slices.push({ responses: inSlice, ms: performance.now() - sliceStart, peakRssKb: rss.peak() });
        sliceStart = performance.now();
        inSlice = 0;
      }
    }
    result.kernelMaxRssEndKb = process.resourceUsage().maxRSS;
    result.heapAfterGcEndMb = heapAfterGcMb();
  } finally {
    rss.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
