import { and, asc, desc, eq, inArray, isNull, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { blocks, contactGroupMembers, contactGroups, friendRequests, friendships, shareRecipients, shares, users, type FriendRequestRow } from '../../db/schema/index.js';
import type { Tx } from '../../db/transaction.js';
import { emailSchema } from '../accounts.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { isUuid } from '../ids.js';
import type { JobQueue } from '../jobs/job-queue.js';

/** Open requests a user may have sent and not yet seen answered: a cap against request spam. */
export const MAX_OPEN_REQUESTS = 500;
/** New requests a user may send in a day (each can mail someone): the other cap against spam. */
export const MAX_REQUESTS_PER_DAY = 50;
/** One mail per sender and address in this many days, however often a request is withdrawn and made again. */
const MAIL_AGAIN_AFTER_DAYS = 7;

/** What a user sees of another: enough to recognise a friend, nothing of their library. */
export interface Person {
  id: string;
  nickname: string;
  email: string;
}

export interface FriendRequestView {
  id: string;
  /** The sender. */
  from: Person;
  toEmail: string;
  /** The addressee, once they have an account. */
  to: Person | null;
  /** What the viewer may know: a request the addressee blocked still looks pending to its sender. */
  status: 'pending' | 'accepted' | 'declined' | 'cancelled';
  createdAt: Date;
  respondedAt: Date | null;
}

const person = { id: users.id, nickname: users.nickname, email: users.email };

/**
 * The friend relationship chain (S6): requests by email (an address without an account sees its
 * requests once it signs up with it), accept, decline, cancel, remove, and blocking, which refuses
 * every further request from someone without telling them. `areFriends` is the one answer sharing
 * asks.
 */
export class FriendService {
  constructor(private readonly deps: { db: Db; jobs: JobQueue }) {}

  async areFriends(userId: string, otherId: string): Promise<boolean> {
    if (!isUuid(otherId)) return false;
    const [row] = await this.deps.db.select({ userId: friendships.userId }).from(friendships).where(and(eq(friendships.userId, userId), eq(friendships.friendId, otherId)));
    return row !== undefined;
  }

  /**
   * The viewer's friends among these user ids and email addresses (for a share being sent): each
   * once; anyone who is not a friend is left out, and an address is matched only to a friend, so
   * nothing tells whether a stranger's address has an account.
   */
  async friendsAmong(viewer: Viewer, match: { ids?: readonly string[]; emails?: readonly string[] }, tx?: Tx): Promise<Person[]> {
    const ids = (match.ids ?? []).filter(isUuid);
    const emails = match.emails ?? [];
    if (ids.length === 0 && emails.length === 0) return [];
    return (tx ?? this.deps.db)
      .select(person)
      .from(friendships)
      .innerJoin(users, eq(users.id, friendships.friendId))
      .where(
        and(
          eq(friendships.userId, viewer.user.id),
          or(sql`${friendships.friendId} = any(${sql.param(ids)}::uuid[])`, sql`${users.email} = any(${sql.param(emails)}::text[])`),
        ),
      );
  }

  /** The viewer's friends, by nickname. */
  async listFriends(viewer: Viewer): Promise<Person[]> {
    return this.deps.db.select(person).from(friendships).innerJoin(users, eq(users.id, friendships.friendId)).where(eq(friendships.userId, viewer.user.id)).orderBy(asc(users.nickname), asc(users.id));
  }

  /**
   * Asks the owner of `email` to be friends. Asking again returns the open request; asking someone
   * who asked first accepts their request. Someone who blocked the viewer never sees the request,
   * and the viewer is not told.
   */
  async requestFriendship(viewer: Viewer, rawEmail: string): Promise<FriendRequestView> {
    const parsed = emailSchema.safeParse(rawEmail);
    if (!parsed.success) throw new AppError('BAD_USER_INPUT', parsed.error.issues[0]?.message ?? 'Not a valid email address', { field: 'email' });
    const email = parsed.data;
    if (email === viewer.user.email) throw new AppError('CANNOT_BEFRIEND_SELF', 'You cannot be your own friend');
    const id = await this.deps.db.transaction(async (tx) => {
      const [target] = await tx.select(person).from(users).where(eq(users.email, email));
      // Both people's rows, in one order for every pair: a request, an answer, a block and an
      // unfriending of the same two people run one after the other, never across each other.
      await lockPeople(tx, target ? [viewer.user.id, target.id] : [viewer.user.id]);
      if (target) {
        if (await this.friendsIn(tx, viewer.user.id, target.id)) throw new AppError('ALREADY_FRIENDS', 'You are friends already', { userId: target.id });
        // They asked first: this is the answer.
        const [theirs] = await tx
          .select({ id: friendRequests.id })
          .from(friendRequests)
          .where(and(eq(friendRequests.fromUserId, target.id), eq(friendRequests.toEmail, viewer.user.email), eq(friendRequests.status, 'pending')));
        if (theirs && !(await this.blockedIn(tx, viewer.user.id, target.id))) {
          await this.befriend(tx, theirs.id, target.id, viewer.user.id);
          return theirs.id;
        }
      }
      const blocked = target ? await this.blockedIn(tx, target.id, viewer.user.id) : false;
      const [open] = await tx
        .select({ id: friendRequests.id, status: friendRequests.status })
        .from(friendRequests)
        .where(and(eq(friendRequests.fromUserId, viewer.user.id), eq(friendRequests.toEmail, email), inArray(friendRequests.status, ['pending', 'blocked'])));
      if (open) {
        // Made while the addressee blocked the sender, who has since been unblocked: it goes through now.
        if (open.status === 'blocked' && !blocked) {
          await tx.update(friendRequests).set({ status: 'pending' }).where(eq(friendRequests.id, open.id));
          await this.mailUnlessRecent(tx, viewer, email, open.id);
        }
        return open.id;
      }
      const [counts] = await tx
        .select({
          open: sql<number>`count(*) filter (where ${friendRequests.status} in ('pending', 'blocked'))::int`,
          today: sql<number>`count(*) filter (where ${friendRequests.createdAt} > now() - interval '1 day')::int`,
        })
        .from(friendRequests)
        .where(eq(friendRequests.fromUserId, viewer.user.id));
      if ((counts?.open ?? 0) >= MAX_OPEN_REQUESTS) throw new AppError('LIMIT_REACHED', `At most ${MAX_OPEN_REQUESTS} friend requests may wait for an answer`, { limit: MAX_OPEN_REQUESTS });
      if ((counts?.today ?? 0) >= MAX_REQUESTS_PER_DAY) throw new AppError('LIMIT_REACHED', `At most ${MAX_REQUESTS_PER_DAY} friend requests a day`, { limit: MAX_REQUESTS_PER_DAY });
      const [created] = await tx.insert(friendRequests).values({ fromUserId: viewer.user.id, toEmail: email, status: blocked ? 'blocked' : 'pending' }).returning({ id: friendRequests.id });
      // The addressee hears of it by mail (not when they blocked the sender): sent by a job that exists exactly when the request does.
      if (!blocked) await this.mailUnlessRecent(tx, viewer, email, created!.id);
      return created!.id;
    });
    return this.requestView(viewer, id);
  }

  /** Requests waiting for the viewer's answer, newest first. */
  async incomingRequests(viewer: Viewer): Promise<FriendRequestView[]> {
    const rows = await this.deps.db
      .select({ request: friendRequests, from: person })
      .from(friendRequests)
      .innerJoin(users, eq(users.id, friendRequests.fromUserId))
      .where(and(eq(friendRequests.toEmail, viewer.user.email), eq(friendRequests.status, 'pending')))
      .orderBy(desc(friendRequests.createdAt));
    return rows.map(({ request, from }) => view(request, from, selfAsPerson(viewer)));
  }

  /** The viewer's requests still waiting for an answer, newest first. */
  async outgoingRequests(viewer: Viewer): Promise<FriendRequestView[]> {
    const rows = await this.deps.db
      .select({ request: friendRequests })
      .from(friendRequests)
      .where(and(eq(friendRequests.fromUserId, viewer.user.id), inArray(friendRequests.status, ['pending', 'blocked'])))
      .orderBy(desc(friendRequests.createdAt));
    // Open requests: whether the address has an account is not told before its owner accepts.
    return rows.map(({ request }) => view(request, selfAsPerson(viewer), null));
  }

  /** Accepts a request addressed to the viewer; returns the new friend. */
  async acceptRequest(viewer: Viewer, requestId: string): Promise<Person> {
    return this.deps.db.transaction(async (tx) => {
      const found = await this.incomingIn(tx, viewer, requestId, false);
      await lockPeople(tx, [viewer.user.id, found.fromUserId]);
      // Read again under the locks: a block or a withdrawal may have come first.
      const request = await this.incomingIn(tx, viewer, requestId, true);
      await this.befriend(tx, request.id, request.fromUserId, viewer.user.id);
      const [from] = await tx.select(person).from(users).where(eq(users.id, request.fromUserId));
      return from!;
    });
  }

  async declineRequest(viewer: Viewer, requestId: string): Promise<FriendRequestView> {
    await this.deps.db.transaction(async (tx) => {
      const request = await this.incomingIn(tx, viewer, requestId);
      await tx.update(friendRequests).set({ status: 'declined', respondedAt: sql`now()` }).where(eq(friendRequests.id, request.id));
    });
    return this.requestView(viewer, requestId);
  }

  /** Withdraws one of the viewer's open requests. */
  async cancelRequest(viewer: Viewer, requestId: string): Promise<FriendRequestView> {
    if (!isUuid(requestId)) throw notFound('friend request');
    const [cancelled] = await this.deps.db
      .update(friendRequests)
      .set({ status: 'cancelled', respondedAt: sql`now()` })
      .where(and(eq(friendRequests.id, requestId), eq(friendRequests.fromUserId, viewer.user.id), inArray(friendRequests.status, ['pending', 'blocked'])))
      .returning({ id: friendRequests.id });
    if (!cancelled) throw notFound('friend request');
    return this.requestView(viewer, requestId);
  }

  /** Ends a friendship, for both; they leave each other's contact groups. */
  async removeFriend(viewer: Viewer, friendId: string): Promise<Person> {
    if (!isUuid(friendId)) throw notFound('friend');
    return this.deps.db.transaction(async (tx) => {
      await lockPeople(tx, [viewer.user.id, friendId]);
      const [friend] = await tx.select(person).from(friendships).innerJoin(users, eq(users.id, friendships.friendId)).where(and(eq(friendships.userId, viewer.user.id), eq(friendships.friendId, friendId)));
      if (!friend) throw notFound('friend');
      await this.unfriendIn(tx, viewer.user.id, friendId);
      return friend;
    });
  }

  /**
   * Refuses every further request from this user: an open request of theirs disappears, a
   * friendship ends, and they are not told (their requests look pending to them).
   */
  async blockUser(viewer: Viewer, userId: string): Promise<Person> {
    if (!isUuid(userId) || userId === viewer.user.id) throw notFound('user');
    return this.deps.db.transaction(async (tx) => {
      await lockPeople(tx, [viewer.user.id, userId]);
      const [target] = await tx.select(person).from(users).where(eq(users.id, userId));
      // Only someone the viewer knows — a friend, or someone who asked them — can be blocked: a user id
      // alone tells nobody whose it is.
      if (!target || !(await this.connectedIn(tx, viewer, target.id))) throw notFound('user');
      await tx.insert(blocks).values({ userId: viewer.user.id, blockedUserId: target.id }).onConflictDoNothing();
      await this.unfriendIn(tx, viewer.user.id, target.id);
      await tx.update(friendRequests).set({ status: 'blocked' }).where(and(eq(friendRequests.fromUserId, target.id), eq(friendRequests.toEmail, viewer.user.email), eq(friendRequests.status, 'pending')));
      await tx
        .update(friendRequests)
        .set({ status: 'cancelled', respondedAt: sql`now()` })
        .where(and(eq(friendRequests.fromUserId, viewer.user.id), eq(friendRequests.toEmail, target.email), inArray(friendRequests.status, ['pending', 'blocked'])));
      return target;
    });
  }

  /** Lets this user's requests through again (requests made while blocked stay unseen). */
  async unblockUser(viewer: Viewer, userId: string): Promise<Person> {
    if (!isUuid(userId)) throw notFound('user');
    const [removed] = await this.deps.db.delete(blocks).where(and(eq(blocks.userId, viewer.user.id), eq(blocks.blockedUserId, userId))).returning();
    if (!removed) throw notFound('blocked user');
    const [target] = await this.deps.db.select(person).from(users).where(eq(users.id, userId));
    return target!;
  }

  async blockedUsers(viewer: Viewer): Promise<Person[]> {
    return this.deps.db.select(person).from(blocks).innerJoin(users, eq(users.id, blocks.blockedUserId)).where(eq(blocks.userId, viewer.user.id)).orderBy(asc(users.nickname));
  }

  // -- internals -------------------------------------------------------------

  /** A request the viewer may answer, locked; someone else's looks missing. */
  private async incomingIn(tx: Tx, viewer: Viewer, requestId: string, lock = true): Promise<FriendRequestRow> {
    if (!isUuid(requestId)) throw notFound('friend request');
    const query = tx
      .select()
      .from(friendRequests)
      .where(and(eq(friendRequests.id, requestId), eq(friendRequests.toEmail, viewer.user.email), eq(friendRequests.status, 'pending')));
    const [request] = lock ? await query.for('update') : await query;
    if (!request) throw notFound('friend request');
    return request;
  }

  private async befriend(tx: Tx, requestId: string, fromUserId: string, toUserId: string): Promise<void> {
    await tx.update(friendRequests).set({ status: 'accepted', respondedAt: sql`now()` }).where(eq(friendRequests.id, requestId));
    // A request the other way is answered by this too.
    await tx
      .update(friendRequests)
      .set({ status: 'accepted', respondedAt: sql`now()` })
      .where(and(eq(friendRequests.fromUserId, toUserId), sql`${friendRequests.toEmail} = (select ${users.email} from ${users} where ${users.id} = ${fromUserId})`, inArray(friendRequests.status, ['pending', 'blocked'])));
    await tx.insert(friendships).values([{ userId: fromUserId, friendId: toUserId }, { userId: toUserId, friendId: fromUserId }]).onConflictDoNothing();
  }

  private async unfriendIn(tx: Tx, a: string, b: string): Promise<void> {
    await tx.delete(friendships).where(or(and(eq(friendships.userId, a), eq(friendships.friendId, b)), and(eq(friendships.userId, b), eq(friendships.friendId, a))));
    // Each leaves the other's contact groups.
    await tx.delete(contactGroupMembers).where(
      or(
        and(eq(contactGroupMembers.memberId, b), sql`${contactGroupMembers.groupId} in (select ${contactGroups.id} from ${contactGroups} where ${contactGroups.userId} = ${a})`),
        and(eq(contactGroupMembers.memberId, a), sql`${contactGroupMembers.groupId} in (select ${contactGroups.id} from ${contactGroups} where ${contactGroups.userId} = ${b})`),
      ),
    );
    // What each shared with the other as a friend ends: their links stop working (SHARE_REVOKED).
    await tx
      .update(shareRecipients)
      .set({ revokedAt: sql`now()` })
      .where(
        and(
          isNull(shareRecipients.revokedAt),
          or(
            and(eq(shareRecipients.userId, b), sql`${shareRecipients.shareId} in (select ${shares.id} from ${shares} where ${shares.ownerId} = ${a})`),
            and(eq(shareRecipients.userId, a), sql`${shareRecipients.shareId} in (select ${shares.id} from ${shares} where ${shares.ownerId} = ${b})`),
          ),
        ),
      );
  }

  /** A friend of the viewer's, someone they blocked, or someone who asked them or whom they asked (any answer). */
  private async connectedIn(tx: Tx, viewer: Viewer, otherId: string): Promise<boolean> {
    if (await this.friendsIn(tx, viewer.user.id, otherId)) return true;
    if (await this.blockedIn(tx, viewer.user.id, otherId)) return true;
    const [asked] = await tx
      .select({ id: friendRequests.id })
      .from(friendRequests)
      .where(
        or(
          and(eq(friendRequests.fromUserId, otherId), eq(friendRequests.toEmail, viewer.user.email)),
          and(eq(friendRequests.fromUserId, viewer.user.id), sql`${friendRequests.toEmail} = (select ${users.email} from ${users} where ${users.id} = ${otherId})`),
        ),
      )
      .limit(1);
    return asked !== undefined;
  }

  /** Queues the request's mail, unless this sender mailed this address lately (withdrawing and asking again mails once). */
  private async mailUnlessRecent(tx: Tx, viewer: Viewer, email: string, requestId: string): Promise<void> {
    const [recent] = await tx
      .select({ id: friendRequests.id })
      .from(friendRequests)
      .where(
        and(
          eq(friendRequests.fromUserId, viewer.user.id),
          eq(friendRequests.toEmail, email),
          sql`${friendRequests.id} <> ${requestId}`,
          sql`${friendRequests.createdAt} > now() - make_interval(days => ${MAIL_AGAIN_AFTER_DAYS})`,
          sql`${friendRequests.status} <> 'blocked'`,
        ),
      )
      .limit(1);
    if (!recent) await this.deps.jobs.addIn(tx, 'send-friend-request-mail', { requestId });
  }

  private async friendsIn(tx: Tx, a: string, b: string): Promise<boolean> {
    const [row] = await tx.select({ userId: friendships.userId }).from(friendships).where(and(eq(friendships.userId, a), eq(friendships.friendId, b)));
    return row !== undefined;
  }

  /** Whether `userId` blocked `otherId`. */
  private async blockedIn(tx: Tx, userId: string, otherId: string): Promise<boolean> {
    const [row] = await tx.select({ userId: blocks.userId }).from(blocks).where(and(eq(blocks.userId, userId), eq(blocks.blockedUserId, otherId)));
    return row !== undefined;
  }

  /** One request as the viewer may see it: theirs (sent) or addressed to them. */
  private async requestView(viewer: Viewer, requestId: string): Promise<FriendRequestView> {
    const [row] = await this.deps.db
      .select({ request: friendRequests, from: person })
      .from(friendRequests)
      .innerJoin(users, eq(users.id, friendRequests.fromUserId))
      .where(and(eq(friendRequests.id, requestId), or(eq(friendRequests.fromUserId, viewer.user.id), and(eq(friendRequests.toEmail, viewer.user.email), sql`${friendRequests.status} <> 'blocked'`))));
    if (!row) throw notFound('friend request');
    // Whether an address has an account is not told before its owner accepted.
    const [to] = row.request.status === 'accepted' ? await this.deps.db.select(person).from(users).where(eq(users.email, row.request.toEmail)) : [];
    return view(row.request, row.from, to ?? null);
  }
}

function view(request: FriendRequestRow, from: Person, to: Person | null): FriendRequestView {
  return {
    id: request.id,
    from,
    toEmail: request.toEmail,
    to,
    status: request.status === 'blocked' ? 'pending' : request.status,
    createdAt: request.createdAt,
    respondedAt: request.status === 'blocked' ? null : request.respondedAt,
  };
}

function selfAsPerson(viewer: Viewer): Person {
  return { id: viewer.user.id, nickname: viewer.user.nickname, email: viewer.user.email };
}

function notFound(what: string): AppError {
  return new AppError('NOT_FOUND', `No such ${what}`);
}

/**
 * Locks these users' rows (FOR NO KEY UPDATE: friendship rows can still reference them) in id
 * order, so that two transactions about the same people never wait for each other crosswise.
 */
async function lockPeople(tx: Tx, userIds: string[]): Promise<void> {
  const ids = [...new Set(userIds.filter(isUuid))].sort();
  for (const id of ids) await tx.select({ id: users.id }).from(users).where(eq(users.id, id)).for('no key update');
}
