import { hkdfSync } from 'node:crypto';
import { isIP } from 'node:net';
import { and, desc, eq, gt, inArray, lte, or, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { deviceCommands, devices, folders, type AgentAddress, type DeviceCommandPath, type DeviceCommandRow, type DeviceRow } from '../../db/schema/index.js';
import { checkDirectCredential, directCredential } from '../../protocol/direct-command.js';
import type { SyncCounts } from '../../protocol/sync-counts.js';
import { parseInput } from '../accounts.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { topics, type Events } from '../events.js';
import { isUuid } from '../ids.js';
import type { RequestOrigin } from '../request-origin.js';

/** A command as its requester and dashboards see it: `expired` is a pending command past its time. */
export type DeviceCommandStatus = DeviceCommandRow['state'] | 'expired';
export interface DeviceCommandView extends DeviceCommandRow {
  status: DeviceCommandStatus;
}

/** What the requester needs to hand a command to the target directly (D3). */
export interface DirectHandover {
  /** The target's local addresses, as it reported them (the requester ranks them against its own subnets). */
  addresses: AgentAddress[];
  port: number;
  credential: string;
  /** ms since the epoch. */
  expiresAt: number;
}

/** How long a direct-command credential works. */
const CREDENTIAL_MS = 60_000;
const MAX_OFFERED_FOLDERS = 100;
const MAX_ADDRESSES = 32;

const folderName = z
  .string()
  .min(1, 'A folder name is needed')
  .max(200, 'A folder name is at most 200 characters')
  .refine((name) => !/[\u0000-\u001f\u007f]/.test(name), 'A folder name has no control characters');

const announceSchema = z.object({
  port: z.number().int().min(1).max(65_535),
  addresses: z
    .array(z.object({ address: z.string().refine((a) => isIP(a) !== 0, 'Not an IP address'), prefixLength: z.number().int().min(0).max(128) }))
    .max(MAX_ADDRESSES, `At most ${MAX_ADDRESSES} addresses`),
  folders: z
    .array(folderName)
    .max(MAX_OFFERED_FOLDERS, `At most ${MAX_OFFERED_FOLDERS} folders`)
    .refine((names) => new Set(names).size === names.length, 'Folder names must differ'),
});

const countsSchema = z.object({
  filesPlanned: z.number().int().min(0),
  filesDone: z.number().int().min(0),
  filesUploaded: z.number().int().min(0),
  filesInstant: z.number().int().min(0),
  filesInProgress: z.number().int().min(0),
  filesPending: z.number().int().min(0),
  filesFailed: z.number().int().min(0),
  bytesPlanned: z.number().min(0),
  bytesDone: z.number().min(0),
});

const resultSchema = z.object({
  files: z.number().int().min(0),
  uploaded: z.number().int().min(0),
  instant: z.number().int().min(0),
  exists: z.number().int().min(0),
  unchanged: z.number().int().min(0),
  failed: z.number().int().min(0),
  older: z.number().int().min(0).default(0),
  sentBytes: z.number().min(0),
});

const errorSchema = z.object({ code: z.string().min(1).max(64), message: z.string().max(2000) });

/**
 * Devices commanding each other (D2, D3): an agent (`pixshare agent`) announces where it listens
 * and which folders it offers; another device of the same account gives it a command ("upload
 * this folder", "what you took since"); the command is stored, reaches the agent directly or
 * through the server, and runs under a lease — exactly once, however often the agent reconnects
 * and however many agents serve the device. Every method acts for a signed-in viewer and touches
 * only that account's devices and commands; the run's own steps only the target device itself.
 */
export class DeviceCommandService {
  private readonly secret: string;

  constructor(private readonly deps: { db: Db; events: Events; config: Pick<Config, 'devices' | 'secret'> }) {
    this.secret = deps.config.secret;
  }

  /** The agent's key for direct commands: derived from the deployment secret, never stored. */
  private agentKey(deviceId: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.secret, 'pixshare', `agent key ${deviceId}`, 32));
  }

  /**
   * The viewer's device runs an agent: where it listens, what it offers. Answers with its key for
   * direct commands and how often a running command must be reported.
   */
  async announce(viewer: Viewer, input: unknown): Promise<{ key: string; leaseSeconds: number; device: DeviceRow }> {
    if (viewer.device.kind !== 'program') throw new AppError('DEVICE_NOT_AGENT', 'A browser session cannot run an agent: log in a program (pixshare login)');
    const { port, addresses, folders: offered } = parseInput(announceSchema, input, 'agent');
    const [device] = await this.deps.db
      .update(devices)
      .set({ agentSeenAt: sql`now()`, agentPort: port, agentAddresses: addresses, agentFolders: offered })
      .where(eq(devices.id, viewer.device.id))
      .returning();
    await this.deps.events.publish(topics.devices(viewer.user.id), { userId: viewer.user.id });
    return { key: this.agentKey(viewer.device.id).toString('base64url'), leaseSeconds: this.deps.config.devices.commandLeaseSeconds, device: device! };
  }

  /**
   * Gives one of the viewer's devices a command. When both are behind the same public address the
   * answer also carries what the requester needs to hand it over directly, and the server holds
   * the command back for a moment meanwhile; otherwise the server delivers it at once.
   */
  async give(viewer: Viewer, origin: RequestOrigin, input: { deviceId: string; folder?: string | null; since?: Date | null }): Promise<{ command: DeviceCommandView; direct: DirectHandover | null }> {
    const target = await this.ownDevice(viewer, input.deviceId);
    if (target.revokedAt || (target.expiresAt && target.expiresAt <= new Date())) throw new AppError('DEVICE_REVOKED', `"${target.name}" was signed out: it takes no commands`);
    if (target.kind !== 'program' || target.agentFolders === null) {
      throw new AppError('DEVICE_NOT_AGENT', `"${target.name}" has never run \`pixshare agent\`: nothing there would receive the command`);
    }
    const folder = input.folder === undefined || input.folder === null ? null : parseInput(folderName, input.folder, 'folder');
    if (folder !== null && !target.agentFolders.includes(folder)) {
      throw new AppError('FOLDER_NOT_OFFERED', `"${target.name}" offers no folder "${folder}"`, { offered: target.agentFolders });
    }
    if (folder === null && target.agentFolders.length === 0) throw new AppError('FOLDER_NOT_OFFERED', `"${target.name}" offers no folder`, { offered: [] });
    const since = input.since ?? null;
    if (since !== null && (Number.isNaN(since.getTime()) || since.getTime() > Date.now() + 60_000)) throw new AppError('BAD_USER_INPUT', 'since must be a time in the past', { field: 'since' });

    // A program can dial the agent's local endpoint; a browser page cannot (the server relays for it).
    const sameNetwork = viewer.device.kind === 'program' && origin.address !== null && origin.address === target.lastAddress && target.agentPort !== null && (target.agentAddresses?.length ?? 0) > 0;
    const { devices: settings } = this.deps.config;
    const command = await this.deps.db.transaction(async (tx) => {
      const [row] = await tx
        .insert(deviceCommands)
        .values({
          userId: viewer.user.id,
          requesterDeviceId: viewer.device.id,
          targetDeviceId: target.id,
          kind: 'upload',
          folder,
          since,
          relayAfter: sameNetwork ? sql`now() + make_interval(secs => ${settings.directWindowSeconds})` : sql`now()`,
          expiresAt: sql`now() + make_interval(secs => ${settings.commandTtlSeconds})`,
        })
        .returning();
      await this.deps.events.publishIn(tx, topics.deviceCommands(viewer.user.id), { commandId: row!.id, targetDeviceId: target.id });
      return row!;
    });
    let direct: DirectHandover | null = null;
    if (sameNetwork) {
      const expiresAt = Date.now() + CREDENTIAL_MS;
      direct = { addresses: target.agentAddresses!, port: target.agentPort!, expiresAt, credential: directCredential(this.agentKey(target.id), command.id, expiresAt) };
    }
    return { command: view(command), direct };
  }

  /** The direct handover failed: the server delivers the command now instead of after its window. */
  async relay(viewer: Viewer, commandId: string): Promise<DeviceCommandView> {
    const command = await this.get(viewer, commandId);
    const [row] = await this.deps.db
      .update(deviceCommands)
      .set({ relayAfter: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(deviceCommands.id, command.id), eq(deviceCommands.state, 'pending'), gt(deviceCommands.relayAfter, sql`now()`)))
      .returning();
    if (row) await this.published(row);
    return row ? view(row) : command;
  }

  /** Withdraws a command not taken up yet. */
  async cancel(viewer: Viewer, commandId: string): Promise<DeviceCommandView> {
    const command = await this.get(viewer, commandId);
    const [row] = await this.deps.db
      .update(deviceCommands)
      .set({ state: 'cancelled', finishedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(deviceCommands.id, command.id), eq(deviceCommands.state, 'pending')))
      .returning();
    if (!row) throw new AppError('COMMAND_NOT_OPEN', `The command is ${command.status}: it can no longer be cancelled`, { status: command.status });
    await this.published(row);
    return view(row);
  }

  async get(viewer: Viewer, commandId: string): Promise<DeviceCommandView> {
    if (!isUuid(commandId)) throw new AppError('NOT_FOUND', 'No such command');
    const [row] = await this.deps.db
      .select()
      .from(deviceCommands)
      .where(and(eq(deviceCommands.id, commandId), eq(deviceCommands.userId, viewer.user.id)));
    if (!row) throw new AppError('NOT_FOUND', 'No such command');
    return view(row);
  }

  /** The account's commands, newest first; only those to one device when given. */
  async list(viewer: Viewer, args: { deviceId?: string | null; first?: number | null } = {}): Promise<DeviceCommandView[]> {
    if (args.deviceId && !isUuid(args.deviceId)) return [];
    const rows = await this.deps.db
      .select()
      .from(deviceCommands)
      .where(and(eq(deviceCommands.userId, viewer.user.id), args.deviceId ? eq(deviceCommands.targetDeviceId, args.deviceId) : undefined))
      .orderBy(desc(deviceCommands.createdAt))
      .limit(Math.min(Math.max(args.first ?? 20, 1), 100));
    return rows.map(view);
  }

  /**
   * For the viewer's own agent: the commands it may take up now or later — pending and not expired
   * (`relayAfter` says from when, unless handed over directly), or running under a lease that has
   * run out (`leaseUntil` in the past: its agent stopped) or will (the agent may try again then).
   */
  async forAgent(viewer: Viewer): Promise<DeviceCommandView[]> {
    const rows = await this.deps.db
      .select()
      .from(deviceCommands)
      .where(
        and(
          eq(deviceCommands.targetDeviceId, viewer.device.id),
          eq(deviceCommands.userId, viewer.user.id),
          or(and(eq(deviceCommands.state, 'pending'), gt(deviceCommands.expiresAt, sql`now()`)), eq(deviceCommands.state, 'running')),
        ),
      )
      .orderBy(deviceCommands.createdAt)
      .limit(100);
    return rows.map(view);
  }

  /**
   * The viewer's agent takes a command up under its lease: a pending one that is due (or handed
   * over directly, with the credential the requester got), or a running one whose lease ran out
   * or is this same lease (the agent restarted and picks its run up again). One agent wins.
   */
  async claim(viewer: Viewer, commandId: string, input: { leaseId: string; path: DeviceCommandPath; credential?: string | null; credentialExpiresAt?: number | null }): Promise<DeviceCommandView> {
    if (!isUuid(commandId)) throw new AppError('NOT_FOUND', 'No such command');
    const leaseId = parseInput(z.string().min(16).max(100), input.leaseId, 'leaseId');
    if (input.path === 'direct') {
      const request = { commandId, expiresAt: Number(input.credentialExpiresAt), credential: String(input.credential ?? '') };
      if (!checkDirectCredential(this.agentKey(viewer.device.id), request)) throw new AppError('BAD_CREDENTIAL', 'The direct-command credential does not check out or has expired');
    }
    const lease = this.deps.config.devices.commandLeaseSeconds;
    const [row] = await this.deps.db
      .update(deviceCommands)
      .set({
        state: 'running',
        leaseId,
        leaseUntil: sql`now() + make_interval(secs => ${lease})`,
        startedAt: sql`coalesce(${deviceCommands.startedAt}, now())`,
        attempts: sql`${deviceCommands.attempts} + 1`,
        path: sql`coalesce(${deviceCommands.path}, ${input.path})`,
        updatedAt: sql`now()`,
      })
      .where(
        and(
          eq(deviceCommands.id, commandId),
          eq(deviceCommands.targetDeviceId, viewer.device.id),
          eq(deviceCommands.userId, viewer.user.id),
          or(
            and(eq(deviceCommands.state, 'pending'), gt(deviceCommands.expiresAt, sql`now()`), input.path === 'direct' ? undefined : lte(deviceCommands.relayAfter, sql`now()`)),
            and(eq(deviceCommands.state, 'running'), or(lte(deviceCommands.leaseUntil, sql`now()`), eq(deviceCommands.leaseId, leaseId))),
          ),
        ),
      )
      .returning();
    if (row) {
      await this.published(row);
      return view(row);
    }
    const [current] = await this.deps.db
      .select()
      .from(deviceCommands)
      .where(and(eq(deviceCommands.id, commandId), eq(deviceCommands.targetDeviceId, viewer.device.id), eq(deviceCommands.userId, viewer.user.id)));
    if (!current) throw new AppError('NOT_FOUND', 'No such command');
    const status = view(current).status;
    if (status === 'pending') throw new AppError('COMMAND_NOT_DUE', 'The command is being handed over directly: the server relays it shortly', { relayAfter: current.relayAfter.toISOString() });
    throw new AppError('COMMAND_NOT_OPEN', status === 'running' ? 'Another run of the agent has taken the command up' : `The command is ${status}`, { status });
  }

  /** The running agent's progress (and the server folders it fills); renews its lease. */
  async report(viewer: Viewer, commandId: string, input: { leaseId: string; progress: SyncCounts; folderIds?: readonly string[] | null }): Promise<DeviceCommandView> {
    const progress = parseInput(countsSchema, input.progress, 'progress');
    const folderIds = input.folderIds ? await this.ownFolders(viewer, input.folderIds) : undefined;
    const lease = this.deps.config.devices.commandLeaseSeconds;
    return this.whileLeased(viewer, commandId, input.leaseId, { progress, ...(folderIds ? { folderIds } : {}), leaseUntil: sql`now() + make_interval(secs => ${lease})` });
  }

  /** The run's end: its outcome, once; the lease ends. */
  async finish(viewer: Viewer, commandId: string, input: { leaseId: string; result?: unknown; progress?: SyncCounts | null; error?: { code: string; message: string } | null }): Promise<DeviceCommandView> {
    const result = input.result ? parseInput(resultSchema, input.result, 'result') : null;
    const error = input.error ? parseInput(errorSchema, input.error, 'error') : null;
    const progress = input.progress ? parseInput(countsSchema, input.progress, 'progress') : undefined;
    const failed = error !== null || (result?.failed ?? 0) > 0;
    return this.whileLeased(viewer, commandId, input.leaseId, {
      state: failed ? 'failed' : 'done',
      result,
      ...(progress ? { progress } : {}),
      errorCode: error?.code ?? (failed ? 'FILES_FAILED' : null),
      errorMessage: error?.message ?? (failed ? `${result!.failed} of ${result!.files} files failed` : null),
      finishedAt: sql`now()`,
      leaseId: null,
      leaseUntil: null,
    });
  }

  /** The command as it changes: now, then after every change. */
  async watch(viewer: Viewer, commandId: string): Promise<AsyncIterableIterator<DeviceCommandView>> {
    const command = await this.get(viewer, commandId);
    return this.deps.events.watch(
      topics.deviceCommands(viewer.user.id),
      () => this.get(viewer, command.id),
      (event) => event.commandId === command.id,
    );
  }

  /** The account's recent commands (as `list`) now, then again after every change: a dashboard's live list. */
  watchList(viewer: Viewer, args: { first?: number | null } = {}): AsyncIterableIterator<DeviceCommandView[]> {
    return this.deps.events.watch(topics.deviceCommands(viewer.user.id), () => this.list(viewer, args));
  }

  /** For the viewer's agent: its commands now, then again whenever one is given, relayed, taken or ends. */
  watchForAgent(viewer: Viewer): AsyncIterableIterator<DeviceCommandView[]> {
    return this.deps.events.watch(
      topics.deviceCommands(viewer.user.id),
      () => this.forAgent(viewer),
      (event) => event.targetDeviceId === viewer.device.id,
    );
  }

  private async whileLeased(viewer: Viewer, commandId: string, leaseId: string, changes: { [K in keyof typeof deviceCommands.$inferInsert]?: (typeof deviceCommands.$inferInsert)[K] | SQL }): Promise<DeviceCommandView> {
    if (!isUuid(commandId)) throw new AppError('NOT_FOUND', 'No such command');
    const [row] = await this.deps.db
      .update(deviceCommands)
      .set({ ...changes, updatedAt: sql`now()` })
      .where(
        and(
          eq(deviceCommands.id, commandId),
          eq(deviceCommands.targetDeviceId, viewer.device.id),
          eq(deviceCommands.userId, viewer.user.id),
          eq(deviceCommands.state, 'running'),
          eq(deviceCommands.leaseId, String(leaseId)),
        ),
      )
      .returning();
    if (!row) {
      await this.get(viewer, commandId); // NOT_FOUND for another's command
      throw new AppError('COMMAND_LEASE_LOST', 'This run no longer holds the command (it ended, or another run took it over)');
    }
    await this.published(row);
    return view(row);
  }

  private async published(row: DeviceCommandRow): Promise<void> {
    await this.deps.events.publish(topics.deviceCommands(row.userId), { commandId: row.id, targetDeviceId: row.targetDeviceId });
  }

  /** One of the viewer's devices; another account's and a missing one look the same. */
  private async ownDevice(viewer: Viewer, deviceId: string): Promise<DeviceRow> {
    if (!isUuid(deviceId)) throw new AppError('NOT_FOUND', 'No such device');
    const [row] = await this.deps.db
      .select()
      .from(devices)
      .where(and(eq(devices.id, deviceId), eq(devices.userId, viewer.user.id)));
    if (!row) throw new AppError('NOT_FOUND', 'No such device');
    return row;
  }

  private async ownFolders(viewer: Viewer, ids: readonly string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    if (unique.length > MAX_OFFERED_FOLDERS || unique.some((id) => !isUuid(id))) throw new AppError('BAD_USER_INPUT', 'folderIds: up to 100 folder ids', { field: 'folderIds' });
    if (unique.length === 0) return [];
    const rows = await this.deps.db
      .select({ id: folders.id })
      .from(folders)
      .where(and(inArray(folders.id, unique), eq(folders.userId, viewer.user.id)));
    if (rows.length !== unique.length) throw new AppError('NOT_FOUND', 'No such folder', { field: 'folderIds' });
    return unique;
  }
}

function view(row: DeviceCommandRow): DeviceCommandView {
  const status = row.state === 'pending' && row.expiresAt.getTime() <= Date.now() ? 'expired' : row.state;
  return { ...row, status };
}
