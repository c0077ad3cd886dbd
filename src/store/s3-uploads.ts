/**
 * Uploads in progress on S3. Everything an upload is lives in the bucket under `uploads/<id>/`, so it
 * survives a restart and may be continued by another process:
 *   state.json                 owner, start, size, the multipart upload and its parts, the pending pieces
 *   pending-<start>-<end>      bytes after the last part, less than one part (S3 parts but the last must be
 *                              5 MiB or more, and a request may end anywhere)
 *   data                       the multipart upload's object, once completed
 * Bytes go out as parts of a multipart upload on `data` as they arrive, so memory holds at most two parts
 * per append whatever the blob's size. A part is uploaded while the next one fills only when a budget shared
 * by all appends allows the second buffer; otherwise the append waits for its part.
 *
 * Every write of pieces and parts comes before the state that names them, and a new piece never replaces one
 * the state names (its key holds its byte range, which ends past the state's size), so an append killed at
 * any point leaves the previous state whole: the client resumes from the size it reports. Parts the state
 * does not name are replaced or left out of the completion; pieces it does not name are removed with the
 * upload.
 *
 * Commit checks size and digest before anything appears under `blobs/`. The digest comes from the hash this
 * process kept while the bytes arrived; without one (a restart, another process) the bytes are read back:
 * the pieces, or the completed multipart object. Only then is the blob copied (or, for less than one part,
 * written) under its digest, in one atomic step of S3's.
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { digestAlgorithm, type Digest, type DigestAlgorithm } from '../oci/digest.ts';
import { BufferPool, ByteBudget } from './buffer-pool.ts';
import { KeyedLock } from './fsutil.ts';
import { blobKey, uploadIdPattern, uploadPrefix, uploadsPrefix } from './object-keys.ts';
import type { S3Objects, UploadedPart } from './s3-objects.ts';
import { StoreError, type BlobInfo, type Upload } from './types.ts';

interface Piece {
  start: number;
  end: number;
}

interface UploadState {
  owner?: string;
  startedAt: string;
  size: number;
  /** Started with the first full part; its parts in order. */
  multipart?: { id: string; parts: UploadedPart[] };
  /** The bytes after the parts, in order, up to `size`. */
  pending: Piece[];
  /** The parts were completed into `data` to read them back; the next append starts a new multipart upload. */
  sealed?: boolean;
}

export const defaultPartSize = 8 * 1024 * 1024;
/** S3's limits: parts but the last at least 5 MiB, at most 10,000 parts. */
export const minPartSize = 5 * 1024 * 1024;
const maxParts = 10_000;
/** Parts double in size every this many, so 10,000 parts hold about 480 GiB at the default size. */
const partsPerSize = 2_000;
/** Past this many pending pieces an append reads them and writes them back as one. */
const maxPendingPieces = 16;
/** Second part buffers of all appends together, so a part uploads while the next one fills. */
const overlapBudget = new ByteBudget(64 * 1024 * 1024);

export class S3Uploads {
  private readonly objects: S3Objects;
  private readonly partSize: number;
  private readonly pool: BufferPool;
  /** Running hashes of uploads this process received, with the size they cover. */
  private readonly hashes = new Map<string, { hash: Hash; size: number }>();
  private readonly busy = new Set<string>();
  /** How many times this process wrote each upload's state: a handle holding an older one reads it again. */
  private readonly revisions = new Map<string, number>();
  /**
   * One write at a time per blob key from this process: concurrent pushes of one blob would otherwise copy
   * identical bytes over each other at once, which costs S3 nothing but breaks some S3-compatible servers.
   */
  private readonly targets = new KeyedLock();

  constructor(objects: S3Objects, partSize: number) {
    this.objects = objects;
    this.partSize = partSize;
    this.pool = new BufferPool(partSize, 4);
  }

  async start(owner: string | undefined): Promise<Upload> {
    const id = randomUUID();
    const state: UploadState = {
      ...(owner !== undefined ? { owner } : {}),
      startedAt: new Date().toISOString(),
      size: 0,
      pending: [],
    };
    await this.writeState(id, state);
    this.hashes.set(id, { hash: createHash('sha256'), size: 0 });
    return new S3Upload(this, id, state, this.revision(id));
  }

