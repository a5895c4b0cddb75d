/**
 * `backfill` end to end: the built CLI against the feed test server answering `?DateTime=` queries from a
 * synthetic dataset, a local directory store, and the pure plan behind it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { stopOnSignals } from '../src/commands/backfill.js';
import { CollectorError } from '../src/errors.js';
import {
  type BackfillKey,
  backfillLockName,
  progressPath,
  readProgress,
  writeProgress,
} from '../src/ops/backfill-progress.js';
import { LONG_LIVED_ENV, LONG_LIVED_NODE_FLAGS, RELAUNCHED_ENV } from '../src/ops/long-lived-runtime.js';
import { PACING_LOG_FILE } from '../src/ops/pacing.js';
import { acquireRunLock, isLockHeld, isProcessAlive, type RunLock } from '../src/ops/run-lock.js';
import {
  afterDayFetched,
  afterHourFetched,
  dayInTimeZone,
  daysInRange,
  emptyProgress,
  hoursToDo,
  isCalendarDay,
  unitQuery,
  validateRange,
} from '../src/run/backfill-plan.js';
import { runChild } from './support/child-process.js';
import { CLI, type CliResult, localEnv, PROJECT_ROOT, runCli, summaryLine, tempDir } from './support/cli.js';
import { type FeedReply, type FeedTestServer, startFeedServer } from './support/feed-server.js';

// ---------------------------------------------------------------------------------------------
// A synthetic API: events on 2024-03-01..05; 2024-03-03 holds 600 events, over the 500 cap.

interface SyntheticEvent {
  id: number;
  day: string;
  hour: number;
  unix: number;
  raw: Record<string, unknown>;
}

const DAYS = ['2024-03-01', '2024-03-02', '2024-03-03', '2024-03-04', '2024-03-05'];
const BIG_DAY = '2024-03-03';
const SMALL_DAY_EVENTS = 15;
const BIG_DAY_PER_HOUR = 25;

function buildDataset(): SyntheticEvent[] {
  const events: SyntheticEvent[] = [];
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (const day of DAYS) {
    const perHour = day === BIG_DAY ? BIG_DAY_PER_HOUR : 0;
    const count = day === BIG_DAY ? perHour * 24 : SMALL_DAY_EVENTS;
    for (let k = 0; k < count; k++) {
      const hour = day === BIG_DAY ? Math.floor(k / perHour) : random(24);
      const minute = random(60);
      const second = random(60);
      // One-digit hours, as the API sends them; +01:00 is Swedish winter time.
      const datetime = `${day} ${hour}:${String(minute).padStart(2, '0')}:${String(second).padStart(2, '0')} +01:00`;
      const unix = Date.parse(
        `${day}T${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}:${String(second).padStart(2, '0')}+01:00`,
      );
      events.push({ id: 0, day, hour, unix, raw: { datetime } });
    }
  }
  // Ids roughly follow time but not exactly (the real feed has inversions).
  const order = events.map((e, i) => ({ i, key: e.unix + random(600_000) })).sort((a, b) => a.key - b.key);
  order.forEach(({ i }, rank) => {
    const e = events[i]!;
    e.id = 480_000 + rank;
    e.raw = {
      id: e.id,
      datetime: e.raw.datetime,
      name: `${e.day}, Stöld, Västerås`,
      summary: `Händelse ${e.id}.`,
      url: `/aktuellt/handelser/${e.id}/`,
      type: 'Stöld',
      location: { name: 'Västerås', gps: '59.609901,16.544809' },
    };
  });
  return events;
}

const DATASET = buildDataset();
const EXPECTED_QUERIES = [
  '2024-03-01',
  '2024-03-02',
  '2024-03-03',
  ...Array.from({ length: 24 }, (_, h) => `2024-03-03 ${String(h).padStart(2, '0')}`),
  '2024-03-04',
  '2024-03-05',
];

/** Answers `?DateTime=YYYY-MM-DD[ HH]` as the API does: newest first, at most 500. */
function answerDateTime(query: string): FeedReply {
  const m = /^(\d{4}-\d{2}-\d{2})(?: (\d{2}))?$/.exec(query);
  if (!m) return { status: 400, body: '[]' };
  const hour = m[2] === undefined ? undefined : Number(m[2]);
  const matches = DATASET.filter((e) => e.day === m[1] && (hour === undefined || e.hour === hour))
    .sort((a, b) => b.unix - a.unix)
    .slice(0, 500);
  return { body: JSON.stringify(matches.map((e) => e.raw)) };
}

