import { Worker } from 'node:worker_threads';
import type { MediaFailure, RawPixels } from './sharp-runtime.js';

/**
 * HEIC/HEIF photos (iPhones since iOS 11). sharp's prebuilt libvips decodes AV1 (AVIF) but not
 * HEVC, so these go to libheif compiled to WebAssembly (heic-decode → libheif-js, from the npm
 * registry, no system package), in worker threads: ~0.55 s of CPU for a 12 MP photo. The pixels
 * come out already turned upright (libheif applies the HEIF rotation, which is what iPhones use
 * instead of EXIF orientation).
 *
 * A worker decodes one photo at a time and stays for the next (a new one would compile the
 * WebAssembly module again: ~0.3 s more CPU a photo), until it has been idle for IDLE_MS or has
 * decoded MAX_DECODES photos; then it ends and its memory (a few hundred MB) goes back to the
 * system. One that takes too long, fails or crashes is terminated at once. As many workers run as
 * decodes are asked for at once, which the media job concurrency bounds.
 */
const IDLE_MS = 30_000;
const MAX_DECODES = 50;

type Answer = { ok: true; width: number; height: number; data: ArrayBuffer } | { ok: false; reason: 'too_large' | 'corrupt'; message: string };

interface PooledWorker {
  worker: Worker;
  decodes: number;
  idleTimer?: NodeJS.Timeout;
}

const idle: PooledWorker[] = [];

function takeWorker(): PooledWorker {
  const pooled = idle.pop();
  if (pooled) {
    clearTimeout(pooled.idleTimer);
    return pooled;
  }
  const worker = new Worker(new URL('./heic-worker.mjs', import.meta.url));
  worker.unref(); // an idle worker never keeps the process alive
  return { worker, decodes: 0 };
}

function giveBack(pooled: PooledWorker): void {
  if (pooled.decodes >= MAX_DECODES) {
    void pooled.worker.terminate();
    return;
  }
  pooled.idleTimer = setTimeout(() => {
    idle.splice(idle.indexOf(pooled), 1);
    void pooled.worker.terminate();
  }, IDLE_MS);
  pooled.idleTimer.unref();
  idle.push(pooled);
}

export async function decodeHeic(bytes: Buffer, limits: { maxPixels: number; timeoutSeconds: number }): Promise<RawPixels | MediaFailure> {
  const pooled = takeWorker();
  const { worker } = pooled;
  // The worker gets its own copy of the file, so the caller's buffer stays usable.
  const copy = new Uint8Array(bytes).buffer;
  let healthy = false;
  try {
    const answer = await new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => done(() => reject(new Error('timeout'))), limits.timeoutSeconds * 1000);
      const onMessage = (message: Answer) => done(() => resolve(message));
      const onError = (error: Error) => done(() => reject(error));
      const onExit = (code: number) => done(() => reject(new Error(`the HEIC decoder stopped (exit code ${code})`)));
      function done(settle: () => void) {
        clearTimeout(timer);
        worker.off('message', onMessage).off('error', onError).off('exit', onExit);
        settle();
      }
      worker.on('message', onMessage).on('error', onError).on('exit', onExit);
      worker.postMessage({ bytes: copy, maxPixels: limits.maxPixels }, [copy]);
    });
    healthy = true;
    pooled.decodes++;
    if (!answer.ok) return { ok: false, reason: answer.reason, message: answer.message, mediaType: 'image/heic' };
    return { data: Buffer.from(answer.data), width: answer.width, height: answer.height, channels: 4 };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (message === 'timeout') return { ok: false, reason: 'timeout', message: `HEIC decoding took longer than ${limits.timeoutSeconds} s`, mediaType: 'image/heic' };
    return { ok: false, reason: 'corrupt', message, mediaType: 'image/heic' };
  } finally {
    if (healthy) giveBack(pooled);
    else await worker.terminate();
  }
}