  async find(id: string): Promise<Upload | undefined> {
    if (!uploadIdPattern.test(id)) return undefined;
    const state = await this.readState(id);
    return state ? new S3Upload(this, id, state, this.revision(id)) : undefined;
  }

  async clean(olderThanMs: number): Promise<number> {
    const now = Date.now();
    // Every append writes the state last: the newest object of an upload is its last activity.
    const uploads = new Map<string, { keys: string[]; newest: number; hasState: boolean }>();
    for await (const object of this.objects.list(uploadsPrefix)) {
      const id = object.key.slice(uploadsPrefix.length).split('/')[0]!;
      const entry = uploads.get(id) ?? { keys: [], newest: 0, hasState: false };
      entry.keys.push(object.key);
      entry.newest = Math.max(entry.newest, object.modified.getTime());
      if (object.key === `${uploadsPrefix}${id}/${stateName}`) entry.hasState = true;
      uploads.set(id, entry);
    }
    let removed = 0;
    for (const [id, entry] of uploads) {
      if (this.busy.has(id)) continue;
      const valid = uploadIdPattern.test(id);
      if (valid && Math.max(0, now - entry.newest) < olderThanMs) continue;
      if (valid && entry.hasState) {
        const state = await this.readState(id);
        if (state?.multipart) await this.objects.abortMultipart(dataKeyOf(id), state.multipart.id);
      }
      await this.objects.deleteMany(entry.keys);
      this.forget(id);
      removed++;
    }
    return removed;
  }

  /** @internal used by S3Upload */
  async append(upload: S3Upload, source: Readable, maxBytes: number | undefined): Promise<number> {
    return this.exclusive(upload.id, async () => {
      await this.refresh(upload);
      if (upload.state.sealed) await this.reopen(upload);
      return this.appendStream(upload, source, maxBytes);
    });
  }

  /** @internal */
  async commit(upload: S3Upload, expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    return this.exclusive(upload.id, async () => {
      await this.refresh(upload);
      const { id } = upload;
      const state = upload.state;
      if (expected.size !== undefined && expected.size !== state.size) {
        throw new StoreError('SIZE_MISMATCH', `received ${state.size} bytes, expected ${expected.size}`);
      }
      const target = blobKey(expected.digest);
      const algorithm = digestAlgorithm(expected.digest);
      const running = this.hashes.get(id);
      const known =
        algorithm === 'sha256' && running?.size === state.size
          ? `sha256:${running.hash.copy().digest('hex')}`
          : undefined;
      const check = (actual: string): void => {
        if (actual !== expected.digest) {
          throw new StoreError(
            'DIGEST_MISMATCH',
            `content digest ${actual} does not match ${expected.digest}`,
          );
        }
      };
      if (known !== undefined) check(known);
      if (!state.multipart && !state.sealed) {
        const only = state.pending.length === 1 ? state.pending[0] : undefined;
        if (known !== undefined && only) {
          await this.targets.run(target, () => this.objects.copy(pieceKeyOf(id, only), target, state.size));
        } else {
          const bytes = await this.readPending(id, state.pending);
          if (known === undefined) check(hashOf(algorithm, bytes));
          await this.targets.run(target, () => this.objects.put(target, bytes));
        }
      } else {
        if (!state.sealed) await this.seal(upload);
        if (known === undefined) check(await this.hashObject(dataKeyOf(id), algorithm, state.size));
        await this.targets.run(target, () => this.objects.copy(dataKeyOf(id), target, state.size));
      }
      await this.objects.deleteMany([
        stateKeyOf(id),
        ...(state.multipart || state.sealed ? [dataKeyOf(id)] : []),
        ...state.pending.map((piece) => pieceKeyOf(id, piece)),
      ]);
      this.forget(id);
      return { digest: expected.digest, size: state.size };
    });
  }

