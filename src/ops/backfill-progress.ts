/**
 * Where a backfill's progress lives: `<stateDir>/backfill-<hash>.json`, one file per backfill, keyed by
 * what makes two backfills the same (store, prefix, feed filters, range), so different backfills never mix
 * and a restart with the same arguments finds its own file. Written atomically after every unit, so a kill
 * at any moment leaves the last complete progress. The key is also written in clear, for humans.
 */
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { CollectorError } from '../errors.js';
import type { BackfillProgress } from '../run/backfill-plan.js';
import { ensureStateDir, readFileIfExists, writeFileAtomic } from './atomic-file.js';

/** What identifies one backfill. */
export interface BackfillKey {
  /** The store's description (a directory, or oci://namespace/bucket). */
  store: string;
  prefix: string;
  /** The API filters: another filter fetches other events. */
  locations: string[];
  types: string[];
  from: string;
  to: string;
}

interface ProgressFile extends BackfillKey {
  version: 1;
  doneDays: string[];
  splitDays: Record<string, number[]>;
  updatedAt: string;
}

function keyHash(key: BackfillKey): string {
  const canonical = JSON.stringify([key.store, key.prefix, key.locations, key.types, key.from, key.to]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** `<stateDir>/backfill-<hash>.json` */
export function progressPath(stateDir: string, key: BackfillKey): string {
  return join(stateDir, `backfill-${keyHash(key)}.json`);
}

/** A run-lock name for this backfill, so the same backfill never runs twice at once on a host. */
export function backfillLockName(key: BackfillKey): string {
  return `backfill-${keyHash(key)}`;
}

/** The saved progress, or undefined when this backfill has not started. */
export async function readProgress(path: string, key: BackfillKey): Promise<BackfillProgress | undefined> {
  let text: string | undefined;
  try {
    text = await readFileIfExists(path);
  } catch (error) {
    throw unreadable(path, messageOf(error), error);
  }
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw unreadable(path, 'it is not JSON');
  }
  const file = value as Partial<ProgressFile> | null;
  if (
    typeof file !== 'object' ||
    file === null ||
    file.version !== 1 ||
    !isStringArray(file.doneDays) ||
    !isSplitDays(file.splitDays)
  ) {
    throw unreadable(path, 'it is not a backfill progress file of this version');
  }
  // Hash collisions are practically impossible; a mismatch means the file was edited or copied.
  if (keyHash(file as BackfillKey) !== keyHash(key)) {
    throw unreadable(path, `it belongs to another backfill (${file.from} to ${file.to} into ${file.store})`);
  }
  return { doneDays: [...file.doneDays], splitDays: { ...file.splitDays } };
}

/** Replaces the progress file atomically (mode 0600). */
export async function writeProgress(
  path: string,
  key: BackfillKey,
  progress: BackfillProgress,
): Promise<void> {
  const file: ProgressFile = {
    version: 1,
    ...key,
    doneDays: progress.doneDays,
    splitDays: progress.splitDays,
    updatedAt: new Date().toISOString(),
  };
  try {
    await ensureStateDir(dirname(path));
    await writeFileAtomic(path, `${JSON.stringify(file, null, 1)}\n`, { mode: 0o600 });
  } catch (error) {
    throw new CollectorError('E_CONFIG', `cannot write the backfill progress ${path}: ${messageOf(error)}`, {
      cause: error,
      hint: 'check that the state directory is writable by this user',
    });
  }
}

function unreadable(path: string, why: string, cause?: unknown): CollectorError {
  return new CollectorError('E_CONFIG', `the backfill progress file ${path} is unreadable: ${why}`, {
    cause,
    hint: 'remove it to start this backfill over (events already stored are not stored twice)',
  });
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function isSplitDays(value: unknown): value is Record<string, number[]> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every(
      (hours) => Array.isArray(hours) && hours.every((h) => Number.isInteger(h) && h >= 0 && h < 24),
    )
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
