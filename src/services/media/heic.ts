import { Worker } from 'node:worker_threads';
import type { MediaFailure, RawPixels } from './sharp-runtime.js';

/**
 * HEIC/HEIF photos (iPhones since iOS 11). sharp's prebuilt libvips decodes AV1 (AVIF) but not
 * HEVC, so these go to libheif compiled to WebAssembly (heic-decode → libheif-js, from the npm
 * registry, no system package), in a worker thread per photo: ~1 s and up to ~500 MB for a 12 MP
 * photo, all returned when the worker ends. The pixels come out already turned upright (libheif
 * applies the HEIF rotation, which is what iPhones use instead of EXIF orientation).
 */
export async function decodeHeic(bytes: Buffer, limits: { maxPixels: number; timeoutSeconds: number }): Promise<RawPixels | MediaFailure> {
  // The worker gets its own copy of the file, so the caller's buffer stays usable.
  const copy = new Uint8Array(bytes).buffer;
  const worker = new Worker(new URL('./heic-worker.mjs', import.meta.url), {
    workerData: { bytes: copy, maxPixels: limits.maxPixels },
    transferList: [copy],
  });
  type Answer = { ok: true; width: number; height: number; data: ArrayBuffer } | { ok: false; reason: 'too_large' | 'corrupt'; message: string };
  try {
    const answer = await new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timeout')), limits.timeoutSeconds * 1000);
      worker.once('message', (message: Answer) => {
        clearTimeout(timer);
        resolve(message);
      });
      worker.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the HEIC decoder stopped (exit code ${code})`));
      });
    });
    if (!answer.ok) return { ok: false, reason: answer.reason, message: answer.message, mediaType: 'image/heic' };
    return { data: Buffer.from(answer.data), width: answer.width, height: answer.height, channels: 4 };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message === 'timeout') return { ok: false, reason: 'timeout', message: `HEIC decoding took longer than ${limits.timeoutSeconds} s`, mediaType: 'image/heic' };
    return { ok: false, reason: 'corrupt', message, mediaType: 'image/heic' };
  } finally {
    await worker.terminate();
  }
}