// ---------------------------------------------------------------------------------------------
// Helpers

let feed: FeedTestServer;
/** DateTime values asked for, in order (reset per test). */
let queries: string[] = [];
/** Called on each DateTime request before it is answered; may delay the answer. */
let onQuery: ((query: string, n: number) => void | Promise<void>) | undefined;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  feed = await startFeedServer();
  feed.handler(async (_request, url) => {
    const query = url.searchParams.get('DateTime');
    if (query === null) return undefined;
    queries.push(query);
    await onQuery?.(query, queries.length);
    return answerDateTime(query);
  });
});
afterAll(async () => {
  await feed.close();
});
beforeEach(() => {
  queries = [];
  onQuery = undefined;
});
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function workDir(): string {
  const t = tempDir('polisen-backfill-');
  cleanups.push(t.cleanup);
  return t.dir;
}

/** Every stored event line of the store: id → how many times it is stored. */
function storedIds(storeDir: string): Map<number, number> {
  const counts = new Map<number, number>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.jsonl')) {
        for (const line of readFileSync(full, 'utf8').split('\n')) {
          if (line === '') continue;
          const id = (JSON.parse(line) as { id: number }).id;
          counts.set(id, (counts.get(id) ?? 0) + 1);
        }
      }
    }
  };
  const events = path.join(storeDir, 'events');
  if (existsSync(events)) walk(events);
  return counts;
}

function expectEveryEventOnce(storeDir: string, days: readonly string[] = DAYS): void {
  const counts = storedIds(storeDir);
  const expected = DATASET.filter((e) => days.includes(e.day));
  expect(counts.size).toBe(expected.length);
  for (const e of expected) expect(counts.get(e.id), `event ${e.id}`).toBe(1);
  expect(existsSync(path.join(storeDir, 'updates'))).toBe(false);
}

function keyFor(dir: string, from: string, to: string): BackfillKey {
  return { store: path.join(dir, 'store'), prefix: '', locations: [], types: [], from, to };
}

/** The built CLI as a child we can signal; resolves like runCli when it exits. */
function startCli(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; done: Promise<CliResult>; stdout: () => string } {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, signal, stdout, stderr, lines, ms: performance.now() - t0 });
    });
  });
  return { child, done, stdout: () => stdout };
}

/** The pid of the relaunched backfill, from its `runtime settings` debug line (LOG_LEVEL=debug). */
async function relaunchedPid(run: { stdout: () => string }): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const line = run
      .stdout()
      .split('\n')
      .find((l) => l.includes('"runtime settings"'));
    if (line) return (JSON.parse(line) as { pid: number }).pid;
    await delay(20);
  }
  throw new Error(`no runtime settings line in:\n${run.stdout()}`);
}

const show = (r: CliResult): string => `exit ${r.code}\n${r.stderr}\n${r.stdout}`;

// ---------------------------------------------------------------------------------------------

