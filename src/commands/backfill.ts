/**
 * `polisen-collector backfill --from YYYY-MM-DD [--to YYYY-MM-DD]`: fetches past days from the API
 * (`?DateTime=YYYY-MM-DD`, and hour by hour when a day hits the API's 500-event cap) and stores what is
 * missing, through the same run as `collect` (de-duplication, layout, revisions, the object ledger).
 *
 * Resumable: after every query the progress is saved in the state directory, so a backfill stopped by a
 * signal, a kill, a failure or the API call budget continues where it stopped when run again with the same
 * arguments.
 *
 * Locks. The backfill holds its own lock (one per store/prefix/filters/range) for its whole run, so the same
 * backfill never runs twice at once. It takes the collect run lock only around each query's store writes,
 * never while it waits for a pacing slot or fetches: a backfill and a cron collect on one host never write at
 * the same time, yet the scheduled collect is not skipped for the whole length of a backfill.
 *
 * Budget. Calls are paced host-wide (createFeedFetcher). Backfill also leaves a few calls an hour and a day
 * to the scheduled collect runs, so a long backfill does not make them fail for want of a slot.
 */
import { createFeedFetcher, describeStore, openStore } from '../composition-root.js';
import type { Config } from '../config.js';
import { CollectorError, describeError, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../errors.js';
import type { FeedResult } from '../feed/feed-client.js';
import { createLogger, type Logger } from '../log.js';
import {
  type BackfillKey,
  backfillLockName,
  progressPath,
  readProgress,
  writeProgress,
} from '../ops/backfill-progress.js';
import { formatDuration } from '../ops/health-check.js';
import { hasLongLivedRuntime, LONG_LIVED_ENV, LONG_LIVED_NODE_FLAGS } from '../ops/long-lived-runtime.js';
import { readPacingState } from '../ops/pacing.js';
import { acquireRunLock, collectLockName, isLockHeld, type RunLock } from '../ops/run-lock.js';
import {
  afterDayFetched,
  afterHourFetched,
  type BackfillProgress,
  type BackfillUnit,
  countDone,
  dayInTimeZone,
  daysInRange,
  emptyProgress,
  hoursToDo,
  isDayDone,
  isDaySplit,
  isTruncated,
  unitQuery,
  validateRange,
} from '../run/backfill-plan.js';
import { DEFAULT_COLLECT_OPTIONS, type RunSummary, runCollect } from '../run/collect-run.js';

export interface BackfillFlags {
  from: string;
  to?: string;
  warnings: string[];
}

/** Calls an hour and a day left to the scheduled collect runs (every 30 min: 2 an hour, 48 a day). */
const COLLECT_RESERVE_PER_HOUR = 2;
const COLLECT_RESERVE_PER_DAY = 48;
/** A collect run holds its lock for its pacing wait, fetch (retries included) and writes. */
const COLLECT_LOCK_WAIT_MS = 5 * 60_000;
/** A backfill can outlive the run lock's default 2 h age limit; on this host a dead pid frees it anyway. */
const BACKFILL_LOCK_MAX_AGE_MS = 24 * 3_600_000;

interface Totals {
  requests: number;
  fetched: number;
  new: number;
  updated: number;
  alreadySeen: number;
  quarantined: number;
  objects: number;
  bytesWritten: number;
  splitDays: number;
  /** Hours that returned the cap themselves: cannot be split further, may be incomplete. */
  truncatedHours: number;
}

function zeroTotals(): Totals {
  return {
    requests: 0,
    fetched: 0,
    new: 0,
    updated: 0,
    alreadySeen: 0,
    quarantined: 0,
    objects: 0,
    bytesWritten: 0,
    splitDays: 0,
    truncatedHours: 0,
  };
}

function addSummary(totals: Totals, s: RunSummary): void {
  totals.requests++;
  totals.fetched += s.counts.fetched;
  totals.new += s.counts.new;
  totals.updated += s.counts.updated;
  totals.alreadySeen += s.counts.alreadySeen;
  totals.quarantined += s.counts.quarantined;
  totals.objects += s.objects.length;
  totals.bytesWritten += s.bytesWritten;
}

function addTotals(into: Totals, from: Totals): void {
  for (const k of Object.keys(into) as (keyof Totals)[]) into[k] += from[k];
}

/** The same signal twice within this is one stop request delivered twice (see stopOnSignals). */
const SAME_STOP_REQUEST_MS = 500;

/** Raised inside the loop when SIGINT/SIGTERM asks the backfill to stop. */
class Stopped extends Error {
  constructor(readonly signal: string) {
    super(`stopped by ${signal}`);
  }
}

/** One line on stderr, redrawn in place with \r (TTY only). */
class ProgressBar {
  private shown = false;
  constructor(private readonly total: number) {}

  draw(done: number, totals: Totals, current: string): void {
    const width = 24;
    const filled = this.total === 0 ? width : Math.round((done / this.total) * width);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    const line = `backfill [${bar}] ${done}/${this.total} days · ${totals.new} new · ${totals.updated} updated · ${totals.requests} requests${current ? ` · ${current}` : ''}`;
    process.stderr.write(`\r\x1b[K${line}`);
    this.shown = true;
  }

  end(): void {
    if (this.shown) process.stderr.write('\n');
    this.shown = false;
  }
}

export async function backfillCommand(config: Config, flags: BackfillFlags): Promise<number> {
  const today = dayInTimeZone(new Date());
  const from = flags.from;
  const to = flags.to ?? today;
  const problems = validateRange(from, to, today);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`polisen-collector: configuration error: ${p}\n`);
    return EXIT_USAGE;
  }

  const logger = await createLogger({ level: config.logLevel });
  for (const warning of flags.warnings) logger.warn(warning);
  logger.debug(
    hasLongLivedRuntime()
      ? {
          runtime: 'long-lived',
          execArgv: process.execArgv,
          env: Object.fromEntries(Object.keys(LONG_LIVED_ENV).map((k) => [k, process.env[k]])),
        }
      : {
          runtime: 'default',
          settingsNotApplied: [...LONG_LIVED_NODE_FLAGS, ...Object.keys(LONG_LIVED_ENV)],
        },
    'runtime settings',
  );
  const started = performance.now();
  const days = daysInRange(from, to);
  const key: BackfillKey = {
    store: describeStore(config.store),
    prefix: config.prefix,
    locations: config.locations,
    types: config.types,
    from,
    to,
  };
  const path = progressPath(config.stateDir, key);
  const totals = zeroTotals();
  const bar = process.stderr.isTTY ? new ProgressBar(days.length) : undefined;
  let progress: BackfillProgress = emptyProgress();
  let daysSkipped = 0;
  /** Days finished in this run that stay open (today): not saved as done, but counted for the display. */
  let openDaysFinished = 0;

  const stop = stopOnSignals(logger);
  let ownLock: RunLock | undefined;
  try {
    const lockResult = await acquireRunLock(config.stateDir, {
      name: backfillLockName(key),
      maxAgeMs: BACKFILL_LOCK_MAX_AGE_MS,
    });
    if (isLockHeld(lockResult)) {
      const { pid, startedAt } = lockResult.heldBy;
      throw new CollectorError(
        'E_LOCKED',
        `the same backfill (${from} to ${to} into ${key.store}) is already running: pid ${pid} since ${startedAt}`,
        { exitCode: EXIT_FAILED, hint: 'wait for it to finish, or stop it and run this command again' },
      );
    }
    ownLock = lockResult;
    progress = (await readProgress(path, key)) ?? emptyProgress();
    daysSkipped = countDone(progress, days);
    if (daysSkipped > 0) {
      logger.info(
        { progressFile: path, daysDone: daysSkipped, days: days.length },
        `resuming: ${daysSkipped} of ${days.length} days were done by an earlier run`,
      );
    }
    const perHour = config.pacingRules.maxPerHour - COLLECT_RESERVE_PER_HOUR;
    const daysLeft = days.length - daysSkipped;
    if (config.pacing && daysLeft > perHour) {
      logger.info(
        { daysLeft, callsPerHour: perHour },
        `${daysLeft} days to fetch take at least ${daysLeft} API calls, about ${Math.ceil(daysLeft / perHour)} h at the ${perHour} calls an hour a backfill may use: it stops when the hour's budget is spent; run it again (e.g. hourly from cron) until it is done`,
      );
    }

    const store = openStore(config, logger);
    const fetchFeed = createFeedFetcher(config, logger);
    const collectLock = collectLockName(config.prefix);
    const collectOptions = {
      ...DEFAULT_COLLECT_OPTIONS,
      dryRun: false,
      maxSeenIds: config.maxSeenIds,
      revisions: config.revisions,
      prefix: config.prefix,
      detectGaps: false,
    };

    /** Fetch (paced, no lock held), then store under the collect lock. */
    const runUnit = async (unit: BackfillUnit): Promise<RunSummary> => {
      stop.throwIfStopped();
      if (config.pacing) await checkCollectReserve(config.stateDir, config.pacingRules);
      const fetching = fetchFeed({ DateTime: unitQuery(unit) });
      const feed = await stop.race(fetching);
      const lock = await waitForLock(config.stateDir, collectLock, stop, logger);
      try {
        return await runCollect(
          { store, fetchFeed: async (): Promise<FeedResult> => feed, logger },
          collectOptions,
        );
      } finally {
        await lock.release();
      }
    };

    const draw = (current: string): void =>
      bar?.draw(countDone(progress, days) + openDaysFinished, totals, current);
    const save = async (next: BackfillProgress): Promise<void> => {
      progress = next;
      await writeProgress(path, key, progress);
    };

    for (const day of days) {
      if (isDayDone(progress, day)) continue;
      const dayTotals = zeroTotals();
      const dayStarted = performance.now();
      draw(day);
      if (!isDaySplit(progress, day)) {
        const summary = await runUnit({ day });
        addSummary(dayTotals, summary);
        await save(afterDayFetched(progress, day, summary.counts.fetched, today));
        if (isDaySplit(progress, day)) {
          dayTotals.splitDays++;
          logger.info(
            { day, fetched: summary.counts.fetched },
            `${day} returned ${summary.counts.fetched} events, the API's cap: fetching it hour by hour`,
          );
        }
      } else {
        dayTotals.splitDays++;
      }
      if (isDaySplit(progress, day)) {
        for (const hour of hoursToDo(progress, day)) {
          draw(`${day} ${String(hour).padStart(2, '0')}h`);
          const summary = await runUnit({ day, hour });
          addSummary(dayTotals, summary);
          if (isTruncated(summary.counts.fetched)) {
            dayTotals.truncatedHours++;
            logger.warn(
              { day, hour, fetched: summary.counts.fetched },
              `${unitQuery({ day, hour })}h returned ${summary.counts.fetched} events, the API's cap: that hour may be incomplete and cannot be split further`,
            );
          }
          await save(afterHourFetched(progress, day, hour, today));
        }
      }
      if (!isDayDone(progress, day)) openDaysFinished++;
      addTotals(totals, dayTotals);
      const dayFields = { day, ...dayTotals, ms: Math.round(performance.now() - dayStarted) };
      const dayLine = `${day}: ${dayTotals.new} new, ${dayTotals.updated} updated of ${dayTotals.fetched} fetched (${dayTotals.requests} request${dayTotals.requests === 1 ? '' : 's'})`;
      if (bar) logger.debug(dayFields, dayLine);
      else logger.info(dayFields, dayLine);
    }
    draw('');
    bar?.end();
    logger.info(
      summaryFields(
        'success',
        from,
        to,
        days.length,
        countDone(progress, days),
        daysSkipped,
        totals,
        started,
      ),
      `backfill ${from} to ${to} done: ${totals.new} new, ${totals.updated} updated of ${totals.fetched} fetched in ${totals.requests} requests (${daysSkipped} of ${days.length} days were done before)`,
    );
    return EXIT_OK;
  } catch (error) {
    bar?.end();
    const daysDone = countDone(progress, days);
    const where = `${daysDone} of ${days.length} days done, progress saved in ${path}`;
    const fields = (outcome: string) =>
      summaryFields(outcome, from, to, days.length, daysDone, daysSkipped, totals, started);
    if (error instanceof Stopped) {
      logger.warn(
        fields('interrupted'),
        `backfill interrupted by ${error.signal}: ${where}; run the same command again to resume`,
      );
      return EXIT_FAILED;
    }
    const described = describeError(error);
    if (described.code === 'E_PACING_BUDGET') {
      const resumeAfter = resumeTimeOf(error);
      logger.warn(
        { ...fields('stopped'), code: described.code, ...(resumeAfter ? { resumeAfter } : {}) },
        `backfill stopped, API call budget: ${(error as Error).message}; ${where}; run the same command again ${resumeAfter ? `after ${resumeAfter}` : 'later'} to resume`,
      );
      return described.exitCode;
    }
    logger.error(
      { ...fields('failed'), code: described.code },
      `backfill failed: ${described.line}; ${where}; run the same command again to resume`,
    );
    return described.exitCode;
  } finally {
    stop.dispose();
    await ownLock?.release();
    // A fetch abandoned on a signal (pacing sleep or HTTP retries) would keep the process alive; nothing
    // of it is needed, and everything worth keeping is saved.
    if (stop.abandonedWork) setTimeout(() => process.exit(), 0).unref();
  }
}

