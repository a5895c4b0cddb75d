/**
 * A host-wide lock file in the state directory, so cron, manual and backfill runs never overlap.
 *
 * The lock is `<stateDir>/<name>.lock` holding `{pid, host, startedAt, token}`. It is created complete and
 * exclusively: the record is written to a temp file, fsynced, then hard-linked to the lock name (`link` fails
 * with EEXIST when the lock exists), so a reader never sees an empty or half-written lock.
 *
 * A lock is stale when its holder's pid is dead on this host (`kill(pid, 0)` → ESRCH), when it is older than
 * maxAgeMs (default 2 h; the only test for a lock written on another host or by a pid that was reused), or,
 * for an unreadable lock, when it is older than 10 s.
 *
 * Race handling. Deleting a stale lock and creating ours are two steps; two contenders that both saw the
 * same stale lock could otherwise each delete it in turn and the second would delete the first's fresh lock.
 * So only the holder of a second exclusive file, `<name>.lock.takeover` (created the same way), may delete
 * the lock: under it, the contender re-reads the lock, deletes it only if it is still the very file it judged
 * stale (same inode and token), then links its own; a fresh acquirer slipping into that gap wins fairly and
 * the contender reports it as the holder. A contender that cannot get the takeover file reports the lock as
 * held. `release()` also takes the takeover file, so an owner whose lock expired cannot delete its successor's.
 * Residual risk: a takeover file left by a process killed inside its few-millisecond window is removed once
 * its pid is dead (or after 10 s), and two contenders removing that same leftover in the same instant could both enter; this needs a kill
 * and a race within microseconds of each other and is accepted.
 */

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CollectorError } from '../errors.js';
import { ensureStateDir, errnoCode, tempPathFor } from './atomic-file.js';

/** Who holds a lock (as written in the lock file). `pid` is 0 and `host` empty for an unreadable lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO 8601. */
  startedAt: string;
}

/** A lock this process holds. */
export interface RunLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Removes the lock if it is still ours; true when it was removed. Safe to call twice. */
  release(): Promise<boolean>;
}

/** The lock is held by someone else. */
export interface LockHeld {
  readonly path: string;
  readonly heldBy: LockHolder;
}

export type RunLockResult = RunLock | LockHeld;

export interface RunLockOptions {
  /** Lock name, `[A-Za-z0-9_-]+`; the file is `<stateDir>/<name>.lock`. Default `collect`. */
  name?: string;
  /** A lock older than this is taken over even if its pid is alive. Default 2 h. */
  maxAgeMs?: number;
}

export const DEFAULT_RUN_LOCK_MAX_AGE_MS = 2 * 60 * 60 * 1000;
const UNREADABLE_OR_GUARD_STALE_MS = 10_000;
const ATTEMPTS = 5;

interface LockRecord extends LockHolder {
  token: string;
}

interface ExistingLock {
  record: LockRecord;
  readable: boolean;
  ino: number;
  mtimeMs: number;
}

