/**
 * Test-only: kills the process (SIGKILL, no clean-up) just before or just after the Nth store
 * operation, to prove that a run killed at any moment loses nothing and stores nothing twice.
 * Enabled only by POLISEN_TEST_KILL_AT=N[:before|:after]; never set it in production.
 */
import type { DeleteOptions, ListOptions, ObjectStore, PutOptions, StoredObject } from './object-store.js';

export const KILL_AT_ENV = 'POLISEN_TEST_KILL_AT';

export function parseKillAt(value: string | undefined): { op: number; when: 'before' | 'after' } | undefined {
  if (!value) return undefined;
  const m = /^(\d+)(?::(before|after))?$/.exec(value);
  if (!m) throw new Error(`${KILL_AT_ENV}=${value} must be N, N:before or N:after`);
  return { op: Number(m[1]), when: (m[2] as 'before' | 'after' | undefined) ?? 'before' };
}

export function withFaultInjection(
  store: ObjectStore,
  killAt: { op: number; when: 'before' | 'after' },
): ObjectStore {
  let count = 0;
  const step = async <T>(fn: () => Promise<T>): Promise<T> => {
    count++;
    const mine = count;
    if (mine === killAt.op && killAt.when === 'before') process.kill(process.pid, 'SIGKILL');
    const result = await fn();
    if (mine === killAt.op && killAt.when === 'after') process.kill(process.pid, 'SIGKILL');
    return result;
  };
  return {
    description: store.description,
    get: (name: string, options?: { signal?: AbortSignal }): Promise<StoredObject | undefined> =>
      step(() => store.get(name, options)),
    put: (name: string, body: Buffer, options?: PutOptions) => step(() => store.put(name, body, options)),
    list: (prefix: string, options?: ListOptions) => step(() => store.list(prefix, options)),
    delete: (name: string, options: DeleteOptions) => step(() => store.delete(name, options)),
  };
}
