// Decodes one HEIC/HEIF image with libheif (WebAssembly, through heic-decode) in a worker
// thread of its own: libheif's memory (hundreds of MB for a 12 MP photo) goes when the worker
// ends, and a file that never finishes is stopped by terminating the worker (see heic.ts).
// Plain JavaScript, so that it runs the same under every loader (node, tsx, vitest).
import { parentPort, workerData } from 'node:worker_threads';
import decode from 'heic-decode';

const { bytes, maxPixels } = workerData;
try {
  const images = await decode.all({ buffer: new Uint8Array(bytes) });
  const primary = images[0];
  if (!primary) throw new Error('no image in this HEIF file');
  if (primary.width * primary.height > maxPixels) {
    parentPort.postMessage({ ok: false, reason: 'too_large', message: `${primary.width}×${primary.height} exceeds the pixel limit of ${maxPixels}` });
  } else {
    const { width, height, data } = await primary.decode();
    parentPort.postMessage({ ok: true, width, height, data: data.buffer }, [data.buffer]);
  }
  images.dispose();
} catch (error) {
  parentPort.postMessage({ ok: false, reason: 'corrupt', message: error instanceof Error ? error.message : String(error) });
}
