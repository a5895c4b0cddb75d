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
  /**
   * Names of all objects whose name starts with prefix (and is not below `start`, when given), in
   * lexicographic order.
   */
  list(prefix: string, options?: ListOptions): Promise<string[]>;
  /**
   * Removes the object, only if its current version has the ETag `ifMatch` (otherwise
   * PreconditionFailedError). Returns false when there was no such object.
   */
  delete(name: string, options: DeleteOptions): Promise<boolean>;
}

export interface DeleteOptions {
  /** The ETag the object must have: a delete never removes a version it did not read. */
  ifMatch: string;
  signal?: AbortSignal;
}

export interface ListOptions {
  /** Only names at or after this one (lexicographically). */
  start?: string;
  signal?: AbortSignal;
}