describe('backfill through the CLI', () => {
  it('fetches day by day, splits a day at the 500 cap into 24 hourly queries, stores every event once', async () => {
    const dir = workDir();
    const result = await runCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-05'],
      localEnv(feed.url, dir),
    );
    expect(result.code, show(result)).toBe(0);
    expect(queries).toEqual(EXPECTED_QUERIES);
    expectEveryEventOnce(path.join(dir, 'store'));
    // Events land in the directory of their own date.
    const bigDayDir = path.join(dir, 'store/events/2024/03/03');
    const bigDayLines = readdirSync(bigDayDir)
      .map((f) => readFileSync(path.join(bigDayDir, f), 'utf8').split('\n').filter(Boolean).length)
      .reduce((a, b) => a + b, 0);
    expect(bigDayLines).toBe(600);

    const dayLines = result.lines.filter((l) => typeof l.day === 'string' && l.requests !== undefined);
    expect(dayLines.map((l) => l.day)).toEqual(DAYS);
    expect(dayLines.find((l) => l.day === BIG_DAY)).toMatchObject({ requests: 25, new: 600, splitDays: 1 });
    expect(summaryLine(result)).toMatchObject({
      outcome: 'success',
      days: 5,
      daysDone: 5,
      daysSkipped: 0,
      requests: 29,
      new: DATASET.length,
      updated: 0,
    });
    // The progress file lists every day as done; a second run asks the API nothing.
    const progress = await readProgress(
      progressPath(path.join(dir, 'state'), keyFor(dir, '2024-03-01', '2024-03-05')),
      keyFor(dir, '2024-03-01', '2024-03-05'),
    );
    expect(progress).toEqual({ doneDays: DAYS, splitDays: {} });
    queries = [];
    const again = await runCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-05'],
      localEnv(feed.url, dir),
    );
    expect(again.code, show(again)).toBe(0);
    expect(queries).toEqual([]);
    expect(summaryLine(again)).toMatchObject({ outcome: 'success', daysSkipped: 5, requests: 0 });
  });

  it('a different range is a different backfill: it re-fetches, and stores nothing twice', async () => {
    const dir = workDir();
    const first = await runCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-02'],
      localEnv(feed.url, dir),
    );
    expect(first.code, show(first)).toBe(0);
    queries = [];
    const second = await runCli(
      ['backfill', '--from', '2024-03-02', '--to', '2024-03-02'],
      localEnv(feed.url, dir),
    );
    expect(second.code, show(second)).toBe(0);
    expect(queries).toEqual(['2024-03-02']);
    expect(summaryLine(second)).toMatchObject({ outcome: 'success', new: 0, alreadySeen: SMALL_DAY_EVENTS });
    expectEveryEventOnce(path.join(dir, 'store'), ['2024-03-01', '2024-03-02']);
  });

  it('killed (SIGKILL) on the 10th request, then restarted: only the interrupted query is asked twice', async () => {
    const dir = workDir();
    const args = ['backfill', '--from', '2024-03-01', '--to', '2024-03-05'];
    const env = localEnv(feed.url, dir);
    const run = startCli(args, env);
    onQuery = (_query, n) => {
      if (n === 10) run.child.kill('SIGKILL');
    };
    const killed = await run.done;
    expect(killed.signal).toBe('SIGKILL');
    const firstQueries = [...queries];
    expect(firstQueries).toEqual(EXPECTED_QUERIES.slice(0, 10));
    // Two days done, and the first six hours of the split day.
    const key = keyFor(dir, '2024-03-01', '2024-03-05');
    expect(await readProgress(progressPath(path.join(dir, 'state'), key), key)).toEqual({
      doneDays: ['2024-03-01', '2024-03-02'],
      splitDays: { [BIG_DAY]: [0, 1, 2, 3, 4, 5] },
    });

    queries = [];
    onQuery = undefined;
    const resumed = await runCli(args, env);
    expect(resumed.code, show(resumed)).toBe(0);
    expect(queries).toEqual(EXPECTED_QUERIES.slice(9));
    expect(queries.filter((q) => firstQueries.includes(q))).toEqual(['2024-03-03 06']);
    expect(summaryLine(resumed)).toMatchObject({ outcome: 'success', daysSkipped: 2, daysDone: 5 });
    expectEveryEventOnce(path.join(dir, 'store'));
  });

  it('killed in the middle of its store writes, then restarted: every event is stored exactly once', async () => {
    const dir = workDir();
    const args = ['backfill', '--from', '2024-03-01', '--to', '2024-03-03'];
    // Store operations 1–9 are the first day's: read the metadata and list the window (4), make the new
    // store's ledger, list and declare the day's partition (2), write the object, record it (which ends
    // the declaration). 10–17 are the second day's, without the ledger. Killed just after the second
    // day's object write: the object is left unrecorded, for the next run to find and record.
    const killed = await runCli(args, localEnv(feed.url, dir, { POLISEN_TEST_KILL_AT: '16:after' }));
    expect(killed.signal).toBe('SIGKILL');
    expect(queries).toEqual(['2024-03-01', '2024-03-02']);
    queries = [];
    const resumed = await runCli(args, localEnv(feed.url, dir));
    expect(resumed.code, show(resumed)).toBe(0);
    expect(queries[0]).toBe('2024-03-02');
    expect(resumed.stdout).toContain('recorded 1 object that another run had written without recording');
    expectEveryEventOnce(path.join(dir, 'store'), ['2024-03-01', '2024-03-02', '2024-03-03']);
  });

  it('SIGTERM while a query is in flight: stops at once with progress saved, exit 1, and resumes', async () => {
    const dir = workDir();
    const args = ['backfill', '--from', '2024-03-01', '--to', '2024-03-02'];
    const env = localEnv(feed.url, dir);
    const run = startCli(args, env);
    let signalledAt = 0;
    onQuery = async (_query, n) => {
      if (n !== 2) return;
      signalledAt = performance.now();
      run.child.kill('SIGTERM');
      await delay(3_000); // the answer comes late: the backfill must not wait for it
    };
    const stopped = await run.done;
    const stopMs = performance.now() - signalledAt;
    expect(stopped.code, show(stopped)).toBe(1);
    expect(stopMs).toBeLessThan(2_000);
    const line = summaryLine(stopped);
    expect(line).toMatchObject({ outcome: 'interrupted', daysDone: 1 });
    expect(String(line?.msg)).toMatch(
      /interrupted by SIGTERM: 1 of 2 days done, progress saved in .*; run the same command again to resume/,
    );
    expectEveryEventOnce(path.join(dir, 'store'), ['2024-03-01']);

    queries = [];
    onQuery = undefined;
    const resumed = await runCli(args, env);
    expect(resumed.code, show(resumed)).toBe(0);
    expect(queries).toEqual(['2024-03-02']);
    expectEveryEventOnce(path.join(dir, 'store'), ['2024-03-01', '2024-03-02']);
  });

  it('never writes while a collect run holds the run lock: fetches, waits, then stores', async () => {
    const dir = workDir();
    const stateDir = path.join(dir, 'state');
    const held = await acquireRunLock(stateDir, { name: 'collect' });
    if (isLockHeld(held)) throw new Error('lock unexpectedly held');
    const run = startCli(['backfill', '--from', '2024-03-01', '--to', '2024-03-01'], localEnv(feed.url, dir));
    for (let i = 0; i < 100 && queries.length === 0; i++) await delay(50);
    expect(queries).toEqual(['2024-03-01']);
    await delay(700);
    expect(storedIds(path.join(dir, 'store')).size).toBe(0);
    await (held as RunLock).release();
    const result = await run.done;
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toContain(`waiting for the run in progress (pid ${process.pid}`);
    expectEveryEventOnce(path.join(dir, 'store'), ['2024-03-01']);
  });

  it('refuses to run the same backfill twice at once (exit 1, nothing fetched)', async () => {
    const dir = workDir();
    const key = keyFor(dir, '2024-03-01', '2024-03-02');
    const held = await acquireRunLock(path.join(dir, 'state'), { name: backfillLockName(key) });
    if (isLockHeld(held)) throw new Error('lock unexpectedly held');
    try {
      const result = await runCli(
        ['backfill', '--from', '2024-03-01', '--to', '2024-03-02'],
        localEnv(feed.url, dir),
      );
      expect(result.code, show(result)).toBe(1);
      expect(summaryLine(result)).toMatchObject({ outcome: 'failed', code: 'E_LOCKED' });
      expect(String(summaryLine(result)?.msg)).toContain(`already running: pid ${process.pid}`);
      expect(queries).toEqual([]);
    } finally {
      await held.release();
    }
  });

  it.each([
    [['--from', '2024-03-05', '--to', '2024-03-01'], '--from 2024-03-05 is after --to 2024-03-01'],
    [['--from', '2099-01-01'], '--from 2099-01-01 is in the future'],
    [['--from', '2024-03-01', '--to', '2099-01-01'], '--to 2099-01-01 is in the future'],
    [['--from', '2024-02-30'], '--from 2024-02-30 is not a calendar date'],
  ])('refuses %j with exit 2 and one line', async (flags, message) => {
    const dir = workDir();
    const result = await runCli(['backfill', ...flags], localEnv(feed.url, dir));
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(message);
    expect(queries).toEqual([]);
    expect(existsSync(path.join(dir, 'state'))).toBe(false);
  });
});

