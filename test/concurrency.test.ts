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
import { localStoreUnderTest, ociStoreUnderTest, syntheticEvent } from './support/store-fixtures.js';

const ROUNDS = 50;
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

/** Round r: the newest events, 3 new ones each round, spread over two dates. */
function response(round: number): Record<string, unknown>[] {
  const newest = 5000 + round * 3;
  const events: Record<string, unknown>[] = [];
  for (let id = newest; id > Math.max(5000 - 20, newest - 500); id--) {
    const day = 10 + Math.floor((id - 4980) / 40);
    const hour = id % 24;
    events.push(
      syntheticEvent(
        id,
        `2024-07-${String(day).padStart(2, '0')} ${hour}:${String(id % 60).padStart(2, '0')}:00 +02:00`,
      ),
    );
  }
  return events;
}

describe.each([
  ['local', () => localStoreUnderTest(`${temp.dir}/local`)],
  ['oci', () => ociStoreUnderTest(servers)],
] as const)('two collectors at once on the %s store', (kind, makeStore) => {
  it(`lose nothing and store nothing twice over ${ROUNDS} rounds`, async () => {
    const store = makeStore();
    const name = `${kind}-concurrent`;
    const served = new Set<number>();
    let newTotal = 0;
    let overlaps = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const body = response(round);
      for (const e of body) served.add(e.id as number);
      feed.setBody(JSON.stringify(body));
      const runs = await Promise.all(
        ['a', 'b'].map((host) =>
          runCli(['collect'], store.env(name, feed.url, `${temp.dir}/state-${kind}-${host}`)),
        ),
      );
      for (const run of runs) {
        expect(run.code, run.stdout + run.stderr).toBe(0);
        const s = summaryLine(run)!;
        newTotal += Number(s.new);
        overlaps += Number(s.inFlight) + Number(s.casRetries);
      }
    }
    const c = census(store.objects(name));
    expect(duplicates(c)).toEqual([]);
    expect(new Set(c.events.keys())).toEqual(served);
    expect(newTotal).toBe(served.size);
    expect(c.misplaced).toBe(0);
    expect(c.metadata?.pending).toEqual([]);
    expect(c.metadata?.total_tracked).toBe(served.size);
    // The runs really raced: at least once one saw the other's claim or lost a compare-and-swap.
    expect(overlaps).toBeGreaterThan(0);
  }, 240_000);
});
