// Decodes HEIC/HEIF images with libheif (WebAssembly, through heic-decode) in a worker thread:
// libheif's memory (a few hundred MB for a 12 MP photo) goes when the worker ends, and a file that
// never finishes is stopped by terminating the worker (see heic.ts). One worker decodes one image
// at a time, and several in a row: compiling the WebAssembly module again for each photo would
// cost a third more CPU. Plain JavaScript, so that it runs the same under every loader.
import { parentPort } from 'node:worker_threads';
import decode from 'heic-decode';

// libheif's bindings print each failure to the console; the caller gets it as the answer instead.
console.log = console.error = () => {};

parentPort.on('message', async ({ bytes, maxPixels }) => {
  let images;
  try {
    images = await decode.all({ buffer: new Uint8Array(bytes) });
    const primary = images[0];
    if (!primary) throw new Error('no image in this HEIF file');
    if (primary.width * primary.height > maxPixels) {
      parentPort.postMessage({ ok: false, reason: 'too_large', message: `${primary.width}×${primary.height} exceeds the pixel limit of ${maxPixels}` });
    } else {
      const { width, height, data } = await primary.decode();
      parentPort.postMessage({ ok: true, width, height, data: data.buffer }, [data.buffer]);
    }
  } catch (error) {
    parentPort.postMessage({ ok: false, reason: 'corrupt', message: error instanceof Error ? error.message : String(error) });
  } finally {
    images?.dispose();
  }
});
