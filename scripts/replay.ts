/**
 * Replays recorded responses of the Polisen API through the real collector, one `collect` process per
 * response (as cron runs it), on a fresh local store; then audits the store and compares it with what was
 * served. The seed (Python) algorithm runs in-process over the same slice, for comparison.
 *
 *   npm run replay -- FILE [--from I] [--count N] [--store DIR] [--keep]
 *
 * Prints one JSON object on stdout (progress goes to stderr). Exit 0 when the collector stored every served
 * id exactly once, in its date directory, invented no update and every run exited as expected; else 1;
 * 2 for bad arguments.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AuditReport } from '../src/core/audit-report.js';
import { canonicalJson } from '../src/core/fingerprint.js';
import { auditStore } from '../src/run/audit-store.js';
import { LocalStore } from '../src/store/local-store.js';
import { assertBuilt, PROJECT_ROOT } from '../test/support/cli.js';
import { startFeedServer } from '../test/support/feed-server.js';
import {
  loadReplay,
  REPLAY_FILE,
  type Replay,
  type ReplayResponse,
  responseBody,
} from '../test/support/replay-file.js';
import { seedCollect } from '../test/support/seed-collector.js';

const EXAMPLES = 10;
const PROGRESS_EVERY = 100;

interface Args {
  file: string;
  from: number;
  count: number | undefined;
  store: string | undefined;
  keep: boolean;
}

function usage(message: string): never {
  process.stderr.write(
    `replay: ${message}\nusage: npm run replay -- FILE [--from I] [--count N] [--store DIR] [--keep]\n`,
  );
  process.exit(2);
}

function parseCli(argv: string[]): Args {
  const OPTIONS = {
    from: { type: 'string' },
    count: { type: 'string' },
    store: { type: 'string' },
    keep: { type: 'boolean' },
  } as const;
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (error) {
    usage((error as Error).message);
  }
  const whole = (name: string, value: string | undefined, min: number): number | undefined => {
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < min) usage(`--${name} must be a whole number ≥ ${min}`);
    return Number(value);
  };
  if (parsed.positionals.length > 1) usage('one FILE only');
  return {
    file: path.resolve(parsed.positionals[0] ?? REPLAY_FILE),
    from: whole('from', parsed.values.from, 0) ?? 0,
    count: whole('count', parsed.values.count, 1),
    store: parsed.values.store === undefined ? undefined : path.resolve(parsed.values.store),
    keep: parsed.values.keep === true,
  };
}

/** What the slice served, independent of any collector. */
interface Served {
  ids: Set<number>;
  /** id → the response that first served it. */
  firstServed: Map<number, number>;
  /** `id\ncanonical content` → the responses that served that content as a change, in order. */
  changes: Map<string, number[]>;
  changeCount: number;
  nonArray: number;
}

function changeKey(id: number, event: unknown): string {
  return `${id}\n${canonicalJson(event)}`;
}

function analyse(replay: Replay, slice: ReplayResponse[]): Served {
  const served: Served = {
    ids: new Set(),
    firstServed: new Map(),
    changes: new Map(),
    changeCount: 0,
    nonArray: 0,
  };
  const last = new Map<number, string>();
  for (const response of slice) {
    if (response.versions === undefined) {
      served.nonArray++;
      continue;
    }
    const inResponse = new Set<number>();
    for (const v of response.versions) {
      const event = replay.versions[v] as { id?: unknown };
      const id = event.id;
      // Only the first element per id counts, as a collector keeps (validation quarantines a differing repeat).
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0 || inResponse.has(id)) continue;
      inResponse.add(id);
      served.ids.add(id);
      if (!served.firstServed.has(id)) served.firstServed.set(id, response.i);
      const content = canonicalJson(event);
      const previous = last.get(id);
      if (previous !== undefined && previous !== content) {
        const key = changeKey(id, event);
        served.changes.set(key, [...(served.changes.get(key) ?? []), response.i]);
        served.changeCount++;
      }
      last.set(id, content);
    }
  }
  return served;
}

interface RunTally {
  ok: number;
  failed: number;
  unexpected: { i: number; expected: number; code: number | null; signal: string | null; output: string }[];
  /** Object-name unix → the response whose run wrote it (to say which run wrote a wrong object). */
  runOfUnix: Map<number, number>;
  wallMs: number;
}

interface StoreFigures {
  runsOk: number;
  runsFailed: number;
  unexpectedExits: number;
  idsStored: number;
  duplicates: number;
  duplicateLines: number;
  missed: number;
  extra: number;
  misplaced: number;
  unparseable: number;
  updatesStored: number;
  updatesInvented: number;
  contentChangesNotStored: number;
  auditOk: boolean;
  auditProblems: string[];
  metadataBytes: number;
  wallMs: number;
  msPerRun: number;
  examples: Record<string, unknown[]>;
}

