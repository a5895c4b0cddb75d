/**
 * The one place that knows the concrete adapters: it turns a validated Config into a store and a
 * feed fetcher. Heavy adapters (the OCI SDK, node-vault) are imported only when the config asks
 * for them, so `--help` and local-store runs never load them.
 */
import type { Config, StoreConfig } from './config.js';
import type { FeedResult } from './feed/feed-client.js';
import { fetchFeed } from './feed/feed-client.js';
import type { Logger } from './log.js';
import { createPacer } from './ops/pacing.js';
import { deferredStore } from './store/deferred-store.js';
import { KILL_AT_ENV, parseKillAt, withFaultInjection } from './store/fault-injection-store.js';
import { LocalStore } from './store/local-store.js';
import type { ObjectStore } from './store/object-store.js';

export function describeStore(store: StoreConfig): string {
  return store.kind === 'local' ? store.dir : `oci://${store.namespace}/${store.bucket}`;
}

async function buildStore(config: Config, logger: Logger): Promise<ObjectStore> {
  if (config.store.kind === 'local') return new LocalStore(config.store.dir);
  const oci = config.store;
  // The Vault login goes out first, so that it overlaps the feed fetch; the OCI SDK (about 130 ms of
  // module evaluation, which blocks the event loop) loads while the Vault answers are on their way.
  const { resolveOciAuth } = await import('./secrets/resolve-credentials.js');
  const credentials = resolveOciAuth(process.env);
  const sdk = new Promise<void>((resolve) => setImmediate(resolve)).then(
    () => import('./store/oci-store.js'),
  );
  sdk.catch(() => {});
  const [{ auth, source }, { createOciStore }] = await Promise.all([credentials, sdk]);
  logger.debug({ source }, 'OCI credentials resolved');
  const region =
    process.env.OCI_REGION || (auth.kind === 'api-key' ? auth.key.region : undefined) || oci.region;
  return createOciStore({
    namespace: oci.namespace,
    bucket: oci.bucket,
    region,
    endpoint: oci.endpoint,
    auth,
    logger,
  });
}

/** The store for this config; usable at once, its calls wait until credentials are resolved. */
export function openStore(config: Config, logger: Logger): ObjectStore {
  const killAt = parseKillAt(process.env[KILL_AT_ENV]);
  const ready = buildStore(config, logger).then((store) =>
    killAt ? withFaultInjection(store, killAt) : store,
  );
  return deferredStore(ready, describeStore(config.store));
}

/** The feed URL with the optional location and type filters (the API's `locationname` and `type`). */
export function feedUrl(config: Config, extra: Record<string, string> = {}): string {
  const url = new URL(config.apiUrl);
  if (config.locations.length > 0) url.searchParams.set('locationname', config.locations.join(';'));
  if (config.types.length > 0) url.searchParams.set('type', config.types.join(';'));
  for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v);
  return url.toString();
}

/** One paced GET of the feed: every attempt waits for the host-wide API slot (unless pacing is off). */
export function createFeedFetcher(
  config: Config,
  logger: Logger,
): (query?: Record<string, string>) => Promise<FeedResult> {
  const pacer = config.pacing ? createPacer({ stateDir: config.stateDir, ...config.pacingRules }) : undefined;
  return async (query = {}) =>
    fetchFeed({
      url: feedUrl(config, query),
      userAgent: config.userAgent,
      // A retry that then succeeds is not worth a warning; the final error names the attempts.
      onRetry: (info) => logger.debug(info, 'feed request failed; retrying'),
      // Every attempt is an API call, a retry too: each waits for its own slot.
      ...(pacer && {
        beforeAttempt: async (attempt: number, signal: AbortSignal) => {
          const { waitedMs } = await pacer.acquire(signal);
          if (waitedMs > 0) logger.debug({ waitedMs, attempt }, 'waited for the API pacing slot');
        },
      }),
    });
}
