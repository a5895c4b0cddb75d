/**
 * A SIGKILL at any moment of a run (just before or just after each store operation) loses no event
 * and stores none twice once the next run succeeds: on a local directory and on OCI (Vault creds),
 * for a run inside the write window (objects, then the metadata) and for one writing old dates
 * (declaring the partitions first).
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
  type StoreUnderTest,
  syntheticEvent,
} from './support/store-fixtures.js';

let feed: FeedTestServer;
let servers: ProductionServers;
const temp = tempDir('polisen-crash-');

beforeAll(async () => {
  [feed, servers] = await Promise.all([startFeedServer(), startProductionServers()]);
  // Each scenario asks for its own response (`?dates=…&phase=…`), so that scenarios can run at once.
  feed.handler((_req, url) => {
    const dates = url.searchParams.get('dates') as keyof typeof DATES | null;
    const phase = url.searchParams.get('phase');
    if (!dates || !(dates in DATES) || (phase !== 'base' && phase !== 'next')) return undefined;
    return { body: JSON.stringify(responses(DATES[dates])[phase]) };
  });
});
afterAll(async () => {
  await Promise.all([feed.close(), servers.close()]);
  temp.cleanup();
});

type Dates = { day1: (hour: number) => string; day2: (hour: number) => string };
const DATES: Record<'recent' | 'old', Dates> = {
  // Yesterday and today: written at once, recorded after.
  recent: { day1: (h) => recentDatetime(1, h), day2: (h) => recentDatetime(0, h) },
  // Far outside the window: the partitions are declared first.
  old: {
    day1: (h) => `2024-06-01 ${h}:00:00 +02:00`,
    day2: (h) => `2024-06-02 ${h}:00:00 +02:00`,
  },
};

function responses(d: Dates) {
  const base = [
    syntheticEvent(1000, d.day1(10), { type: 'Misshandel, grov' }),
    syntheticEvent(999, d.day1(9)),
  ];
  // The next response: new events on two dates, an edit of 1000, a malformed element.
  const next = [
    syntheticEvent(1003, d.day2(8)),
    syntheticEvent(1002, d.day1(22)),
    syntheticEvent(1001, d.day1(12)),
    syntheticEvent(1000, d.day1(10), { type: 'Mord/dråp' }),
    syntheticEvent(999, d.day1(9)),
    { id: 'not-a-number', datetime: d.day2(9) },
  ];
  return { base, next };
}

function expectExactlyOnce(objects: Map<string, Buffer>, where: string): void {
  const c = census(objects);
  expect(duplicates(c), where).toEqual([]);
  expect(
    [...c.events.keys()].sort((a, b) => a - b),
    where,
  ).toEqual([999, 1000, 1001, 1002, 1003]);
  expect(c.updates.get(1000), where).toHaveLength(1);
  expect(c.quarantineLines, where).toBe(1);
  expect(c.misplaced, where).toBe(0);
  expect(c.unrecorded, where).toEqual([]);
  expect(c.metadata?.total_tracked, where).toBe(5);
}

function env(store: StoreUnderTest, name: string, dates: keyof typeof DATES, phase: 'base' | 'next') {
  return store.env(name, `${feed.url}?dates=${dates}&phase=${phase}`, `${temp.dir}/state-${name}`);
}

/** The base response collected, then the next one collected with a kill at `killAt` (if any). */
async function scenario(store: StoreUnderTest, name: string, dates: keyof typeof DATES, killAt?: string) {
  const first = await runCli(['collect'], env(store, name, dates, 'base'));
  expect(first.code, first.stdout + first.stderr).toBe(0);
  const next = env(store, name, dates, 'next');
  return runCli(['collect'], killAt ? { ...next, POLISEN_TEST_KILL_AT: killAt } : next);
}

/** Kills at `killAt`, then a recovery run and an idle run; whether the kill happened. */
async function killAndRecover(
  store: StoreUnderTest,
  name: string,
  dates: keyof typeof DATES,
  killAt: string,
): Promise<boolean> {
  const killed = await scenario(store, name, dates, killAt);
  if (killed.signal !== 'SIGKILL') {
    expect(killed.code, `${name}: ${killed.stdout}${killed.stderr}`).toBe(0);
    return false;
  }
  const recovery = await runCli(['collect'], env(store, name, dates, 'next'));
  expect(recovery.code, `${name}: ${recovery.stdout}${recovery.stderr}`).toBe(0);
  expectExactlyOnce(store.objects(name), name);
  // A further run finds nothing to do.
  const idle = await runCli(['collect'], env(store, name, dates, 'next'));
  expect(summaryLine(idle), name).toMatchObject({ new: 0, updated: 0, quarantined: 0, objects: 0 });
  return true;
}

/** Operations tried at once (each a store of its own): two kill points each. */
const OPS_AT_ONCE = 2;

describe.each([
  ['local', () => localStoreUnderTest(`${temp.dir}/local`)],
  ['oci', () => ociStoreUnderTest(servers)],
] as const)('crash safety on the %s store', (kind, makeStore) => {
  it.each(['recent', 'old'] as const)(
    'survives a kill just before and just after every store operation (%s dates)',
    async (dates) => {
      const store = makeStore();
      const clean = await scenario(store, `${kind}-${dates}-clean`, dates);
      expect(clean.code, clean.stdout).toBe(0);
      expectExactlyOnce(store.objects(`${kind}-${dates}-clean`), 'clean run');
      // Kill at operation 1, 2, … until a run gets past its last store operation untouched.
      let operations = 0;
      for (let first = 1; operations === first - 1; first += OPS_AT_ONCE) {
        const ops = Array.from({ length: OPS_AT_ONCE }, (_, k) => first + k);
        const killed = await Promise.all(
          ops.flatMap((op) =>
            (['before', 'after'] as const).map((when) =>
              killAndRecover(store, `${kind}-${dates}-${op}-${when}`, dates, `${op}:${when}`),
            ),
          ),
        );
        ops.forEach((op, k) => {
          if (killed[2 * k] || killed[2 * k + 1]) operations = Math.max(operations, op);
        });
      }
      // get metadata, 3 listings, 4 object puts (2 event dates, 1 update, 1 quarantine), put metadata;
      // old dates also list and declare their partitions first.
      expect(operations).toBeGreaterThanOrEqual(dates === 'recent' ? 9 : 13);
    },
    300_000,
  );
});
