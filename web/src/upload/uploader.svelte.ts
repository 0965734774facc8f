import { ApiError, request } from '../lib/graphql.js';
import { CHECK, CLAIM, MISSING, START } from './queries.js';

/**
 * Check-and-upload from the browser, the protocol every client speaks: each file's SHA-256 (in a
 * Web Worker, a slice at a time), one check for the batch, then per file: nothing (already in the
 * library), an instant upload with a proof of possession (the server has the bytes), or the
 * missing ranges in chunks, several at once, each with its digest. A dropped connection is retried;
 * after a reload, picking the same files again sends only what the server still misses.
 */

export type UploadState = 'waiting' | 'hashing' | 'checking' | 'uploading' | 'done' | 'instant' | 'exists' | 'failed';

export interface UploadItem {
  key: number;
  file: File;
  name: string;
  folder: string;
  state: UploadState;
  /** Bytes hashed, then bytes the server has. */
  hashed: number;
  sent: number;
  error: string | null;
  assetId: string | null;
}

type Range = { offset: number; length: number };
type Session = { id: string; missing: Range[]; limits: { minChunkBytes: number; maxChunkBytes: number } };

const CHUNK_BYTES = 8 * 2 ** 20;
const CHUNKS_IN_FLIGHT = 4;
const FILES_IN_FLIGHT = 2;
const CHECK_BATCH = 500;
const RETRIES = 6;

export class BrowserUploader {
  items = $state<UploadItem[]>([]);
  private next = 0;
  private running = false;
  private worker: Worker | undefined;
  private readonly hashes = new Map<number, { resolve: (hex: string) => void; reject: (error: Error) => void; item: UploadItem }>();

  /** Queues files (each with the folder it goes to) and starts if idle. */
  add(files: { file: File; folder: string }[]): void {
    for (const { file, folder } of files) {
      this.items.push({ key: this.next++, file, name: file.name, folder, state: 'waiting', hashed: 0, sent: 0, error: null, assetId: null });
    }
    if (!this.running) void this.run();
  }