function summaryFields(
  outcome: string,
  from: string,
  to: string,
  days: number,
  daysDone: number,
  daysSkipped: number,
  totals: Totals,
  started: number,
): Record<string, unknown> {
  return {
    outcome,
    from,
    to,
    days,
    daysDone,
    daysSkipped,
    ...totals,
    ms: Math.round(performance.now() - started),
  };
}

/** Refuses to take one of the calls the scheduled collect runs need (upper-bound resume time). */
async function checkCollectReserve(stateDir: string, rules: Config['pacingRules']): Promise<void> {
  const state = await readPacingState(stateDir);
  const now = Date.now();
  const hourLimit = rules.maxPerHour - COLLECT_RESERVE_PER_HOUR;
  const dayLimit = rules.maxPerDay - COLLECT_RESERVE_PER_DAY;
  const spent =
    state.callsLastDay >= dayLimit
      ? { window: 'day', calls: state.callsLastDay, limit: dayLimit, refillMs: 86_400_000 }
      : state.callsLastHour >= hourLimit
        ? { window: 'hour', calls: state.callsLastHour, limit: hourLimit, refillMs: 3_600_000 }
        : undefined;
  if (!spent) return;
  const at = new Date(now + spent.refillMs).toISOString();
  throw Object.assign(
    new CollectorError(
      'E_PACING_BUDGET',
      `${spent.calls} API calls in the last ${spent.window}; backfill stops at ${spent.limit} to leave the rest to the scheduled collect runs; no call was made`,
    ),
    { resumeAfter: at },
  );
}

