/**
 * The object store on a local directory: the default for a new user, and the tests' reference.
 * Writes are atomic (temp file + fsync + rename/link in the same directory), so a killed process
 * never leaves a torn object. Conditional puts are exact across processes on one host:
 * if-none-match uses link(2), which fails when the name exists; if-match holds a per-object lock file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { CollectorError, PreconditionFailedError } from '../errors.js';
import { isProcessAlive } from '../ops/run-lock.js';
import type { DeleteOptions, ListOptions, ObjectStore, PutOptions, StoredObject } from './object-store.js';

const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function storeError(op: string, name: string, error: unknown): CollectorError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new CollectorError(
    'E_STORE',
    `local store: ${op} ${name} failed (${code}: ${(error as Error).message})`,
    {
      cause: error,
    },
  );
}

export class LocalStore implements ObjectStore {
  readonly description: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.description = this.root;
  }

  private pathOf(name: string): string {
    const parts = name.split('/');
    if (
      name === '' ||
      name.startsWith('/') ||
      parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'))
    ) {
      throw new CollectorError('E_INTERNAL', `invalid object name ${JSON.stringify(name)}`);
    }
    return path.join(this.root, ...parts);
  }

  async get(name: string): Promise<StoredObject | undefined> {
    const file = this.pathOf(name);
    try {
      const body = await fs.readFile(file);
      return { body, etag: etagOf(body) };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw storeError('read', name, error);
    }
  }

  async put(name: string, body: Buffer, options: PutOptions = {}): Promise<{ etag: string }> {
    const file = this.pathOf(name);
    const dir = path.dirname(file);
    const temp = path.join(
      dir,
      `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
    );
    try {
      await fs.mkdir(dir, { recursive: true });
      const handle = await fs.open(temp, 'wx', 0o644);
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      options.signal?.throwIfAborted();
      if (options.ifNoneMatch === '*') {
        await this.linkExclusive(temp, file, name);
      } else if (options.ifMatch !== undefined) {
        await this.withLock(file, name, async () => {
          const current = await this.get(name);
          if (current?.etag !== options.ifMatch) throw new PreconditionFailedError(name);
          await fs.rename(temp, file);
        });
      } else {
        await fs.rename(temp, file);
      }
      return { etag: etagOf(body) };
    } catch (error) {
      if (error instanceof CollectorError) throw error;
      throw storeError('write', name, error);
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  private async linkExclusive(temp: string, file: string, name: string): Promise<void> {
    // A concurrent if-match writer of the same name holds the lock; creation must not race it.
    await this.withLock(file, name, async () => {
      try {
        await fs.link(temp, file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailedError(name);
        throw error;
      }
    });
  }

  private async withLock<T>(file: string, name: string, fn: () => Promise<T>): Promise<T> {
    const lock = path.join(path.dirname(file), `.${path.basename(file)}.lock`);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.writeFile(lock, String(process.pid), {
          flag: constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY,
        });
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (await this.lockIsStale(lock)) {
          await fs.rm(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline) {
          throw new CollectorError(
            'E_STORE',
            `local store: ${name} stayed locked by another process for ${LOCK_WAIT_MS} ms`,
          );
        }
        await new Promise((r) => setTimeout(r, Math.min(50, 2 + attempt * 5)));
      }
    }
    try {
      return await fn();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  private async lockIsStale(lock: string): Promise<boolean> {
    try {
      const [text, stat] = await Promise.all([fs.readFile(lock, 'utf8'), fs.stat(lock)]);
      const pid = Number(text);
      if (Number.isSafeInteger(pid) && pid > 0 && !isProcessAlive(pid)) return true;
      return Date.now() - stat.mtimeMs > LOCK_STALE_MS;
    } catch (error) {
      return isNotFound(error);
    }
  }

  async delete(name: string, options: DeleteOptions): Promise<boolean> {
    const file = this.pathOf(name);
    try {
      return await this.withLock(file, name, async () => {
        const current = await this.get(name);
        if (current === undefined) return false;
        if (current.etag !== options.ifMatch) throw new PreconditionFailedError(name);
        await fs.rm(file);
        return true;
      });
    } catch (error) {
      if (error instanceof CollectorError) throw error;
      if (isNotFound(error)) return false;
      throw storeError('delete', name, error);
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<string[]> {
    const start = options.start ?? '';
    // Walk only below the deepest directory the prefix names completely.
    const slash = prefix.lastIndexOf('/');
    const baseName = slash < 0 ? '' : prefix.slice(0, slash);
    const names: string[] = [];
    const walk = async (relative: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(
          relative === '' ? this.root : path.join(this.root, ...relative.split('/')),
          {
            withFileTypes: true,
          },
        );
      } catch (error) {
        if (isNotFound(error)) return;
        throw storeError('list', prefix, error);
      }
      await Promise.all(
        entries.map(async (entry) => {
          if (entry.name.startsWith('.')) return; // temp and lock files
          const name = relative === '' ? entry.name : `${relative}/${entry.name}`;
          if (entry.isDirectory()) {
            // Skip directories that sort wholly before start ('/' sorts before every name character).
            const inRange = `${name}/\uffff` >= start;
            if (inRange && (name.startsWith(prefix) || prefix.startsWith(`${name}/`))) await walk(name);
          } else if (entry.isFile() && name.startsWith(prefix) && name >= start) {
            names.push(name);
          }
        }),
      );
    };
    await walk(baseName);
    return names.sort();
  }
}