describe('backfill relaunched with the long-run settings (src/ops/long-lived-runtime.ts)', () => {
  it('runs in a second node with the settings, and exits with its code', async () => {
    const dir = workDir();
    const run = startCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-01'],
      localEnv(feed.url, dir, { LOG_LEVEL: 'debug' }),
    );
    const pid = await relaunchedPid(run);
    const result = await run.done;
    expect(result.code, show(result)).toBe(0);
    expect(pid).not.toBe(run.child.pid);
    const settings = result.lines.find((l) => l.msg === 'runtime settings');
    expect(settings).toMatchObject({ runtime: 'long-lived', env: LONG_LIVED_ENV });
    expect(settings?.execArgv).toEqual(expect.arrayContaining([...LONG_LIVED_NODE_FLAGS]));
    expect(summaryLine(result)).toMatchObject({ outcome: 'success', new: SMALL_DAY_EVENTS });
  });

  it(`${RELAUNCHED_ENV}=1 runs it in the first process, without relaunching`, async () => {
    const dir = workDir();
    const run = startCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-01'],
      localEnv(feed.url, dir, { LOG_LEVEL: 'debug', [RELAUNCHED_ENV]: '1' }),
    );
    const pid = await relaunchedPid(run);
    const result = await run.done;
    expect(result.code, show(result)).toBe(0);
    expect(pid).toBe(run.child.pid);
  });

  it.each([
    ['relaunched: the same signal again within 500 ms is the same request', true, [false, true]],
    ['not relaunched: a second signal quits at once', false, [true, true]],
  ])('stopOnSignals, %s', async (_title, relaunched, exitedAfter) => {
    const logger = { info: () => {} } as unknown as Parameters<typeof stopOnSignals>[0];
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const stop = stopOnSignals(logger, relaunched);
    try {
      process.emit('SIGTERM', 'SIGTERM');
      expect(() => stop.throwIfStopped()).toThrow(/stopped by SIGTERM/);
      process.emit('SIGTERM', 'SIGTERM');
      expect(exit.mock.calls.length > 0).toBe(exitedAfter[0]);
      await delay(600);
      process.emit('SIGTERM', 'SIGTERM');
      expect(exit.mock.calls.length > 0).toBe(exitedAfter[1]);
    } finally {
      stop.dispose();
      exit.mockRestore();
    }
  });

  it('relaunched, the second copy of a stop request that arrives after the backfill ended does not kill it', async () => {
    // The real race, in a real process: the first SIGTERM stops the backfill, which ends and disposes its
    // handlers; the copy passed on by the first process arrives while node is still exiting.
    const script = `
      import { stopOnSignals } from ${JSON.stringify(path.join(PROJECT_ROOT, 'dist/src/commands/backfill.js'))};
      const pause = (ms) => new Promise((r) => setTimeout(r, ms));
      const stop = stopOnSignals({ info() {} }, true);
      process.kill(process.pid, 'SIGTERM');
      await pause(50);
      stop.dispose();
      process.kill(process.pid, 'SIGTERM');
      await pause(50);
      process.exitCode = 1;
    `;
    const result = await runChild(process.execPath, ['--input-type=module', '-e', script]);
    expect({ code: result.code, signal: result.signal }, result.stderr).toEqual({ code: 1, signal: null });
  });

  it('a stop request that reaches both processes (terminal, systemd) stops it, progress saved', async () => {
    const dir = workDir();
    const args = ['backfill', '--from', '2024-03-01', '--to', '2024-03-02'];
    const run = startCli(args, localEnv(feed.url, dir, { LOG_LEVEL: 'debug' }));
    onQuery = async (_query, n) => {
      if (n !== 2) return;
      // As systemd stops a unit: every process of it gets SIGTERM; the first one also passes it on.
      run.child.kill('SIGTERM');
      process.kill(await relaunchedPid(run), 'SIGTERM');
      await delay(3_000);
    };
    const stopped = await run.done;
    expect(stopped.code, show(stopped)).toBe(1);
    expect(summaryLine(stopped)).toMatchObject({ outcome: 'interrupted', daysDone: 1 });
    expectEveryEventOnce(path.join(dir, 'store'), ['2024-03-01']);
  });

  it('killed outright (SIGKILL on the first process), the relaunched one dies too', async () => {
    const dir = workDir();
    const run = startCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-05'],
      localEnv(feed.url, dir, { LOG_LEVEL: 'debug' }),
    );
    const pid = await relaunchedPid(run);
    onQuery = async (_query, n) => {
      if (n === 2) run.child.kill('SIGKILL');
      await delay(2_000);
    };
    const killed = await run.done;
    expect(killed.signal).toBe('SIGKILL');
    for (let i = 0; i < 50 && isProcessAlive(pid); i++) await delay(20);
    expect(isProcessAlive(pid)).toBe(false);
    expect(queries).toEqual(EXPECTED_QUERIES.slice(0, 2));
  });
});

