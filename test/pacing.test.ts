import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CollectorError } from '../src/errors.js';
import {
  createPacer,
  PACING_LOG_FILE,
  type PacerOptions,
  readPacingState,
  SEND_MARGIN_MS,
} from '../src/ops/pacing.js';

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const T0 = Date.parse('2024-03-01T00:00:00.000Z');

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'polisen-pacing-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A pacer on a fake clock: sleeping advances the clock, and every sleep is recorded. */
function fakeClockPacer(stateDir: string, options: Partial<PacerOptions> = {}) {
  const clock = { now: T0, sleeps: [] as number[] };
  const pacer = createPacer({
    stateDir,
    // Slots exactly minIntervalMs apart, so the expectations read in the API's numbers (margin: its own test).
    sendMarginMs: 0,
    now: () => clock.now,
    sleep: async (ms) => {
      clock.sleeps.push(ms);
      clock.now += ms;
    },
    ...options,
  });
  return { clock, pacer };
}

async function rejection(promise: Promise<unknown>): Promise<CollectorError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CollectorError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

async function loggedCalls(stateDir: string): Promise<number[]> {
  return (JSON.parse(await readFile(join(stateDir, PACING_LOG_FILE), 'utf8')) as { calls: number[] }).calls;
}

interface ChildSlot {
  pid: number;
  slotAt: number;
  waitedMs: number;
  returnedAt: number;
}

function runPacerChild(
  stateDir: string,
  minIntervalMs: number,
  count: number,
  goAt: number,
): Promise<ChildSlot[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'test/fixtures/pacer-child.ts',
        stateDir,
        String(minIntervalMs),
        String(count),
        String(goAt),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`pacer child exited with ${code}`));
      else
        resolve(
          out
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as ChildSlot),
        );
    });
  });
}

