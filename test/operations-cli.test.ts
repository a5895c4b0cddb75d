/**
 * Operations from the command line: the host's run lock, `health`, the Prometheus textfile and the
 * healthchecks.io pings, around real collect runs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCounters } from '../src/ops/metrics-file.js';
import { acquireRunLock, isLockHeld } from '../src/ops/run-lock.js';
import { localEnv, runCli, summaryLine, tempDir } from './support/cli.js';
import { type FeedTestServer, startFeedServer } from './support/feed-server.js';
import { type PingServer, startPingServer } from './support/ping-server.js';
import { syntheticEvent } from './support/store-fixtures.js';

let feed: FeedTestServer;
let ping: PingServer;
const temp = tempDir('polisen-ops-');

beforeAll(async () => {
  [feed, ping] = await Promise.all([startFeedServer(), startPingServer()]);
});
afterAll(async () => {
  await Promise.all([feed.close(), ping.close()]);
  temp.cleanup();
});

describe('operations around collect', () => {
  it('a second run on the host exits 0 with one line while the lock is held (1 with --fail-if-locked)', async () => {
    const dir = path.join(temp.dir, 'lock');
    const env = localEnv(feed.url, dir);
    feed.setBody(JSON.stringify([syntheticEvent(11, '2024-10-01 10:00:00 +02:00')]));
    const lock = await acquireRunLock(env.COLLECTOR_STATE_DIR!);
    expect(isLockHeld(lock)).toBe(false);
    try {
      const before = feed.requests.length;
      const skipped = await runCli(['collect'], env);
      expect(skipped.code).toBe(0);
      expect(skipped.lines).toHaveLength(1);
      expect(String(skipped.lines[0]!.msg)).toMatch(/another run is in progress/);
      expect((await runCli(['collect', '--fail-if-locked'], env)).code).toBe(1);
      expect(feed.requests.length).toBe(before);
    } finally {
      if (!isLockHeld(lock)) await lock.release();
    }
    expect((await runCli(['collect'], env)).code).toBe(0);
  });

  it('health follows the last run: none, success, failure, stale', async () => {
    const dir = path.join(temp.dir, 'health');
    const env = localEnv(feed.url, dir);
    const none = await runCli(['health'], env);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/no run recorded/);
    feed.setBody(JSON.stringify([syntheticEvent(21, '2024-10-02 10:00:00 +02:00')]));
    expect((await runCli(['collect'], env)).code).toBe(0);
    const fresh = await runCli(['health', '--max-age', '45m'], env);
    expect(fresh.code, fresh.stdout).toBe(0);
    expect(fresh.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1100));
    const stale = await runCli(['health', '--max-age', '1s'], env);
    expect(stale.code).toBe(1);
    feed.fault('empty');
    expect((await runCli(['collect'], env)).code).toBe(1);
    const failed = await runCli(['health'], env);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/fail/i);
    expect((await runCli(['health', '--max-age', 'soon'], env)).code).toBe(2);
  });

  it('writes the Prometheus textfile after each run and carries counters over', async () => {
    const dir = path.join(temp.dir, 'metrics');
    const file = path.join(dir, 'polisen.prom');
    const env = localEnv(feed.url, dir, { METRICS_FILE: file });
    feed.setBody(
      JSON.stringify([
        syntheticEvent(31, '2024-10-03 10:00:00 +02:00'),
        syntheticEvent(30, '2024-10-03 9:00:00 +02:00'),
      ]),
    );
    expect((await runCli(['collect'], env)).code).toBe(0);
    feed.setBody(
      JSON.stringify([
        syntheticEvent(32, '2024-10-03 11:00:00 +02:00'),
        syntheticEvent(31, '2024-10-03 10:00:00 +02:00'),
      ]),
    );
    expect((await runCli(['collect'], env)).code).toBe(0);
    feed.fault('empty');
    expect((await runCli(['collect'], env)).code).toBe(1);
    const text = readFileSync(file, 'utf8');
    const counters = readCounters(text);
    expect(counters['polisen_collector_events_total{result="new"}']).toBe(3);
    expect(counters['polisen_collector_events_total{result="fetched"}']).toBe(4);
    expect(counters['polisen_collector_runs_total{outcome="success"}']).toBe(2);
    expect(counters['polisen_collector_runs_total{outcome="failed"}']).toBe(1);
    expect(counters['polisen_collector_errors_total{phase="fetch"}']).toBe(1);
    expect(text).toMatch(/^polisen_collector_last_run_success 0$/m);
    expect(text).toMatch(/^# TYPE polisen_collector_last_success_timestamp_seconds gauge$/m);
  });

  it('pings start then success, and start then fail; a dead ping URL never fails the run', async () => {
    const dir = path.join(temp.dir, 'ping');
    const env = localEnv(feed.url, dir, { HEALTHCHECK_URL: `${ping.origin}/check-uuid` });
    feed.setBody(JSON.stringify([syntheticEvent(41, '2024-10-04 10:00:00 +02:00')]));
    const before = ping.requests.length;
    expect((await runCli(['collect'], env)).code).toBe(0);
    feed.fault('empty');
    expect((await runCli(['collect'], env)).code).toBe(1);
    expect(ping.requests.slice(before).map((r) => r.path)).toEqual([
      '/check-uuid/start',
      '/check-uuid',
      '/check-uuid/start',
      '/check-uuid/fail',
    ]);
    const dead = await runCli(['collect'], { ...env, HEALTHCHECK_URL: 'http://127.0.0.1:9/check' });
    expect(dead.code).toBe(0);
    expect(summaryLine(dead)).toMatchObject({ outcome: 'success' });
  });
});