  /** @internal */
  async abort(upload: S3Upload): Promise<void> {
    const state = (await this.readState(upload.id)) ?? upload.state;
    if (state.multipart) await this.objects.abortMultipart(dataKeyOf(upload.id), state.multipart.id);
    const keys: string[] = [];
    for await (const object of this.objects.list(uploadPrefix(upload.id))) keys.push(object.key);
    await this.objects.deleteMany(keys);
    this.forget(upload.id);
  }

  private async exclusive<T>(id: string, task: () => Promise<T>): Promise<T> {
    if (this.busy.has(id)) throw new StoreError('BUSY', 'another request is writing to this upload');
    this.busy.add(id);
    try {
      return await task();
    } finally {
      this.busy.delete(id);
    }
  }

  private forget(id: string): void {
    this.hashes.delete(id);
    this.revisions.delete(id);
  }

  private revision(id: string): number {
    return this.revisions.get(id) ?? 0;
  }

  /** Another handle of this process wrote the state since this one read it: read it again. */
  private async refresh(upload: S3Upload): Promise<void> {
    if (upload.revision === this.revision(upload.id)) return;
    const state = await this.readState(upload.id);
    if (!state) throw new StoreError('NOT_FOUND', `upload unknown: ${upload.id}`);
    upload.state = state;
    upload.revision = this.revision(upload.id);
  }

  private async readState(id: string): Promise<UploadState | undefined> {
    const object = await this.objects.get(stateKeyOf(id));
    if (!object) return undefined;
    try {
      const state = JSON.parse(object.body.toString('utf8')) as UploadState;
      return Number.isSafeInteger(state.size) && Array.isArray(state.pending) ? state : undefined;
    } catch {
      return undefined;
    }
  }

  private async writeState(id: string, state: UploadState): Promise<void> {
    await this.objects.put(stateKeyOf(id), JSON.stringify(state));
    this.revisions.set(id, this.revision(id) + 1);
  }

  private partSizeOf(number: number): number {
    return this.partSize * 2 ** Math.floor((number - 1) / partsPerSize);
  }

  private takeBuffer(size: number): Buffer {
    return size === this.partSize ? this.pool.take() : Buffer.allocUnsafeSlow(size);
  }

  private giveBuffer(buffer: Buffer): void {
    if (buffer.length === this.partSize) this.pool.give(buffer);
  }

  /**
   * Appends `source` after the state's bytes. Full parts go to the multipart upload; what is left is written
   * as one new piece; then the state. When the source fails or sends too much, what arrived before is kept
   * (the state is written) and the error rethrown; when S3 fails, the state stays as it was.
   */
  private async appendStream(
    upload: S3Upload,
    source: Readable,
    maxBytes: number | undefined,
  ): Promise<number> {
    const { id } = upload;
    const before = upload.state;
    const state: UploadState = structuredClone(before);
    const running = this.hashes.get(id);
    const hash = running?.size === before.size ? running.hash : undefined;
    this.hashes.delete(id);
    const parts = this.startParts(id, state);
    let sourceFailure: { error: unknown } | undefined;
    let received = 0;
    try {
      if (state.pending.length >= maxPendingPieces) await this.loadPending(parts);
      // The request is not destroyed when the append stops early: the caller still answers it.
      for await (const data of source.iterator({ destroyOnReturn: false })) {
        const chunk = data as Buffer;
        if (maxBytes !== undefined && received + chunk.length > maxBytes) {
          throw new StoreError('TOO_LARGE', `more than ${maxBytes} bytes in one request`);
        }
        received += chunk.length;
        hash?.update(chunk);
        let offset = 0;
        while (offset < chunk.length) {
          const copied = chunk.copy(
            parts.buffer,
            parts.fill,
            offset,
            offset + Math.min(chunk.length - offset, parts.target - parts.fill),
          );
          parts.fill += copied;
          offset += copied;
          if (parts.fill === parts.target) await this.sendPart(parts);
        }
      }
    } catch (error) {
      if (parts.storageFailure === undefined) sourceFailure = { error };
    }
    try {
      if (parts.inFlight) await parts.inFlight;
      throwIfStorageFailed(parts);
      if (received === 0) {
        if (hash) this.hashes.set(id, { hash, size: before.size });
        if (sourceFailure) throw sourceFailure.error;
        return before.size;
      }
      state.size = before.size + received;
      await this.putTail(parts, before);
      await this.saveAppend(upload, before, state, hash);
      if (sourceFailure) throw sourceFailure.error;
      return state.size;
    } finally {
      for (const owner of parts.owned) this.giveBuffer(owner);
      if (parts.budgeted > 0) overlapBudget.release(parts.budgeted);
    }
  }