describe('backfill with pacing on (the real limits: 10 s apart, 60 an hour, 1,440 a day)', () => {
  function seedPacingLog(dir: string, calls: number[]): string {
    const stateDir = path.join(dir, 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(stateDir, PACING_LOG_FILE), `${JSON.stringify({ version: 1, calls })}\n`);
    return stateDir;
  }

  it('waits for the 10-second slot after a call another process made', async () => {
    const dir = workDir();
    const otherCall = Date.now() - 8_500;
    const stateDir = seedPacingLog(dir, [otherCall]);
    const result = await runCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-01'],
      localEnv(feed.url, dir, { POLISEN_PACING: 'on' }),
    );
    expect(result.code, show(result)).toBe(0);
    const request = feed.requests.filter((r) => r.url.includes('DateTime')).at(-1)!;
    expect(request.at).toBeGreaterThanOrEqual(otherCall + 10_000 - 50);
    const log = JSON.parse(readFileSync(path.join(stateDir, PACING_LOG_FILE), 'utf8')) as { calls: number[] };
    expect(log.calls).toHaveLength(2);
  });

  it('stops before the hourly budget, leaving calls to the scheduled collect, with progress saved and a resume time', async () => {
    const dir = workDir();
    const now = Date.now();
    // 57 calls in the last hour, the latest 20 s ago: one more is allowed, then backfill holds back.
    seedPacingLog(
      dir,
      Array.from({ length: 57 }, (_, i) => now - 3_000_000 + i * 52_000),
    );
    const result = await runCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-02'],
      localEnv(feed.url, dir, { POLISEN_PACING: 'on' }),
    );
    expect(result.code, show(result)).toBe(1);
    expect(queries).toEqual(['2024-03-01']);
    const line = summaryLine(result);
    expect(line).toMatchObject({ outcome: 'stopped', code: 'E_PACING_BUDGET', daysDone: 1 });
    const resumeAfter = Date.parse(String(line?.resumeAfter));
    expect(resumeAfter).toBeGreaterThan(now + 3_000_000);
    expect(String(line?.msg)).toMatch(
      /58 API calls in the last hour; backfill stops at 58 .* run the same command again after 20\d\d-/,
    );
    expectEveryEventOnce(path.join(dir, 'store'), ['2024-03-01']);
  });

  it("stops on the pacer's own refusal (slot beyond its wait limit) and names the pacer's time", async () => {
    const dir = workDir();
    const now = Date.now();
    // Other processes reserved slots for the next 70 s: ours would be 80 s away, over the 60 s wait limit.
    seedPacingLog(
      dir,
      Array.from({ length: 8 }, (_, i) => now + i * 10_000),
    );
    const result = await runCli(
      ['backfill', '--from', '2024-03-01', '--to', '2024-03-01'],
      localEnv(feed.url, dir, { POLISEN_PACING: 'on' }),
    );
    expect(result.code, show(result)).toBe(1);
    expect(queries).toEqual([]);
    const line = summaryLine(result);
    expect(line).toMatchObject({ outcome: 'stopped', code: 'E_PACING_BUDGET', daysDone: 0 });
    expect(Date.parse(String(line?.resumeAfter))).toBeGreaterThanOrEqual(now + 80_000);
  });
});