  get summary() {
    const count = (states: UploadState[]) => this.items.filter((i) => states.includes(i.state)).length;
    return {
      total: this.items.length,
      done: count(['done', 'instant', 'exists']),
      instant: count(['instant']),
      exists: count(['exists']),
      failed: count(['failed']),
      bytes: this.items.reduce((n, i) => n + i.file.size, 0),
      sent: this.items.reduce((n, i) => n + (['done', 'instant', 'exists'].includes(i.state) ? i.file.size : i.sent), 0),
    };
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        const batch = this.items.filter((i) => i.state === 'waiting').slice(0, CHECK_BATCH);
        if (batch.length === 0) break;
        const hashed: { item: UploadItem; sha256: string }[] = [];
        for (const item of batch) {
          item.state = 'hashing';
          try {
            hashed.push({ item, sha256: await this.hash(item) });
          } catch (error) {
            this.fail(item, error);
          }
        }
        await this.checkAndSend(hashed);
      }
    } finally {
      this.running = false;
    }
  }

  private hash(item: UploadItem): Promise<string> {
    this.worker ??= this.startWorker();
    return new Promise((resolve, reject) => {
      this.hashes.set(item.key, { resolve, reject, item });
      this.worker!.postMessage({ id: item.key, file: item.file });
    });
  }

  private startWorker(): Worker {
    const worker = new Worker(new URL('./hash-worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = (event: MessageEvent<{ id: number; hashed?: number; sha256?: string; error?: string }>) => {
      const pending = this.hashes.get(event.data.id);
      if (!pending) return;
      if (event.data.hashed !== undefined) pending.item.hashed = event.data.hashed;
      if (event.data.sha256) {
        this.hashes.delete(event.data.id);
        pending.resolve(event.data.sha256);
      } else if (event.data.error) {
        this.hashes.delete(event.data.id);
        pending.reject(new Error(`The file could not be read: ${event.data.error}`));
      }
    };
    return worker;
  }

  private async checkAndSend(files: { item: UploadItem; sha256: string }[]): Promise<void> {
    if (files.length === 0) return;
    for (const { item } of files) item.state = 'checking';
    const declared = files.map(({ item, sha256 }) => ({ sha256, size: item.file.size, name: item.name, folder: item.folder || null, takenAt: new Date(item.file.lastModified).toISOString() }));
    let answers;
    try {
      answers = (await request(CHECK, { files: declared })).checkUploads;
    } catch (error) {
      for (const { item } of files) this.fail(item, error);
      return;
    }
    const work = files.map(({ item }, i) => async () => {
      const answer = answers[i]!;
      try {
        if (answer.status === 'EXISTS') {
          item.state = 'exists';
          item.assetId = answer.assetId;
        } else if (answer.status === 'REFUSED') {
          this.fail(item, new ApiError(answer.error?.code ?? 'REFUSED', answer.error?.message ?? 'Refused'));
        } else if (answer.status === 'PROOF_REQUIRED' && answer.challenge && (await this.claim(item, answer.challenge))) {
          item.state = 'instant';
        } else {
          const session = answer.upload ?? (await request(START, { file: declared[i]! })).startUpload;
          await this.send(item, session);
        }
      } catch (error) {
        this.fail(item, error);
      }
    });
    await inParallel(work, FILES_IN_FLIGHT);
  }

  /** Instant upload: the proof of possession, SHA-256 of the nonce's bytes then each range's bytes. False: upload instead. */
  private async claim(item: UploadItem, challenge: { id: string; nonce: string; ranges: Range[] }): Promise<boolean> {
    const pieces = [hexToBytes(challenge.nonce)];
    for (const range of challenge.ranges) pieces.push(new Uint8Array(await item.file.slice(range.offset, range.offset + range.length).arrayBuffer()));
    const proof = toHex(await crypto.subtle.digest('SHA-256', concat(pieces)));
    try {
      item.assetId = (await request(CLAIM, { challengeId: challenge.id, proof })).claimUpload.id;
      return true;
    } catch (error) {
      if (error instanceof ApiError && ['PROOF_REJECTED', 'CHALLENGE_EXPIRED', 'CHALLENGE_USED', 'NOT_FOUND'].includes(error.code)) return false;
      throw error;
    }
  }

  /** Sends what the server misses, chunk by chunk, several at once; asks again for what is missing until the file is complete. */
  private async send(item: UploadItem, session: Session): Promise<void> {
    item.state = 'uploading';
    let current = session;
    for (let round = 0; round < 5; round++) {
      const missing = current.missing.reduce((n, r) => n + r.length, 0);
      item.sent = item.file.size - missing;
      if (missing === 0 && item.assetId) break;
      const size = Math.max(current.limits.minChunkBytes, Math.min(CHUNK_BYTES, current.limits.maxChunkBytes));
      const pieces = current.missing.flatMap((range) => split(range, size));
      await inParallel(
        pieces.map((piece) => () => this.putChunk(item, current.id, piece)),
        CHUNKS_IN_FLIGHT,
      );
      if (item.assetId) break;
      const { upload } = await request(MISSING, { id: current.id });
      if (upload.asset) {
        item.assetId = upload.asset.id;
        break;
      }
      current = { id: upload.id, missing: upload.missing, limits: upload.limits };
    }
    if (!item.assetId) throw new ApiError('INCOMPLETE', 'The upload did not complete; try again');
    item.sent = item.file.size;
    item.state = 'done';
  }

  private async putChunk(item: UploadItem, uploadId: string, piece: Range): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const body = await item.file.slice(piece.offset, piece.offset + piece.length).arrayBuffer();
        const digest = await crypto.subtle.digest('SHA-256', body);
        const response = await fetch(`/uploads/${uploadId}/chunks/${piece.offset}`, {
          method: 'PUT',
          body,
          credentials: 'same-origin',
          headers: { 'content-type': 'application/octet-stream', 'content-digest': `sha-256=:${toBase64(digest)}:`, 'x-pixshare-csrf': '1' },
        });
        const json = (await response.json().catch(() => ({}))) as { error?: { code: string; message: string }; asset?: { id: string } | null };
        if (json.error) {
          // Bytes the server has already (a retry of a chunk that did arrive) count as sent.
          if (json.error.code === 'CHUNK_OVERLAP') return;
          const error = new ApiError(json.error.code, json.error.message);
          if (response.status >= 500 && attempt < RETRIES) throw Object.assign(error, { retry: true });
          throw error;
        }
        if (!response.ok) throw Object.assign(new ApiError('HTTP_ERROR', `HTTP ${response.status}`), { retry: response.status >= 500 });
        item.sent += piece.length;
        if (json.asset) item.assetId = json.asset.id;
        return;
      } catch (error) {
        // A network failure (a dropped connection) or a server error: wait and send the chunk again.
        const retry = error instanceof TypeError || (error as { retry?: boolean }).retry === true;
        if (!retry || attempt >= RETRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
      }
    }
  }

  private fail(item: UploadItem, error: unknown): void {
    item.state = 'failed';
    item.error = error instanceof Error ? error.message : String(error);
  }
}

function split(range: Range, size: number): Range[] {
  const pieces: Range[] = [];
  for (let offset = range.offset; offset < range.offset + range.length; offset += size) pieces.push({ offset, length: Math.min(size, range.offset + range.length - offset) });
  return pieces;
}

async function inParallel(work: (() => Promise<void>)[], parallel: number): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.min(parallel, work.length) }, async () => {
      while (next < work.length) {
        try {
          await work[next++]!();
        } catch (error) {
          errors.push(error);
        }
      }
    }),
  );
  if (errors.length > 0) throw errors[0];
}

function hexToBytes(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

function concat(pieces: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const all = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    all.set(piece, at);
    at += piece.length;
  }
  return all;
}

function toHex(buffer: ArrayBuffer): string {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function toBase64(buffer: ArrayBuffer): string {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
