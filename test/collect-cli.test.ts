/**
 * The foundation end to end: the built CLI, as cron runs it, against the feed test server and a
 * local directory store.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { localEnv, runCli, summaryLine, tempDir } from './support/cli.js';
import { type FeedTestServer, MALFORMED_BODY, startFeedServer } from './support/feed-server.js';
import { loadReplay, REPLAY_SKIP_REASON, replayFileAvailable, responseBody } from './support/replay-file.js';
import { census, duplicates, localObjects } from './support/store-contents.js';

let feed: FeedTestServer;
const cleanups: (() => void)[] = [];

function workDir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

function event(id: number, datetime: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    datetime,
    name: `${datetime.slice(0, 10)}, Stöld, Västerås`,
    summary: 'En cykel stals från ett förråd på Östermalm.',
    url: `/aktuellt/handelser/x/${id}/`,
    type: 'Stöld',
    location: { name: 'Västerås', gps: '59.609901,16.544809' },
    ...extra,
  };
}

beforeAll(async () => {
  feed = await startFeedServer();
});
afterAll(async () => {
  await feed.close();
});
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('collect on a local store', () => {
  it('stores every event once, in the directory of its own date, with Python-compatible metadata', async () => {
    const dir = workDir();
    const events = [
      event(103, '2024-01-01 0:00:01 +01:00'),
      event(102, '2023-12-31 23:59:59 +01:00'),
      event(101, '2023-12-31 9:05:01 +01:00'),
      event(100, '2023-12-30 10:00:00 +01:00'),
    ];
    feed.setBody(JSON.stringify(events));
    const first = await runCli(['collect'], localEnv(feed.url, dir));
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(summaryLine(first)).toMatchObject({ outcome: 'success', new: 4, alreadySeen: 0, objects: 3 });

    const objects = localObjects(path.join(dir, 'store'));
    const names = [...objects.keys()].sort();
    expect(names.filter((n) => n.startsWith('events/')).map((n) => n.replace(/-\d+\.jsonl$/, ''))).toEqual([
      'events/2023/12/30/events',
      'events/2023/12/31/events',
      'events/2024/01/01/events',
    ]);
    const dec31 = [...objects].find(([n]) => n.startsWith('events/2023/12/31/'))![1].toString('utf8');
    // One raw object per line, feed order, UTF-8 with å ä ö unescaped, newline-terminated.
    expect(dec31).toBe(`${JSON.stringify(events[1])}\n${JSON.stringify(events[2])}\n`);
    expect(dec31).toContain('Västerås');
    const metadata = JSON.parse(objects.get('metadata/last_seen.json')!.toString('utf8'));
    expect(metadata.seen_ids).toEqual([103, 102, 101, 100]);
    expect(metadata.total_tracked).toBe(4);
    expect(Number.isNaN(Date.parse(metadata.last_updated))).toBe(false);

    // The same response again: nothing new, nothing rewritten.
    const before = localObjects(path.join(dir, 'store'));
    const second = await runCli(['collect'], localEnv(feed.url, dir));
    expect(second.code).toBe(0);
    expect(summaryLine(second)).toMatchObject({ outcome: 'success', new: 0, alreadySeen: 4, objects: 0 });
    expect(localObjects(path.join(dir, 'store'))).toEqual(before);
  });

  it('fails cleanly on an empty body: exit 1, one error line, the store untouched', async () => {
    const dir = workDir();
    feed.setBody(JSON.stringify([event(200, '2024-02-01 12:00:00 +01:00')]));
    expect((await runCli(['collect'], localEnv(feed.url, dir))).code).toBe(0);
    const before = localObjects(path.join(dir, 'store'));
    feed.fault('empty');
    const result = await runCli(['collect'], localEnv(feed.url, dir));
    expect(result.code).toBe(1);
    const errors = result.lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(String(errors[0]!.msg)).toMatch(/empty body.*E_FEED_BODY/);
    expect(localObjects(path.join(dir, 'store'))).toEqual(before);
  });

  it('exits 2 on a 404 (permanent) and 1 on a body that is not an array, writing nothing', async () => {
    const dir = workDir();
    feed.fault('status', 1, { status: 404 });
    const notFound = await runCli(['collect'], localEnv(feed.url, dir));
    expect(notFound.code).toBe(2);
    expect(String(summaryLine(notFound)!.msg)).toMatch(/404/);
    feed.fault('notArray');
    const notArray = await runCli(['collect'], localEnv(feed.url, dir));
    expect(notArray.code).toBe(1);
    expect(existsSync(path.join(dir, 'store'))).toBe(false);
  });

  it('--dry-run prints what would be written and writes nothing', async () => {
    const dir = workDir();
    feed.setBody(
      JSON.stringify([event(300, '2024-03-01 8:00:00 +01:00'), event(301, '2024-03-02 8:00:00 +01:00')]),
    );
    const result = await runCli(['collect', '--dry-run'], localEnv(feed.url, dir));
    expect(result.code).toBe(0);
    const wouldWrite = result.lines.filter((l) => String(l.msg).startsWith('would write'));
    expect(wouldWrite.map((l) => String(l.object).replace(/-\d+\.jsonl$/, ''))).toEqual([
      'events/2024/03/01/events',
      'events/2024/03/02/events',
    ]);
    expect(summaryLine(result)).toMatchObject({ outcome: 'dry-run', new: 2 });
    expect(existsSync(path.join(dir, 'store'))).toBe(false);
  });

  it('quarantines malformed elements once, with the reason, and stores the rest', async () => {
    const dir = workDir();
    feed.setBody(MALFORMED_BODY);
    const elements = JSON.parse(MALFORMED_BODY) as Record<string, unknown>[];
    const first = await runCli(['collect'], localEnv(feed.url, dir));
    expect(first.code).toBe(0);
    const s = summaryLine(first)!;
    expect(Number(s.quarantined)).toBeGreaterThan(0);
    expect(Number(s.new) + Number(s.quarantined)).toBe(elements.length);
    const c = census(localObjects(path.join(dir, 'store')));
    expect(c.quarantineLines).toBe(Number(s.quarantined));
    expect(c.events.size).toBe(Number(s.new));
    const again = await runCli(['collect'], localEnv(feed.url, dir));
    expect(summaryLine(again)).toMatchObject({ quarantined: 0, quarantineRepeated: Number(s.quarantined) });
    expect(census(localObjects(path.join(dir, 'store'))).quarantineLines).toBe(Number(s.quarantined));
  });

  it('stores an edit of a stored event once in updates/, and none for a mere key reorder', async () => {
    const dir = workDir();
    const original = event(400, '2024-04-01 10:00:00 +02:00', { type: 'Misshandel, grov' });
    const other = event(401, '2024-04-01 11:00:00 +02:00');
    feed.setBody(JSON.stringify([other, original]));
    expect((await runCli(['collect'], localEnv(feed.url, dir))).code).toBe(0);
    const edited = { ...original, type: 'Mord/dråp' };
    const reordered = Object.fromEntries(Object.entries(other).reverse());
    feed.setBody(JSON.stringify([reordered, edited]));
    const run = await runCli(['collect'], localEnv(feed.url, dir));
    expect(summaryLine(run)).toMatchObject({ new: 0, updated: 1 });
    feed.setBody(JSON.stringify([reordered, edited]));
    expect(summaryLine(await runCli(['collect'], localEnv(feed.url, dir)))).toMatchObject({ updated: 0 });
    const c = census(localObjects(path.join(dir, 'store')));
    expect(c.updates.get(400)).toEqual([JSON.stringify(edited)]);
    expect(c.updates.has(401)).toBe(false);
    expect(c.events.get(400)).toBe(1);
  });

  it('continues a bucket written by the Python collector and upgrades its metadata', async () => {
    const dir = workDir();
    const store = path.join(dir, 'store');
    mkdirSync(path.join(store, 'metadata'), { recursive: true });
    writeFileSync(
      path.join(store, 'metadata/last_seen.json'),
      JSON.stringify({ seen_ids: [502, 501], last_updated: '2024-05-01T00:00:00', total_tracked: 2 }),
    );
    feed.setBody(
      JSON.stringify([
        event(503, '2024-05-02 10:00:00 +02:00'),
        event(502, '2024-05-01 10:00:00 +02:00'),
        event(501, '2024-05-01 9:00:00 +02:00'),
      ]),
    );
    const run = await runCli(['collect'], localEnv(feed.url, dir));
    expect(summaryLine(run)).toMatchObject({ new: 1, alreadySeen: 2 });
    const metadata = JSON.parse(readFileSync(path.join(store, 'metadata/last_seen.json'), 'utf8'));
    expect(metadata.seen_ids).toEqual([503, 502, 501]);
    expect(metadata.format).toBe('polisen-collector/3');
    expect(census(localObjects(store)).events).toEqual(new Map([[503, 1]]));
  });

  it('rejects bad settings at start with one line per problem and exit 2', async () => {
    const dir = workDir();
    const result = await runCli(
      ['collect'],
      localEnv('http://example.org/api/events', dir, { MAX_SEEN_IDS: '10', LOG_LEVEL: 'loud' }),
    );
    expect(result.code).toBe(2);
    const problems = result.stderr.split('\n').filter((l) => l.includes('configuration error'));
    expect(problems).toHaveLength(3);
    expect(result.stderr).toMatch(/HTTPS/);
    expect(existsSync(path.join(dir, 'store'))).toBe(false);
    const usage = await runCli(['collect', '--no-such-flag'], localEnv(feed.url, dir));
    expect(usage.code).toBe(2);
  });

  it('warns about a gap with the time range at risk and the backfill command to run', async () => {
    const dir = workDir();
    feed.setBody(JSON.stringify([event(600, '2024-06-01 10:00:00 +02:00')]));
    expect((await runCli(['collect'], localEnv(feed.url, dir))).code).toBe(0);
    // Ten days later the feed shares no event with the store.
    feed.setBody(
      JSON.stringify([event(700, '2024-06-12 10:00:00 +02:00'), event(690, '2024-06-11 8:00:00 +02:00')]),
    );
    const result = await runCli(['collect'], localEnv(feed.url, dir));
    expect(result.code).toBe(0);
    expect(summaryLine(result)).toMatchObject({ gaps: 1, new: 2 });
    const warning = result.lines.find((l) => String(l.msg).startsWith('gap:'));
    expect(warning).toMatchObject({
      gapFrom: '2024-06-01T08:00:00.000Z',
      gapTo: '2024-06-11T06:00:00.000Z',
      backfill: 'polisen-collector backfill --from 2024-06-01 --to 2024-06-11',
    });
  });

  it('passes --location and --type to the API and keeps a filtered collector under its store prefix', async () => {
    const dir = workDir();
    feed.setBody(JSON.stringify([event(800, '2024-07-01 10:00:00 +02:00')]));
    const before = feed.requests.length;
    const result = await runCli(
      ['collect', '--location', 'Stockholm;Uppsala län', '--type', 'Rån', '--store-prefix', 'stockholm'],
      localEnv(feed.url, dir),
    );
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const url = new URL(feed.requests[before]!.url, 'http://x');
    expect(url.searchParams.get('locationname')).toBe('Stockholm;Uppsala län');
    expect(url.searchParams.get('type')).toBe('Rån');
    const names = [...localObjects(path.join(dir, 'store')).keys()];
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => n.startsWith('stockholm/'))).toBe(true);
    expect(names).toContain('stockholm/metadata/last_seen.json');
  });

  it('answers --version and --help', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const version = await runCli(['--version'], {});
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = await runCli(['--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/collect/);
    expect(help.stdout).toMatch(/Exit codes/);
  });

  it.skipIf(!replayFileAvailable())('stores a real recorded response exactly once per id', async () => {
    const replay = await loadReplay();
    const dir = workDir();
    const responses = replay.responses.filter((r) => r.versions).slice(0, 3);
    const expected = new Set<number>();
    for (const response of responses) {
      for (const v of response.versions!) expected.add((replay.versions[v] as { id: number }).id);
      feed.setBody(responseBody(replay, response));
      const result = await runCli(['collect'], localEnv(feed.url, dir));
      expect(result.code, result.stdout).toBe(0);
    }
    const c = census(localObjects(path.join(dir, 'store')));
    expect(new Set(c.events.keys())).toEqual(expected);
    expect(duplicates(c)).toEqual([]);
    expect(c.misplaced).toBe(0);
  });
  if (!replayFileAvailable()) it.skip(REPLAY_SKIP_REASON, () => {});
});
