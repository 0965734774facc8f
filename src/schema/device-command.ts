import { z } from 'zod';
import type { AgentAddress } from '../db/schema/index.js';
import type { DeviceCommandView, DirectHandover } from '../services/devices/device-commands.js';
import { builder } from './builder.js';
import { DeviceRef } from './device.js';
import { uuidArg } from './id-arg.js';
import { FolderSyncRef, SyncCountsRef, SyncError } from './sync.js';

const DeviceCommandStatus = builder.enumType('DeviceCommandStatus', {
  values: {
    PENDING: { description: 'Given; not taken up by the device yet' },
    RUNNING: { description: "The device's agent is running it" },
    DONE: { description: 'Every file stored' },
    FAILED: { description: 'Ran, and some files (or the run) failed: see error and result' },
    CANCELLED: { description: 'Withdrawn before it ran' },
    EXPIRED: { description: 'Not taken up in time (PIXSHARE_COMMAND_TTL_SECONDS): it never runs' },
  } as const,
});

const DeviceCommandPath = builder.enumType('DeviceCommandPath', {
  values: {
    DIRECT: { description: "Handed to the agent over the local network (its own endpoint)" },
    RELAYED: { description: 'Delivered through the server' },
  } as const,
});

const AgentAddressRef = builder.objectRef<AgentAddress>('AgentAddress').implement({
  description: 'A local network address an agent listens on, with its subnet.',
  fields: (t) => ({ address: t.exposeString('address'), prefixLength: t.exposeInt('prefixLength') }),
});

const DeviceCommandResultRef = builder.objectRef<NonNullable<DeviceCommandView['result']>>('DeviceCommandResult').implement({
  description: "What the run did, as the agent's upload counted it.",
  fields: (t) => ({
    files: t.exposeInt('files'),
    uploaded: t.exposeInt('uploaded', { description: 'Sent' }),
    instant: t.exposeInt('instant', { description: 'Stored without sending (the server had the bytes)' }),
    exists: t.exposeInt('exists', { description: 'Already in the library' }),
    unchanged: t.exposeInt('unchanged', { description: "Sent before (the device's sync list)" }),
    failed: t.exposeInt('failed'),
    older: t.int({ description: 'Left out for being taken before since', resolve: (r) => r.older ?? 0 }),
    sentBytes: t.exposeFloat('sentBytes'),
  }),
});

export const DeviceCommandRef = builder.objectRef<DeviceCommandView>('DeviceCommand').implement({
  description: 'A command one device of the account gave another (D2): upload a folder it offers, or what it took since a time.',
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.string({ resolve: (c) => c.kind.toUpperCase() }),
    target: t.field({ type: DeviceRef, nullable: true, resolve: (c, _args, context) => context.services.devices.find(context.viewer!, c.targetDeviceId) }),
    requester: t.field({ type: DeviceRef, nullable: true, resolve: (c, _args, context) => (c.requesterDeviceId ? context.services.devices.find(context.viewer!, c.requesterDeviceId) : null) }),
    folder: t.exposeString('folder', { nullable: true, description: 'The offered folder; null: every folder the device offers' }),
    since: t.expose('since', { type: 'DateTime', nullable: true, description: 'Only what was taken at or after this time' }),
    status: t.field({ type: DeviceCommandStatus, resolve: (c) => c.status.toUpperCase() as 'PENDING' }),
    path: t.field({ type: DeviceCommandPath, nullable: true, description: 'How it reached the device', resolve: (c) => (c.path ? (c.path.toUpperCase() as 'DIRECT') : null) }),
    deliverAfter: t.expose('relayAfter', { type: 'DateTime', description: 'The server relays it from this time on (later only while it is handed over directly)' }),
    attempts: t.exposeInt('attempts', { description: 'Runs started: more than one when an agent stopped and the command was taken up again' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'Not taken up by then, it never runs' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    leaseUntil: t.expose('leaseUntil', { type: 'DateTime', nullable: true, description: 'While running: another run of the agent may take it over after this time' }),
    progress: t.field({ type: SyncCountsRef, nullable: true, description: 'The run\'s counters ("5 of 10 uploaded"), as the agent reports them', resolve: (c) => c.progress }),
    folderSyncs: t.field({
      type: [FolderSyncRef],
      description: 'The server folders the run uploads into, with their sync status file by file',
      resolve: (c, _args, context) => Promise.all(c.folderIds.map((id) => context.services.sync.folderSyncStatus(context.viewer!, id))),
    }),
    result: t.field({ type: DeviceCommandResultRef, nullable: true, resolve: (c) => c.result }),
    error: t.field({ type: SyncError, nullable: true, resolve: (c) => (c.errorCode ? { code: c.errorCode, message: c.errorMessage ?? '' } : null) }),
  }),
});