describe('createPacer', () => {
  it('spaces calls of two processes at least minIntervalMs apart', async () => {
    const stateDir = await tempDir();
    const goAt = Date.now() + 1200;
    const [a, b] = await Promise.all([
      runPacerChild(stateDir, 300, 3, goAt),
      runPacerChild(stateDir, 300, 3, goAt),
    ]);
    const slots = [...(a ?? []), ...(b ?? [])].sort((x, y) => x.slotAt - y.slotAt);
    expect(slots).toHaveLength(6);
    expect(new Set(slots.map((s) => s.pid)).size).toBe(2);
    for (let i = 1; i < slots.length; i++) {
      expect(slots[i]!.slotAt - slots[i - 1]!.slotAt).toBeGreaterThanOrEqual(300);
    }
    // Nobody returned before its slot.
    for (const slot of slots) expect(slot.returnedAt).toBeGreaterThanOrEqual(slot.slotAt);
    expect(await loggedCalls(stateDir)).toEqual(slots.map((s) => s.slotAt));
    expect((await stat(join(stateDir, PACING_LOG_FILE))).mode & 0o777).toBe(0o600);
  });

  it('gives concurrent callers in one process distinct slots', async () => {
    const stateDir = await tempDir();
    const { pacer } = fakeClockPacer(stateDir, { minIntervalMs: 10 * SEC });
    const results = await Promise.all(Array.from({ length: 5 }, () => pacer.acquire()));
    const slots = results.map((r) => r.slotAt).sort((x, y) => x - y);
    expect(slots).toEqual([0, 1, 2, 3, 4].map((i) => T0 + i * 10 * SEC));
  });

  it('spaces slots by the interval plus the send margin by default', async () => {
    const stateDir = await tempDir();
    const { clock, pacer } = fakeClockPacer(stateDir, { sendMarginMs: undefined });
    expect(await pacer.acquire()).toEqual({ waitedMs: 0, slotAt: T0 });
    expect(await pacer.acquire()).toEqual({
      waitedMs: 10 * SEC + SEND_MARGIN_MS,
      slotAt: T0 + 10 * SEC + SEND_MARGIN_MS,
    });
    expect(clock.sleeps).toEqual([10 * SEC + SEND_MARGIN_MS]);
  });

  it('waits out the minimum interval and reports the wait', async () => {
    const stateDir = await tempDir();
    const { clock, pacer } = fakeClockPacer(stateDir);
    expect(await pacer.acquire()).toEqual({ waitedMs: 0, slotAt: T0 });
    clock.now += 4 * SEC;
    expect(await pacer.acquire()).toEqual({ waitedMs: 6 * SEC, slotAt: T0 + 10 * SEC });
    expect(clock.sleeps).toEqual([6 * SEC]);
  });

  it('refuses the 4th call of an hour with maxPerHour 3, without waiting or recording it', async () => {
    const stateDir = await tempDir();
    const { clock, pacer } = fakeClockPacer(stateDir, { maxPerHour: 3 });
    for (let i = 0; i < 3; i++) await pacer.acquire();
    clock.sleeps.length = 0;
    const started = performance.now();
    const error = await rejection(pacer.acquire());
    expect(performance.now() - started).toBeLessThan(1000);
    expect(clock.sleeps).toEqual([]);
    expect(error.code).toBe('E_PACING_BUDGET');
    expect(error.message).toContain('hourly API call budget is spent');
    expect(error.message).toContain('3 calls in the last hour (max 3), 3 in the last day (max 1440)');
    // The oldest of the three leaves the window one hour after it was made.
    expect(error.message).toContain(`allowed at ${new Date(T0 + HOUR).toISOString()}`);
    expect(error.message).toContain('no call was made');
    expect(await loggedCalls(stateDir)).toEqual([T0, T0 + 10 * SEC, T0 + 20 * SEC]);
  });

  it('waits for the hourly budget when it frees up within maxWaitMs', async () => {
    const stateDir = await tempDir();
    const { clock, pacer } = fakeClockPacer(stateDir, { maxPerHour: 2 });
    await pacer.acquire();
    await pacer.acquire();
    clock.now = T0 + HOUR - 20 * SEC;
    clock.sleeps.length = 0;
    expect(await pacer.acquire()).toEqual({ waitedMs: 20 * SEC, slotAt: T0 + HOUR });
    expect(clock.sleeps).toEqual([20 * SEC]);
  });

  it('keeps the daily budget on an injected clock and frees it 24 h after the oldest call', async () => {
    const stateDir = await tempDir();
    const { clock, pacer } = fakeClockPacer(stateDir, { maxPerDay: 5 });
    for (let i = 0; i < 5; i++) {
      clock.now = T0 + i * 2 * HOUR;
      await pacer.acquire();
    }
    clock.now = T0 + 20 * HOUR;
    const error = await rejection(pacer.acquire());
    expect(error.code).toBe('E_PACING_BUDGET');
    expect(error.message).toContain('daily API call budget is spent');
    expect(error.message).toContain('0 calls in the last hour (max 60), 5 in the last day (max 5)');
    expect(error.message).toContain(`allowed at ${new Date(T0 + 24 * HOUR).toISOString()}`);

    expect(await readPacingState(stateDir, clock.now)).toEqual({
      callsLastHour: 0,
      callsLastDay: 5,
      lastCallAt: new Date(T0 + 8 * HOUR).toISOString(),
    });

    clock.now = T0 + 24 * HOUR + 1;
    expect((await pacer.acquire()).slotAt).toBe(T0 + 24 * HOUR + 1);
    // The call of T0 fell out of the 24 h window and out of the log.
    expect(await loggedCalls(stateDir)).toEqual(
      [2, 4, 6, 8, 24].map((h) => T0 + h * HOUR + (h === 24 ? 1 : 0)),
    );
  });

  it('refuses a slot further away than maxWaitMs because others hold the earlier ones', async () => {
    const stateDir = await tempDir();
    const { pacer } = fakeClockPacer(stateDir, { maxWaitMs: 25 * SEC });
    for (let i = 0; i < 3; i++)
      await createPacer({ stateDir, now: () => T0, sleep: async () => {} }).acquire();
    const error = await rejection(pacer.acquire());
    expect(error.code).toBe('E_PACING_BUDGET');
    expect(error.message).toContain('the next free call slot is 30s away');
  });

  it('stops waiting when aborted', async () => {
    const stateDir = await tempDir();
    const pacer = createPacer({ stateDir, minIntervalMs: 5 * SEC });
    await pacer.acquire();
    const started = performance.now();
    await expect(pacer.acquire(AbortSignal.timeout(50))).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(2000);
    const aborted = new AbortController();
    aborted.abort();
    await expect(pacer.acquire(aborted.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(await loggedCalls(stateDir)).toHaveLength(2);
  });

  it('refuses to guess when the call log is unreadable', async () => {
    const stateDir = await tempDir();
    await writeFile(join(stateDir, PACING_LOG_FILE), '{"calls": [1, "two"]}');
    const error = await rejection(createPacer({ stateDir }).acquire());
    expect(error.code).toBe('E_PACING_BUDGET');
    expect(error.message).toContain('unreadable');
    expect(error.hint).toContain('remove the file');
  });
});

describe('readPacingState', () => {
  it('is empty without a log', async () => {
    expect(await readPacingState(await tempDir())).toEqual({ callsLastHour: 0, callsLastDay: 0 });
  });
});
