import { z } from 'zod';
import type { ContactGroupView } from '../services/friends/contact-group-service.js';
import { builder } from './builder.js';
import { MemberIdsArg, PersonRef } from './friend.js';
import { uuidArg } from './id-arg.js';

const ContactGroupRef = builder.objectRef<ContactGroupView>('ContactGroup').implement({
  description: 'A named group of your friends (G2), e.g. "family": shares can be sent to a group.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    members: t.field({ type: [PersonRef], resolve: (g) => g.members }),
    memberCount: t.int({ resolve: (g) => g.members.length }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const groupId = uuidArg('contact group');
const name = z.string().trim().min(1, 'Group names have 1 to 100 characters').max(100, 'Group names have 1 to 100 characters');

builder.queryFields((t) => ({
  contactGroups: t.field({
    type: [ContactGroupRef],
    authScopes: { signedIn: true },
    description: 'Your contact groups, by name.',
    resolve: (_root, _args, context) => context.services.contactGroups.listGroups(context.viewer!),
  }),
  contactGroup: t.field({
    type: ContactGroupRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: groupId }) },
    resolve: (_root, { id }, context) => context.services.contactGroups.getGroup(context.viewer!, String(id)),
  }),
}));

builder.mutationFields((t) => ({
  createContactGroup: t.field({
    type: ContactGroupRef,
    authScopes: { signedIn: true },
    description: 'A new group, optionally with friends in it already.',
    args: { name: t.arg.string({ validate: name }), memberIds: t.arg.idList({ required: false, validate: MemberIdsArg.optional().nullable() }) },
    resolve: (_root, args, context) => context.services.contactGroups.createGroup(context.viewer!, args.name, (args.memberIds ?? []).map(String)),
  }),
  renameContactGroup: t.field({
    type: ContactGroupRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: groupId }), name: t.arg.string({ validate: name }) },
    resolve: (_root, args, context) => context.services.contactGroups.renameGroup(context.viewer!, String(args.id), args.name),
  }),
  deleteContactGroup: t.field({
    type: ContactGroupRef,
    authScopes: { signedIn: true },
    description: 'Removes the group; its members stay your friends.',
    args: { id: t.arg.id({ validate: groupId }) },
    resolve: (_root, { id }, context) => context.services.contactGroups.deleteGroup(context.viewer!, String(id)),
  }),
  addContactGroupMembers: t.field({
    type: ContactGroupRef,
    authScopes: { signedIn: true },
    description: 'Adds friends to the group; anyone who is not your friend refuses the whole call (NOT_A_FRIEND).',
    args: { id: t.arg.id({ validate: groupId }), memberIds: t.arg.idList({ validate: MemberIdsArg }) },
    resolve: (_root, args, context) => context.services.contactGroups.addMembers(context.viewer!, String(args.id), args.memberIds.map(String)),
  }),
  removeContactGroupMember: t.field({
    type: ContactGroupRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: groupId }), memberId: t.arg.id({ validate: uuidArg('user') }) },
    resolve: (_root, args, context) => context.services.contactGroups.removeMember(context.viewer!, String(args.id), String(args.memberId)),
  }),
}));
