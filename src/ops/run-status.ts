/**
 * The status of the latest run, `<stateDir>/run-status.json`, for `health` and for humans. Written atomically
 * at the start (outcome 'running') and at the end of every run. The last success time survives failed and
 * running states: when the new status does not carry one, it is taken from the previous file.
 *
 * One file for all commands: the latest run of any command wins. Two commands finishing in the same instant
 * could each carry over from the same previous file; the run lock keeps collect runs from overlapping, so
 * this only matters for commands that run outside the lock.
 */

import { join } from 'node:path';
import { CollectorError } from '../errors.js';
import { ensureStateDir, readFileIfExists, writeFileAtomic } from './atomic-file.js';

export type RunOutcome = 'running' | 'success' | 'failed';

export interface RunStatus {
  /** The command that ran, e.g. `collect`. */
  command: string;
  /** ISO 8601. */
  startedAt: string;
  /** ISO 8601; absent while running. */
  finishedAt?: string;
  outcome: RunOutcome;
  /** Whatever the command counted, e.g. `{ fetched: 500, new: 12 }`. */
  counts?: Record<string, number>;
  error?: { code: string; message: string };
  /** ISO 8601 time the last successful run finished (this one, if it succeeded). */
  lastSuccessAt?: string;
}

export const RUN_STATUS_FILE = 'run-status.json';

/** Path of the run status file in `stateDir`. */
export function runStatusPath(stateDir: string): string {
  return join(stateDir, RUN_STATUS_FILE);
}

/**
 * Writes `status` atomically, creating stateDir (0700) if missing, and returns what was written.
 * lastSuccessAt: the given one; else for a success its finishedAt (or now); else the previous file's.
 * An unreadable previous file is ignored here (the new status replaces it). Throws CollectorError E_CONFIG
 * when the state directory is not writable.
 */
export async function writeRunStatus(stateDir: string, status: RunStatus): Promise<RunStatus> {
  const path = runStatusPath(stateDir);
  try {
    await ensureStateDir(stateDir);
    let lastSuccessAt = status.lastSuccessAt;
    if (lastSuccessAt === undefined) {
      if (status.outcome === 'success') {
        lastSuccessAt = status.finishedAt ?? new Date().toISOString();
      } else {
        const previous = parseRunStatus(await readFileIfExists(path));
        lastSuccessAt =
          previous?.lastSuccessAt ?? (previous?.outcome === 'success' ? previous.finishedAt : undefined);
      }
    }
    const written: RunStatus = lastSuccessAt === undefined ? { ...status } : { ...status, lastSuccessAt };
    await writeFileAtomic(path, `${JSON.stringify(written, null, 2)}\n`, { mode: 0o600 });
    return written;
  } catch (error) {
    throw new CollectorError('E_CONFIG', `cannot write the run status ${path}: ${messageOf(error)}`, {
      cause: error,
      hint: 'check that the state directory is writable by this user',
    });
  }
}

/**
 * The last written status, or undefined when none was written yet.
 * Throws CollectorError E_HEALTH when the file exists but is not a valid status.
 */
export async function readRunStatus(stateDir: string): Promise<RunStatus | undefined> {
  const path = runStatusPath(stateDir);
  let text: string | undefined;
  try {
    text = await readFileIfExists(path);
  } catch (error) {
    throw new CollectorError('E_HEALTH', `cannot read the run status ${path}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (text === undefined) return undefined;
  const status = parseRunStatus(text);
  if (status === undefined) {
    throw new CollectorError('E_HEALTH', `the run status ${path} is not a valid run status`, {
      hint: 'remove the file; the next run writes a new one',
    });
  }
  return status;
}

function parseRunStatus(text: string | undefined): RunStatus | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.command !== 'string' || typeof v.startedAt !== 'string') return undefined;
  if (v.outcome !== 'running' && v.outcome !== 'success' && v.outcome !== 'failed') return undefined;
  if (v.finishedAt !== undefined && typeof v.finishedAt !== 'string') return undefined;
  if (v.lastSuccessAt !== undefined && typeof v.lastSuccessAt !== 'string') return undefined;
  if (v.counts !== undefined && !isCounts(v.counts)) return undefined;
  if (v.error !== undefined && !isErrorInfo(v.error)) return undefined;
  return value as RunStatus;
}

function isCounts(value: unknown): value is Record<string, number> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((n) => typeof n === 'number')
  );
}

function isErrorInfo(value: unknown): value is { code: string; message: string } {
  if (typeof value !== 'object' || value === null) return false;
  const e = value as Record<string, unknown>;
  return typeof e.code === 'string' && typeof e.message === 'string';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
