import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CollectorError } from '../src/errors.js';
import { evaluateHealth, formatDuration, parseDuration } from '../src/ops/health-check.js';
import { type RunStatus, readRunStatus, runStatusPath, writeRunStatus } from '../src/ops/run-status.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const NOW = new Date('2024-03-01T12:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'polisen-health-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('parseDuration', () => {
  it.each([
    ['45m', 45 * MIN],
    ['2h', 2 * HOUR],
    ['90s', 90_000],
    ['1h30m', 90 * MIN],
    [' 1h 30m ', 90 * MIN],
    ['1d', 24 * HOUR],
    ['1d2h3m4s', 26 * HOUR + 3 * MIN + 4000],
    ['500ms', 500],
    ['1m500ms', 60_500],
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['', 'empty'],
    ['45', 'unit is missing'],
    ['abc', 'cannot read "abc"'],
    ['1.5h', 'cannot read'],
    ['-5m', 'cannot read'],
    ['30m1h', 'largest to smallest'],
    ['1h1h', 'largest to smallest'],
    ['0s', 'longer than zero'],
    ['5 minutes', 'cannot read'],
  ])('rejects "%s" (%s)', (text, why) => {
    let caught: unknown;
    try {
      parseDuration(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CollectorError);
    expect((caught as CollectorError).code).toBe('E_CONFIG');
    expect((caught as CollectorError).message).toContain(`"${text}"`);
    expect((caught as CollectorError).message).toContain(why);
    expect((caught as CollectorError).hint).toContain('45m');
  });
});

