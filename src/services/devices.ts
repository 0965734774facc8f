import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Config } from '../config.js';
import { withoutWaitingForDisk, type Db } from '../db/client.js';
import { devices, users, type DeviceRow, type UserRow } from '../db/schema/index.js';
import { AppError } from './app-error.js';
import { isUuid } from './ids.js';
import type { DeviceInput } from './accounts.js';
import { liveState, type PubSub } from './pubsub.js';
import type { RequestOrigin } from './request-origin.js';
import { createToken, hashToken, looksLikeToken } from './tokens.js';

export interface Viewer {
  user: UserRow;
  device: DeviceRow;
}

/** One entry of the control list (D1). */
export interface DeviceView extends DeviceRow {
  online: boolean;
}

export const devicesTopic = (userId: string) => `user:${userId}:devices`;

/**
 * Devices are the signed-in clients of an account: programs holding a device
 * token and browsers holding a session cookie. Authenticating a request and
 * recording it on the control list (address, port, time) is one statement.
 */
export class DeviceService {
  /**
   * authenticate's statement, built once: every request runs it, so neither drizzle (building
   * the SQL) nor PostgreSQL (parsing and planning it, once per connection) redoes that work.
   */
  private readonly seen;

  constructor(
    private readonly deps: {
      db: Db;
      pubsub: PubSub;
      config: Pick<Config, 'auth' | 'devices'>;
    },
  ) {
    this.seen = deps.db
      .update(devices)
      .set({
        lastSeenAt: sql`now()`,
        lastAddress: sql`${sql.placeholder('address')}`,
        lastPort: sql`${sql.placeholder('port')}`,
        // Browser sessions slide: they end after sessionDays without use.
        expiresAt: sql`case when ${devices.kind} = 'browser' then now() + make_interval(days => ${deps.config.auth.sessionDays}) else null end`,
      })
      .from(users)
      .where(and(eq(users.id, devices.userId), eq(devices.tokenHash, sql.placeholder('tokenHash')), isNull(devices.revokedAt), or(isNull(devices.expiresAt), gt(devices.expiresAt, sql`now()`))))
      .returning({ device: devices, user: users, commit: withoutWaitingForDisk })
      .prepare('authenticate');
  }

  /** Creates the device (and its token) for a successful sign-up or log-in. */
  async register(user: UserRow, input: DeviceInput | undefined, origin: RequestOrigin): Promise<{ user: UserRow; device: DeviceRow; token: string }> {
    const browser = input === undefined;
    const { token, hash } = createToken(browser ? 'pxs' : 'pxd');
    const [device] = await this.deps.db
      .insert(devices)
      .values({
        userId: user.id,
        name: input?.name ?? describeBrowser(origin.userAgent),
        platform: input?.platform ?? 'web',
        kind: browser ? 'browser' : 'program',
        tokenHash: hash,
        lastAddress: origin.address,
        lastPort: origin.port,
        expiresAt: browser ? sql`now() + make_interval(days => ${this.deps.config.auth.sessionDays})` : null,
      })
      .returning();
    await this.changed(user.id);
    return { user, device: device!, token };
  }

  /**
   * Resolves a bearer token or session cookie to its user and device, and records
   * this request on the control list. Unknown, revoked and expired tokens are all
   * UNAUTHENTICATED (no hint which).
   */
  async authenticate(token: string, origin: RequestOrigin): Promise<Viewer> {
    if (!looksLikeToken(token)) throw new AppError('UNAUTHENTICATED', 'Malformed token');
    // One statement, one round trip: the device row is updated and returned with its user's row.
    // The control-list entry is bookkeeping, not user data: its commit need not wait for the disk
    // (a crash forgets at most the last fraction of a second of "last seen"). Without this every
    // authenticated request paid for a WAL flush.
    const [viewer] = await this.seen.execute({ tokenHash: hashToken(token), address: origin.address, port: origin.port });
    if (!viewer) throw new AppError('UNAUTHENTICATED', 'Invalid, expired or revoked token');
    return { user: viewer.user, device: viewer.device };
  }

  /** Marks a device as seen without a new request (e.g. an open WebSocket's heartbeat). */
  async touch(deviceId: string): Promise<void> {
    await this.deps.db.update(devices).set({ lastSeenAt: sql`now()` }).where(eq(devices.id, deviceId));
  }

  async list(viewer: Viewer): Promise<DeviceView[]> {
    const rows = await this.deps.db
      .select({ device: devices, online: sql<boolean>`${devices.lastSeenAt} > now() - make_interval(secs => ${this.deps.config.devices.onlineWindowSeconds})` })
      .from(devices)
      .where(and(eq(devices.userId, viewer.user.id), isNull(devices.revokedAt), or(isNull(devices.expiresAt), gt(devices.expiresAt, sql`now()`))))
      .orderBy(desc(devices.lastSeenAt));
    return rows.map((r) => ({ ...r.device, online: r.online }));
  }

  /** Revokes one of the viewer's devices; its token stops working at once. */
  async revoke(viewer: Viewer, deviceId: string): Promise<DeviceRow> {
    if (!isUuid(deviceId)) throw new AppError('NOT_FOUND', 'No such device');
    const [device] = await this.deps.db
      .update(devices)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(devices.id, deviceId), eq(devices.userId, viewer.user.id), isNull(devices.revokedAt)))
      .returning();
    // Someone else's device and a missing one look the same: nothing leaks.
    if (!device) throw new AppError('NOT_FOUND', 'No such device');
    await this.changed(viewer.user.id);
    return device;
  }

  async logOut(viewer: Viewer): Promise<void> {
    await this.revoke(viewer, viewer.device.id);
  }

  /** The control list as it changes: the current list first, then again after every change. */
  watch(viewer: Viewer): AsyncIterableIterator<DeviceView[]> {
    return liveState(this.deps.pubsub.subscribe(devicesTopic(viewer.user.id)), () => this.list(viewer));
  }

  private async changed(userId: string): Promise<void> {
    await this.deps.pubsub.publish(devicesTopic(userId), { at: Date.now() });
  }
}

function describeBrowser(userAgent: string | null): string {
  if (!userAgent) return 'Browser';
  const browser = /(Firefox|Edg|Chrome|Safari)\/[\d.]+/.exec(userAgent)?.[1];
  const os = /(Windows|Android|iPhone|iPad|Mac OS X|Linux)/.exec(userAgent)?.[1];
  const name = { Edg: 'Edge' }[browser ?? ''] ?? browser ?? 'Browser';
  return os ? `${name} on ${os.replace('Mac OS X', 'macOS')}` : name;
}
