import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type RunMetrics,
  readCounters,
  readCountersFromFile,
  renderMetrics,
  writeMetricsFile,
} from '../src/ops/metrics-file.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'polisen-metrics-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** An independent reader of the text format: samples by series, and the TYPE of each family. */
function parseExposition(text: string) {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const helps = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') types.set(meta[2] ?? '', meta[3] ?? '');
      else helps.add(meta[2] ?? '');
      continue;
    }
    const sample = /^([a-z_]+)(\{[a-z_]+="[a-z_]+"\})? (\S+)$/.exec(line);
    if (!sample) throw new Error(`not a sample line: ${line}`);
    const family = sample[1] ?? '';
    if (!types.has(family) || !helps.has(family)) throw new Error(`sample before its HELP/TYPE: ${line}`);
    samples.set(`${family}${sample[2] ?? ''}`, Number(sample[3]));
  }
  return { samples, types };
}

const firstRun: RunMetrics = {
  finishedAtMs: 1_709_294_400_250,
  success: true,
  lastSuccessAtMs: 1_709_294_400_250,
  durationsMs: { fetch: 812, read_metadata: 95, write_objects: 340, write_metadata: 60, total: 1312 },
  events: { fetched: 500, new: 12, updated: 1, quarantined: 0, already_seen: 487 },
  errors: {},
  gaps: 0,
  seenIds: 20_000,
  storedIds: 19_990,
  responseBytes: 415_337,
};

const failedRun: RunMetrics = {
  finishedAtMs: 1_709_294_700_000,
  success: false,
  lastSuccessAtMs: 1_709_294_400_250,
  durationsMs: { fetch: 5000, total: 5003 },
  events: {},
  errors: { fetch: 1 },
  gaps: 1,
};

describe('renderMetrics', () => {
  it('writes every family with HELP and TYPE, in base units', () => {
    const { samples, types } = parseExposition(renderMetrics(firstRun, {}));
    expect(samples.get('polisen_collector_last_success_timestamp_seconds')).toBe(1_709_294_400.25);
    expect(samples.get('polisen_collector_last_run_timestamp_seconds')).toBe(1_709_294_400.25);
    expect(samples.get('polisen_collector_last_run_success')).toBe(1);
    expect(samples.get('polisen_collector_run_duration_seconds{phase="fetch"}')).toBe(0.812);
    expect(samples.get('polisen_collector_run_duration_seconds{phase="total"}')).toBe(1.312);
    expect(samples.get('polisen_collector_events_total{result="new"}')).toBe(12);
    expect(samples.get('polisen_collector_events_total{result="already_seen"}')).toBe(487);
    expect(samples.get('polisen_collector_errors_total{phase="fetch"}')).toBe(0);
    expect(samples.get('polisen_collector_runs_total{outcome="success"}')).toBe(1);
    expect(samples.get('polisen_collector_runs_total{outcome="failed"}')).toBe(0);
    expect(samples.get('polisen_collector_gaps_total')).toBe(0);
    expect(samples.get('polisen_collector_seen_ids')).toBe(20_000);
    expect(samples.get('polisen_collector_stored_ids')).toBe(19_990);
    expect(samples.get('polisen_collector_response_bytes')).toBe(415_337);
    for (const [family, type] of types) expect(type).toBe(family.endsWith('_total') ? 'counter' : 'gauge');
  });

  it('leaves out what a run did not reach or never had', () => {
    const { samples } = parseExposition(renderMetrics({ ...failedRun, lastSuccessAtMs: undefined }, {}));
    expect(samples.has('polisen_collector_last_success_timestamp_seconds')).toBe(false);
    expect(samples.has('polisen_collector_run_duration_seconds{phase="write_objects"}')).toBe(false);
    expect(samples.has('polisen_collector_seen_ids')).toBe(false);
    expect(samples.get('polisen_collector_last_run_success')).toBe(0);
  });

  it('continues the counters of the previous file across runs', async () => {
    const path = join(await tempDir(), 'polisen_collector.prom');
    expect(await readCountersFromFile(path)).toEqual({});
    await writeMetricsFile(path, renderMetrics(firstRun, await readCountersFromFile(path)));
    await writeMetricsFile(path, renderMetrics(failedRun, await readCountersFromFile(path)));
    await writeMetricsFile(path, renderMetrics(firstRun, await readCountersFromFile(path)));
    const { samples } = parseExposition(await readFile(path, 'utf8'));
    expect(samples.get('polisen_collector_events_total{result="new"}')).toBe(24);
    expect(samples.get('polisen_collector_events_total{result="fetched"}')).toBe(1000);
    expect(samples.get('polisen_collector_errors_total{phase="fetch"}')).toBe(1);
    expect(samples.get('polisen_collector_runs_total{outcome="success"}')).toBe(2);
    expect(samples.get('polisen_collector_runs_total{outcome="failed"}')).toBe(1);
    expect(samples.get('polisen_collector_gaps_total')).toBe(1);
    // Gauges are the last run's, not sums.
    expect(samples.get('polisen_collector_response_bytes')).toBe(415_337);
    expect(samples.get('polisen_collector_run_duration_seconds{phase="fetch"}')).toBe(0.812);
  });
});