  /** An append's parts after those `state` names, starting with one buffer for the next part. */
  private startParts(id: string, state: UploadState): AppendParts {
    const nextNumber = (state.multipart?.parts.length ?? 0) + 1;
    const target = this.partSizeOf(nextNumber);
    const unloaded = state.size - partsEnd(state);
    const buffer = this.takeBuffer(target);
    return {
      id,
      key: dataKeyOf(id),
      state,
      nextNumber,
      target,
      unloaded,
      fill: unloaded,
      buffer,
      owned: [buffer],
      budgeted: 0,
      free: [],
      inFlight: undefined,
      storageFailure: undefined,
    };
  }

  /** Reads the pending pieces into the start of the buffer, if they are not there yet. */
  private async loadPending(parts: AppendParts): Promise<void> {
    if (parts.unloaded === 0) return;
    await storageCall(
      parts,
      this.loadPieces(parts.id, parts.state.pending, partsEnd(parts.state), parts.buffer),
    );
    parts.unloaded = 0;
  }

  /**
   * Starts the upload of the full buffer as the next part, once the previous part's upload is done, and
   * moves on to a buffer for the part after it.
   */
  private async sendPart(parts: AppendParts): Promise<void> {
    await this.loadPending(parts);
    if (parts.inFlight) await parts.inFlight;
    throwIfStorageFailed(parts);
    if (parts.nextNumber > maxParts) throw new StoreError('TOO_LARGE', `more than ${maxParts} parts`);
    const { state, key } = parts;
    state.multipart ??= { id: await storageCall(parts, this.objects.createMultipart(key)), parts: [] };
    const multipart = state.multipart;
    const number = parts.nextNumber++;
    const sending = parts.buffer;
    parts.inFlight = this.objects
      .uploadPart(key, multipart.id, number, sending.subarray(0, parts.target))
      .then(
        (part) => {
          multipart.parts[number - 1] = part;
          parts.free.push(sending);
        },
        (error: unknown) => {
          parts.storageFailure ??= { error };
        },
      );
    // The pieces are in the part now; the state names them until it is written again.
    state.pending = [];
    parts.target = this.partSizeOf(parts.nextNumber);
    parts.fill = 0;
    await this.nextPartBuffer(parts);
  }

  /**
   * The buffer for the next part: a free one if large enough, else a second one if the overlap budget allows
   * it, else the one in flight once its upload is done. At most two part buffers per append.
   */
  private async nextPartBuffer(parts: AppendParts): Promise<void> {
    const { target } = parts;
    const reusable = parts.free.pop();
    if (reusable && reusable.length >= target) {
      parts.buffer = reusable;
    } else if (this.partSize === target && overlapBudget.tryAcquire(target)) {
      parts.budgeted += target;
      parts.buffer = this.takeBuffer(target);
      parts.owned.push(parts.buffer);
    } else {
      await parts.inFlight;
      throwIfStorageFailed(parts);
      const done = parts.free.pop()!;
      if (done.length >= target) {
        parts.buffer = done;
      } else {
        parts.buffer = this.takeBuffer(target);
        parts.owned.push(parts.buffer);
      }
    }
  }

  /** Writes the bytes after the parts that are not stored yet as one new piece, and names it in the state. */
  private async putTail(parts: AppendParts, before: UploadState): Promise<void> {
    const { id, state, buffer, fill, unloaded } = parts;
    const start = partsEnd(state);
    if (unloaded === 0) {
      // The buffer holds every byte after the parts: one piece replaces the old ones.
      state.pending = fill > 0 ? [{ start, end: start + fill }] : [];
      if (fill > 0) await this.objects.put(pieceKeyOf(id, state.pending[0]!), buffer.subarray(0, fill));
    } else if (fill > unloaded) {
      const piece = { start: before.size, end: state.size };
      await this.objects.put(pieceKeyOf(id, piece), buffer.subarray(unloaded, fill));
      state.pending.push(piece);
    }
  }

