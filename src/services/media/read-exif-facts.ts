import exifReader from 'exif-reader';

/**
 * When a photo was taken, as the camera recorded it.
 *
 * EXIF dates are wall-clock times without a zone ("2023:07:14 18:05:09"). We never guess a
 * zone (the server's is meaningless, and the photo's is unknown): `local` is that wall-clock
 * time, and `instant` exists only when the camera also recorded the offset
 * (OffsetTimeOriginal and its siblings, EXIF 2.31; most phones write it, many cameras do not).
 * Store `local` as `timestamp without time zone` for display and day grouping, `instant`
 * as `timestamptz` when known. Sorting by `local` is right for one person's photos and off
 * by at most the zone difference across travellers.
 */
export interface TakenAt {
  /** 'YYYY-MM-DDTHH:mm:ss', plus '.sss' when the camera recorded sub-seconds. */
  local: string;
  /** '+02:00' / '-05:00' as recorded, or null when the camera gave none. */
  offset: string | null;
  /** The exact moment, only when `offset` is known. */
  instant: Date | null;
  /** Which tag it came from; DateTimeOriginal is the shutter, the others are fallbacks. */
  source: 'DateTimeOriginal' | 'CreateDate' | 'DateTime';
}

export interface ExifFacts {
  takenAt: TakenAt | null;
  make: string | null;
  model: string | null;
}

const NO_FACTS: ExifFacts = { takenAt: null, make: null, model: null };

/**
 * Reads the few EXIF facts pixshare keeps from a raw EXIF block (as sharp's `metadata().exif`
 * returns it). Broken EXIF is common (editors, messengers) and never fails the photo: the
 * facts it spoils are simply absent.
 */
export function readExifFacts(exif: Buffer | undefined): ExifFacts {
  if (!exif || exif.length === 0) return NO_FACTS;
  let tags: exifReader.Exif;
  try {
    tags = exifReader(exif);
  } catch {
    return NO_FACTS;
  }
  // exif-reader's typings promise strings/Dates; real files deliver whatever bytes they hold.
  const image = (tags.Image ?? {}) as Record<string, unknown>;
  const photo = (tags.Photo ?? {}) as Record<string, unknown>;
  const takenAt =
    takenAtFrom(photo.DateTimeOriginal ?? image.DateTimeOriginal, photo.OffsetTimeOriginal, photo.SubSecTimeOriginal, 'DateTimeOriginal') ??
    takenAtFrom(photo.DateTimeDigitized, photo.OffsetTimeDigitized, photo.SubSecTimeDigitized, 'CreateDate') ??
    takenAtFrom(image.DateTime, photo.OffsetTime, photo.SubSecTime, 'DateTime');
  return { takenAt, make: cleanText(image.Make), model: cleanText(image.Model) };
}

function takenAtFrom(date: unknown, offset: unknown, subSeconds: unknown, source: TakenAt['source']): TakenAt | null {
  // exif-reader turns 'YYYY:MM:DD HH:MM:SS' into a Date built with Date.UTC from those
  // fields, i.e. the wall-clock time labelled UTC; anything else becomes null.
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return null;
  // Cameras whose clock was never set write '0000:00:00 00:00:00', which Date.UTC rolls
  // over to 1899-11-30; no EXIF camera predates 1900.
  if (date.getUTCFullYear() < 1900) return null;

  let local = date.toISOString().slice(0, 19);
  const digits = typeof subSeconds === 'string' ? subSeconds.trim() : '';
  if (/^\d+$/.test(digits)) local += `.${digits.padEnd(3, '0').slice(0, 3)}`;

  const zone = parseOffset(offset);
  const instant = zone ? new Date(`${local}${zone}`) : null;
  return { local, offset: zone, instant: instant && !Number.isNaN(instant.getTime()) ? instant : null, source };
}

function parseOffset(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const match = /^([+-])(\d{2}):(\d{2})$/.exec(value.trim());
  if (!match) return null;
  // Real zones span -12:00 to +14:00; anything else is a corrupt tag, not a zone.
  if (Number(match[2]) > 14 || Number(match[3]) >= 60) return null;
  return value.trim();
}

/** Make/Model: trimmed, NUL-padding removed, non-ASCII read as UTF-8, bounded length. */
function cleanText(value: unknown): string | null {
  const text = typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : null;
  if (text === null) return null;
  const cleaned = text.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 100);
  return cleaned === '' ? null : cleaned;
}
