import ExifReader from 'exifreader';
import { takenAtFrom, type TakenAt } from '../../protocol/capture-time.js';

export { takenAtFrom, type TakenAt };

/**
 * What a photo's or a video's own metadata says, read from its bytes with metadata libraries,
 * never from a decoder: a photo whose pixels are cut short or damaged still has its header, and
 * with it its capture time, camera and place.
 *
 * Two libraries, by cost: ExifReader (JavaScript, ~1 ms from the first bytes of the file) for the
 * image formats of the hot path — JPEG, PNG, WebP, HEIC/HEIF, AVIF, TIFF — and ExifTool (a Perl
 * process kept running, 10–30 ms a file, see exiftool.ts) for what only it reads: videos and the
 * camera RAW formats. Both end up in the one `MediaFacts` shape below.
 */

/** Where a photo was taken. Private to its owner: never in a shared image unless the owner allows. */
export interface GeoLocation {
  latitude: number;
  longitude: number;
  /** Metres above sea level, when recorded. */
  altitude: number | null;
}

export interface MediaFacts {
  takenAt: TakenAt | null;
  make: string | null;
  model: string | null;
  /** EXIF orientation 1–8 as stored, null when absent. */
  orientation: number | null;
  location: GeoLocation | null;
  /** Stored dimensions (before orientation), when the metadata tells them. */
  width: number | null;
  height: number | null;
  /** Videos: length in milliseconds, and the video stream's codec (e.g. 'avc1', 'hvc1'). */
  durationMs: number | null;
  videoCodec: string | null;
}

export const NO_FACTS: MediaFacts = {
  takenAt: null,
  make: null,
  model: null,
  orientation: null,
  location: null,
  width: null,
  height: null,
  durationMs: null,
  videoCodec: null,
};

/**
 * How much of a file's start the image reader looks at. JPEG keeps EXIF in its first 64 KiB,
 * HEIC/AVIF in the `meta` box before the pixels, TIFF in its first directories; 1 MiB covers
 * them with room to spare, and a file shorter than that is read whole.
 */
export const FACTS_HEAD_BYTES = 1024 * 1024;

type Tag = { value?: unknown; description?: unknown } | undefined;
type TagGroup = Record<string, Tag> | undefined;

/**
 * The facts of an image from its first bytes (FACTS_HEAD_BYTES, or all of it). Broken or
 * missing metadata is common (editors, messengers) and never fails the photo: the facts it
 * spoils are simply absent.
 */
export function readImageFacts(head: Buffer): MediaFacts {
  let tags: ExifReader.ExpandedTags;
  try {
    tags = ExifReader.load(head, { expanded: true, includeUnknown: false });
  } catch {
    return NO_FACTS;
  }
  const exif = tags.exif as TagGroup;
  const file = (tags.file ?? tags.png) as TagGroup;
  const text = (name: string) => (typeof exif?.[name]?.description === 'string' ? (exif[name].description as string) : undefined);
  const takenAt =
    takenAtFrom(text('DateTimeOriginal'), text('OffsetTimeOriginal'), text('SubSecTimeOriginal'), 'DateTimeOriginal') ??
    takenAtFrom(text('DateTimeDigitized'), text('OffsetTimeDigitized'), text('SubSecTimeDigitized'), 'CreateDate') ??
    takenAtFrom(text('DateTime'), text('OffsetTime'), text('SubSecTime'), 'DateTime');
  const orientation = Number(exif?.Orientation?.value);
  return {
    ...NO_FACTS,
    takenAt,
    make: cleanText(exif?.Make?.description),
    model: cleanText(exif?.Model?.description),
    orientation: Number.isInteger(orientation) && orientation >= 1 && orientation <= 8 ? orientation : null,
    location: locationFrom(tags.gps?.Latitude, tags.gps?.Longitude, tags.gps?.Altitude),
    width: positive(file?.['Image Width']?.value) ?? positive(exif?.PixelXDimension?.value) ?? positive(exif?.ImageWidth?.value),
    height: positive(file?.['Image Height']?.value) ?? positive(exif?.PixelYDimension?.value) ?? positive(exif?.ImageLength?.value),
  };
}

/** A position only when both coordinates are real numbers inside their ranges (0,0 is a blank GPS block). */
export function locationFrom(latitude: unknown, longitude: unknown, altitude: unknown): GeoLocation | null {
  const lat = numberOf(latitude);
  const lon = numberOf(longitude);
  if (lat === null || lon === null || Math.abs(lat) > 90 || Math.abs(lon) > 180 || (lat === 0 && lon === 0)) return null;
  const alt = numberOf(altitude);
  return { latitude: round(lat, 7), longitude: round(lon, 7), altitude: alt === null || Math.abs(alt) > 100_000 ? null : round(alt, 1) };
}

/** ExifReader's tags hold values; a tag object stands for its value. */
function numberOf(value: unknown): number | null {
  const raw = value !== null && typeof value === 'object' && 'value' in value ? (value as { value: unknown }).value : value;
  const number = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  return Number.isFinite(number) ? number : null;
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

function positive(value: unknown): number | null {
  const number = numberOf(value);
  return number !== null && Number.isInteger(number) && number > 0 && number < 1_000_000 ? number : null;
}

/** Make/Model: trimmed, NUL-padding and control characters removed, bounded length. */
export function cleanText(value: unknown): string | null {
  const text = typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : null;
  if (text === null) return null;
  const cleaned = text.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 100);
  return cleaned === '' ? null : cleaned;
}

/**
 * The wall-clock capture time ('YYYY-MM-DDTHH:mm:ss') of a stored takenAt and its zone (see
 * media-facts.ts): shifted by the recorded offset, or as stored when the zone is unknown.
 */
export function localTakenAt(takenAt: Date | null, zone: string | null): string | null {
  if (!takenAt) return null;
  const match = zone ? /^([+-])(\d{2}):(\d{2})$/.exec(zone) : null;
  const shift = match ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) * 60_000 : 0;
  return new Date(takenAt.getTime() + shift).toISOString().slice(0, 19);
}
