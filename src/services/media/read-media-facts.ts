import ExifReader from 'exifreader';

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

/**
 * When a photo was taken, as the camera recorded it.
 *
 * EXIF dates are wall-clock times without a zone ("2023:07:14 18:05:09"). We never guess a
 * zone (the server's is meaningless, and the photo's is unknown): `local` is that wall-clock
 * time, and `instant` exists only when the file also recorded the offset
 * (OffsetTimeOriginal and its siblings, EXIF 2.31; most phones write it, many cameras do not)
 * or is defined in UTC (a video's creation time).
 */
export interface TakenAt {
  /** 'YYYY-MM-DDTHH:mm:ss', plus '.sss' when the camera recorded sub-seconds. */
  local: string;
  /** '+02:00' / '-05:00' as recorded, 'Z' for a time defined in UTC, or null when the file gave none. */
  offset: string | null;
  /** The exact moment, only when `offset` is known. */
  instant: Date | null;
  /** Which tag it came from; DateTimeOriginal is the shutter, the others are fallbacks. */
  source: 'DateTimeOriginal' | 'CreateDate' | 'DateTime' | 'CreationDate';
}

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

/**
 * An EXIF date ('YYYY:MM:DD HH:MM:SS') with its offset and sub-seconds. Anything else — blank
 * fields, the all-zero date of cameras whose clock was never set, impossible values — is null.
 */
export function takenAtFrom(date: string | undefined, offset: string | undefined, subSeconds: string | undefined, source: TakenAt['source']): TakenAt | null {
  const match = /^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(date?.trim() ?? '');
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  // No EXIF camera predates 1900; '0000:00:00' is a clock never set.
  if (year < 1900 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return null;
  const check = new Date(Date.UTC(year, month - 1, day));
  if (check.getUTCMonth() !== month - 1) return null; // 31 February
  let local = `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}`;
  const digits = subSeconds?.trim() ?? '';
  if (/^\d+$/.test(digits)) local += `.${digits.padEnd(3, '0').slice(0, 3)}`;
  const zone = parseOffset(offset);
  const instant = zone ? new Date(`${local}${zone}`) : null;
  return { local, offset: zone, instant: instant && !Number.isNaN(instant.getTime()) ? instant : null, source };
}

function parseOffset(value: string | undefined): string | null {
  const text = value?.trim() ?? '';
  if (text === 'Z') return 'Z';
  const match = /^([+-])(\d{2}):(\d{2})$/.exec(text);
  if (!match) return null;
  // Real zones span -12:00 to +14:00; anything else is a corrupt tag, not a zone.
  if (Number(match[2]) > 14 || Number(match[3]) >= 60) return null;
  return text;
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