// ---------------------------------------------------------------------------------------------

describe('backfill plan (pure)', () => {
  it('lists the days of a range across month ends and a leap day', () => {
    expect(daysInRange('2024-02-27', '2024-03-02')).toEqual([
      '2024-02-27',
      '2024-02-28',
      '2024-02-29',
      '2024-03-01',
      '2024-03-02',
    ]);
    expect(daysInRange('2023-12-31', '2024-01-01')).toEqual(['2023-12-31', '2024-01-01']);
    expect(daysInRange('2024-03-30', '2024-03-31')).toHaveLength(2); // Swedish DST starts on the 31st
    expect(daysInRange('2023-01-01', '2023-12-31')).toHaveLength(365);
  });

  it('validates the range against today', () => {
    expect(validateRange('2024-03-01', '2024-03-01', '2024-03-10')).toEqual([]);
    expect(validateRange('2024-03-01', '2024-03-10', '2024-03-10')).toEqual([]);
    expect(validateRange('2024-03-02', '2024-03-01', '2024-03-10')[0]).toContain('is after --to');
    expect(validateRange('2024-03-01', '2024-03-11', '2024-03-10')[0]).toContain(
      '--to 2024-03-11 is in the future',
    );
    expect(isCalendarDay('2023-02-29')).toBe(false);
    expect(isCalendarDay('2024-02-29')).toBe(true);
    expect(dayInTimeZone(new Date('2024-03-09T23:30:00Z'))).toBe('2024-03-10');
    expect(dayInTimeZone(new Date('2024-07-09T21:59:00Z'))).toBe('2024-07-09');
  });

  it('splits a day that hit the cap, records hours in order, and finishes the day after its 24th hour', () => {
    const today = '2024-03-10';
    let p = afterDayFetched(emptyProgress(), '2024-03-01', 17, today);
    expect(p).toEqual({ doneDays: ['2024-03-01'], splitDays: {} });
    p = afterDayFetched(p, '2024-03-02', 500, today);
    expect(p.splitDays['2024-03-02']).toEqual([]);
    expect(hoursToDo(p, '2024-03-02')).toHaveLength(24);
    for (const hour of [0, 1, 2]) p = afterHourFetched(p, '2024-03-02', hour, today);
    expect(hoursToDo(p, '2024-03-02')[0]).toBe(3);
    for (let hour = 3; hour < 24; hour++) p = afterHourFetched(p, '2024-03-02', hour, today);
    expect(p).toEqual({ doneDays: ['2024-03-01', '2024-03-02'], splitDays: {} });
    expect(unitQuery({ day: '2024-03-02', hour: 7 })).toBe('2024-03-02 07');
    expect(unitQuery({ day: '2024-03-02' })).toBe('2024-03-02');
  });

  it('never records today as done: it still gets events', () => {
    const today = '2024-03-10';
    expect(afterDayFetched(emptyProgress(), today, 17, today)).toEqual(emptyProgress());
    const split = afterDayFetched(emptyProgress(), today, 500, today);
    expect(split.splitDays[today]).toEqual([]);
    expect(afterHourFetched(split, today, 0, today)).toEqual(split);
  });
});

describe('backfill progress file', () => {
  it('round-trips, keeps backfills apart, and refuses a file that is not its own', async () => {
    const dir = workDir();
    const a = keyFor(dir, '2024-03-01', '2024-03-05');
    const b = { ...a, to: '2024-03-06' };
    const filtered = { ...a, locations: ['Uppsala'] };
    expect(progressPath(dir, a)).not.toBe(progressPath(dir, b));
    expect(progressPath(dir, a)).not.toBe(progressPath(dir, filtered));
    expect(await readProgress(progressPath(dir, a), a)).toBeUndefined();
    const progress = { doneDays: ['2024-03-01'], splitDays: { '2024-03-02': [0, 1] } };
    await writeProgress(progressPath(dir, a), a, progress);
    expect(await readProgress(progressPath(dir, a), a)).toEqual(progress);
    await expect(readProgress(progressPath(dir, a), b)).rejects.toThrow(/belongs to another backfill/);
    writeFileSync(progressPath(dir, b), '{"version":1,');
    const error = await readProgress(progressPath(dir, b), b).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CollectorError);
    expect((error as CollectorError).hint).toContain('remove it');
  });
});
