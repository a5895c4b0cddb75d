/**
 * The narrow interface every store implements (local directory, OCI Object Storage).
 * Object names are '/'-separated keys such as `events/2024/03/01/events-1709251200.jsonl`.
 */

export interface StoredObject {
  body: Buffer;
  /** Opaque version tag for compare-and-swap (OCI ETag, or a content hash for the local store). */
  etag: string;
}

export interface PutOptions {
  /** Replace only if the current version has this ETag; otherwise PreconditionFailedError. */
  ifMatch?: string;
  /** `'*'`: create only if the object does not exist; otherwise PreconditionFailedError. */
  ifNoneMatch?: '*';
  contentType?: string;
  signal?: AbortSignal;
}

export interface ObjectStore {
  /** Where the store is, safe to log (never a secret). */
  readonly description: string;
  /** The object and its ETag, or undefined when it does not exist. */
  get(name: string, options?: { signal?: AbortSignal }): Promise<StoredObject | undefined>;
  /** Writes the whole body atomically: a reader sees the old object or the new one, never a torn one. */
  put(name: string, body: Buffer, options?: PutOptions): Promise<{ etag: string }>;
  /** Names of all objects whose name starts with prefix, in lexicographic order. */
  list(prefix: string, options?: { signal?: AbortSignal }): Promise<string[]>;
}
