import { open } from 'node:fs/promises';
import { takenAtFrom } from '../protocol/capture-time.js';
import { mediaTypeFromName } from '../protocol/media-types.js';

/** EXIF sits in a photo's first 64 KiB (JPEG) or its metadata box (HEIC): 256 KiB holds it. */
const HEAD_BYTES = 256 * 1024;

/**
 * When a file was taken, for `pixshare sync --since`: the photo's EXIF capture time (a time with
 * no zone is read as this machine's local time, where the person is), else the file's
 * modification time (videos, and photos without EXIF).
 */
export async function captureTime(path: string, mtimeMs: number): Promise<Date> {
  const type = mediaTypeFromName(path);
  if (type?.startsWith('image/')) {
    try {
      const file = await open(path, 'r');
      let head: Buffer;
      try {
        const { buffer, bytesRead } = await file.read(Buffer.alloc(HEAD_BYTES), 0, HEAD_BYTES, 0);
        head = buffer.subarray(0, bytesRead);
      } finally {
        await file.close();
      }
      // Loaded on first use: only `sync --since` reads EXIF, and the command starts faster without it.
      const { default: ExifReader } = await import('exifreader');
      const exif = ExifReader.load(head, { expanded: true }).exif as Record<string, { description?: unknown } | undefined> | undefined;
      const text = (name: string) => (typeof exif?.[name]?.description === 'string' ? (exif[name].description as string) : undefined);
      const takenAt =
        takenAtFrom(text('DateTimeOriginal'), text('OffsetTimeOriginal'), text('SubSecTimeOriginal'), 'DateTimeOriginal') ??
        takenAtFrom(text('DateTimeDigitized'), text('OffsetTimeDigitized'), text('SubSecTimeDigitized'), 'CreateDate');
      if (takenAt) return takenAt.instant ?? new Date(takenAt.local);
    } catch {
      // No readable EXIF: the file's time says when.
    }
  }
  return new Date(mtimeMs);
}

/** `--since`: '7d', '12h', '2w', '3m' (30 days each), '1y', or a date ('2026-11-01', local midnight) or time. */
export function parseSince(text: string, now = new Date()): Date | null {
  const relative = /^(\d+)\s*([hdwmy])$/i.exec(text.trim());
  if (relative) {
    const hours = { h: 1, d: 24, w: 24 * 7, m: 24 * 30, y: 24 * 365 }[relative[2]!.toLowerCase() as 'h' | 'd' | 'w' | 'm' | 'y'];
    return new Date(now.getTime() - Number(relative[1]) * hours * 3_600_000);
  }
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  const date = day ? new Date(Number(day[1]), Number(day[2]) - 1, Number(day[3])) : new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}
