import { ExifTool } from 'exiftool-vendored';
import { cleanText, locationFrom, NO_FACTS, takenAtFrom, type MediaFacts, type TakenAt } from './read-media-facts.js';

/**
 * ExifTool (through exiftool-vendored, which ships it): the metadata reader of the videos and
 * camera RAW files. It runs as a long-lived Perl process (`-stay_open`), started on first use,
 * at most two of them, each task limited in time. Perl is on every Debian, Ubuntu and macOS
 * system; where it is missing, videos and RAW files lose their facts but are still stored,
 * poster frames and all.
 */

/** One task (read or extract) is abandoned after this long. */
const TASK_TIMEOUT_MS = 20_000;

let instance: ExifTool | undefined;

function exiftool(): ExifTool {
  instance ??= new ExifTool({ maxProcs: 2, taskTimeoutMillis: TASK_TIMEOUT_MS, maxTasksPerProcess: 2000, geoTz: () => undefined });
  return instance;
}

/** Stops the ExifTool processes (the app's shutdown; started again on next use). */
export async function endExifTool(): Promise<void> {
  const running = instance;
  instance = undefined;
  await running?.end();
}

/** The embedded images ExifTool can hand out, largest first in practice. */
const PREVIEW_TAGS = ['JpgFromRaw', 'PreviewImage', 'OtherImage', 'ThumbnailImage'] as const;
export type PreviewTag = (typeof PREVIEW_TAGS)[number];

export interface ExifToolFacts {
  facts: MediaFacts;
  /** ExifTool's idea of the type, e.g. 'image/x-adobe-dng', 'video/quicktime'; null when it has none. */
  mimeType: string | null;
  /** The embedded images of a RAW file, with their sizes in bytes. */
  previews: { tag: PreviewTag; bytes: number }[];
}

type RawTags = Record<string, unknown>;

/**
 * The facts of a file from ExifTool. Throws when ExifTool cannot run or times out; a file it
 * does not understand gives empty facts.
 */
export async function readWithExifTool(path: string, kind: 'video' | 'image'): Promise<ExifToolFacts> {
  // -n: numbers as numbers (GPS as signed degrees, durations in seconds); -b is not given, so
  // binary tags come back as a note with their length instead of their bytes.
  const tags = (await exiftool().readRaw(path, ['-n', '-api', 'LargeFileSupport=1', '-api', 'QuickTimeUTC=1'])) as RawTags;
  const text = (name: string) => (typeof tags[name] === 'string' || typeof tags[name] === 'number' ? String(tags[name]) : undefined);
  const takenAt = kind === 'video' ? videoTakenAt(tags) : imageTakenAt(text);
  const orientation = Number(tags.Orientation);
  const rotation = Number(tags.Rotation);
  let width = positive(tags.ImageWidth) ?? positive(tags.ExifImageWidth);
  let height = positive(tags.ImageHeight) ?? positive(tags.ExifImageHeight);
  // A video recorded upright on a phone is stored sideways with a rotation in its track header.
  if (kind === 'video' && (rotation === 90 || rotation === 270)) [width, height] = [height, width];
  const duration = Number(tags.Duration); // 0 in a fragmented file's header: unknown, not empty
  const facts: MediaFacts = {
    ...NO_FACTS,
    takenAt,
    make: cleanText(tags.Make),
    model: cleanText(tags.Model),
    orientation: kind === 'image' && Number.isInteger(orientation) && orientation >= 1 && orientation <= 8 ? orientation : null,
    location: locationFrom(tags.GPSLatitude, tags.GPSLongitude, tags.GPSAltitude),
    width,
    height,
    durationMs: kind === 'video' && Number.isFinite(duration) && duration > 0 ? Math.round(duration * 1000) : null,
    videoCodec: kind === 'video' ? cleanText(tags.CompressorID ?? tags.VideoCodecID ?? tags.VideoCodec)?.slice(0, 32) ?? null : null,
  };
  const previews = PREVIEW_TAGS.flatMap((tag) => {
    const bytes = binaryLength(tags[tag]);
    return bytes ? [{ tag, bytes }] : [];
  });
  return { facts, mimeType: typeof tags.MIMEType === 'string' ? tags.MIMEType : null, previews };
}

/** The bytes of one embedded image (a RAW file's preview JPEG). */
export async function extractEmbeddedImage(path: string, tag: PreviewTag): Promise<Buffer> {
  return exiftool().extractBinaryTagToBuffer(tag, path);
}

function imageTakenAt(text: (name: string) => string | undefined): TakenAt | null {
  return (
    takenAtFrom(text('DateTimeOriginal'), text('OffsetTimeOriginal'), text('SubSecTimeOriginal'), 'DateTimeOriginal') ??
    takenAtFrom(text('CreateDate'), text('OffsetTimeDigitized'), text('SubSecTimeDigitized'), 'CreateDate') ??
    takenAtFrom(text('ModifyDate'), text('OffsetTime'), text('SubSecTime'), 'DateTime')
  );
}

/**
 * A video's capture time: Apple's CreationDate carries the local time with its offset; the
 * QuickTime CreateDate is defined in UTC (ExifTool reads it so with QuickTimeUTC) and is zero
 * when the recorder did not set it.
 */
function videoTakenAt(tags: RawTags): TakenAt | null {
  const withZone = (value: unknown, source: TakenAt['source'], defaultZone?: string) => {
    if (typeof value !== 'string') return null;
    const match = /^(.{19})(\.\d+)?\s*(Z|[+-]\d{2}:\d{2})?$/.exec(value.trim());
    if (!match) return null;
    return takenAtFrom(match[1], match[3] ?? defaultZone, match[2]?.slice(1), source);
  };
  return withZone(tags.CreationDate, 'CreationDate') ?? withZone(tags.CreateDate, 'CreateDate', 'Z') ?? withZone(tags.MediaCreateDate, 'CreateDate', 'Z');
}

/** ExifTool notes a binary tag it did not extract as '(Binary data 12345 bytes, use -b option to extract)'. */
function binaryLength(value: unknown): number | null {
  const match = typeof value === 'string' ? /^\(Binary data (\d+) bytes/.exec(value) : null;
  return match ? Number(match[1]) : null;
}

function positive(value: unknown): number | null {
  const number = Number(value);
  return Number.isInteger(number) && number > 0 && number < 1_000_000 ? number : null;
}
