import type { Logger } from '../logger.js';
import type { LibraryService } from './library/library-service.js';
import type { Db } from '../db/client.js';
import { endEmptyShares } from './sharing/end-empty-shares.js';

/**
 * The expiry sweep (S2), a scheduled job: expired folders and photos go (with their usage and
 * blob references), then the shares left without items end. `now` is the clock it judges by.
 */
export async function sweepExpired(deps: { db: Db; library: LibraryService; log: Pick<Logger, 'info'> }, now = new Date()) {
  const removed = await deps.library.removeExpired(now);
  const shares = await endEmptyShares(deps.db, now);
  if (removed.folders + removed.assets + shares.ended > 0) {
    deps.log.info(`expiry sweep: ${removed.folders} folders and ${removed.assets} photos removed, ${shares.ended} shares ended`);
  }
  return { ...removed, sharesEnded: shares.ended, sharesDeleted: shares.deleted };
}
