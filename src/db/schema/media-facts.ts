import { bigint, doublePrecision, integer, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * What is read from a photo's bytes: worked out once per blob, and copied onto each asset
 * so that library queries (paging, near-duplicates) stay inside one indexed table.
 */
export const mediaFacts = () => ({
  mimeType: text('mime_type'),
  width: integer('width'),
  height: integer('height'),
  /** Capture time from the file's metadata (on an asset: else the file time the client declared). */
  takenAt: timestamp('taken_at', { withTimezone: true }),
  /**
   * How to read takenAt: the UTC offset the file recorded ('+02:00'; takenAt is exact and the
   * offset gives the local time), 'Z' (exact, local zone unknown: a video's UTC time, a client's
   * file time), or null: the camera's wall-clock time without a zone, stored as if it were UTC,
   * so that the date and time shown are the ones the camera showed.
   */
  takenAtZone: text('taken_at_zone'),
  make: text('make'),
  model: text('model'),
  /** Where it was taken (private to the owner). */
  latitude: doublePrecision('latitude'),
  longitude: doublePrecision('longitude'),
  altitude: doublePrecision('altitude'),
  /** Videos: length and codec of the video stream. */
  durationMs: integer('duration_ms'),
  videoCodec: text('video_codec'),
  /** 64-bit dHash as a signed bigint (null when the bytes are not a readable image). */
  phash: bigint('phash', { mode: 'bigint' }),
  /**
   * pending: stored, its background processing (thumbnails, facts, perceptual hash) not done yet;
   * ready: thumbnail and preview exist; failed: not a readable image or video (see thumbnailError).
   */
  thumbnailStatus: text('thumbnail_status', { enum: ['pending', 'ready', 'failed'] }).notNull().default('pending'),
});
