import { and, asc, desc, eq, inArray, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { blocks, contactGroupMembers, contactGroups, friendRequests, friendships, users, type FriendRequestRow } from '../../db/schema/index.js';
import type { Tx } from '../../db/transaction.js';
import { emailSchema } from '../accounts.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { isUuid } from '../ids.js';
import type { JobQueue } from '../jobs/job-queue.js';

/** Open requests a user may have sent and not yet seen answered: a cap against request spam. */
export const MAX_OPEN_REQUESTS = 500;

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
      // The sender's row first: two requests of one sender are counted one after the other.
      await tx.select({ id: users.id }).from(users).where(eq(users.id, viewer.user.id)).for('update');
      const [target] = await tx.select(person).from(users).where(eq(users.email, email));
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
      const [open] = await tx
        .select({ id: friendRequests.id })
        .from(friendRequests)
        .where(and(eq(friendRequests.fromUserId, viewer.user.id), eq(friendRequests.toEmail, email), inArray(friendRequests.status, ['pending', 'blocked'])));
      if (open) return open.id;
      const [{ n } = { n: 0 }] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(friendRequests)
        .where(and(eq(friendRequests.fromUserId, viewer.user.id), inArray(friendRequests.status, ['pending', 'blocked'])));
      if (n >= MAX_OPEN_REQUESTS) throw new AppError('LIMIT_REACHED', `At most ${MAX_OPEN_REQUESTS} friend requests may wait for an answer`, { limit: MAX_OPEN_REQUESTS });
      const blocked = target ? await this.blockedIn(tx, target.id, viewer.user.id) : false;
      const [created] = await tx.insert(friendRequests).values({ fromUserId: viewer.user.id, toEmail: email, status: blocked ? 'blocked' : 'pending' }).returning({ id: friendRequests.id });
      // The addressee hears of it by mail (not when they blocked the sender): sent by a job that exists exactly when the request does.
      if (!blocked) await this.deps.jobs.addIn(tx, 'send-friend-request-mail', { requestId: created!.id });
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
      .select({ request: friendRequests, to: person })
      .from(friendRequests)
      .leftJoin(users, eq(users.email, friendRequests.toEmail))
      .where(and(eq(friendRequests.fromUserId, viewer.user.id), inArray(friendRequests.status, ['pending', 'blocked'])))
      .orderBy(desc(friendRequests.createdAt));
    return rows.map(({ request, to }) => view(request, selfAsPerson(viewer), to?.id ? to : null));
  }

  /** Accepts a request addressed to the viewer; returns the new friend. */
  async acceptRequest(viewer: Viewer, requestId: string): Promise<Person> {
    return this.deps.db.transaction(async (tx) => {
      const request = await this.incomingIn(tx, viewer, requestId);
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
      const [target] = await tx.select(person).from(users).where(eq(users.id, userId));
      if (!target) throw notFound('user');
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
  private async incomingIn(tx: Tx, viewer: Viewer, requestId: string): Promise<FriendRequestRow> {
    if (!isUuid(requestId)) throw notFound('friend request');
    const [request] = await tx
      .select()
      .from(friendRequests)
      .where(and(eq(friendRequests.id, requestId), eq(friendRequests.toEmail, viewer.user.email), eq(friendRequests.status, 'pending')))
      .for('update');
    if (!request) throw notFound('friend request');
    return request;
  }

  private async befriend(tx: Tx, requestId: string, fromUserId: string, toUserId: string): Promise<void> {
    await tx.update(friendRequests).set({ status: 'accepted', respondedAt: sql`now()` }).where(eq(friendRequests.id, requestId));
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
    const [to] = await this.deps.db.select(person).from(users).where(eq(users.email, row.request.toEmail));
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
