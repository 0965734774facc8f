import type { AssetRow } from '../../db/schema/index.js';
import { AppError } from '../app-error.js';
import { isUuid } from '../ids.js';

/** A page cursor: the last asset's upload time and id (newest first, ties broken by id). */
export function encodeCursor(asset: Pick<AssetRow, 'uploadedAt' | 'id'>): string {
  return encodeTimeCursor(asset.uploadedAt, asset.id);
}

/** A page cursor of any list ordered by a millisecond time and an id (shares, received shares). */
export function encodeTimeCursor(at: Date, id: string): string {
  return Buffer.from(`${at.toISOString()}|${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const date = new Date(at ?? '');
  if (!id || !/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(at ?? '') || Number.isNaN(date.getTime()) || !isUuid(id)) throw new AppError('BAD_USER_INPUT', 'Invalid cursor', { field: 'after' });
  return { at: date, id };
}