  /** Writes the appended state and makes it the upload's; then removes the pieces it no longer names. */
  private async saveAppend(
    upload: S3Upload,
    before: UploadState,
    state: UploadState,
    hash: Hash | undefined,
  ): Promise<void> {
    const { id } = upload;
    await this.writeState(id, state);
    upload.state = state;
    upload.revision = this.revision(id);
    if (hash) this.hashes.set(id, { hash, size: state.size });
    const named = new Set(state.pending.map((piece) => pieceKeyOf(id, piece)));
    const replaced = before.pending
      .map((piece) => pieceKeyOf(id, piece))
      .filter((piece) => !named.has(piece));
    // Best effort: a piece no state names is removed with the upload anyway.
    if (replaced.length > 0) await this.objects.deleteMany(replaced).catch(() => undefined);
  }

  /** Reads `pieces` (bytes from `offset` on) into `buffer` from its start. */
  private async loadPieces(id: string, pieces: Piece[], offset: number, buffer: Buffer): Promise<void> {
    for (const piece of pieces) {
      const stream = await this.objects.stream(pieceKeyOf(id, piece));
      if (!stream)
        throw new Error(`upload ${id}: the bytes ${piece.start}-${piece.end} are missing from the bucket`);
      let at = piece.start - offset;
      for await (const chunk of stream.body) {
        const bytes = chunk as Buffer;
        if (at + bytes.length > piece.end - offset) {
          stream.body.destroy();
          throw new Error(
            `upload ${id}: the piece ${piece.start}-${piece.end} holds more bytes than it should`,
          );
        }
        bytes.copy(buffer, at);
        at += bytes.length;
      }
      if (at !== piece.end - offset) {
        throw new Error(
          `upload ${id}: the piece ${piece.start}-${piece.end} holds fewer bytes than it should`,
        );
      }
    }
  }

  /** Pending pieces (less than one part together) in one new buffer. */
  private async readPending(id: string, pieces: Piece[]): Promise<Buffer> {
    const first = pieces[0];
    const last = pieces.at(-1);
    if (!first || !last) return Buffer.alloc(0);
    const bytes = Buffer.allocUnsafe(last.end - first.start);
    await this.loadPieces(id, pieces, first.start, bytes);
    return bytes;
  }

  /** Completes the multipart upload into `data` (the pending pieces as its last part), to read it back. */
  private async seal(upload: S3Upload): Promise<void> {
    const { id } = upload;
    const state = upload.state;
    const multipart = state.multipart!;
    const parts = [...multipart.parts];
    const tail = await this.readPending(id, state.pending);
    if (tail.length > 0)
      parts.push(await this.objects.uploadPart(dataKeyOf(id), multipart.id, parts.length + 1, tail));
    await this.objects.completeMultipart(dataKeyOf(id), multipart.id, parts);
    const sealed: UploadState = {
      ...(state.owner !== undefined ? { owner: state.owner } : {}),
      startedAt: state.startedAt,
      size: state.size,
      pending: [],
      sealed: true,
    };
    await this.writeState(id, sealed);
    upload.state = sealed;
    upload.revision = this.revision(id);
    await this.objects.deleteMany(state.pending.map((piece) => pieceKeyOf(id, piece))).catch(() => undefined);
  }

  /** A sealed upload grows again: its bytes go into a new multipart upload, read back from `data`. */
  private async reopen(upload: S3Upload): Promise<void> {
    const { id } = upload;
    const stream = await this.objects.stream(dataKeyOf(id));
    if (!stream) throw new Error(`upload ${id}: its completed bytes are missing from the bucket`);
    upload.state = {
      ...(upload.state.owner !== undefined ? { owner: upload.state.owner } : {}),
      startedAt: upload.state.startedAt,
      size: 0,
      pending: [],
    };
    this.hashes.set(id, { hash: createHash('sha256'), size: 0 });
    await this.appendStream(upload, stream.body, undefined);
  }