const DirectHandoverRef = builder.objectRef<DirectHandover>('DirectHandover').implement({
  description: 'Both devices are behind the same public address: hand the command to the agent directly (POST /pixshare-agent/v1/commands with commandId, expiresAt and credential), dialling its addresses in parallel; if none answers, call relayDeviceCommand.',
  fields: (t) => ({
    addresses: t.field({ type: [AgentAddressRef], resolve: (d) => d.addresses }),
    port: t.exposeInt('port'),
    credential: t.exposeString('credential', { description: 'For this command only' }),
    expiresAt: t.float({ description: 'ms since the epoch', resolve: (d) => d.expiresAt }),
  }),
});

const GivenCommandRef = builder.objectRef<{ command: DeviceCommandView; direct: DirectHandover | null }>('GivenDeviceCommand').implement({
  fields: (t) => ({
    command: t.field({ type: DeviceCommandRef, resolve: (g) => g.command }),
    direct: t.field({ type: DirectHandoverRef, nullable: true, resolve: (g) => g.direct }),
  }),
});

const AgentRegistrationRef = builder.objectRef<{ key: string; leaseSeconds: number }>('AgentRegistration').implement({
  fields: (t) => ({
    key: t.exposeString('key', { description: "The agent's key for checking direct-command credentials (keep it in memory only)" }),
    leaseSeconds: t.exposeInt('leaseSeconds', { description: 'Report a running command at least this often' }),
  }),
});

const AgentAddressInput = builder.inputType('AgentAddressInput', {
  fields: (t) => ({ address: t.string(), prefixLength: t.int() }),
});

const SyncCountsInput = builder.inputType('SyncCountsInput', {
  fields: (t) => ({
    filesPlanned: t.int(),
    filesDone: t.int(),
    filesUploaded: t.int(),
    filesInstant: t.int(),
    filesInProgress: t.int(),
    filesPending: t.int(),
    filesFailed: t.int(),
    bytesPlanned: t.float(),
    bytesDone: t.float(),
  }),
});

const DeviceCommandResultInput = builder.inputType('DeviceCommandResultInput', {
  fields: (t) => ({
    files: t.int(),
    uploaded: t.int(),
    instant: t.int(),
    exists: t.int(),
    unchanged: t.int(),
    failed: t.int(),
    older: t.int({ required: false }),
    sentBytes: t.float(),
  }),
});

const ErrorInput = builder.inputType('DeviceCommandErrorInput', { fields: (t) => ({ code: t.string(), message: t.string() }) });

const id = (what: string) => uuidArg(what);
const first = z.number().int().min(1).max(100);

builder.queryFields((t) => ({
  deviceCommand: t.field({
    type: DeviceCommandRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: id('command') }) },
    resolve: (_root, args, context) => context.services.deviceCommands.get(context.viewer!, String(args.id)),
  }),
  deviceCommands: t.field({
    type: [DeviceCommandRef],
    authScopes: { signedIn: true },
    description: "The account's commands, newest first; to one device when deviceId is given.",
    args: { deviceId: t.arg.id({ required: false, validate: id('device').nullish() }), first: t.arg.int({ required: false, validate: first.nullish() }) },
    resolve: (_root, args, context) => context.services.deviceCommands.list(context.viewer!, { deviceId: args.deviceId ? String(args.deviceId) : null, first: args.first }),
  }),
  commandsForThisDevice: t.field({
    type: [DeviceCommandRef],
    authScopes: { signedIn: true },
    description: "For an agent: the commands this device may take up now or later (pending ones, and running ones whose lease may run out).",
    resolve: (_root, _args, context) => context.services.deviceCommands.forAgent(context.viewer!),
  }),
}));

