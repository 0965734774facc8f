import { z } from 'zod';
import { emailSchema } from '../services/accounts.js';
import type { FriendRequestView, Person } from '../services/friends/friend-service.js';
import { builder } from './builder.js';
import { uuidArg } from './id-arg.js';

export const PersonRef = builder.objectRef<Person>('Person').implement({
  description: 'Another user as a friend (or someone asking to be one) sees them: a name and an address, nothing of their library.',
  fields: (t) => ({
    id: t.exposeID('id'),
    nickname: t.exposeString('nickname'),
    email: t.exposeString('email'),
  }),
});

const FriendRequestStatus = builder.enumType('FriendRequestStatus', { values: ['PENDING', 'ACCEPTED', 'DECLINED', 'CANCELLED'] as const });

const FriendRequestRef = builder.objectRef<FriendRequestView>('FriendRequest').implement({
  description: 'A request to be friends (S6), by email: someone without an account sees it once they sign up with that address.',
  fields: (t) => ({
    id: t.exposeID('id'),
    from: t.field({ type: PersonRef, resolve: (r) => r.from }),
    toEmail: t.exposeString('toEmail'),
    to: t.field({ type: PersonRef, nullable: true, description: 'The addressee, once they have an account', resolve: (r) => r.to }),
    status: t.field({ type: FriendRequestStatus, resolve: (r) => r.status.toUpperCase() as 'PENDING' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    respondedAt: t.expose('respondedAt', { type: 'DateTime', nullable: true }),
  }),
});

const RequestDirection = builder.enumType('FriendRequestDirection', {
  values: { INCOMING: { description: 'Waiting for your answer' }, OUTGOING: { description: 'Yours, waiting for theirs' } } as const,
});

const friendId = uuidArg('user');
const requestId = uuidArg('friend request');

builder.queryFields((t) => ({
  friends: t.field({
    type: [PersonRef],
    authScopes: { signedIn: true },
    description: 'Your friends (S6), by nickname.',
    resolve: (_root, _args, context) => context.services.friends.listFriends(context.viewer!),
  }),
  friendRequests: t.field({
    type: [FriendRequestRef],
    authScopes: { signedIn: true },
    description: 'Open friend requests, newest first.',
    args: { direction: t.arg({ type: RequestDirection }) },
    resolve: (_root, { direction }, context) =>
      direction === 'INCOMING' ? context.services.friends.incomingRequests(context.viewer!) : context.services.friends.outgoingRequests(context.viewer!),
  }),
  blockedUsers: t.field({
    type: [PersonRef],
    authScopes: { signedIn: true },
    resolve: (_root, _args, context) => context.services.friends.blockedUsers(context.viewer!),
  }),
}));

builder.mutationFields((t) => ({
  requestFriend: t.field({
    type: FriendRequestRef,
    authScopes: { signedIn: true },
    description: 'Asks the owner of an email address to be friends. Asking again returns the open request; asking someone who asked you first makes you friends.',
    args: { email: t.arg.string({ validate: emailSchema }) },
    resolve: (_root, { email }, context) => context.services.friends.requestFriendship(context.viewer!, email),
  }),
  acceptFriendRequest: t.field({
    type: PersonRef,
    authScopes: { signedIn: true },
    description: 'Accepts a request addressed to you; returns your new friend.',
    args: { id: t.arg.id({ validate: requestId }) },
    resolve: (_root, { id }, context) => context.services.friends.acceptRequest(context.viewer!, String(id)),
  }),
  declineFriendRequest: t.field({
    type: FriendRequestRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: requestId }) },
    resolve: (_root, { id }, context) => context.services.friends.declineRequest(context.viewer!, String(id)),
  }),
  cancelFriendRequest: t.field({
    type: FriendRequestRef,
    authScopes: { signedIn: true },
    description: 'Withdraws one of your open requests.',
    args: { id: t.arg.id({ validate: requestId }) },
    resolve: (_root, { id }, context) => context.services.friends.cancelRequest(context.viewer!, String(id)),
  }),
  removeFriend: t.field({
    type: PersonRef,
    authScopes: { signedIn: true },
    description: 'Ends a friendship for both of you; they leave your contact groups and you theirs.',
    args: { userId: t.arg.id({ validate: friendId }) },
    resolve: (_root, { userId }, context) => context.services.friends.removeFriend(context.viewer!, String(userId)),
  }),
  blockUser: t.field({
    type: PersonRef,
    authScopes: { signedIn: true },
    description: 'Refuses every further request from this user (they are not told) and ends a friendship with them.',
    args: { userId: t.arg.id({ validate: friendId }) },
    resolve: (_root, { userId }, context) => context.services.friends.blockUser(context.viewer!, String(userId)),
  }),
  unblockUser: t.field({
    type: PersonRef,
    authScopes: { signedIn: true },
    args: { userId: t.arg.id({ validate: friendId }) },
    resolve: (_root, { userId }, context) => context.services.friends.unblockUser(context.viewer!, String(userId)),
  }),
}));

export const MemberIdsArg = z.array(z.coerce.string().pipe(z.uuid('Not a valid user id'))).max(1000, 'At most 1000 members at once');
