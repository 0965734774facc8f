import type { LevelSettings } from '../../config.js';
import { AppError } from '../app-error.js';

/**
 * S2's rules for one user level: what an upload, a folder or a share gets when nobody says
 * otherwise, and how far ahead the owner may move it (the sweep that applies them is
 * services/library/expiry-service.ts).
 */

/** When something made now expires by default: the level's expiry days from now. */
export function defaultExpiry(level: LevelSettings, now = new Date()): Date {
  return new Date(now.getTime() + level.expiryDays * 86_400_000);
}

/** The latest expiry the level allows from now; null: no limit (an expiry may be cleared too). */
export function expiryLimit(level: LevelSettings, now = new Date()): Date | null {
  return level.maxExpiryDays === 0 ? null : new Date(now.getTime() + level.maxExpiryDays * 86_400_000);
}

/** An expiry the owner asks for: in the future, and within what their level allows (null: never). */
export function checkRequestedExpiry(level: LevelSettings, expiresAt: Date | null, now = new Date()): Date | null {
  const limit = expiryLimit(level, now);
  if (expiresAt === null) {
    if (limit) throw new AppError('BAD_USER_INPUT', `Your level keeps files at most ${level.maxExpiryDays} days ahead; an expiry cannot be cleared`, { field: 'expiresAt', maxExpiryDays: level.maxExpiryDays });
    return null;
  }
  if (Number.isNaN(expiresAt.getTime()) || expiresAt <= now) throw new AppError('BAD_USER_INPUT', 'The expiry must be in the future', { field: 'expiresAt' });
  if (limit && expiresAt > limit) {
    throw new AppError('BAD_USER_INPUT', `Your level allows an expiry at most ${level.maxExpiryDays} days ahead`, { field: 'expiresAt', maxExpiryDays: level.maxExpiryDays });
  }
  return expiresAt;
}
