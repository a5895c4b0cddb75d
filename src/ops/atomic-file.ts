/**
 * Crash-safe file writes for the state directory and the metrics file: write a temp file in the same
 * directory, fsync it, rename it over the target, fsync the directory. A process killed at any point
 * leaves either the old complete file or the new complete file (plus, at worst, a stray temp file).
 */

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The errno code of a Node.js system error (`'ENOENT'`, `'EEXIST'`…), or undefined. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

/** Creates the state directory (and parents) with mode 0700 when missing; an existing one is left as is. */
export async function ensureStateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * A unique temp name next to `path`: `.<name>.<pid>.<random>.tmp`. It never ends in the target's
 * extension, so readers that glob (node_exporter reads `*.prom`) never pick up a half-written file.
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replaces `path` with `data` atomically (temp + fsync + rename in the same directory + directory fsync).
 * `mode` (default 0600) is applied explicitly, so the umask does not change it. Errors are the raw fs errors;
 * the temp file is removed on failure.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: { mode?: number } = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  const temp = tempPathFor(path);
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(temp, 'wx', mode);
    await handle.writeFile(data);
    await handle.chmod(mode);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** The file's text, or undefined when it does not exist. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Makes a rename durable across power loss. Best effort: some filesystems refuse fsync on a directory. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // The rename already happened; only durability across a power cut is weaker here.
  } finally {
    await handle?.close().catch(() => {});
  }
}
