import { and, eq, gt, sql } from 'drizzle-orm';
import { shareRecipients, shares } from '../../db/schema/index.js';
import type { Tx } from '../../db/transaction.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import type { ContactGroupService } from '../friends/contact-group-service.js';
import type { FriendService } from '../friends/friend-service.js';

/** Plain email addresses (each gets a mail) a user may share with in a day: a cap against spam. */
export const MAX_EMAIL_RECIPIENTS_PER_DAY = 500;

export interface ResolvedRecipient {
  userId: string | null;
  email: string;
  via: 'friend' | 'group' | 'email';
}

/**
 * Who a share goes to: friends by id (each must be a friend), groups expanded now, addresses (an
 * address of a friend is that friend). One recipient per address, a friend picked directly before
 * one through a group; never the sender. NOT_A_FRIEND for a stranger's id, BAD_USER_INPUT for nobody.
 */
export async function resolveRecipients(
  deps: { friends: FriendService; contactGroups: ContactGroupService },
  tx: Tx,
  viewer: Viewer,
  friendIds: string[],
  groupIds: string[],
  emails: string[],
): Promise<ResolvedRecipient[]> {
  const byId = await deps.friends.friendsAmong(viewer, { ids: friendIds, emails }, tx);
  const strangers = friendIds.filter((id) => !byId.some((p) => p.id === id));
  if (strangers.length > 0) throw new AppError('NOT_A_FRIEND', 'You can share with friends, your groups and email addresses', { userIds: strangers.slice(0, 20) });
  const grouped = await deps.contactGroups.expandGroups(viewer, groupIds);
  const recipients = new Map<string, ResolvedRecipient>();
  for (const friend of byId) recipients.set(friend.email, { userId: friend.id, email: friend.email, via: 'friend' });
  for (const member of grouped) if (!recipients.has(member.email)) recipients.set(member.email, { userId: member.id, email: member.email, via: 'group' });
  for (const email of emails) if (!recipients.has(email)) recipients.set(email, { userId: null, email, via: 'email' });
  recipients.delete(viewer.user.email);
  if (recipients.size === 0) throw new AppError('BAD_USER_INPUT', 'Nobody to share with (a share to yourself alone is not sent)', { field: 'emails' });
  return [...recipients.values()];
}

/** LIMIT_REACHED when `adding` more plain addresses would pass the day's cap. */
export async function refuseMailFlood(tx: Tx, viewer: Viewer, adding: number): Promise<void> {
  if (adding === 0) return;
  const [{ n } = { n: 0 }] = await tx
    .select({ n: sql<number>`count(*)::int` })
    .from(shareRecipients)
    .innerJoin(shares, eq(shares.id, shareRecipients.shareId))
    .where(and(eq(shares.ownerId, viewer.user.id), eq(shareRecipients.via, 'email'), gt(shareRecipients.createdAt, sql`now() - interval '1 day'`)));
  if (n + adding > MAX_EMAIL_RECIPIENTS_PER_DAY) {
    throw new AppError('LIMIT_REACHED', `You can share with at most ${MAX_EMAIL_RECIPIENTS_PER_DAY} email addresses a day`, { limit: MAX_EMAIL_RECIPIENTS_PER_DAY });
  }
}