/** When the budget allows the next call: ours, or the one the pacer's message names. */
function resumeTimeOf(error: unknown): string | undefined {
  const own = (error as { resumeAfter?: unknown }).resumeAfter;
  if (typeof own === 'string') return own;
  const message = error instanceof Error ? error.message : '';
  return /allowed at (\d{4}-\d{2}-\d{2}T[\d:.]+Z)/.exec(message)?.[1];
}

async function waitForLock(
  stateDir: string,
  name: string,
  stop: StopSignal,
  logger: Logger,
): Promise<RunLock> {
  const deadline = Date.now() + COLLECT_LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    const result = await acquireRunLock(stateDir, { name });
    if (!isLockHeld(result)) return result;
    const { pid, startedAt } = result.heldBy;
    if (attempt === 0) {
      logger.info(
        { heldBy: result.heldBy },
        `waiting for the run in progress (pid ${pid} since ${startedAt})`,
      );
    }
    if (Date.now() >= deadline) {
      throw new CollectorError(
        'E_LOCKED',
        `the run lock ${result.path} has been held by pid ${pid} since ${startedAt} for more than ${formatDuration(COLLECT_LOCK_WAIT_MS)}`,
        {
          exitCode: EXIT_FAILED,
          hint: 'that run seems stuck; the next backfill takes the lock over once it exits',
        },
      );
    }
    await stop.race(new Promise<void>((resolve) => setTimeout(resolve, 200 + Math.random() * 300)));
  }
}

