/**
 * `polisen-collector collect`: one run, with the operations around it (run lock, status for
 * `health`, healthchecks ping, Prometheus textfile) and exactly one summary line.
 */

import { createFeedFetcher, openStore } from '../composition-root.js';
import type { Config } from '../config.js';
import { describeError, type ErrorCode, EXIT_FAILED, EXIT_OK } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { createPinger } from '../ops/healthcheck-ping.js';
import {
  type ErrorPhase,
  readCountersFromFile,
  renderMetrics,
  writeMetricsFile,
} from '../ops/metrics-file.js';
import { acquireRunLock, collectLockName, isLockHeld, type RunLock } from '../ops/run-lock.js';
import { readRunStatus, writeRunStatus } from '../ops/run-status.js';
import { DEFAULT_COLLECT_OPTIONS, type RunSummary, runCollect } from '../run/collect-run.js';

export interface CollectFlags {
  dryRun: boolean;
  warnings: string[];
}

function errorPhase(code: ErrorCode): ErrorPhase {
  if (code.startsWith('E_SECRETS')) return 'secrets';
  if (code === 'E_PACING_BUDGET') return 'pacing';
  if (code.startsWith('E_FEED')) return 'fetch';
  if (code === 'E_METADATA' || code === 'E_CONFLICT') return 'write_metadata';
  if (code.startsWith('E_STORE')) return 'write_objects';
  return 'other';
}

function isoDate(unix: number): string {
  return new Date(unix * 1000).toISOString().slice(0, 10);
}

function summaryFields(s: RunSummary): Record<string, unknown> {
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    outcome: s.outcome,
    ...s.counts,
    objects: s.objects.length,
    bytesWritten: s.bytesWritten,
    responseBytes: s.responseBytes,
    metadataBytes: s.metadataBytes,
    seenIds: s.seenIds,
    storedIds: s.storedIds,
    recoveredObjects: s.recoveredObjects,
    duplicatesRemoved: s.duplicatesRemoved,
    declaredPartitions: s.declaredPartitions,
    casRetries: s.casRetries,
    gaps: s.gap ? 1 : 0,
    ms: Object.fromEntries(Object.entries(s.ms).map(([k, v]) => [k, round(v)])),
  };
}

function reportGap(logger: Logger, summary: RunSummary): void {
  if (!summary.gap) return;
  const { fromUnix, toUnix } = summary.gap;
  const from = fromUnix === undefined ? undefined : new Date(fromUnix * 1000).toISOString();
  const command = `polisen-collector backfill --from ${fromUnix === undefined ? 'YYYY-MM-DD' : isoDate(fromUnix)} --to ${isoDate(toUnix)}`;
  logger.warn(
    { gapFrom: from ?? 'unknown', gapTo: new Date(toUnix * 1000).toISOString(), backfill: command },
    `gap: this response shares no event with the store, so events between ${from ?? 'the last run'} and ${new Date(toUnix * 1000).toISOString()} may be missing; run: ${command}`,
  );
}

async function writeMetrics(
  config: Config,
  summary: RunSummary | undefined,
  ok: boolean,
  phase?: ErrorPhase,
  lastSuccessAt?: string,
): Promise<void> {
  if (!config.metricsFile) return;
  const previous = await readCountersFromFile(config.metricsFile);
  const nowMs = Date.now();
  const text = renderMetrics(
    {
      finishedAtMs: nowMs,
      success: ok,
      lastSuccessAtMs: ok ? nowMs : lastSuccessAt ? Date.parse(lastSuccessAt) : undefined,
      durationsMs: summary
        ? {
            fetch: summary.ms.fetch,
            read_metadata: summary.ms.readMetadata + summary.ms.list,
            write_objects: summary.ms.writeObjects,
            write_metadata: summary.ms.declare + summary.ms.commit,
            total: summary.ms.total,
          }
        : {},
      events: summary
        ? {
            fetched: summary.counts.fetched,
            new: summary.counts.new,
            updated: summary.counts.updated,
            quarantined: summary.counts.quarantined,
            already_seen: summary.counts.alreadySeen,
          }
        : {},
      errors: phase ? { [phase]: 1 } : {},
      gaps: summary?.gap ? 1 : 0,
      seenIds: summary?.seenIds,
      storedIds: summary?.storedIds,
      responseBytes: summary?.responseBytes,
    },
    previous,
  );
  await writeMetricsFile(config.metricsFile, text);
}

