import type { DeviceView } from '../services/devices.js';
import type { DeviceRow } from '../db/schema/index.js';
import { builder } from './builder.js';
import { uuidArg } from './id-arg.js';

const AgentRef = builder.objectRef<DeviceRow>('Agent').implement({
  description: 'What `pixshare agent` on the device last announced (D2, D3).',
  fields: (t) => ({
    seenAt: t.field({ type: 'DateTime', resolve: (d) => d.agentSeenAt! }),
    folders: t.stringList({ description: 'The folders it offers, by name: what a command may ask it to upload', resolve: (d) => d.agentFolders ?? [] }),
    port: t.int({ nullable: true, description: 'The port of its local endpoint', resolve: (d) => d.agentPort }),
  }),
});

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
    agent: t.field({ type: AgentRef, nullable: true, description: 'Set once the device ran `pixshare agent`: it can be given commands', resolve: (d) => (d.agentSeenAt ? d : null) }),
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