export interface StopSignal {
  throwIfStopped(): void;
  /** `work`, or Stopped as soon as a signal arrives (the work is then abandoned). */
  race<T>(work: Promise<T>): Promise<T>;
  readonly abandonedWork: boolean;
  dispose(): void;
}

/**
 * SIGINT/SIGTERM: stop at the next safe point (waiting for a slot, fetching, between queries); store
 * writes in progress finish first. A second signal quits at once, which is safe too: the next run
 * records whatever objects were written and not yet recorded.
 */
export function stopOnSignals(logger: Logger, relaunched = hasLongLivedRuntime()): StopSignal {
  let stoppedBy: NodeJS.Signals | undefined;
  let abandoned = false;
  let wake: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  let stoppedAt = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stoppedBy !== undefined) {
      // Relaunched (long-lived-runtime.ts), one stop request can come twice: from the terminal or systemd,
      // which signal every process of the group or unit, and from the first process passing it on.
      if (relaunched && signal === stoppedBy && performance.now() - stoppedAt < SAME_STOP_REQUEST_MS) return;
      process.exit(EXIT_FAILED);
    }
    stoppedBy = signal;
    stoppedAt = performance.now();
    logger.info({ signal }, `${signal}: stopping after the current step (send it again to quit at once)`);
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    throwIfStopped() {
      if (stoppedBy !== undefined) throw new Stopped(stoppedBy);
    },
    async race<T>(work: Promise<T>): Promise<T> {
      this.throwIfStopped();
      const winner = await Promise.race([work.then((value) => ({ value })), stopped.then(() => undefined)]);
      if (winner === undefined) {
        abandoned = true;
        work.catch(() => {});
        throw new Stopped(stoppedBy ?? 'signal');
      }
      return winner.value;
    },
    get abandonedWork() {
      return abandoned;
    },
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // Relaunched, the second copy of the stop request honoured may still be on its way when the backfill
      // has ended: absorbed for the rest of the window, or its default action would kill a process that is
      // exiting cleanly (and the first process would report that death). Neither holds the process open.
      const rest = SAME_STOP_REQUEST_MS - (performance.now() - stoppedAt);
      if (relaunched && stoppedBy !== undefined && rest > 0) {
        const signal = stoppedBy;
        const absorb = (): void => {};
        process.on(signal, absorb);
        setTimeout(() => process.off(signal, absorb), rest).unref();
      }
    },
  };
}
