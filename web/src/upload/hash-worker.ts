/// <reference lib="webworker" />
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/**
 * SHA-256 of a file, off the page's thread, a slice at a time: a large video is never read whole
 * into memory. Messages in: { id, file }; out: { id, hashed } as it goes, then { id, sha256 } or
 * { id, error }.
 */
const SLICE = 4 * 2 ** 20;

self.onmessage = async (event: MessageEvent<{ id: number; file: File }>) => {
  const { id, file } = event.data;
  try {
    const hash = sha256.create();
    let lastReport = 0;
    for (let offset = 0; offset < file.size; offset += SLICE) {
      hash.update(new Uint8Array(await file.slice(offset, offset + SLICE).arrayBuffer()));
      const hashed = Math.min(offset + SLICE, file.size);
      if (hashed - lastReport >= 32 * 2 ** 20 || hashed === file.size) {
        lastReport = hashed;
        self.postMessage({ id, hashed });
      }
    }
    self.postMessage({ id, sha256: bytesToHex(hash.digest()) });
  } catch (error) {
    self.postMessage({ id, error: String(error) });
  }
};
