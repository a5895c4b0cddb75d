/**
 * A SIGKILL at any moment of a run (just before or just after each store operation) loses no event
 * and stores none twice once the next run succeeds: on a local directory and on OCI (Vault creds).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, summaryLine, tempDir } from './support/cli.js';
import { type FeedTestServer, startFeedServer } from './support/feed-server.js';
import { type ProductionServers, startProductionServers } from './support/production-servers.js';
import { census, duplicates } from './support/store-contents.js';
import {
  localStoreUnderTest,
  ociStoreUnderTest,
  type StoreUnderTest,
  syntheticEvent,
} from './support/store-fixtures.js';

let feed: FeedTestServer;
let servers: ProductionServers;
const temp = tempDir('polisen-crash-');

beforeAll(async () => {
  [feed, servers] = await Promise.all([startFeedServer(), startProductionServers()]);
});
afterAll(async () => {
  await Promise.all([feed.close(), servers.close()]);
  temp.cleanup();
});

const base = [
  syntheticEvent(1000, '2024-06-01 10:00:00 +02:00', { type: 'Misshandel, grov' }),
  syntheticEvent(999, '2024-06-01 9:00:00 +02:00'),
];
// The next response: new events on two dates, an edit of 1000, a malformed element.
const next = [
  syntheticEvent(1003, '2024-06-02 8:00:00 +02:00'),
  syntheticEvent(1002, '2024-06-01 23:59:59 +02:00'),
  syntheticEvent(1001, '2024-06-01 12:00:00 +02:00'),
  syntheticEvent(1000, '2024-06-01 10:00:00 +02:00', { type: 'Mord/dråp' }),
  syntheticEvent(999, '2024-06-01 9:00:00 +02:00'),
  { id: 'not-a-number', datetime: '2024-06-02 9:00:00 +02:00' },
];

function expectExactlyOnce(objects: Map<string, Buffer>): void {
  const c = census(objects);
  expect(duplicates(c)).toEqual([]);
  expect([...c.events.keys()].sort((a, b) => a - b)).toEqual([999, 1000, 1001, 1002, 1003]);
  expect(c.updates.get(1000)).toHaveLength(1);
  expect(c.quarantineLines).toBe(1);
  expect(c.misplaced).toBe(0);
  expect(c.metadata?.pending).toEqual([]);
  expect(c.metadata?.total_tracked).toBe(5);
}

async function scenario(store: StoreUnderTest, name: string, killAt: string | undefined) {
  const stateDir = `${temp.dir}/state-${name}`;
  feed.setBody(JSON.stringify(base));
  const first = await runCli(['collect'], store.env(name, feed.url, stateDir));
  expect(first.code, first.stdout + first.stderr).toBe(0);
  feed.setBody(JSON.stringify(next));
  const killed = await runCli(
    ['collect'],
    killAt
      ? { ...store.env(name, feed.url, stateDir), POLISEN_TEST_KILL_AT: killAt }
      : store.env(name, feed.url, stateDir),
  );
  return killed;
}

describe.each([
  ['local', () => localStoreUnderTest(`${temp.dir}/local`)],
  ['oci', () => ociStoreUnderTest(servers)],
] as const)('crash safety on the %s store', (kind, makeStore) => {
  it('survives a kill just before and just after every store operation', async () => {
    const store = makeStore();
    // Count the store operations of an uninterrupted run of the same scenario.
    const clean = await scenario(store, `${kind}-count`, undefined);
    expect(clean.code, clean.stdout).toBe(0);
    expectExactlyOnce(store.objects(`${kind}-count`));
    // get metadata, put claim, 4 object puts (2 event dates, 1 update, 1 quarantine), put commit
    const operations = 7;
    let killedRuns = 0;
    for (let op = 1; op <= operations; op++) {
      for (const when of ['before', 'after'] as const) {
        const name = `${kind}-${op}-${when}`;
        const killed = await scenario(store, name, `${op}:${when}`);
        expect(killed.signal, `${name}: ${killed.stdout}`).toBe('SIGKILL');
        killedRuns++;
        const recovery = await runCli(['collect'], store.env(name, feed.url, `${temp.dir}/state-${name}`));
        expect(recovery.code, `${name}: ${recovery.stdout}${recovery.stderr}`).toBe(0);
        expectExactlyOnce(store.objects(name));
        // A further run finds nothing to do.
        const idle = await runCli(['collect'], store.env(name, feed.url, `${temp.dir}/state-${name}`));
        expect(summaryLine(idle), name).toMatchObject({ new: 0, updated: 0, quarantined: 0, objects: 0 });
      }
    }
    expect(killedRuns).toBe(operations * 2);
  }, 180_000);
});
