import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditReport } from '../src/core/audit-report.js';
import { createAuditAccumulator, HOLDERS_LISTED } from '../src/core/audit-report.js';
import { rangesFromIds } from '../src/core/id-ranges.js';
import { emptyLedger, withRecorded } from '../src/core/object-ledger.js';
import { emptySeenState, serializeSeenState } from '../src/core/seen-set.js';
import { auditStore } from '../src/run/audit-store.js';
import { LocalStore } from '../src/store/local-store.js';
import type { ObjectStore } from '../src/store/object-store.js';
import { type CliResult, localEnv, runCli, tempDir } from './support/cli.js';
import { type FeedTestServer, MALFORMED_BODY, startFeedServer } from './support/feed-server.js';
import { loadReplay, REPLAY_SKIP_REASON, replayFileAvailable, responseBody } from './support/replay-file.js';
import { seedCollect } from './support/seed-collector.js';

const available = replayFileAvailable();
if (!available) console.warn(REPLAY_SKIP_REASON);

const cleanups: (() => void)[] = [];
function freshDir(): string {
  const { dir, cleanup } = tempDir('polisen-audit-');
  cleanups.push(cleanup);
  return dir;
}
afterAll(() => {
  for (const cleanup of cleanups) cleanup();
});

function put(root: string, name: string, text: string): void {
  const file = path.join(root, ...name.split('/'));
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

function event(id: number, datetime: string, summary = `summary of ${id}`): Record<string, unknown> {
  return {
    id,
    datetime,
    name: `${datetime.slice(0, 10)}, Trafikolycka, Uppsala`,
    summary,
    url: `/aktuellt/handelser/${id}/`,
    type: 'Trafikolycka',
    location: { name: 'Uppsala', gps: '59.858564,17.638927' },
  };
}

const jsonl = (items: unknown[]): string => `${items.map((x) => JSON.stringify(x)).join('\n')}\n`;

/** Only the audit's view of the store: stdout must be exactly one JSON document. */
function parseJsonReport(result: CliResult): AuditReport & { store: string; only: string } {
  return JSON.parse(result.stdout) as AuditReport & { store: string; only: string };
}

describe('audit of a store written by the seed (Python) algorithm over recorded responses', () => {
  it.skipIf(!available)('finds exactly the ids the seed stored more than once', async () => {
    const replay = await loadReplay();
    const dir = freshDir();
    // A slice where the seed's 1,000-id window lets old events in, again and again.
    const slice = replay.responses.slice(5900, 6200);
    const written = new Map<number, number>();
    let unix = 0;
    for (const response of slice) {
      if (response.versions === undefined) continue;
      unix = Math.max(Math.floor(Date.parse(response.at) / 1000), unix + 1);
      const run = seedCollect(dir, JSON.parse(responseBody(replay, response)) as unknown[], unix);
      for (const id of run.written) written.set(id, (written.get(id) ?? 0) + 1);
    }
    const expectedDuplicates = new Map([...written].filter(([, times]) => times > 1));
    const expectedExtraLines = [...expectedDuplicates.values()].reduce((a, times) => a + times - 1, 0);
    expect(expectedDuplicates.size).toBeGreaterThan(0); // the slice must exercise the check

    const report = await auditStore(new LocalStore(dir), { prefix: '' });
    expect(report.ok).toBe(false);
    expect(report.events.distinctIds).toBe(written.size);
    expect(report.events.lines).toBe([...written.values()].reduce((a, b) => a + b, 0));
    expect(report.duplicates.count).toBe(expectedDuplicates.size);
    expect(report.duplicates.extraLines).toBe(expectedExtraLines);
    expect(report.duplicates.examples.length).toBe(Math.min(50, expectedDuplicates.size));
    for (const example of report.duplicates.examples) {
      expect(example.copies).toBe(expectedDuplicates.get(example.id));
      expect(example.objects).toHaveLength(Math.min(HOLDERS_LISTED, example.copies));
      for (const object of example.objects) {
        const lines = readFileSync(path.join(dir, object), 'utf8').trim().split('\n');
        expect(lines.some((line) => (JSON.parse(line) as { id: number }).id === example.id)).toBe(true);
      }
    }
    expect(report.misplaced.count).toBe(0);
    expect(report.unparseable.count).toBe(0);
    expect(report.metadata.format).toBe('python');
    expect(report.metadata.seenIds).toBe(1000);

    // The same through the CLI: exit 1, and the JSON says the same.
    const result = await runCli(['audit', '--json'], { COLLECTOR_STORE: dir });
    expect(result.code).toBe(1);
    const cli = parseJsonReport(result);
    expect(cli.duplicates.count).toBe(expectedDuplicates.size);
    expect(cli.duplicates.extraLines).toBe(expectedExtraLines);
  });
});

describe('audit of hand-made stores', () => {
  let dir: string;
  beforeAll(() => {
    dir = freshDir();
    put(
      dir,
      'events/2023/03/25/events-1679700000.jsonl',
      [
        JSON.stringify(event(101, '2023-03-25 9:05:01 +01:00')),
        JSON.stringify(event(102, '2023-03-26 0:10:00 +02:00')), // belongs in 2023/03/26
        'not json{',
        JSON.stringify({ ...event(0, '2023-03-25 10:00:00 +01:00'), id: 'x' }),
        '',
        JSON.stringify(event(103, 'igår kväll')),
        JSON.stringify(event(105, '2023-03-25 12:00:00 +01:00')),
      ].join('\n'),
    );
    // 23:30 at -05:00 is the 25th in UTC, but the event's own date is the 24th: not misplaced.
    put(dir, 'events/2023/03/24/events-1679700000.jsonl', jsonl([event(104, '2023-03-24 23:30:00 -05:00')]));
    put(
      dir,
      'updates/2023/03/25/updates-1679703600.jsonl',
      jsonl([event(101, '2023-03-25 9:05:01 +01:00', 'edited'), event(999, '2023-03-25 11:00:00 +01:00')]),
    );
    put(
      dir,
      'quarantine/2023/03/25/quarantine-1679700000.jsonl',
      `${JSON.stringify({ reason: 'missing or non-integer "id"', received_at: '2023-03-25T10:00:00.000Z', index: 3, element: { id: 'x' } })}\n{"x":1}\n`,
    );
    put(dir, 'events/2023/03/25/notes.txt', '');
    const state = {
      ...emptySeenState(),
      format: 'v3' as const,
      // A window that starts after these objects: the ledger answers for none of them.
      ledger: emptyLedger('2023/04/01'),
      stored: rangesFromIds([101, 102, 104, 555]),
      retained: new Map([
        [101, ''],
        [102, ''],
      ]),
    };
    put(dir, 'metadata/last_seen.json', serializeSeenState(state, new Date('2023-03-25T12:00:00Z')));
  });

  it('reports misplaced and unreadable lines, orphan updates and metadata mismatches', async () => {
    const report = await auditStore(new LocalStore(dir), { prefix: '' });
    expect(report.ok).toBe(false);
    expect(report.objects).toMatchObject({ events: 3, updates: 1, quarantine: 1 });
    expect(report.unexpectedNames.examples).toEqual(['events/2023/03/25/notes.txt']);
    expect(report.events).toEqual({ lines: 4, distinctIds: 4 });
    expect(report.duplicates.count).toBe(0);
    expect(report.misplaced.examples).toEqual([
      { id: 102, object: 'events/2023/03/25/events-1679700000.jsonl', expected: '2023/03/26' },
    ]);
    expect(report.unparseable.examples.map((u) => [u.object.split('/')[0], u.line, u.reason])).toEqual([
      ['events', 3, expect.stringMatching(/^not JSON/)],
      ['events', 4, 'missing or non-integer "id"'],
      ['events', 5, 'empty line'],
      ['events', 6, 'unparseable "datetime" in event 103'],
      ['quarantine', 2, 'quarantine line without "reason" and "element"'],
    ]);
    expect(report.updates).toEqual({
      lines: 2,
      distinctIds: 2,
      withoutEvent: { count: 1, examples: [999] },
    });
    expect(report.quarantine.lines).toBe(1);
    expect(report.metadata).toMatchObject({
      format: 'v3',
      storedIds: 4,
      notRecorded: { count: 1, examples: [105] },
      notFound: { count: 1, examples: [555] },
    });
    expect(report.problems).toHaveLength(5);
  });

  it('prints a table with examples and exits 1; --json prints the same report alone', async () => {
    const human = await runCli(['audit'], { COLLECTOR_STORE: dir });
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('misplaced lines');
    expect(human.stdout).toMatch(/102\s+events\/2023\/03\/25\/events-1679700000\.jsonl\s+2023\/03\/26/);
    expect(human.stdout).toMatch(/result: 5 kinds of problem found \(exit 1\)/);

    const json = await runCli(['audit', '--json'], { COLLECTOR_STORE: dir });
    expect(json.code).toBe(1);
    const { store, storePrefix, only, ...report } = JSON.parse(json.stdout) as AuditReport & {
      store: string;
      storePrefix: string;
      only: string;
    };
    expect({ store, storePrefix, only }).toEqual({ store: dir, storePrefix: '', only: '' });
    expect(report).toEqual(await auditStore(new LocalStore(dir), { prefix: '' }));
  });

  it('checks a filtered part only, and skips the whole-store checks', async () => {
    const report = await auditStore(new LocalStore(dir), { prefix: '', only: 'events/2023/03/24/' });
    expect(report.objects).toMatchObject({ events: 1, updates: 0, quarantine: 0 });
    expect(report.wholeStore).toBe(false);
    expect(report.metadata.notFound).toBeNull();
    expect(report.updates.withoutEvent).toBeNull();
    expect(report.ok).toBe(true);
  });

  it('reads in list order whatever the concurrency, and never writes', async () => {
    const local = new LocalStore(dir);
    const readOnly: ObjectStore = {
      description: local.description,
      get: (name) => local.get(name),
      list: (prefix) => local.list(prefix),
      put: () => Promise.reject(new Error('the audit must not write')),
      delete: () => Promise.reject(new Error('the audit must not delete')),
    };
    const one = await auditStore(readOnly, { prefix: '', concurrency: 1 });
    const many = await auditStore(readOnly, { prefix: '', concurrency: 64 });
    expect(many).toEqual(one);
  });

  it('counts every copy of a duplicated id, listing a bounded number of its objects', () => {
    const accumulator = createAuditAccumulator({ exampleLimit: 2 });
    const line = (id: number): string => jsonl([event(id, '2023-03-25 10:00:00 +01:00')]);
    for (let k = 1; k <= 25; k++) {
      accumulator.addObject(`events/2023/03/25/events-${k}.jsonl`, line(7));
      accumulator.addObject(`events/2023/03/25/events-${k}b.jsonl`, line(8));
    }
    accumulator.addObject('events/2023/03/25/events-99.jsonl', line(9));
    accumulator.addMetadata(undefined);
    const { duplicates, events } = accumulator.report();
    expect(events).toEqual({ lines: 51, distinctIds: 3 });
    expect(duplicates.count).toBe(2);
    expect(duplicates.extraLines).toBe(48);
    expect(duplicates.examples.map((d) => [d.id, d.copies, d.objects.length])).toEqual([
      [7, 25, HOLDERS_LISTED],
      [8, 25, HOLDERS_LISTED],
    ]);
    expect(duplicates.examples[0]?.objects[1]).toBe('events/2023/03/25/events-2.jsonl');
  });

  it('counts a corrupt huge id range quickly, with bounded examples', () => {
    const accumulator = createAuditAccumulator();
    accumulator.addObject(
      'events/2023/03/25/events-1.jsonl',
      jsonl([event(5, '2023-03-25 10:00:00 +01:00')]),
    );
    const state = {
      ...emptySeenState(),
      format: 'v3' as const,
      ledger: emptyLedger('2023/04/01'),
      stored: [1, 1_000_000_000],
    };
    accumulator.addMetadata(serializeSeenState(state, new Date()));
    const started = performance.now();
    const report = accumulator.report();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(report.metadata.notFound?.count).toBe(999_999_999);
    expect(report.metadata.notFound?.examples).toHaveLength(50);
    expect(report.metadata.notFound?.examples.slice(0, 5)).toEqual([1, 2, 3, 4, 6]);
  });

  it('names objects in the window that the metadata has not recorded yet, as a note', async () => {
    const store = freshDir();
    put(store, 'events/2023/03/25/events-1679700000.jsonl', jsonl([event(5, '2023-03-25 10:00:00 +01:00')]));
    // Written by a run that died before recording it: 6 is in no recorded object.
    put(store, 'events/2023/03/25/events-1679703600.jsonl', jsonl([event(6, '2023-03-25 11:00:00 +01:00')]));
    const ledger = withRecorded(emptyLedger('2023/03/20'), [
      { kind: 'events', partition: 'events/2023/03/25', datePath: '2023/03/25', unix: 1679700000 },
    ]);
    const state = { ...emptySeenState(), format: 'v3' as const, ledger, stored: rangesFromIds([5]) };
    put(store, 'metadata/last_seen.json', serializeSeenState(state, new Date('2023-03-25T12:00:00Z')));
    const report = await auditStore(new LocalStore(store), { prefix: '' });
    expect(report.ok).toBe(true);
    expect(report.metadata).toMatchObject({
      format: 'v3',
      notRecorded: { count: 0 },
      unrecordedIds: 1,
      unrecordedObjects: { count: 1, examples: ['events/2023/03/25/events-1679703600.jsonl'] },
      window: { from: '2023/03/20', declared: [] },
    });
    expect(report.notes.join('\n')).toMatch(
      /1 object is not recorded in the metadata yet .* the next collect run records it/,
    );
  });

  it('reports an unreadable metadata file as a problem, not a crash', async () => {
    const bad = freshDir();
    put(bad, 'events/2023/03/25/events-1.jsonl', jsonl([event(5, '2023-03-25 10:00:00 +01:00')]));
    put(bad, 'metadata/last_seen.json', '{"seen_ids": [1, "two"]}');
    const report = await auditStore(new LocalStore(bad), { prefix: '' });
    expect(report.ok).toBe(false);
    expect(report.metadata.format).toBe('unreadable');
    expect(report.problems.join('\n')).toMatch(/metadata\/last_seen\.json is unreadable: "seen_ids"/);
  });

  it('a store that fails to read: one clear line, exit 1', async () => {
    const broken = freshDir();
    mkdirSync(path.join(broken, 'metadata', 'last_seen.json'), { recursive: true });
    const result = await runCli(['audit'], { COLLECTOR_STORE: broken });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^polisen-collector: audit failed: .*metadata\/last_seen\.json.*\(E_STORE\)/);

    const json = await runCli(['audit', '--json'], { COLLECTOR_STORE: broken });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: 'E_STORE' } });
  });

  it('a --prefix that selects nothing is a usage error: exit 2', async () => {
    const result = await runCli(['audit', '--prefix', 'metadata/'], { COLLECTOR_STORE: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--prefix "metadata\/" selects nothing/);
  });
});

