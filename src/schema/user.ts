import type { UserRow } from '../db/schema/index.js';
import { builder } from './builder.js';

export const UserRef = builder.objectRef<UserRow>('User').implement({
  description: 'An account.',
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email'),
    nickname: t.exposeString('nickname'),
    level: t.exposeString('level', { description: 'member or standard; decides quota and default expiry' }),
    quotaBytes: t.float({
      description: 'Upload space of this account in bytes',
      resolve: (user, _args, context) => context.services.quota.bytesFor(user.level),
    }),
    usedBytes: t.float({
      description: 'Bytes of the library counted against the quota',
      // The viewer row is read at authentication; the library may have changed since, so ask again.
      resolve: (user, _args, context) => context.services.library.usage(user),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

builder.queryField('me', (t) =>
  t.field({
    type: UserRef,
    nullable: true,
    description: 'The signed-in user, or null.',
    resolve: (_root, _args, context) => context.viewer?.user ?? null,
  }),
);
