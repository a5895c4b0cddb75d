/** Store back ends for the data-fidelity tests: the same scenario on a local directory and on OCI (via Vault). */
import path from 'node:path';
import { localEnv } from './cli.js';
import type { ProductionServers } from './production-servers.js';
import { localObjects } from './store-contents.js';

export interface StoreUnderTest {
  /** Environment for a CLI run on store `name` (a fresh name is a fresh store). */
  env(name: string, feedUrl: string, stateDir: string): Record<string, string>;
  objects(name: string): Map<string, Buffer>;
}

export function localStoreUnderTest(root: string): StoreUnderTest {
  return {
    env: (name, feedUrl, stateDir) => ({
      ...localEnv(feedUrl, root),
      COLLECTOR_STORE: path.join(root, name),
      COLLECTOR_STATE_DIR: stateDir,
    }),
    objects: (name) => localObjects(path.join(root, name)),
  };
}

export function ociStoreUnderTest(servers: ProductionServers): StoreUnderTest {
  return {
    env: (name, feedUrl, stateDir) => ({
      ...localEnv(feedUrl, stateDir),
      ...servers.env(),
      COLLECTOR_STORE: `oci://${servers.oci.namespace}/${name}`,
      COLLECTOR_STATE_DIR: stateDir,
    }),
    objects: (name) => {
      const out = new Map<string, Buffer>();
      for (const [key, object] of servers.oci.objects) {
        if (key.startsWith(`${name}/`)) out.set(key.slice(name.length + 1), object.body);
      }
      return out;
    },
  };
}

/** A synthetic police event (the shape the API sends). */
export function syntheticEvent(
  id: number,
  datetime: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    datetime,
    name: `${datetime.slice(0, 10)}, Inbrott, Göteborg`,
    summary: `Händelse ${id}: inbrott i en lägenhet i Majorna.`,
    url: `/aktuellt/handelser/${id}/`,
    type: 'Inbrott',
    location: { name: 'Göteborg', gps: '57.70887,11.97456' },
    ...extra,
  };
}

/**
 * A datetime in the API's form on the UTC date `daysAgo` days before today (at `hour`:`minute`, +01:00),
 * so that events land inside the collector's write window (recent dates) or outside it (old ones).
 */
export function recentDatetime(daysAgo: number, hour: number, minute = 0): string {
  const date = new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
  return `${date} ${hour}:${String(minute).padStart(2, '0')}:00 +01:00`;
}
