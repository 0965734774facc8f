import type { DeviceView } from '../services/devices.js';
import type { DeviceRow } from '../db/schema/index.js';
import { builder } from './builder.js';
import { uuidArg } from './id-arg.js';

export const DeviceRef = builder.objectRef<DeviceRow & { online?: boolean }>('Device').implement({
  description: 'A signed-in client of the account: a program with a device token, or a browser session. One entry of the control list.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    platform: t.exposeString('platform'),
    kind: t.exposeString('kind', { description: 'program (device token) or browser (session cookie)' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastSeenAt: t.expose('lastSeenAt', { type: 'DateTime' }),
    lastAddress: t.exposeString('lastAddress', { nullable: true, description: 'Client address of the last request' }),
    lastPort: t.exposeInt('lastPort', { nullable: true, description: 'Client port of the last request' }),
    online: t.boolean({ description: 'Seen within the online window', resolve: (device) => device.online ?? true }),
    current: t.boolean({
      description: 'This is the device making the request',
      resolve: (device, _args, context) => device.id === context.viewer?.device.id,
    }),
  }),
});

builder.queryField('devices', (t) =>
  t.field({
    type: [DeviceRef],
    authScopes: { signedIn: true },
    description: 'The control list: every signed-in device of the account, most recently seen first.',
    resolve: (_root, _args, context) => context.services.devices.list(context.viewer!),
  }),
);

builder.mutationField('revokeDevice', (t) =>
  t.field({
    type: DeviceRef,
    authScopes: { signedIn: true },
    description: 'Signs a device out; its token stops working at once.',
    args: { id: t.arg.id({ validate: uuidArg('device') }) },
    resolve: (_root, { id }, context) => context.services.devices.revoke(context.viewer!, String(id)),
  }),
);

builder.subscriptionField('devices', (t) =>
  t.field({
    type: [DeviceRef],
    authScopes: { signedIn: true },
    description: 'The control list now, then again whenever a device signs in, out or is revoked.',
    subscribe: (_root, _args, context) => context.services.devices.watch(context.viewer!),
    resolve: (devices: DeviceView[]) => devices,
  }),
);
