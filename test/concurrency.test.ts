/**
 * Two collectors started at the same moment on one store (cron overlapping a manual run, or two
 * hosts for high availability), 50 rounds with new events each: nothing lost, nothing stored twice.
 * Each process has its own state directory, as on two hosts, so the host lock does not serialise them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryLine, tempDir } from './support/cli.js';
import { type FeedTestServer, startFeedServer } from './support/feed-server.js';
import { type ProductionServers, startProductionServers } from './support/production-servers.js';
import { census, duplicates } from './support/store-contents.js';
import {
  localStoreUnderTest,
  ociStoreUnderTest,
  recentDatetime,
  syntheticEvent,
} from './support/store-fixtures.js';

/** Recent dates (written at once, recorded after): the 50 rounds; old dates (declared first): 20. */
const ROUNDS = { recent: 50, old: 20 } as const;
let feed: FeedTestServer;
let servers: ProductionServers;
const temp = tempDir('polisen-concurrency-');

beforeAll(async () => {
  [feed, servers] = await Promise.all([startFeedServer(), startProductionServers()]);
});
afterAll(async () => {
  await Promise.all([feed.close(), servers.close()]);
  temp.cleanup();
});

/** Round r: the newest events, 3 new ones each round, spread over a few dates. */
function response(round: number, dates: 'recent' | 'old'): Record<string, unknown>[] {
  const newest = 5000 + round * 3;
  const events: Record<string, unknown>[] = [];
  for (let id = newest; id > Math.max(5000 - 20, newest - 500); id--) {
    const step = Math.floor((id - 4980) / 40);
    const hour = id % 24;
    const datetime =
      dates === 'recent'
        ? recentDatetime(Math.max(0, 3 - step), hour, id % 60)
        : `2024-07-${String(10 + step).padStart(2, '0')} ${hour}:${String(id % 60).padStart(2, '0')}:00 +02:00`;
    events.push(syntheticEvent(id, datetime));
  }
  return events;
}

describe.each([
  ['local', () => localStoreUnderTest(`${temp.dir}/local`)],
  ['oci', () => ociStoreUnderTest(servers)],
] as const)('two collectors at once on the %s store', (kind, makeStore) => {
  it.each(['recent', 'old'] as const)(
    'lose nothing and store nothing twice (%s dates)',
    async (dates) => {
      const store = makeStore();
      const name = `${kind}-${dates}-concurrent`;
      const served = new Set<number>();
      let newTotal = 0;
      let overlaps = 0;
      let duplicatesRemoved = 0;
      for (let round = 0; round < ROUNDS[dates]; round++) {
        const body = response(round, dates);
        // Host b also sees one event of its own, on the date of the round's newest: its objects then differ
        // from a's in bytes, so when both write the round's events, one copy must be stripped.
        const own = { ...syntheticEvent(900_000 + round, body[0]!.datetime as string) };
        for (const e of [...body, own]) served.add(e.id as number);
        feed.setBody(JSON.stringify(body));
        feed.handler((_req, url) =>
          url.searchParams.get('host') === 'b' ? { body: JSON.stringify([own, ...body]) } : undefined,
        );
        const runs = await Promise.all(
          ['a', 'b'].map((host) =>
            runCli(['collect'], {
              ...store.env(name, feed.url, `${temp.dir}/state-${kind}-${dates}-${host}`),
              POLISEN_API_URL: `${feed.url}?host=${host}`,
            }),
          ),
        );
        for (const run of runs) {
          expect(run.code, run.stdout + run.stderr).toBe(0);
          const s = summaryLine(run)!;
          newTotal += Number(s.new);
          overlaps += Number(s.recoveredObjects) + Number(s.duplicatesRemoved) + Number(s.casRetries);
          duplicatesRemoved += Number(s.duplicatesRemoved);
        }
      }
      const c = census(store.objects(name));
      expect(duplicates(c)).toEqual([]);
      expect(new Set(c.events.keys())).toEqual(served);
      expect(newTotal).toBe(served.size);
      expect(c.misplaced).toBe(0);
      expect(c.unrecorded).toEqual([]);
      expect(c.metadata?.total_tracked).toBe(served.size);
      // The runs really raced: at least once one found the other's objects or lost a compare-and-swap;
      // writing at once (recent dates), at least once both wrote an event and one copy was stripped.
      expect(overlaps).toBeGreaterThan(0);
      if (dates === 'recent') expect(duplicatesRemoved).toBeGreaterThan(0);
    },
    240_000,
  );
});
