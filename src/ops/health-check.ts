/**
 * Is the collector healthy? A pure verdict on the last run status, plus the duration parsing/formatting the
 * `health --max-age 45m` option and the messages need.
 *
 * Rules (maxAge is the longest acceptable time since the last successful run):
 * - no status: unhealthy (`no run recorded in <dir>`).
 * - success: healthy when it finished within maxAge.
 * - failed: unhealthy, whatever the last success was (the most recent run is what counts).
 * - running: healthy only when the run started within maxAge AND the last success was within maxAge of the
 *   moment this run started, i.e. the host was healthy when the run began and the run is not stuck. The slack
 *   for a running run is therefore its own duration, capped at maxAge. A run that never had a success before
 *   is unhealthy while running. A run killed without writing its final status shows as "running" and turns
 *   unhealthy once it is older than maxAge.
 */

import { CollectorError } from '../errors.js';
import type { RunStatus } from './run-status.js';

export interface HealthVerdict {
  ok: boolean;
  /** One line for a human or a monitoring check. */
  line: string;
}

/**
 * The verdict on `status` at `now`. `where` names the state directory in the "no run recorded" line.
 */
export function evaluateHealth(
  status: RunStatus | undefined,
  now: Date,
  maxAgeMs: number,
  where = 'the state directory',
): HealthVerdict {
  if (status === undefined) return { ok: false, line: `no run recorded in ${where}` };
  const nowMs = now.getTime();
  const limit = formatDuration(maxAgeMs);
  const lastSuccessMs = parseTime(status.lastSuccessAt);
  const sinceSuccess = lastSuccessMs === undefined ? undefined : ageMs(nowMs, lastSuccessMs);
  const lastSuccessPart =
    sinceSuccess === undefined
      ? 'no successful run recorded'
      : `last success ${formatDuration(sinceSuccess)} ago (${status.lastSuccessAt})`;

  switch (status.outcome) {
    case 'success': {
      const finishedMs = parseTime(status.finishedAt) ?? lastSuccessMs ?? parseTime(status.startedAt);
      if (finishedMs === undefined) return { ok: false, line: `the run status has no valid finish time` };
      const age = ageMs(nowMs, finishedMs);
      const at = status.finishedAt ?? status.lastSuccessAt ?? status.startedAt;
      if (age <= maxAgeMs) {
        return { ok: true, line: `last success ${formatDuration(age)} ago (${at}), within ${limit}` };
      }
      return { ok: false, line: `last success ${formatDuration(age)} ago (${at}), more than ${limit}` };
    }
    case 'failed': {
      const at = status.finishedAt ?? status.startedAt;
      const error = status.error ? `${status.error.code} ${status.error.message}` : 'no error recorded';
      return {
        ok: false,
        line: `last run failed at ${at} (${status.command}): ${error}; ${lastSuccessPart}`,
      };
    }
    case 'running': {
      const startedMs = parseTime(status.startedAt);
      if (startedMs === undefined) return { ok: false, line: `the run status has no valid start time` };
      const runningFor = ageMs(nowMs, startedMs);
      const run = `a run started ${formatDuration(runningFor)} ago (${status.startedAt}) is still running`;
      if (runningFor > maxAgeMs) return { ok: false, line: `${run}, more than ${limit}` };
      if (lastSuccessMs === undefined) return { ok: false, line: `${run}; no successful run recorded yet` };
      if (ageMs(startedMs, lastSuccessMs) > maxAgeMs) {
        return { ok: false, line: `${run}; ${lastSuccessPart}, more than ${limit} before it started` };
      }
      return { ok: true, line: `${run}; ${lastSuccessPart}` };
    }
    default:
      return { ok: false, line: `unknown run outcome "${String(status.outcome)}"` };
  }
}

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
const UNIT_ORDER: readonly Unit[] = ['d', 'h', 'm', 's', 'ms'];

/**
 * Parses `90s`, `45m`, `2h`, `1h30m`, `1d`, `500ms` (units in decreasing order, each at most once, spaces
 * allowed between parts) into milliseconds. Throws CollectorError E_CONFIG for anything else or for zero.
 */
export function parseDuration(text: string): number {
  const input = text.trim();
  const fail = (why: string): never => {
    throw new CollectorError('E_CONFIG', `invalid duration "${text}": ${why}`, {
      hint: 'give a number with a unit, e.g. 90s, 45m, 2h or 1h30m',
    });
  };
  if (input === '') fail('it is empty');
  const part = /(\d+)\s*(ms|d|h|m|s)\s*/y;
  let total = 0;
  let lastUnitIndex = -1;
  while (part.lastIndex < input.length) {
    const match = part.exec(input);
    if (match === null) {
      return fail(/^\d+$/.test(input) ? 'a unit is missing' : `cannot read "${input.slice(part.lastIndex)}"`);
    }
    const unit = match[2] as Unit;
    const unitIndex = UNIT_ORDER.indexOf(unit);
    if (unitIndex <= lastUnitIndex) fail('units must go from largest to smallest, each once');
    lastUnitIndex = unitIndex;
    total += Number(match[1]) * UNIT_MS[unit];
  }
  if (!Number.isSafeInteger(total)) fail('it is too large');
  if (total === 0) fail('it must be longer than zero');
  return total;
}

/** `2h 3m`, `45m`, `1m 30s`, `1d 2h`, `350ms`: the two largest non-zero units, rounded down. */
export function formatDuration(ms: number): string {
  const value = Math.max(0, Math.floor(ms));
  if (value < 1000) return `${value}ms`;
  const parts: string[] = [];
  let rest = value;
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    rest -= count * UNIT_MS[unit];
    if (count > 0 || parts.length > 0) parts.push(`${count}${unit}`);
    if (parts.length === 2) break;
  }
  return parts.filter((p) => !/^0[a-z]+$/.test(p)).join(' ');
}

function parseTime(iso: string | undefined): number | undefined {
  if (iso === undefined) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Time from `thenMs` to `nowMs`; a time in the future (clock skew) counts as zero. */
function ageMs(nowMs: number, thenMs: number): number {
  return Math.max(0, nowMs - thenMs);
}