describe('formatDuration', () => {
  it.each([
    [2 * HOUR + 3 * MIN + 7000, '2h 3m'],
    [45 * MIN, '45m'],
    [90_000, '1m 30s'],
    [26 * HOUR, '1d 2h'],
    [2 * HOUR + 5000, '2h'],
    [350, '350ms'],
    [-5, '0ms'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('evaluateHealth', () => {
  const maxAge = 45 * MIN;
  const success = (finishedAgo: number): RunStatus => ({
    command: 'collect',
    startedAt: ago(finishedAgo + 4000),
    finishedAt: ago(finishedAgo),
    outcome: 'success',
    lastSuccessAt: ago(finishedAgo),
  });

  it('is unhealthy when no run was recorded, naming where it looked', () => {
    expect(evaluateHealth(undefined, NOW, maxAge, '/var/lib/polisen')).toEqual({
      ok: false,
      line: 'no run recorded in /var/lib/polisen',
    });
  });

  it('is healthy after a recent success', () => {
    const verdict = evaluateHealth(success(12 * MIN), NOW, maxAge);
    expect(verdict.ok).toBe(true);
    expect(verdict.line).toBe(`last success 12m ago (${ago(12 * MIN)}), within 45m`);
  });

  it('is healthy exactly at maxAge and unhealthy just after', () => {
    expect(evaluateHealth(success(maxAge), NOW, maxAge).ok).toBe(true);
    expect(evaluateHealth(success(maxAge + 1000), NOW, maxAge).ok).toBe(false);
  });

  it('is unhealthy when the last success is too old', () => {
    const verdict = evaluateHealth(success(2 * HOUR + 3 * MIN), NOW, maxAge);
    expect(verdict.ok).toBe(false);
    expect(verdict.line).toBe(`last success 2h 3m ago (${ago(2 * HOUR + 3 * MIN)}), more than 45m`);
  });

  it('is unhealthy when the last run failed, even right after a success', () => {
    const verdict = evaluateHealth(
      {
        command: 'collect',
        startedAt: ago(2 * MIN),
        finishedAt: ago(MIN),
        outcome: 'failed',
        error: { code: 'E_FEED_HTTP', message: 'the API answered 503' },
        lastSuccessAt: ago(6 * MIN),
      },
      NOW,
      maxAge,
    );
    expect(verdict.ok).toBe(false);
    expect(verdict.line).toBe(
      `last run failed at ${ago(MIN)} (collect): E_FEED_HTTP the API answered 503; last success 6m ago (${ago(6 * MIN)})`,
    );
  });

  it('says when a failed host never succeeded', () => {
    const verdict = evaluateHealth(
      { command: 'collect', startedAt: ago(MIN), finishedAt: ago(MIN), outcome: 'failed' },
      NOW,
      maxAge,
    );
    expect(verdict.line).toContain('no error recorded; no successful run recorded');
  });

  describe('a run still running', () => {
    const running = (startedAgo: number, lastSuccessAgo?: number): RunStatus => ({
      command: 'collect',
      startedAt: ago(startedAgo),
      outcome: 'running',
      ...(lastSuccessAgo === undefined ? {} : { lastSuccessAt: ago(lastSuccessAgo) }),
    });

    it('is healthy when it started recently and the success before it was recent', () => {
      const verdict = evaluateHealth(running(2 * MIN, 14 * MIN), NOW, maxAge);
      expect(verdict.ok).toBe(true);
      expect(verdict.line).toBe(
        `a run started 2m ago (${ago(2 * MIN)}) is still running; last success 14m ago (${ago(14 * MIN)})`,
      );
    });

    it('allows its own duration as slack: success 50m ago, run started 10m ago', () => {
      expect(evaluateHealth(running(10 * MIN, 50 * MIN), NOW, maxAge).ok).toBe(true);
    });

    it('is unhealthy when the success before it was already too old when it started', () => {
      const verdict = evaluateHealth(running(10 * MIN, 60 * MIN), NOW, maxAge);
      expect(verdict.ok).toBe(false);
      expect(verdict.line).toContain('more than 45m before it started');
    });

    it('is unhealthy when it has been running longer than maxAge (stuck or killed)', () => {
      const verdict = evaluateHealth(running(HOUR, HOUR + 5 * MIN), NOW, maxAge);
      expect(verdict.ok).toBe(false);
      expect(verdict.line).toBe(`a run started 1h ago (${ago(HOUR)}) is still running, more than 45m`);
    });

    it('is unhealthy while the very first run is running', () => {
      const verdict = evaluateHealth(running(MIN), NOW, maxAge);
      expect(verdict.ok).toBe(false);
      expect(verdict.line).toContain('no successful run recorded yet');
    });
  });
});

describe('run status file', () => {
  it('creates the state directory 0700 and reads back what it wrote', async () => {
    const stateDir = join(await tempDir(), 'state', 'nested');
    expect(await readRunStatus(stateDir)).toBeUndefined();
    const status: RunStatus = {
      command: 'collect',
      startedAt: ago(MIN),
      finishedAt: ago(0),
      outcome: 'success',
      counts: { fetched: 500, new: 12 },
    };
    const written = await writeRunStatus(stateDir, status);
    expect(written).toEqual({ ...status, lastSuccessAt: status.finishedAt });
    expect(await readRunStatus(stateDir)).toEqual(written);
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    expect((await stat(runStatusPath(stateDir))).mode & 0o777).toBe(0o600);
    expect(await readdir(stateDir)).toEqual(['run-status.json']);
  });

  it('carries the last success over running and failed runs', async () => {
    const stateDir = await tempDir();
    await writeRunStatus(stateDir, {
      command: 'collect',
      startedAt: ago(30 * MIN),
      finishedAt: ago(29 * MIN),
      outcome: 'success',
    });
    const running = await writeRunStatus(stateDir, {
      command: 'collect',
      startedAt: ago(20 * MIN),
      outcome: 'running',
    });
    expect(running.lastSuccessAt).toBe(ago(29 * MIN));
    await writeRunStatus(stateDir, {
      command: 'collect',
      startedAt: ago(20 * MIN),
      finishedAt: ago(19 * MIN),
      outcome: 'failed',
      error: { code: 'E_STORE', message: 'PUT answered 500' },
    });
    const failedAgain = await writeRunStatus(stateDir, {
      command: 'collect',
      startedAt: ago(10 * MIN),
      finishedAt: ago(9 * MIN),
      outcome: 'failed',
      error: { code: 'E_STORE', message: 'PUT answered 500' },
    });
    expect(failedAgain.lastSuccessAt).toBe(ago(29 * MIN));
    const read = await readRunStatus(stateDir);
    expect(read?.lastSuccessAt).toBe(ago(29 * MIN));
    expect(read?.outcome).toBe('failed');
    expect(evaluateHealth(read, NOW, 45 * MIN).line).toContain('last run failed at');

    const success = await writeRunStatus(stateDir, {
      command: 'collect',
      startedAt: ago(MIN),
      finishedAt: ago(0),
      outcome: 'success',
    });
    expect(success.lastSuccessAt).toBe(ago(0));
    expect(evaluateHealth(await readRunStatus(stateDir), NOW, 45 * MIN).ok).toBe(true);
  });

  it('reports an unreadable status file on read, and replaces it on the next write', async () => {
    const stateDir = await tempDir();
    await writeFile(runStatusPath(stateDir), '{"command": "collect", "outc');
    await expect(readRunStatus(stateDir)).rejects.toMatchObject({ code: 'E_HEALTH' });
    await writeFile(runStatusPath(stateDir), '{"command": "collect", "startedAt": "x", "outcome": "maybe"}');
    await expect(readRunStatus(stateDir)).rejects.toMatchObject({ code: 'E_HEALTH' });
    const written = await writeRunStatus(stateDir, {
      command: 'collect',
      startedAt: ago(0),
      outcome: 'failed',
    });
    expect(written.lastSuccessAt).toBeUndefined();
    expect(JSON.parse(await readFile(runStatusPath(stateDir), 'utf8'))).toEqual(written);
  });
});
