import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  acquireRunLock,
  isLockHeld,
  isProcessAlive,
  type RunLock,
  type RunLockResult,
} from '../src/ops/run-lock.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'polisen-lock-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

interface ChildResult {
  pid: number;
  won: boolean;
  heldBy: { pid: number; host: string; startedAt: string } | null;
}

/** Runs test/fixtures/run-lock-child.ts and returns its one JSON line once it has exited. */
function runChild(stateDir: string, mode: 'hold' | 'die', goAt: number, holdMs = 0): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/run-lock-child.ts', stateDir, mode, String(goAt), String(holdMs)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`run-lock child exited with ${code}`));
      else resolve(JSON.parse(out) as ChildResult);
    });
  });
}

function expectLock(result: RunLockResult): RunLock {
  if (isLockHeld(result))
    throw new Error(`expected the lock, but it is held by ${JSON.stringify(result.heldBy)}`);
  return result;
}

describe('acquireRunLock', () => {
  it('creates the state directory 0700 and reports the holder to a second caller', async () => {
    const stateDir = join(await tempDir(), 'state');
    const lock = expectLock(await acquireRunLock(stateDir));
    expect(lock.path).toBe(join(stateDir, 'collect.lock'));
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    const onDisk = JSON.parse(await readFile(lock.path, 'utf8'));
    expect(onDisk).toMatchObject({ pid: process.pid, host: hostname(), startedAt: lock.holder.startedAt });

    const second = await acquireRunLock(stateDir);
    expect(isLockHeld(second)).toBe(true);
    expect(isLockHeld(second) && second.heldBy).toEqual({
      pid: process.pid,
      host: hostname(),
      startedAt: lock.holder.startedAt,
    });
    // Other names are other locks.
    const backfill = expectLock(await acquireRunLock(stateDir, { name: 'backfill' }));
    await backfill.release();

    expect(await lock.release()).toBe(true);
    expect(await lock.release()).toBe(false);
    expect(await readdir(stateDir)).toEqual([]);
    const again = expectLock(await acquireRunLock(stateDir));
    await again.release();
  });

  it('takes over the lock of a process that died holding it', async () => {
    const stateDir = await tempDir();
    const dead = await runChild(stateDir, 'die', 0);
    expect(dead.won).toBe(true);
    const before = JSON.parse(await readFile(join(stateDir, 'collect.lock'), 'utf8'));
    expect(before.pid).toBe(dead.pid);

    const lock = expectLock(await acquireRunLock(stateDir));
    expect(JSON.parse(await readFile(lock.path, 'utf8')).pid).toBe(process.pid);
    expect(await lock.release()).toBe(true);
    expect(await readdir(stateDir)).toEqual([]);
  });

  it('takes over a lock older than maxAgeMs, and the old holder cannot release its successor', async () => {
    const stateDir = await tempDir();
    const old = expectLock(await acquireRunLock(stateDir));
    await delay(20);
    expect(isLockHeld(await acquireRunLock(stateDir, { maxAgeMs: 60_000 }))).toBe(true);
    const successor = expectLock(await acquireRunLock(stateDir, { maxAgeMs: 10 }));
    expect(await old.release()).toBe(false);
    expect(JSON.parse(await readFile(successor.path, 'utf8')).startedAt).toBe(successor.holder.startedAt);
    expect(await successor.release()).toBe(true);
  });

  it('treats an unreadable lock file as held for 10 s, then as stale', async () => {
    const stateDir = await tempDir();
    const path = join(stateDir, 'collect.lock');
    await writeFile(path, 'garbage');
    const held = await acquireRunLock(stateDir);
    expect(isLockHeld(held) && held.heldBy.pid).toBe(0);
    const past = new Date(Date.now() - 11_000);
    await utimes(path, past, past);
    const lock = expectLock(await acquireRunLock(stateDir));
    await lock.release();
  });

  it('rejects a lock name that is not a plain word', async () => {
    await expect(acquireRunLock(await tempDir(), { name: '../etc/x' })).rejects.toMatchObject({
      code: 'E_INTERNAL',
    });
  });

  it('lets exactly one of many concurrent callers take over a stale lock, round after round', async () => {
    const stateDir = await tempDir();
    const dead = await runChild(stateDir, 'die', 0);
    const deadLock = await readFile(join(stateDir, 'collect.lock'), 'utf8');
    expect(JSON.parse(deadLock).pid).toBe(dead.pid);
    for (let round = 0; round < 20; round++) {
      await writeFile(join(stateDir, 'collect.lock'), deadLock);
      const results = await Promise.all(Array.from({ length: 8 }, () => acquireRunLock(stateDir)));
      const winners = results.filter((r) => !isLockHeld(r));
      expect(winners).toHaveLength(1);
      await expectLock(winners[0]!).release();
    }
    expect(await readdir(stateDir)).toEqual([]);
  });

  it('lets exactly one of several racing processes win, for a free lock and for a stale one', async () => {
    const freeDir = await tempDir();
    const staleDir = await tempDir();
    const dead = await runChild(staleDir, 'die', 0);
    expect(dead.won).toBe(true);

    // All children start acquiring at the same instant, after their startup.
    const goAt = Date.now() + 1500;
    const results = await Promise.all([
      ...[1, 2, 3].map(() => runChild(freeDir, 'hold', goAt, 1200)),
      ...[1, 2, 3].map(() => runChild(staleDir, 'hold', goAt, 1200)),
    ]);
    for (const group of [results.slice(0, 3), results.slice(3)]) {
      const winners = group.filter((r) => r.won);
      expect(winners).toHaveLength(1);
      for (const loser of group.filter((r) => !r.won)) {
        expect(loser.heldBy?.pid).toBe(winners[0]?.pid);
      }
    }
    // Every winner released its lock; no takeover or temp file was left behind.
    expect(await readdir(freeDir)).toEqual([]);
    expect(await readdir(staleDir)).toEqual([]);
  });
});

describe('isProcessAlive', () => {
  it('this process and a live child are alive; a reaped child is not', async () => {
    expect(isProcessAlive(process.pid)).toBe(true);
    const child = spawn('sleep', ['5'], { stdio: 'ignore' });
    try {
      expect(isProcessAlive(child.pid!)).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((resolve) => child.once('exit', resolve));
    await delay(50);
    expect(isProcessAlive(child.pid!)).toBe(false);
  });

  it.skipIf(process.platform !== 'linux')(
    'an exited process nobody reaped (a zombie) is not alive',
    async () => {
      // sh starts `sleep 0.1` in the background, prints its pid and becomes `sleep 5`, which never waits for it:
      // the short sleep stays a zombie, as an orphan does under a PID 1 that reaps slowly.
      const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      try {
        const pid = Number(
          await new Promise<string>((resolve) => parent.stdout!.once('data', (d) => resolve(String(d)))),
        );
        await delay(400);
        expect(() => process.kill(pid, 0)).not.toThrow(); // it still exists, as a zombie
        expect(isProcessAlive(pid)).toBe(false);
      } finally {
        parent.kill('SIGKILL');
      }
    },
  );
});