/** The collect lock for a store prefix: collectors of different prefixes on one host do not block each other. */
export function collectLockName(prefix: string): string {
  return prefix === '' ? 'collect' : `collect-${prefix.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

export function isLockHeld(result: RunLockResult): result is LockHeld {
  return 'heldBy' in result;
}

/**
 * Takes the lock `<stateDir>/<name>.lock` without waiting: the lock, or who holds it.
 * Creates stateDir (mode 0700) if missing. Throws CollectorError E_CONFIG when the state directory is unusable.
 */
export async function acquireRunLock(stateDir: string, options: RunLockOptions = {}): Promise<RunLockResult> {
  const name = options.name ?? 'collect';
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new CollectorError('E_INTERNAL', `invalid lock name "${name}": use letters, digits, _ and -`);
  }
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_RUN_LOCK_MAX_AGE_MS;
  const path = join(stateDir, `${name}.lock`);
  const mine: LockRecord = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: randomUUID(),
  };
  try {
    await ensureStateDir(stateDir);
    let last: ExistingLock | undefined;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (await createExclusive(path, mine)) return ownedLock(path, mine);
      const existing = await readLock(path);
      if (existing === undefined) continue; // released between our attempt and the read
      last = existing;
      if (!isStale(existing, maxAgeMs)) return { path, heldBy: holderOf(existing.record) };
      const outcome = await takeOver(path, existing, mine);
      if (outcome === 'taken') return ownedLock(path, mine);
      if (outcome === 'busy') await delay(10 + Math.random() * 20); // another process is taking it over
    }
    const current = (await readLock(path)) ?? last;
    if (current === undefined) {
      throw new CollectorError('E_INTERNAL', `could not create or read the lock ${path}`);
    }
    return { path, heldBy: holderOf(current.record) };
  } catch (error) {
    if (error instanceof CollectorError) throw error;
    throw new CollectorError('E_CONFIG', `cannot use the lock ${path}: ${describeFsError(error)}`, {
      cause: error,
      hint: 'check that the state directory exists or can be created and is writable by this user',
    });
  }
}

function ownedLock(path: string, mine: LockRecord): RunLock {
  let released = false;
  return {
    path,
    holder: holderOf(mine),
    async release() {
      if (released) return false;
      released = true;
      const guard = await enterGuard(path, mine, 50);
      try {
        const current = await readLock(path);
        if (current === undefined || current.record.token !== mine.token) return false;
        await unlinkIgnoringMissing(path);
        return true;
      } finally {
        if (guard) await leaveGuard(path, mine);
      }
    },
  };
}

/** Under the takeover guard: replace `stale` with our lock if it is still the same file. */
async function takeOver(
  path: string,
  stale: ExistingLock,
  mine: LockRecord,
): Promise<'taken' | 'busy' | 'changed'> {
  if (!(await enterGuard(path, mine, 1))) return 'busy';
  try {
    const current = await readLock(path);
    if (current !== undefined) {
      if (current.ino !== stale.ino || current.record.token !== stale.record.token) return 'changed';
      await unlinkIgnoringMissing(path);
    }
    return (await createExclusive(path, mine)) ? 'taken' : 'changed';
  } finally {
    await leaveGuard(path, mine);
  }
}

/** Tries to create `<lock>.takeover` up to `tries` times, clearing a leftover of a dead or stuck process. */
async function enterGuard(lockPath: string, mine: LockRecord, tries: number): Promise<boolean> {
  const guardPath = `${lockPath}.takeover`;
  for (let i = 0; i < tries; i++) {
    if (await createExclusive(guardPath, mine)) return true;
    const guard = await readLock(guardPath);
    if (guard !== undefined && isStale(guard, UNREADABLE_OR_GUARD_STALE_MS)) {
      await unlinkIgnoringMissing(guardPath);
      continue;
    }
    if (i + 1 < tries) await delay(20);
  }
  return false;
}

async function leaveGuard(lockPath: string, mine: LockRecord): Promise<void> {
  const guardPath = `${lockPath}.takeover`;
  const guard = await readLock(guardPath);
  if (guard?.record.token === mine.token) await unlinkIgnoringMissing(guardPath);
}

/** Creates `path` holding `record`, complete, only if it does not exist. */
async function createExclusive(path: string, record: LockRecord): Promise<boolean> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(record)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw error;
  } finally {
    await unlinkIgnoringMissing(temp);
  }
}

async function readLock(path: string): Promise<ExistingLock | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const stat = await handle.stat();
    const text = await handle.readFile('utf8');
    const record = parseRecord(text);
    return {
      record: record ?? { pid: 0, host: '', startedAt: new Date(stat.mtimeMs).toISOString(), token: '' },
      readable: record !== undefined,
      ino: stat.ino,
      mtimeMs: stat.mtimeMs,
    };
  } finally {
    await handle.close();
  }
}

function parseRecord(text: string): LockRecord | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const { pid, host, startedAt, token } = value as Record<string, unknown>;
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
    if (typeof host !== 'string' || typeof startedAt !== 'string' || typeof token !== 'string')
      return undefined;
    if (Number.isNaN(Date.parse(startedAt))) return undefined;
    return { pid, host, startedAt, token };
  } catch {
    return undefined;
  }
}

function isStale(lock: ExistingLock, maxAgeMs: number): boolean {
  if (!lock.readable) return Date.now() - lock.mtimeMs > UNREADABLE_OR_GUARD_STALE_MS;
  if (Date.now() - Date.parse(lock.record.startedAt) > maxAgeMs) return true;
  return lock.record.host === hostname() && !isProcessAlive(lock.record.pid);
}

/** Whether a process of this host exists; shared by the run lock and the local store. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return errnoCode(error) !== 'ESRCH';
  }
  return !isZombie(pid);
}

/**
 * Linux: a process that has exited but was not reaped yet still answers kill(pid, 0). An orphan (its parent
 * was killed, e.g. a relaunched backfill's first process) can stay so for long where PID 1 reaps slowly, as in
 * many containers; it holds nothing.
 */
function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return false; // no procfs: kill(pid, 0) is all there is
  }
  // "pid (comm) state …": comm may hold spaces and parentheses, so the state follows the last ')'.
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state === 'Z' || state === 'X';
}

function holderOf(record: LockRecord): LockHolder {
  return { pid: record.pid, host: record.host, startedAt: record.startedAt };
}

async function unlinkIgnoringMissing(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
}

function describeFsError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
