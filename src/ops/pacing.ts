/**
 * Host-wide pacing of calls to the Polisen API: at least 10 s between calls, at most 60 an hour and 1,440 a
 * day, shared by every process using the same state directory.
 *
 * `<stateDir>/pacing-log.json` lists the times of the calls of the last 24 h (reserved slots, ms since epoch).
 * Under the exclusive lock `<stateDir>/pacing.lock` (see run-lock.ts; held for milliseconds), `acquire` reads
 * the log, computes the earliest slot that keeps all three limits, records it and releases the lock; only
 * then does it sleep until the slot. Two processes therefore never get the same slot. A slot further away
 * than maxWaitMs (e.g. the hourly budget is spent) is refused with E_PACING_BUDGET, without recording it.
 *
 * A recorded slot counts against the budget even when the caller then does not make the call (e.g. aborted
 * while sleeping): the log errs on the side of the API. Slots more than 1 h (or maxWaitMs) in the future can
 * only come from a clock that moved back; they are dropped so the pacer does not stall until the clock
 * catches up.
 */

import { join } from 'node:path';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { CollectorError, EXIT_FAILED } from '../errors.js';
import { ensureStateDir, readFileIfExists, writeFileAtomic } from './atomic-file.js';
import { formatDuration } from './health-check.js';
import { acquireRunLock, isLockHeld, type RunLock } from './run-lock.js';

export interface PacerOptions {
  stateDir: string;
  /** Minimum time between two calls. Default 10,000. */
  minIntervalMs?: number;
  /**
   * Added to minIntervalMs between slots. Default SEND_MARGIN_MS. A slot is when a process may send;
   * its request reaches the API a connection setup and some scheduling later, and the next caller's
   * may get there sooner after its own slot: the margin keeps the spacing the API sees at or above
   * the interval.
   */
  sendMarginMs?: number;
  /** Calls allowed in any sliding hour. Default 60. */
  maxPerHour?: number;
  /** Calls allowed in any sliding 24 h. Default 1,440. */
  maxPerDay?: number;
  /** Longest wait for a slot; a later slot fails with E_PACING_BUDGET. Default 60,000. */
  maxWaitMs?: number;
  /** Longest wait for the pacing lock itself. Default 20,000. */
  lockTimeoutMs?: number;
  /** Clock (ms since epoch). Default Date.now. */
  now?: () => number;
  /** Waits until the slot. Default a timer that rejects with an AbortError when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface Pacer {
  /**
   * Waits for the next allowed call slot and returns once the call may be made.
   * Throws CollectorError E_PACING_BUDGET (without waiting) when the slot is further than maxWaitMs away,
   * E_LOCKED when the pacing lock stays held for longer than lockTimeoutMs, and an AbortError when `signal`
   * aborts (the signal's reason if it was aborted before the call). A slot already recorded stays recorded.
   */
  acquire(signal?: AbortSignal): Promise<{ waitedMs: number; slotAt: number }>;
}

export interface PacingState {
  /** Calls in the last hour (including slots reserved in the near future). */
  callsLastHour: number;
  callsLastDay: number;
  /** ISO 8601 time of the latest recorded call or reserved slot. */
  lastCallAt?: string;
}

export const PACING_LOG_FILE = 'pacing-log.json';
const PACING_LOCK_NAME = 'pacing';
/** The pacing lock is held for milliseconds; a live holder older than this is stuck. */
const PACING_LOCK_MAX_AGE_MS = 15_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** See PacerOptions.sendMarginMs: more than the jitter of a connection setup, little against 10 s. */
export const SEND_MARGIN_MS = 250;

export function createPacer(options: PacerOptions): Pacer {
  const minIntervalMs = (options.minIntervalMs ?? 10_000) + (options.sendMarginMs ?? SEND_MARGIN_MS);
  const maxPerHour = options.maxPerHour ?? 60;
  const maxPerDay = options.maxPerDay ?? 1440;
  const maxWaitMs = options.maxWaitMs ?? 60_000;
  const lockTimeoutMs = options.lockTimeoutMs ?? 20_000;
  const now = options.now ?? Date.now;
  const sleep =
    options.sleep ?? ((ms: number, signal?: AbortSignal) => sleepTimer(ms, undefined, { signal }));
  const stateDir = options.stateDir;
  const logPath = join(stateDir, PACING_LOG_FILE);
  const futureLimitMs = Math.max(HOUR_MS, maxWaitMs + minIntervalMs);

  return {
    async acquire(signal) {
      signal?.throwIfAborted();
      await ensureStateDirOrThrow(stateDir);
      const lock = await lockWithin(stateDir, lockTimeoutMs, signal);
      let startMs: number;
      let slotAt: number;
      try {
        startMs = now();
        const calls = pruneCalls(await readCallLog(logPath), startMs, futureLimitMs);
        const plan = planSlot(calls, startMs, { minIntervalMs, maxPerHour, maxPerDay });
        if (plan.slotAt - startMs > maxWaitMs) {
          throw budgetError(plan, calls, startMs, { maxPerHour, maxPerDay, maxWaitMs });
        }
        slotAt = plan.slotAt;
        calls.push(slotAt);
        await writeCallLog(logPath, calls);
      } finally {
        await lock.release();
      }
      const waitedMs = slotAt - startMs;
      if (waitedMs > 0) await sleep(waitedMs, signal);
      return { waitedMs, slotAt };
    },
  };
}

/** Call counts from the log, read without the lock (the log is replaced atomically). */
export async function readPacingState(stateDir: string, nowMs: number = Date.now()): Promise<PacingState> {
  const calls = await readCallLog(join(stateDir, PACING_LOG_FILE));
  const last = calls.length === 0 ? undefined : Math.max(...calls);
  return {
    callsLastHour: calls.filter((t) => t > nowMs - HOUR_MS).length,
    callsLastDay: calls.filter((t) => t > nowMs - DAY_MS).length,
    ...(last === undefined ? {} : { lastCallAt: new Date(last).toISOString() }),
  };
}

