/**
 * Reads an HTTP response body: decodes gzip / br / deflate with node:zlib streams, counts wire and decoded bytes,
 * and stops the download as soon as the decoded size passes the cap (so a compression bomb costs little).
 *
 * Not undici's `interceptors.decompress`: in undici 7 it is experimental, prints an ExperimentalWarning on every
 * run of the CLI, and hides the wire byte count.
 */
import { type Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

export type BodyBytes = { bytes: Buffer; bodyBytes: number; wireBytes: number };

/** The decoded body passed `maxBytes`; the download was stopped. */
export class BodyTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`response body exceeds the ${formatBytes(maxBytes)} cap`);
    this.name = 'BodyTooLargeError';
  }
}

/** The body's content-encoding is unsupported or the compressed data is corrupt. */
export class BodyDecodeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BodyDecodeError';
  }
}

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  br: createBrotliDecompress,
  deflate: createInflate,
};

/** More stacked codings than this is an attack or a broken server, not a feed. */
const MAX_CODINGS = 3;

/**
 * Reads `body` to the end. Network errors from `body` are rethrown unchanged, for the caller to classify;
 * decoding failures become BodyDecodeError and an over-cap body BodyTooLargeError.
 */
export async function readBody(
  body: Readable,
  contentEncoding: string | string[] | undefined,
  maxBytes: number,
): Promise<BodyBytes> {
  let decoders: Transform[];
  try {
    decoders = decodersFor(contentEncoding);
  } catch (error) {
    body.destroy();
    throw error;
  }

  let wireBytes = 0;
  let bodyBytes = 0;
  const chunks: Buffer[] = [];
  const countWire = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      wireBytes += chunk.length;
      callback(null, chunk);
    },
  });
  const collect = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bodyBytes += chunk.length;
      if (bodyBytes > maxBytes) {
        callback(new BodyTooLargeError(maxBytes));
        return;
      }
      chunks.push(chunk);
      callback();
    },
  });

  // pipeline() destroys every stream with the first error, so the stream that failed first tells who is to blame.
  let firstFailure: { from: 'wire' | 'decoder'; error: unknown } | undefined;
  body.once('error', (error) => {
    firstFailure ??= { from: 'wire', error };
  });
  for (const decoder of decoders) {
    decoder.once('error', (error) => {
      firstFailure ??= { from: 'decoder', error };
    });
  }

  try {
    await pipeline([body, countWire, ...decoders, collect]);
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw error;
    if (firstFailure?.from === 'decoder' && firstFailure.error === error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new BodyDecodeError(`cannot decode the ${codingsLabel(contentEncoding)} body: ${reason}`, {
        cause: error,
      });
    }
    throw error;
  }
  return { bytes: Buffer.concat(chunks, bodyBytes), bodyBytes, wireBytes };
}

function codings(contentEncoding: string | string[] | undefined): string[] {
  const joined = Array.isArray(contentEncoding) ? contentEncoding.join(',') : (contentEncoding ?? '');
  return joined
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');
}

function codingsLabel(contentEncoding: string | string[] | undefined): string {
  return codings(contentEncoding).join(', ');
}

function decodersFor(contentEncoding: string | string[] | undefined): Transform[] {
  const list = codings(contentEncoding);
  if (list.length > MAX_CODINGS) {
    throw new BodyDecodeError(`too many content-encodings (${list.length}): ${list.join(', ')}`);
  }
  // Codings are listed in the order they were applied, so they are undone from the last.
  return list.reverse().map((coding) => {
    const create = DECODERS[coding];
    if (create === undefined)
      throw new BodyDecodeError(`unsupported content-encoding "${coding.slice(0, 40)}"`);
    return create();
  });
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1_000_000 && bytes % 1_000_000 === 0) return `${bytes / 1_000_000} MB`;
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1000 && bytes % 1000 === 0) return `${bytes / 1000} kB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes}-byte`;
}
