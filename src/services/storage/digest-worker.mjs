// The SHA-256 work of the filesystem blob store, on a thread of its own (see digest-worker.ts):
// chunk digests and the running whole-file hash of each upload, read from the page cache.
// Plain JavaScript so that it loads the same way under `npm start`, the tests and the benchmarks.
import { createHash } from 'node:crypto';
import { read as readFd } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { parentPort } from 'node:worker_threads';

const readAt = promisify(readFd);

const READ_BYTES = 1024 * 1024;
/** One read buffer per request in flight, reused between requests. */
const spare = [];
/** Running hashes by upload id: { hash, hashedTo }. */
const running = new Map();

/**
 * Feeds bytes [from, to) into `hash`; returns how many there were (fewer if the file ends early).
 * The bytes come from `file`, or from the open descriptor `fd` of the requesting thread (threads
 * share descriptors; the requester keeps it open until the answer arrives).
 */
async function hashRange({ file, fd }, hash, from, to) {
  const buffer = spare.pop() ?? Buffer.allocUnsafe(READ_BYTES);
  const handle = fd === undefined ? await open(file, 'r') : undefined;
  try {
    let position = from;
    while (position < to) {
      const length = Math.min(buffer.length, to - position);
      const { bytesRead } = handle ? await handle.read(buffer, 0, length, position) : await readAt(fd, buffer, 0, length, position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    return position - from;
  } finally {
    spare.push(buffer);
    await handle?.close();
  }
}

const operations = {
  /** SHA-256 of one range. */
  async range({ file, fd, from, to }) {
    const hash = createHash('sha256');
    const read = await hashRange({ file, fd }, hash, from, to);
    return { sha256: hash.digest('hex'), read };
  },
  /**
   * SHA-256 of the file's first `to` bytes, read through the requester's descriptor, kept as the
   * upload's running hash as well (replacing any): the first chunk's digest and the start of the
   * whole-file hash in one pass. The requester decides whether the running hash may be used.
   */
  async head({ key, fd, to }) {
    const hash = createHash('sha256');
    running.delete(key);
    const read = await hashRange({ fd }, hash, 0, to);
    if (read === to) running.set(key, { hash: hash.copy(), hashedTo: to });
    return { sha256: hash.digest('hex'), read };
  },
  /** Continues the upload's running hash from `from` (where it stopped) to `to`. */
  async fold({ key, file, from, to }) {
    let state = running.get(key);
    if (!state && from === 0) running.set(key, (state = { hash: createHash('sha256'), hashedTo: 0 }));
    if (!state || state.hashedTo !== from) throw new Error(`running hash of ${key} is at ${state?.hashedTo ?? 'nothing'}, not ${from}`);
    state.hashedTo = -1; // unusable until this fold ends well
    try {
      const read = await hashRange({ file }, state.hash, from, to);
      if (read !== to - from) throw new Error(`${file} ends before byte ${to}`);
    } catch (error) {
      running.delete(key); // a half-fed hash is worth nothing
      throw error;
    }
    state.hashedTo = to;
    return { hashedTo: to };
  },
  /** Hashes the rest of the file (from where the running hash stopped) and forgets the upload. */
  async finish({ key, file, from, to }) {
    const state = running.get(key);
    running.delete(key);
    if (from > 0 && state?.hashedTo !== from) throw new Error(`running hash of ${key} is not at ${from}`);
    const hash = from > 0 ? state.hash : createHash('sha256');
    const read = await hashRange({ file }, hash, from, to);
    return { sha256: hash.digest('hex'), read: from + read };
  },
  async drop({ key }) {
    running.delete(key);
    return {};
  },
};

parentPort.on('message', ({ id, op, ...args }) => {
  operations[op](args).then(
    (result) => parentPort.postMessage({ id, result }),
    (error) => parentPort.postMessage({ id, error: { message: error.message, code: error.code } }),
  );
});
