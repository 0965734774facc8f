import type { AuthResult } from '../services/accounts.js';
import { deviceInputSchema, emailSchema, nicknameSchema, MAX_PASSWORD_LENGTH, passwordSchema } from '../services/accounts.js';
import { builder } from './builder.js';
import { DeviceRef } from './device.js';
import { UserRef } from './user.js';
import { z } from 'zod';

const DeviceInput = builder.inputType('DeviceInput', {
  description: 'Names the program signing in (G5); it receives a device token.',
  fields: (t) => ({
    name: t.string({ description: 'e.g. "Anna\'s phone"' }),
    platform: t.string({ description: 'e.g. android, ios, linux, windows, macos, cli' }),
  }),
  validate: deviceInputSchema,
});

const AuthPayload = builder.objectRef<AuthResult & { browser: boolean }>('AuthPayload').implement({
  fields: (t) => ({
    user: t.field({ type: UserRef, resolve: (r) => r.user }),
    device: t.field({ type: DeviceRef, resolve: (r) => r.device }),
    token: t.string({
      nullable: true,
      description: 'The device token (send as "Authorization: Bearer <token>"). Null for browsers, which get an HttpOnly cookie instead.',
      resolve: (r) => (r.browser ? null : r.token),
    }),
  }),
});

function finish(result: AuthResult, browser: boolean, context: { setSessionCookie(token: string | null): void }) {
  if (browser) context.setSessionCookie(result.token);
  return { ...result, browser };
}

builder.mutationField('signUp', (t) =>
  t.field({
    type: AuthPayload,
    description: 'Creates an account and signs in. With `device`, returns a device token; without, sets a session cookie.',
    args: {
      email: t.arg.string({ validate: emailSchema }),
      password: t.arg.string({ validate: passwordSchema }),
      nickname: t.arg.string({ required: false, validate: nicknameSchema.optional().nullable() }),
      device: t.arg({ type: DeviceInput, required: false }),
    },
    resolve: async (_root, args, context) => finish(await context.services.accounts.signUp(args, context.origin), !args.device, context),
  }),
);

builder.mutationField('logIn', (t) =>
  t.field({
    type: AuthPayload,
    description: 'Signs in. With `device`, returns a device token; without, sets a session cookie.',
    args: {
      email: t.arg.string({ validate: emailSchema }),
      password: t.arg.string({ validate: z.string().min(1, 'Password is required').max(MAX_PASSWORD_LENGTH, `Password is too long (at most ${MAX_PASSWORD_LENGTH} characters)`) }),
      device: t.arg({ type: DeviceInput, required: false }),
    },
    resolve: async (_root, args, context) => finish(await context.services.accounts.logIn(args, context.origin), !args.device, context),
  }),
);

builder.mutationField('logOut', (t) =>
  t.boolean({
    authScopes: { signedIn: true },
    description: 'Signs this device or browser out; its token stops working.',
    resolve: async (_root, _args, context) => {
      await context.services.devices.logOut(context.viewer!);
      context.setSessionCookie(null);
      return true;
    },
  }),
);