interface Limits {
  minIntervalMs: number;
  maxPerHour: number;
  maxPerDay: number;
}

interface SlotPlan {
  slotAt: number;
  limitedBy: 'none' | 'interval' | 'hour' | 'day';
}

/**
 * The earliest time ≥ now that is minInterval after the latest call and keeps the count in the sliding hour
 * and day windows (t > slot − window) below the limits. `calls` are sorted ascending.
 */
function planSlot(calls: readonly number[], nowMs: number, limits: Limits): SlotPlan {
  const last = calls.at(-1);
  let slotAt = nowMs;
  let limitedBy: SlotPlan['limitedBy'] = 'none';
  if (last !== undefined && last + limits.minIntervalMs > slotAt) {
    slotAt = last + limits.minIntervalMs;
    limitedBy = 'interval';
  }
  // Every call is ≤ slotAt, so moving slotAt later only shrinks the windows: two passes reach a fixed point.
  for (let pass = 0; pass < 2; pass++) {
    for (const [windowMs, max, name] of [
      [HOUR_MS, limits.maxPerHour, 'hour'],
      [DAY_MS, limits.maxPerDay, 'day'],
    ] as const) {
      const inWindow = calls.filter((t) => t > slotAt - windowMs);
      if (inWindow.length >= max) {
        // The slot opens when enough of the oldest calls in the window have left it.
        const freeAt = (inWindow[inWindow.length - max] ?? slotAt) + windowMs;
        if (freeAt > slotAt) {
          slotAt = freeAt;
          limitedBy = name;
        }
      }
    }
  }
  return { slotAt, limitedBy };
}

function budgetError(
  plan: SlotPlan,
  calls: readonly number[],
  nowMs: number,
  limits: { maxPerHour: number; maxPerDay: number; maxWaitMs: number },
): CollectorError {
  const lastHour = calls.filter((t) => t > nowMs - HOUR_MS).length;
  const lastDay = calls.filter((t) => t > nowMs - DAY_MS).length;
  const at = new Date(plan.slotAt).toISOString();
  const wait = formatDuration(plan.slotAt - nowMs);
  const counts = `${lastHour} calls in the last hour (max ${limits.maxPerHour}), ${lastDay} in the last day (max ${limits.maxPerDay})`;
  const why =
    plan.limitedBy === 'interval'
      ? `the next free call slot is ${wait} away (other processes hold the earlier ones), more than the ${formatDuration(limits.maxWaitMs)} this run may wait`
      : `the ${plan.limitedBy === 'hour' ? 'hourly' : 'daily'} API call budget is spent`;
  return new CollectorError(
    'E_PACING_BUDGET',
    `${why}: ${counts}; the next call is allowed at ${at} (in ${wait}); no call was made`,
  );
}

async function lockWithin(stateDir: string, timeoutMs: number, signal?: AbortSignal): Promise<RunLock> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await acquireRunLock(stateDir, {
      name: PACING_LOCK_NAME,
      maxAgeMs: PACING_LOCK_MAX_AGE_MS,
    });
    if (!isLockHeld(result)) return result;
    if (Date.now() >= deadline) {
      const { pid, host, startedAt } = result.heldBy;
      throw new CollectorError(
        'E_LOCKED',
        `the pacing lock ${result.path} has been held by pid ${pid} on ${host || 'an unknown host'} since ${startedAt} for more than ${formatDuration(timeoutMs)}`,
        {
          exitCode: EXIT_FAILED,
          hint: 'another collector process is stuck holding it; it is taken over automatically once that process exits',
        },
      );
    }
    // Jittered so that processes queued on the lock do not retry in lock-step.
    await sleepTimer(10 + Math.random() * 30, undefined, { signal });
  }
}

async function ensureStateDirOrThrow(stateDir: string): Promise<void> {
  try {
    await ensureStateDir(stateDir);
  } catch (error) {
    throw new CollectorError(
      'E_CONFIG',
      `cannot create the state directory ${stateDir}: ${messageOf(error)}`,
      {
        cause: error,
        hint: 'check the state directory setting and its permissions',
      },
    );
  }
}

/** Sorted call times from the log; [] when there is no log. */
async function readCallLog(path: string): Promise<number[]> {
  const text = await readFileIfExists(path);
  if (text === undefined) return [];
  let calls: unknown;
  try {
    calls = (JSON.parse(text) as { calls?: unknown }).calls;
  } catch {
    calls = undefined;
  }
  if (!Array.isArray(calls) || !calls.every((t) => typeof t === 'number' && Number.isFinite(t))) {
    throw new CollectorError('E_PACING_BUDGET', `the API call log ${path} is unreadable`, {
      hint: 'remove the file to reset the call budget (make sure no collector ran in the last minutes)',
    });
  }
  return (calls as number[]).sort((a, b) => a - b);
}

function pruneCalls(calls: number[], nowMs: number, futureLimitMs: number): number[] {
  return calls.filter((t) => t > nowMs - DAY_MS && t <= nowMs + futureLimitMs);
}

async function writeCallLog(path: string, calls: readonly number[]): Promise<void> {
  try {
    await writeFileAtomic(path, `${JSON.stringify({ version: 1, calls })}\n`, { mode: 0o600 });
  } catch (error) {
    throw new CollectorError('E_CONFIG', `cannot write the API call log ${path}: ${messageOf(error)}`, {
      cause: error,
      hint: 'check that the state directory is writable by this user',
    });
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
