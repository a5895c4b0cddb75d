/**
 * The API's rules hold across processes on one host: the pacing state in the state directory spaces
 * the calls of concurrent runs and refuses a call that would break the hourly budget. Intervals are
 * shortened through the settings (allowed only for a loopback API), so no test waits 10 s.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localEnv, runCli, summaryLine, tempDir } from './support/cli.js';
import { type FeedTestServer, startFeedServer } from './support/feed-server.js';
import { syntheticEvent } from './support/store-fixtures.js';

let feed: FeedTestServer;
const temp = tempDir('polisen-pacing-');

beforeAll(async () => {
  feed = await startFeedServer();
  feed.setBody(JSON.stringify([syntheticEvent(9001, '2024-09-01 12:00:00 +02:00')]));
});
afterAll(async () => {
  await feed.close();
  temp.cleanup();
});

describe('pacing across processes', () => {
  it('spaces the API calls of two runs started at once', async () => {
    const dir = path.join(temp.dir, 'spacing');
    const env = (prefix: string) =>
      localEnv(feed.url, dir, {
        POLISEN_PACING: 'on',
        POLISEN_MIN_INTERVAL_MS: '800',
        COLLECTOR_PREFIX: prefix,
      });
    const before = feed.requests.length;
    // Different store prefixes, so the host's run lock does not serialise them; one state dir, so one pacing log.
    const runs = await Promise.all([runCli(['collect'], env('a')), runCli(['collect'], env('b'))]);
    for (const run of runs) expect(run.code, run.stdout + run.stderr).toBe(0);
    const times = feed.requests.slice(before).map((r) => r.at);
    expect(times).toHaveLength(2);
    // As the feed server saw them: the API's rule is about arrivals, whatever each process did in between.
    expect(Math.abs(times[1]! - times[0]!)).toBeGreaterThanOrEqual(800);
  });

  it('paces a retry like any other call', async () => {
    // The first retry's backoff is about 1 s; the interval here is longer, so only pacing can space them.
    const dir = path.join(temp.dir, 'retry');
    const env = localEnv(feed.url, dir, { POLISEN_PACING: 'on', POLISEN_MIN_INTERVAL_MS: '1800' });
    const before = feed.requests.length;
    feed.fault('status', 1, { status: 503 });
    const run = await runCli(['collect'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const times = feed.requests.slice(before).map((r) => r.at);
    expect(times).toHaveLength(2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1800);
  });

  /** An hourly budget of one call, and no wait between calls: the second call has no room. */
  const ONE_CALL_AN_HOUR = {
    POLISEN_PACING: 'on',
    POLISEN_MIN_INTERVAL_MS: '1',
    POLISEN_MAX_CALLS_PER_HOUR: '1',
  };

  it('ends a retry the hourly budget has no room for, without calling again', async () => {
    const dir = path.join(temp.dir, 'retry-budget');
    const env = localEnv(feed.url, dir, ONE_CALL_AN_HOUR);
    const before = feed.requests.length;
    feed.fault('status', 1, { status: 503 });
    const run = await runCli(['collect'], env);
    expect(run.code).toBe(1);
    expect(summaryLine(run)).toMatchObject({ outcome: 'failed', code: 'E_PACING_BUDGET' });
    expect(feed.requests.length - before).toBe(1);
  });

  it('refuses a call that would break the hourly budget, without calling', async () => {
    const dir = path.join(temp.dir, 'budget');
    const env = localEnv(feed.url, dir, ONE_CALL_AN_HOUR);
    expect((await runCli(['collect'], env)).code).toBe(0);
    const before = feed.requests.length;
    const second = await runCli(['collect'], env);
    expect(second.code).toBe(1);
    expect(summaryLine(second)).toMatchObject({ outcome: 'failed', code: 'E_PACING_BUDGET' });
    expect(feed.requests.length).toBe(before);
  });

  it('does not let settings loosen the rules for the real API', async () => {
    const result = await runCli(
      ['collect'],
      localEnv('https://polisen.se/api/events', path.join(temp.dir, 'rules'), {
        POLISEN_MIN_INTERVAL_MS: '100',
      }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/POLISEN_MIN_INTERVAL_MS=100 would break the API's published rules/);
  });
});