describe('readCounters', () => {
  it('keeps only finite *_total samples, keyed with sorted labels', () => {
    const text = [
      '# HELP x_total a counter',
      '# TYPE x_total counter',
      'x_total{b="2",a="1"} 7',
      'x_total 3 1709294400000',
      'y_total NaN',
      'some_gauge 5',
      'broken_total{a="1" 4',
      '',
    ].join('\n');
    expect(readCounters(text)).toEqual({ 'x_total{a="1",b="2"}': 7, x_total: 3 });
  });
});

describe('writeMetricsFile', () => {
  it('leaves only the complete file, mode 0644 whatever the umask', async () => {
    const dir = await tempDir();
    const path = join(dir, 'polisen_collector.prom');
    const text = renderMetrics(firstRun, {});
    const previousUmask = process.umask(0o077);
    try {
      await writeMetricsFile(path, text);
    } finally {
      process.umask(previousUmask);
    }
    expect(await readdir(dir)).toEqual(['polisen_collector.prom']);
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(await readFile(path, 'utf8')).toBe(text);
  });

  it('fails with E_CONFIG when the directory does not exist', async () => {
    const path = join(await tempDir(), 'missing', 'x.prom');
    await expect(writeMetricsFile(path, 'x 1\n')).rejects.toMatchObject({ code: 'E_CONFIG' });
  });

  it('readers never see a torn file, nor does a writer killed mid-write leave one', async () => {
    const dir = await tempDir();
    const path = join(dir, 'polisen_collector.prom');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/atomic-writer-child.ts', path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', () => reject(new Error('writer exited early')));
    });
    // Read while the child keeps replacing the file, as node_exporter would.
    const versionsSeen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const text = await readFile(path, 'utf8');
      const version = /^# version (\d+)\n/.exec(text)?.[1] ?? 'none';
      expect(text.endsWith(`# end ${version}\n`)).toBe(true);
      versionsSeen.add(version);
      await delay(5);
    }
    expect(versionsSeen.size).toBeGreaterThan(1);
    child.kill('SIGKILL');
    await exited;

    const text = await readFile(path, 'utf8');
    const version = /^# version (\d+)\n/.exec(text)?.[1];
    expect(version).toBeDefined();
    expect(text.endsWith(`# end ${version}\n`)).toBe(true);
    expect(Number(version)).toBeGreaterThan(1);
    // At most the one temp file that was being written; never a second *.prom.
    expect((await readdir(dir)).filter((name) => name.endsWith('.prom'))).toEqual(['polisen_collector.prom']);
  });
});
