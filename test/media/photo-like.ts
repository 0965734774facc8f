import sharp from 'sharp';

/**
 * Photo-like test images, generated instead of committed: a scene of soft gradients and
 * hard-edged shapes (structure the perceptual hash can see, drawn from a seed) upscaled
 * smoothly, plus sensor-like grain so JPEG files have realistic entropy and size
 * (a 12 MP frame at quality 90 is a few MB, like a phone photo).
 */
export interface PhotoLikeOptions {
  width: number;
  height: number;
  /** Same seed, same scene and grain. */
  seed: number;
  /** Grain amplitude in 8-bit levels (default 10); 0 for none. */
  grain?: number;
}

/** Raw 8-bit RGB pixels of a photo-like scene. */
export async function photoLikePixels(opts: PhotoLikeOptions): Promise<{ data: Buffer; width: number; height: number; channels: 3 }> {
  const { width, height, seed, grain = 10 } = opts;
  const random = mulberry32(seed);
  // Draw the scene small (cheap in JS), then let libvips upscale it.
  const sw = 320;
  const sh = Math.max(8, Math.round((sw * height) / width));
  const scene = Buffer.alloc(sw * sh * 3);
  // One wave per channel, each in its own direction, so rows differ from each other like in a scene.
  const waves = [0, 1, 2].map(() => ({ fx: (random() - 0.5) * 12, fy: (random() - 0.5) * 12, phase: random() * 6.28 }));
  const top = [random() * 255, random() * 255, random() * 255];
  const bottom = [random() * 255, random() * 255, random() * 255];
  const shapes = Array.from({ length: 12 }, () => ({
    kind: random() < 0.5 ? 'disc' : 'box',
    x: random() * sw,
    y: random() * sh,
    r: (0.05 + random() * 0.2) * sh,
    colour: [random() * 255, random() * 255, random() * 255],
  }));
  for (let y = 0; y < sh; y++) {
    for (let x = 0; x < sw; x++) {
      const t = y / (sh - 1);
      const c = [0, 1, 2].map((i) => {
        const wave = waves[i]!;
        return top[i]! * (1 - t) + bottom[i]! * t + 40 * Math.sin((x / sw) * wave.fx + (y / sh) * wave.fy + wave.phase);
      });
      for (const s of shapes) {
        const inside = s.kind === 'disc' ? (x - s.x) ** 2 + (y - s.y) ** 2 < s.r ** 2 : Math.abs(x - s.x) < s.r && Math.abs(y - s.y) < s.r * 0.6;
        if (inside) for (let i = 0; i < 3; i++) c[i] = s.colour[i]! * 0.8 + c[i]! * 0.2;
      }
      // Per-pixel jitter at scene scale becomes mid-frequency texture (foliage, fabric) once upscaled.
      const jitter = (random() - 0.5) * 40;
      for (let i = 0; i < 3; i++) scene[(y * sw + x) * 3 + i] = Math.max(0, Math.min(255, Math.round(c[i]! + jitter + (random() - 0.5) * 16)));
    }
  }
  const { data } = await sharp(scene, { raw: { width: sw, height: sh, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (grain > 0) {
    const noise = mulberry32(seed ^ 0x9e3779b9);
    for (let i = 0; i < data.length; i += 4) {
      // One 32-bit draw gives four grain samples.
      let bits = (noise() * 0x100000000) >>> 0;
      for (let k = 0; k < 4 && i + k < data.length; k++, bits >>>= 8) {
        const v = data[i + k]! + (((bits & 0xff) / 255) * 2 - 1) * grain;
        data[i + k] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { data, width, height, channels: 3 };
}

/** A photo-like JPEG (quality 90 unless given). */
export async function photoLikeJpeg(opts: PhotoLikeOptions & { quality?: number }): Promise<Buffer> {
  const pixels = await photoLikePixels(opts);
  return sharp(pixels.data, { raw: pixels }).jpeg({ quality: opts.quality ?? 90 }).toBuffer();
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
