/**
 * `npm run bench`: the figures of BENCHMARKS.md, each a ratio or rate measured side by side in this run
 * (the machine may be shared and noisy), medians of at least 5 runs. Progress goes to stderr; the table
 * and the Markdown rows for BENCHMARKS.md to stdout. Exit code 1 when a target does not hold.
 *
 * Settings (environment): BENCH_RUNS (runs per median, default 7, at least 5), BENCH_DELAY_MS (the
 * round-trip delay D, default 200), BENCH_ONLY (e.g. `1,3`: only those figures; 4 and 5 come together).
 */
import os from 'node:os';
import { loadReplay, REPLAY_FILE, replayFileAvailable } from '../test/support/replay-file.js';
import { assertBuilt } from './bench/collect-cli.js';
import { measureCore } from './bench/core-throughput.js';
import { recordArrivals } from './bench/critical-path.js';
import { flatMemoryRows } from './bench/flat-memory.js';
import { assertGnuTime } from './bench/measure-child.js';
import { replayThroughputRows, runReplay } from './bench/replay-throughput.js';
import { startRig } from './bench/rig.js';
import { measureRoundTrips } from './bench/round-trips.js';
import { buildScenario } from './bench/scenario.js';
import { measureStartup } from './bench/startup.js';
import { fmt, type Row, renderMarkdown, renderTable } from './bench/stats.js';

function setting(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number ≥ ${min}`);
  return value;
}

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const memGb = os.totalmem() / 1024 ** 3;
  return `${os.availableParallelism()} × ${cpu}, ${fmt(memGb)} GB RAM, ${os.type()} ${os.release()}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

async function main(): Promise<void> {
  const runs = setting('BENCH_RUNS', 7, 5);
  const delayMs = setting('BENCH_DELAY_MS', 200, 20);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  assertGnuTime();
  assertBuilt();
  if (!replayFileAvailable()) throw new Error(`the recorded responses are needed: ${REPLAY_FILE} is missing`);
  const started = performance.now();
  const loadAtStart = os.loadavg();
  const replay = await loadReplay();
  const scenario = buildScenario(replay);
  log(
    `response ${scenario.responseIndex} of the recorded file; new events for the round trips: ${scenario.newIds.length} on ${scenario.dates.join(' and ')}`,
  );

  const only = (process.env.BENCH_ONLY ?? '1,2,3,4,5').split(',').map((s) => s.trim());
  const rows: Row[] = [];
  if (only.includes('3')) {
    log('3. core throughput');
    rows.push(...measureCore(replay, scenario, { runs, log }));
  }
  if (only.includes('1') || only.includes('2')) {
    const rig = await startRig();
    try {
      const recorder = recordArrivals(rig);
      if (only.includes('2')) {
        log('2. start-up');
        rows.push(...(await measureStartup(rig, scenario, { runs, log })));
      }
      if (only.includes('1')) {
        log(`1. round trips (D = ${delayMs} ms)`);
        rows.push(...(await measureRoundTrips(rig, scenario, recorder, { runs, delayMs, log })));
      }
    } finally {
      await rig.close();
    }
  }
  if (only.includes('4') || only.includes('5')) {
    log('4, 5. replay of the whole file (about two minutes)');
    const replayRun = await runReplay(replay);
    rows.push(...replayThroughputRows(replayRun), ...flatMemoryRows(replayRun));
  }
  rows.sort((a, b) => a.group.localeCompare(b.group));

  const failed = rows.filter((r) => r.max !== undefined && r.value > r.max);
  const checked = rows.filter((r) => r.max !== undefined).length;
  const load = (avg: number[]) => avg.map((x) => fmt(x)).join(' / ');
  const out = [
    `Machine: ${machine()}`,
    `Load average (1/5/15 min) at the start ${load(loadAtStart)}, at the end ${load(os.loadavg())}`,
    `Bench took ${fmt((performance.now() - started) / 1000)} s; ${checked - failed.length} of ${checked} targets hold.`,
    '',
    renderTable(rows),
    '',
    'Rows for BENCHMARKS.md:',
    '',
    renderMarkdown(rows),
    '',
  ];
  process.stdout.write(out.join('\n'));
  if (failed.length > 0) process.exitCode = 1;
}

await main();