function objectUnix(name: string): number | undefined {
  const m = /-(\d+)\.jsonl$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Audits a store and compares it with what was served. */
async function measure(
  storeDir: string,
  served: Served,
  runs: RunTally,
  responses: number,
): Promise<StoreFigures> {
  const stored = new Set<number>();
  const pendingChanges = new Map([...served.changes].map(([k, v]) => [k, [...v]]));
  let updatesStored = 0;
  const invented: { id: number; object: string; run: number | undefined }[] = [];
  let inventedCount = 0;
  const runOf = (name: string): number | undefined => runs.runOfUnix.get(objectUnix(name) ?? -1);
  const report: AuditReport = await auditStore(new LocalStore(storeDir), {
    prefix: '',
    onObject: (name, body) => {
      const kind = name.startsWith('events/')
        ? 'events'
        : name.startsWith('updates/')
          ? 'updates'
          : undefined;
      if (kind === undefined) return;
      for (const line of body.split('\n')) {
        if (line === '') continue;
        let event: { id?: unknown };
        try {
          event = JSON.parse(line) as { id?: unknown };
        } catch {
          continue; // the audit reports it as unparseable
        }
        if (typeof event.id !== 'number') continue;
        if (kind === 'events') {
          stored.add(event.id);
          continue;
        }
        const matches = pendingChanges.get(changeKey(event.id, event));
        if (matches && matches.length > 0) {
          matches.shift();
          updatesStored++;
        } else {
          inventedCount++;
          if (invented.length < EXAMPLES) invented.push({ id: event.id, object: name, run: runOf(name) });
        }
      }
    },
  });
  const missed = [...served.ids].filter((id) => !stored.has(id));
  const extra = [...stored].filter((id) => !served.ids.has(id));
  const changesNotStored = [...pendingChanges].flatMap(([key, at]) =>
    at.map((i) => ({ id: Number(key.slice(0, key.indexOf('\n'))), servedAt: i })),
  );
  let metadataBytes = 0;
  try {
    metadataBytes = readFileSync(path.join(storeDir, 'metadata', 'last_seen.json')).length;
  } catch {
    // no metadata: nothing was ever stored
  }
  return {
    runsOk: runs.ok,
    runsFailed: runs.failed,
    unexpectedExits: runs.unexpected.length,
    idsStored: stored.size,
    duplicates: report.duplicates.count,
    duplicateLines: report.duplicates.extraLines,
    missed: missed.length,
    extra: extra.length,
    misplaced: report.misplaced.count,
    unparseable: report.unparseable.count,
    updatesStored,
    updatesInvented: inventedCount,
    contentChangesNotStored: changesNotStored.length,
    auditOk: report.ok,
    auditProblems: report.problems,
    metadataBytes,
    wallMs: Math.round(runs.wallMs),
    msPerRun: Math.round((runs.wallMs / Math.max(1, responses)) * 10) / 10,
    examples: {
      unexpectedExits: runs.unexpected.slice(0, EXAMPLES),
      duplicates: report.duplicates.examples.slice(0, EXAMPLES).map((d) => ({
        id: d.id,
        copies: d.copies,
        firstServedAt: served.firstServed.get(d.id),
        writtenByRuns: d.objects.slice(0, 5).map(runOf),
        objects: d.objects.slice(0, 3),
      })),
      missed: missed.slice(0, EXAMPLES).map((id) => ({ id, firstServedAt: served.firstServed.get(id) })),
      extra: extra.slice(0, EXAMPLES),
      misplaced: report.misplaced.examples.slice(0, EXAMPLES),
      updatesInvented: invented,
      contentChangesNotStored: changesNotStored.slice(0, EXAMPLES),
    },
  };
}

function progress(label: string, done: number, total: number, startedMs: number): void {
  if (done % PROGRESS_EVERY !== 0 && done !== total) return;
  const elapsed = performance.now() - startedMs;
  const etaS = Math.round(((elapsed / done) * (total - done)) / 1000);
  process.stderr.write(
    `replay: ${label} ${done}/${total} runs, ${Math.round(elapsed / done)} ms/run, ${etaS} s to go\n`,
  );
}

function lastObjectUnix(storeDir: string): number | undefined {
  try {
    const doc = JSON.parse(readFileSync(path.join(storeDir, 'metadata', 'last_seen.json'), 'utf8')) as {
      last_object_unix?: unknown;
    };
    return typeof doc.last_object_unix === 'number' ? doc.last_object_unix : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A private copy of the build, so that a rebuild of dist/ while a long replay runs (tsc rewrites files one by
 * one) cannot make some runs load half-old, half-new modules. Returns the copy's cli.js.
 */
function snapshotBuild(work: string): string {
  assertBuilt();
  const root = path.join(work, 'build');
  cpSync(path.join(PROJECT_ROOT, 'dist', 'src'), path.join(root, 'dist', 'src'), { recursive: true });
  cpSync(path.join(PROJECT_ROOT, 'package.json'), path.join(root, 'package.json'));
  symlinkSync(path.join(PROJECT_ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  return path.join(root, 'dist', 'src', 'cli.js');
}

/** One `collect` process, as cron runs it: exit code and the tail of its output. */
function collectOnce(
  cli: string,
  env: Record<string, string>,
): Promise<{ code: number | null; signal: string | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'collect'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (d: string): void => {
      output = (output + d).slice(-2000);
    };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

async function runCollector(
  cli: string,
  replay: Replay,
  slice: ReplayResponse[],
  storeDir: string,
  stateDir: string,
): Promise<RunTally> {
  const tally: RunTally = { ok: 0, failed: 0, unexpected: [], runOfUnix: new Map(), wallMs: 0 };
  const server = await startFeedServer();
  const env = {
    POLISEN_API_URL: server.url,
    COLLECTOR_STORE: storeDir,
    COLLECTOR_STATE_DIR: stateDir,
    POLISEN_PACING: 'off',
    API_CONTACT_EMAIL: 'replay@example.org',
    LOG_LEVEL: 'warn',
  };
  const started = performance.now();
  let previousUnix: number | undefined;
  try {
    for (const [k, response] of slice.entries()) {
      server.setBody(responseBody(replay, response));
      const result = await collectOnce(cli, env);
      const expected = response.versions === undefined ? 1 : 0;
      if (result.code === 0) tally.ok++;
      else tally.failed++;
      if (result.code !== expected) {
        tally.unexpected.push({
          i: response.i,
          expected,
          code: result.code,
          signal: result.signal,
          output: result.output.slice(-600),
        });
      }
      const unix = lastObjectUnix(storeDir);
      if (unix !== undefined && unix !== previousUnix) {
        // Objects of one run share its unix; a run that wrote nothing leaves last_object_unix as it was.
        tally.runOfUnix.set(unix, response.i);
        previousUnix = unix;
      }
      progress('collector', k + 1, slice.length, started);
    }
  } finally {
    await server.close();
  }
  tally.wallMs = performance.now() - started;
  return tally;
}

function runSeed(replay: Replay, slice: ReplayResponse[], storeDir: string): RunTally {
  const tally: RunTally = { ok: 0, failed: 0, unexpected: [], runOfUnix: new Map(), wallMs: 0 };
  const started = performance.now();
  let unix = 0;
  for (const response of slice) {
    // The recording time, made strictly increasing: the seed overwrites an object name reused in one second.
    unix = Math.max(Math.floor(Date.parse(response.at) / 1000), unix + 1);
    let events: unknown;
    try {
      events = JSON.parse(responseBody(replay, response));
    } catch {
      events = undefined;
    }
    const expected = response.versions === undefined ? 1 : 0;
    const code = Array.isArray(events) ? 0 : 1; // the Python collector failed on a body it could not read
    if (Array.isArray(events)) seedCollect(storeDir, events, unix);
    if (code === 0) tally.ok++;
    else tally.failed++;
    if (code !== expected) tally.unexpected.push({ i: response.i, expected, code, signal: null, output: '' });
    tally.runOfUnix.set(unix, response.i);
  }
  tally.wallMs = performance.now() - started;
  return tally;
}

async function main(): Promise<number> {
  const args = parseCli(process.argv.slice(2));
  const started = performance.now();
  let replay: Replay;
  try {
    replay = await loadReplay(args.file);
  } catch (error) {
    usage(`cannot read ${args.file}: ${(error as Error).message}`);
  }
  const slice = replay.responses.filter((r) => r.i >= args.from).slice(0, args.count);
  if (slice.length === 0)
    usage(`no responses from index ${args.from} (the file has ${replay.responses.length})`);
  if (args.store !== undefined) {
    let entries: string[] = [];
    try {
      entries = readdirSync(args.store);
    } catch {
      // missing: the collector creates it
    }
    if (entries.length > 0) usage(`--store ${args.store} must be a fresh (missing or empty) directory`);
  }

  const work = mkdtempSync(path.join(os.tmpdir(), 'polisen-replay-'));
  const storeDir = args.store ?? path.join(work, 'store');
  const seedDir = path.join(work, 'seed-store');
  try {
    const served = analyse(replay, slice);
    const cli = snapshotBuild(work);
    const collectorRuns = await runCollector(cli, replay, slice, storeDir, path.join(work, 'state'));
    const collector = await measure(storeDir, served, collectorRuns, slice.length);
    const seedRuns = runSeed(replay, slice, seedDir);
    const seed = await measure(seedDir, served, seedRuns, slice.length);
    const ok =
      collector.duplicates === 0 &&
      collector.missed === 0 &&
      collector.extra === 0 &&
      collector.misplaced === 0 &&
      collector.updatesInvented === 0 &&
      collector.unexpectedExits === 0;
    const output = {
      file: args.file,
      from: slice[0]!.i,
      to: slice.at(-1)!.i,
      responsesReplayed: slice.length,
      nonArrayResponses: served.nonArray,
      distinctIdsExpected: served.ids.size,
      contentChangesSeen: served.changeCount,
      collector,
      seed,
      ok,
      wallMs: Math.round(performance.now() - started),
      ...(args.keep ? { kept: { store: storeDir, seedStore: seedDir, work } } : {}),
      ...(!args.keep && args.store ? { kept: { store: storeDir } } : {}),
    };
    process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
    return ok ? 0 : 1;
  } finally {
    // The work directory holds the state, the seed store and (without --store) the collector's store.
    if (!args.keep) rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