builder.mutationFields((t) => ({
  commandDevice: t.field({
    type: GivenCommandRef,
    authScopes: { signedIn: true },
    description:
      'Asks another of your devices to upload a folder it offers, or what it took since a time (D2). Errors: NOT_FOUND (no such device of yours), DEVICE_REVOKED, DEVICE_NOT_AGENT (it never ran `pixshare agent`), FOLDER_NOT_OFFERED, BAD_USER_INPUT.',
    args: {
      deviceId: t.arg.id({ validate: id('device') }),
      folder: t.arg.string({ required: false, description: 'An offered folder (default: all of them)' }),
      since: t.arg({ type: 'DateTime', required: false }),
    },
    resolve: (_root, args, context) => context.services.deviceCommands.give(context.viewer!, context.origin, { deviceId: String(args.deviceId), folder: args.folder, since: args.since }),
  }),
  relayDeviceCommand: t.field({
    type: DeviceCommandRef,
    authScopes: { signedIn: true },
    description: 'The direct handover failed: the server delivers the command now.',
    args: { id: t.arg.id({ validate: id('command') }) },
    resolve: (_root, args, context) => context.services.deviceCommands.relay(context.viewer!, String(args.id)),
  }),
  cancelDeviceCommand: t.field({
    type: DeviceCommandRef,
    authScopes: { signedIn: true },
    description: 'Withdraws a command its device has not taken up yet (COMMAND_NOT_OPEN otherwise).',
    args: { id: t.arg.id({ validate: id('command') }) },
    resolve: (_root, args, context) => context.services.deviceCommands.cancel(context.viewer!, String(args.id)),
  }),
  announceAgent: t.field({
    type: AgentRegistrationRef,
    authScopes: { signedIn: true },
    description: 'For `pixshare agent`: this device is online, listens on these local addresses and port, and offers these folders.',
    args: { port: t.arg.int(), addresses: t.arg({ type: [AgentAddressInput] }), folders: t.arg.stringList() },
    resolve: (_root, args, context) => context.services.deviceCommands.announce(context.viewer!, args),
  }),
  claimDeviceCommand: t.field({
    type: DeviceCommandRef,
    authScopes: { signedIn: true },
    description: "For an agent: takes a command to this device up under a lease (COMMAND_NOT_OPEN when another run has it; COMMAND_NOT_DUE while it is being handed over directly). A direct handover passes the requester's credential.",
    args: {
      id: t.arg.id({ validate: id('command') }),
      leaseId: t.arg.string(),
      path: t.arg({ type: DeviceCommandPath }),
      credential: t.arg.string({ required: false }),
      credentialExpiresAt: t.arg.float({ required: false }),
    },
    resolve: (_root, args, context) =>
      context.services.deviceCommands.claim(context.viewer!, String(args.id), {
        leaseId: args.leaseId,
        path: args.path === 'DIRECT' ? 'direct' : 'relayed',
        credential: args.credential,
        credentialExpiresAt: args.credentialExpiresAt,
      }),
  }),
  reportDeviceCommand: t.field({
    type: DeviceCommandRef,
    authScopes: { signedIn: true },
    description: "For an agent: a running command's progress; renews the lease (COMMAND_LEASE_LOST: stop, another run has it).",
    args: { id: t.arg.id({ validate: id('command') }), leaseId: t.arg.string(), progress: t.arg({ type: SyncCountsInput }), folderIds: t.arg.idList({ required: false }) },
    resolve: (_root, args, context) =>
      context.services.deviceCommands.report(context.viewer!, String(args.id), { leaseId: args.leaseId, progress: args.progress, folderIds: args.folderIds?.map(String) }),
  }),
  finishDeviceCommand: t.field({
    type: DeviceCommandRef,
    authScopes: { signedIn: true },
    description: "For an agent: the run's outcome (once).",
    args: {
      id: t.arg.id({ validate: id('command') }),
      leaseId: t.arg.string(),
      result: t.arg({ type: DeviceCommandResultInput, required: false }),
      progress: t.arg({ type: SyncCountsInput, required: false }),
      error: t.arg({ type: ErrorInput, required: false }),
    },
    resolve: (_root, args, context) =>
      context.services.deviceCommands.finish(context.viewer!, String(args.id), { leaseId: args.leaseId, result: args.result, progress: args.progress, error: args.error }),
  }),
}));

builder.subscriptionFields((t) => ({
  deviceCommands: t.field({
    type: [DeviceCommandRef],
    authScopes: { signedIn: true },
    description: "The account's recent commands, newest first, now and after every change (given, taken up, progress, outcome).",
    args: { first: t.arg.int({ required: false, validate: first.nullish() }) },
    subscribe: (_root, args, context) => context.services.deviceCommands.watchList(context.viewer!, { first: args.first }),
    resolve: (commands: DeviceCommandView[]) => commands,
  }),
  deviceCommand: t.field({
    type: DeviceCommandRef,
    authScopes: { signedIn: true },
    description: 'A command now, then as it moves on (taken up, progress, outcome).',
    args: { id: t.arg.id({ validate: id('command') }) },
    subscribe: (_root, args, context) => context.services.deviceCommands.watch(context.viewer!, String(args.id)),
    resolve: (command: DeviceCommandView) => command,
  }),
  commandsForThisDevice: t.field({
    type: [DeviceCommandRef],
    authScopes: { signedIn: true },
    description: "For an agent: this device's commands now, then again whenever one is given, relayed, taken up or ends.",
    subscribe: (_root, _args, context) => context.services.deviceCommands.watchForAgent(context.viewer!),
    resolve: (commands: DeviceCommandView[]) => commands,
  }),
}));