describe('audit of a Python-format store', () => {
  it('reads metadata with only seen_ids, without error', async () => {
    const dir = freshDir();
    seedCollect(
      dir,
      [event(201, '2023-03-25 10:00:00 +01:00'), event(202, '2023-03-26 1:00:00 +01:00')],
      100,
    );
    seedCollect(
      dir,
      [event(203, '2023-03-26 10:00:00 +01:00'), event(201, '2023-03-25 10:00:00 +01:00')],
      200,
    );
    const metadata = JSON.parse(readFileSync(path.join(dir, 'metadata/last_seen.json'), 'utf8')) as object;
    expect(Object.keys(metadata).sort()).toEqual(['last_updated', 'seen_ids', 'total_tracked']);

    const result = await runCli(['audit', '--json'], { COLLECTOR_STORE: dir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = parseJsonReport(result);
    expect(report.ok).toBe(true);
    expect(report.metadata).toMatchObject({ format: 'python', seenIds: 3, storedIds: 3 });
    expect(report.events.distinctIds).toBe(3);
    expect(report.notes.join('\n')).toMatch(/Python collector's format/);
  });
});

describe('audit of a store written by the real collector', () => {
  let feed: FeedTestServer;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    feed = await startFeedServer();
    dir = freshDir();
    env = localEnv(feed.url, dir, { COLLECTOR_PREFIX: 'stockholm', LOG_LEVEL: 'warn' });
    const first = [
      event(1001, '2023-03-30 14:00:00 +02:00'),
      event(1002, '2023-03-31 23:59:00 +02:00'),
      event(1003, '2023-04-01 0:15:00 +02:00'),
    ];
    const second = [
      event(1004, '2023-04-02 9:00:00 +02:00'),
      ...first.map((e) => (e.id === 1002 ? { ...e, summary: 'edited: re-typed' } : e)),
    ];
    for (const body of [JSON.stringify(first), JSON.stringify(second), MALFORMED_BODY]) {
      feed.setBody(body);
      const run = await runCli(['collect'], env);
      if (run.code !== 0) throw new Error(`collect failed: ${run.stdout}${run.stderr}`);
    }
  });
  afterAll(async () => {
    await feed?.close();
  });

  it('audits ok with exit 0', async () => {
    const result = await runCli(['audit'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/audit of .*store \(store prefix stockholm\/\)/);
    expect(result.stdout).toMatch(/result: consistent \(exit 0\)/);
  });

  it('--json output parses and describes the store', async () => {
    const result = await runCli(['audit', '--json'], env);
    expect(result.code).toBe(0);
    const report = parseJsonReport(result);
    expect(report).toMatchObject({
      ok: true,
      problems: [],
      wholeStore: true,
      events: { lines: 5, distinctIds: 5 },
      duplicates: { count: 0 },
      misplaced: { count: 0 },
      unparseable: { count: 0 },
      updates: { lines: 1, distinctIds: 1, withoutEvent: { count: 0 } },
      metadata: {
        format: 'v3',
        storedIds: 5,
        notRecorded: { count: 0 },
        notFound: { count: 0 },
        unrecordedObjects: { count: 0 },
      },
    });
    expect(report.quarantine.lines).toBeGreaterThan(0);
    expect(report.objects.quarantine).toBe(1);
  });

  it('--prefix events/2023/03/ restricts the audit to those objects', async () => {
    const result = await runCli(['audit', '--json', '--prefix', 'events/2023/03/'], env);
    expect(result.code).toBe(0);
    const report = parseJsonReport(result);
    expect(report.only).toBe('events/2023/03/');
    expect(report.objects).toMatchObject({ events: 2, updates: 0, quarantine: 0 });
    expect(report.events.distinctIds).toBe(2);
    expect(report.wholeStore).toBe(false);
    expect(report.metadata.notFound).toBeNull();
  });

  it('without the store prefix, the objects are not found (and the metadata is missing)', async () => {
    const { COLLECTOR_PREFIX: _omitted, ...plain } = env;
    const report = parseJsonReport(await runCli(['audit', '--json'], plain));
    expect(report.objects.events).toBe(0);
    expect(report.metadata.format).toBe('missing');
  });
});