  private async hashObject(key: string, algorithm: DigestAlgorithm, size: number): Promise<string> {
    const stream = await this.objects.stream(key);
    if (!stream) throw new Error(`${key} is missing from the bucket`);
    const hash = createHash(algorithm);
    let read = 0;
    for await (const chunk of stream.body) {
      hash.update(chunk as Buffer);
      read += (chunk as Buffer).length;
    }
    if (read !== size) throw new StoreError('SIZE_MISMATCH', `the bucket holds ${read} bytes of ${size}`);
    return `${algorithm}:${hash.digest('hex')}`;
  }
}

class S3Upload implements Upload {
  readonly id: string;
  /** The state as this handle last read or wrote it, and the revision it had then. */
  state: UploadState;
  revision: number;
  private readonly uploads: S3Uploads;

  constructor(uploads: S3Uploads, id: string, state: UploadState, revision: number) {
    this.uploads = uploads;
    this.id = id;
    this.state = state;
    this.revision = revision;
  }

  get size(): number {
    return this.state.size;
  }

  get startedAt(): Date {
    return new Date(this.state.startedAt);
  }

  get owner(): string | undefined {
    return this.state.owner;
  }

  append(source: Readable, options?: { maxBytes?: number }): Promise<number> {
    return this.uploads.append(this, source, options?.maxBytes);
  }

  commit(expected: { digest: Digest; size?: number }): Promise<BlobInfo> {
    return this.uploads.commit(this, expected);
  }

  abort(): Promise<void> {
    return this.uploads.abort(this);
  }
}

/**
 * One append's way into the multipart upload. Memory: the part buffers it owns, at most two (the second only
 * when `overlapBudget` allows it).
 */
interface AppendParts {
  id: string;
  /** The multipart upload's object. */
  key: string;
  /** The state being appended to (a copy of the upload's until it is written). */
  state: UploadState;
  nextNumber: number;
  /** The size of the part being filled. */
  target: number;
  /**
   * The buffer holds the bytes after the parts: [0, unloaded) are the pending pieces, not read yet (they are
   * read only when a part needs them), then what arrives, up to `fill`.
   */
  buffer: Buffer;
  unloaded: number;
  fill: number;
  /** Buffers to give back when the append ends, and the overlap budget they hold. */
  owned: Buffer[];
  budgeted: number;
  /** Buffers whose part is uploaded. */
  free: Buffer[];
  /** The part being uploaded; its failure is recorded in `storageFailure`, never thrown. */
  inFlight: Promise<void> | undefined;
  /** The first storage failure, boxed: whatever was thrown is rethrown as it was. */
  storageFailure: { error: unknown } | undefined;
}

/**
 * Throws the recorded storage failure. Storage calls record it from callbacks; checking through a function
 * keeps TypeScript from taking the later checks for dead code.
 */
function throwIfStorageFailed(parts: AppendParts): void {
  if (parts.storageFailure) throw parts.storageFailure.error;
}

/** Awaits a storage call; its failure becomes the append's storage failure (the first one is kept). */
async function storageCall<T>(parts: AppendParts, operation: Promise<T>): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    parts.storageFailure ??= { error };
    throw error;
  }
}

/** Where the state's parts end: the offset of its pending pieces. */
function partsEnd(state: UploadState): number {
  return (state.multipart?.parts ?? []).reduce((sum, part) => sum + part.size, 0);
}

const stateName = 'state.json';

function stateKeyOf(id: string): string {
  return `${uploadPrefix(id)}${stateName}`;
}

function dataKeyOf(id: string): string {
  return `${uploadPrefix(id)}data`;
}

function pieceKeyOf(id: string, piece: Piece): string {
  return `${uploadPrefix(id)}pending-${piece.start}-${piece.end}`;
}

function hashOf(algorithm: DigestAlgorithm, bytes: Buffer): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
