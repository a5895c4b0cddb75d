/**
 * A store whose adapter is still being built (credentials from Vault on their way): calls wait for
 * it, so the feed fetch can overlap the Vault login while no store call goes out before the
 * credentials are ready.
 */
import type { ObjectStore } from './object-store.js';

export function deferredStore(ready: Promise<ObjectStore>, description: string): ObjectStore {
  // Surface the failure through the first store call, not as an unhandled rejection.
  ready.catch(() => {});
  return {
    description,
    get: async (name, options) => (await ready).get(name, options),
    put: async (name, body, options) => (await ready).put(name, body, options),
    list: async (prefix, options) => (await ready).list(prefix, options),
    delete: async (name, options) => (await ready).delete(name, options),
  };
}