export async function collectCommand(config: Config, flags: CollectFlags): Promise<number> {
  const logger = await createLogger({ level: config.logLevel });
  // Setting warnings ride on the one summary line rather than adding lines to every cron run.
  const warnings = flags.warnings.length > 0 ? { warnings: flags.warnings } : {};
  const startedAt = new Date().toISOString();
  let lock: RunLock | undefined;
  if (!flags.dryRun) {
    const lockName = collectLockName(config.prefix);
    const result = await acquireRunLock(config.stateDir, { name: lockName });
    if (isLockHeld(result)) {
      logger.info(
        { heldBy: result.heldBy },
        `another run is in progress (pid ${result.heldBy.pid} since ${result.heldBy.startedAt}); not starting`,
      );
      return config.failIfLocked ? EXIT_FAILED : EXIT_OK;
    }
    lock = result;
  }
  const pinger = createPinger(flags.dryRun ? undefined : config.pingUrl, {
    userAgent: config.userAgent,
    onError: (error, kind) => logger.warn({ kind, err: error.message }, 'healthcheck ping failed'),
  });
  let summary: RunSummary | undefined;
  try {
    if (!flags.dryRun) {
      await Promise.all([
        writeRunStatus(config.stateDir, { command: 'collect', startedAt, outcome: 'running' }),
        pinger.start(),
      ]);
    }
    const store = openStore(config, logger);
    const fetchFeed = createFeedFetcher(config, logger);
    summary = await runCollect(
      { store, fetchFeed: () => fetchFeed(), logger },
      {
        ...DEFAULT_COLLECT_OPTIONS,
        dryRun: flags.dryRun,
        maxSeenIds: config.maxSeenIds,
        revisions: config.revisions,
        prefix: config.prefix,
      },
    );
    reportGap(logger, summary);
    if (flags.dryRun) {
      for (const o of summary.objects)
        logger.info({ object: o.name, lines: o.lines, bytes: o.bytes }, `would write ${o.name}`);
      logger.info(
        { store: store.description, ...summaryFields(summary), ...warnings },
        `dry run: would write ${summary.objects.length} objects (${summary.counts.new} new, ${summary.counts.updated} updated, ${summary.counts.quarantined} quarantined, ${summary.counts.alreadySeen} already seen); nothing was written`,
      );
      return EXIT_OK;
    }
    const finishedAt = new Date().toISOString();
    await Promise.all([
      writeRunStatus(config.stateDir, {
        command: 'collect',
        startedAt,
        finishedAt,
        outcome: 'success',
        counts: { ...summary.counts, objects: summary.objects.length },
      }),
      writeMetrics(config, summary, true),
    ]);
    logger.info(
      { store: store.description, ...summaryFields(summary), ...warnings },
      `collected ${summary.counts.new} new, ${summary.counts.updated} updated, ${summary.counts.quarantined} quarantined of ${summary.counts.fetched} fetched`,
    );
    await pinger.success(`${summary.counts.new} new, ${summary.counts.updated} updated`);
    return EXIT_OK;
  } catch (error) {
    const described = describeError(error);
    summary ??= (error as { summary?: RunSummary }).summary;
    logger.error(
      { ...(summary ? summaryFields(summary) : {}), outcome: 'failed', code: described.code, ...warnings },
      described.line,
    );
    if (!flags.dryRun) {
      const previous = await readRunStatus(config.stateDir).catch(() => undefined);
      await Promise.all([
        writeRunStatus(config.stateDir, {
          command: 'collect',
          startedAt,
          finishedAt: new Date().toISOString(),
          outcome: 'failed',
          error: { code: described.code, message: described.line },
          ...(previous?.lastSuccessAt ? { lastSuccessAt: previous.lastSuccessAt } : {}),
        }).catch((e: unknown) => logger.warn({ err: String(e) }, 'could not write the run status')),
        writeMetrics(config, summary, false, errorPhase(described.code), previous?.lastSuccessAt).catch(
          (e: unknown) => logger.warn({ err: String(e) }, 'could not write the metrics file'),
        ),
        pinger.fail(described.line),
      ]);
    }
    return described.exitCode;
  } finally {
    await lock?.release();
  }
}
