/** Capture times as cameras write them (EXIF), read the same way by the server and by clients. */

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
