import { spawn } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExifTool } from 'exiftool-vendored';
import sharp, { type Exif } from 'sharp';
import { ffmpegPath } from '../../src/services/media/video-poster.js';
import { photoLikeJpeg } from './photo-like.js';

/**
 * Real cameras' files for the media tests. `test/fixtures/camera/` holds ExifTool's test
 * images (see its README): the metadata of real cameras and phones, with the image data
 * replaced by a few bytes. From them and from our own photo-like images we make what a camera
 * roll holds: camera JPEGs cut short, RAW files with a full-size preview, videos.
 */
export const CAMERA_FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'camera');

/** The camera JPEGs among the fixtures (each with a DateTimeOriginal). */
export const CAMERA_JPEGS = [
  'Apple.jpg', 'Canon.jpg', 'Canon1DmkIII.jpg', 'Casio.jpg', 'FujiFilm.jpg', 'GPS.jpg', 'GoPro.jpg', 'Kodak.jpg', 'Minolta.jpg',
  'Motorola.jpg', 'Nikon.jpg', 'NikonD70.jpg', 'Olympus.jpg', 'Panasonic.jpg', 'Pentax.jpg', 'Ricoh.jpg', 'Sanyo.jpg', 'Sigma.jpg', 'Sony.jpg',
];

/**
 * A camera's JPEG whose image data ends early: the camera's own metadata segments (APP1 EXIF
 * and the rest, from the fixture) in front of a real 12 MP photo's frame, cut at `keep` of its length.
 */
export async function cameraJpegCutShort(fixture: string, keep = 0.5): Promise<Buffer> {
  const camera = await readFile(path.join(CAMERA_FIXTURES, fixture));
  const photo = await photoLikeJpeg({ width: 4000, height: 3000, seed: fixture.length });
  const whole = Buffer.concat([camera.subarray(0, endOfAppSegments(camera)), photo.subarray(endOfAppSegments(photo))]);
  return whole.subarray(0, Math.floor(whole.length * keep));
}

/** Where a JPEG's APPn segments (right after SOI) end: the start of its tables and frame. */
function endOfAppSegments(jpeg: Buffer): number {
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff && jpeg[at + 1]! >= 0xe0 && jpeg[at + 1]! <= 0xef) at += 2 + jpeg.readUInt16BE(at + 2);
  return at;
}

/**
 * A RAW file with the camera's full-size preview, as cameras write them: a fixture (metadata of
 * a real camera, placeholder images) with its preview replaced by a real JPEG, written by ExifTool.
 */
export async function rawWithPreview(fixture: 'DNG.dng' | 'CanonRaw.cr2' | 'Nikon.nef', into: string, preview: { width: number; height: number; orientation?: number }): Promise<Buffer> {
  const target = path.join(into, `preview-${fixture}`);
  const jpeg = path.join(into, `preview-${fixture}.jpg`);
  await copyFile(path.join(CAMERA_FIXTURES, fixture), target);
  await writeFile(jpeg, await photoLikeJpeg({ width: preview.width, height: preview.height, seed: 7 }));
  const tag = fixture === 'CanonRaw.cr2' ? 'PreviewImage' : 'JpgFromRaw';
  const exiftool = new ExifTool({ maxProcs: 1 });
  try {
    const orientation = preview.orientation ? [`-Orientation#=${preview.orientation}`] : [];
    await exiftool.write(target, {}, { writeArgs: [`-${tag}<=${jpeg}`, ...orientation, '-overwrite_original'] });
  } finally {
    await exiftool.end();
  }
  return readFile(target);
}

/** A short test-pattern video made by the ffmpeg pixshare ships: H.264 in MP4, or HEVC in MOV like an iPhone's. */
export async function makeVideo(into: string, options: { container: 'mp4' | 'mov'; width: number; height: number; seconds: number; creationTime: string }): Promise<Buffer> {
  const file = path.join(into, `made-${Date.now()}-${Math.random().toString(36).slice(2)}.${options.container}`);
  const codec = options.container === 'mov' ? ['-c:v', 'libx265', '-x265-params', 'log-level=error', '-tag:v', 'hvc1'] : ['-c:v', 'libx264'];
  const args = [
    '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${options.width}x${options.height}:rate=25`, '-t', String(options.seconds),
    ...codec, '-pix_fmt', 'yuv420p', '-metadata', `creation_time=${options.creationTime}`,
    '-y', file,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath()!, args);
    let errors = '';
    child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(readFile(file)) : reject(new Error(`ffmpeg failed: ${errors}`))));
  });
}

/** The EXIF block a camera would write with these tags (as sharp writes it; HEIC and JPEG carry the same block). */
export async function exifBlock(exif: Exif): Promise<Buffer> {
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).withExif(exif).jpeg().toBuffer();
  return (await sharp(jpeg).metadata()).exif!;
}

/** An iPhone's EXIF: Apple, iPhone 15, taken 2024-05-06 07:08:09 at UTC+02:00. */
export const IPHONE_EXIF: Exif = { IFD0: { Make: 'Apple', Model: 'iPhone 15' }, IFD2: { DateTimeOriginal: '2024:05:06 07:08:09', OffsetTimeOriginal: '+02:00' } };
