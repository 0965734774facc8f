import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import { withoutWaitingForDisk } from '../db/transaction.js';
import { devices, users, type DeviceRow, type UserRow } from '../db/schema/index.js';
import { AppError } from './app-error.js';
import { isUuid } from './ids.js';
import type { DeviceInput } from './accounts.js';
import { topics, type Events } from './events.js';
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


/**
 * How long a token checked against the database is trusted for further requests on the same
 * connection (same address and port) without asking again. Revoking a device ends the trust at
 * once on every instance (REVOKED_TOPIC); "last seen" and a browser session's sliding expiry are
 * brought up to date at least this often.
 */
const TRUST_MS = 5_000;
/** Trusted tokens kept at most; the oldest are dropped first. */
const TRUSTED_MAX = 10_000;

interface Trusted {
  viewer: Viewer;
  address: string | null;
  port: number | null;
  /** performance.now() time the trust ends (a monotonic clock: a clock step changes nothing). */
  until: number;
}

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
  /** Recently checked tokens, by token hash in base64 (see TRUST_MS). */
  private readonly trusted = new Map<string, Trusted>();
  /** Devices revoked in the last TRUST_MS, with when: a check that was already under way must not trust them again. */
  private readonly revoked = new Map<string, number>();
  private readonly revokedWaiters = new Map<string, Set<() => void>>();
  private readonly stopListening: () => void;

  constructor(
    private readonly deps: {
      db: Db;
      events: Events;
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
    // Every instance hears of a revoked device, and stops trusting its token at once.
    this.stopListening = deps.events.on(topics.deviceRevoked, ({ deviceId }) => this.distrust(deviceId));
  }

  /** Stops listening for revocations (the service is being shut down). */
  close(): void {
    this.stopListening();
    this.trusted.clear();
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
    await this.deps.events.publish(topics.devices(user.id), { userId: user.id });
    return { user, device: device!, token };
  }

  /**
   * Resolves a bearer token or session cookie to its user and device, and records
   * this request on the control list. Unknown, revoked and expired tokens are all
   * UNAUTHENTICATED (no hint which).
   */
  async authenticate(token: string, origin: RequestOrigin): Promise<Viewer> {
    if (!looksLikeToken(token)) throw new AppError('UNAUTHENTICATED', 'Malformed token');
    const tokenHash = hashToken(token);
    const key = tokenHash.toString('base64');
    const started = performance.now();
    const known = this.trusted.get(key);
    if (known && started < known.until && known.address === origin.address && known.port === origin.port && !expired(known.viewer.device)) return known.viewer;
    // One statement, one round trip: the device row is updated and returned with its user's row.
    // The control-list entry is bookkeeping, not user data: its commit need not wait for the disk
    // (a crash forgets at most the last fraction of a second of "last seen"). Without this every
    // authenticated request paid for a WAL flush.
    const [row] = await this.seen.execute({ tokenHash, address: origin.address, port: origin.port });
    if (!row) {
      this.trusted.delete(key);
      throw new AppError('UNAUTHENTICATED', 'Invalid, expired or revoked token');
    }
    const viewer = { user: row.user, device: row.device };
    const revokedAt = this.revoked.get(row.device.id);
    if (revokedAt === undefined || revokedAt < started) {
      this.trusted.delete(key); // re-inserted at the end: the oldest entries are dropped first
      this.trusted.set(key, { viewer, address: origin.address, port: origin.port, until: started + TRUST_MS });
      if (this.trusted.size > TRUSTED_MAX) this.trusted.delete(this.trusted.keys().next().value!);
    }
    return viewer;
  }

  /** Forgets a device's trusted token (it was revoked here or on another instance). */
  /**
   * Calls `ended` once when the device is revoked or signed out (here or on another instance):
   * a transport ends the device's open subscriptions with it. Returns the function that stops waiting.
   */
  whenRevoked(deviceId: string, ended: () => void): () => void {
    let waiting = this.revokedWaiters.get(deviceId);
    if (!waiting) this.revokedWaiters.set(deviceId, (waiting = new Set()));
    waiting.add(ended);
    return () => {
      waiting.delete(ended);
      if (waiting.size === 0 && this.revokedWaiters.get(deviceId) === waiting) this.revokedWaiters.delete(deviceId);
    };
  }

  private distrust(deviceId: string): void {
    const waiting = this.revokedWaiters.get(deviceId);
    this.revokedWaiters.delete(deviceId);
    for (const ended of waiting ?? []) ended();
    const now = performance.now();
    this.revoked.set(deviceId, now);
    for (const [id, at] of this.revoked) if (at < now - TRUST_MS) this.revoked.delete(id);
    for (const [hash, entry] of this.trusted) if (entry.viewer.device.id === deviceId) this.trusted.delete(hash);
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

  /** One of the viewer's devices by id, signed out or not, with whether it is online; null for any other. */
  async find(viewer: Viewer, deviceId: string): Promise<DeviceView | null> {
    if (!isUuid(deviceId)) return null;
    const [row] = await this.deps.db
      .select({ device: devices, online: sql<boolean>`${devices.lastSeenAt} > now() - make_interval(secs => ${this.deps.config.devices.onlineWindowSeconds})` })
      .from(devices)
      .where(and(eq(devices.id, deviceId), eq(devices.userId, viewer.user.id)));
    return row ? { ...row.device, online: row.online } : null;
  }

  /** Revokes one of the viewer's devices; its token stops working at once. */
  async revoke(viewer: Viewer, deviceId: string): Promise<DeviceRow> {
    if (!isUuid(deviceId)) throw new AppError('NOT_FOUND', 'No such device');
    const device = await this.deps.db.transaction(async (tx) => {
      const [row] = await tx
        .update(devices)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(devices.id, deviceId), eq(devices.userId, viewer.user.id), isNull(devices.revokedAt)))
        .returning();
      // Sent with the revocation: other instances hear of it exactly when it holds.
      if (row) await this.deps.events.publishIn(tx, topics.deviceRevoked, { deviceId: row.id });
      return row;
    });
    // Someone else's device and a missing one look the same: nothing leaks.
    if (!device) throw new AppError('NOT_FOUND', 'No such device');
    this.distrust(device.id);
    await this.deps.events.publish(topics.devices(viewer.user.id), { userId: viewer.user.id });
    return device;
  }

  /** One of the viewer's devices by id, revoked or not (where a photo came from); null for any other. */
  async describe(viewer: Viewer, deviceId: string | null): Promise<Pick<DeviceRow, 'id' | 'name' | 'platform' | 'revokedAt'> | null> {
    if (!deviceId || !isUuid(deviceId)) return null;
    const [row] = await this.deps.db
      .select({ id: devices.id, name: devices.name, platform: devices.platform, revokedAt: devices.revokedAt })
      .from(devices)
      .where(and(eq(devices.id, deviceId), eq(devices.userId, viewer.user.id)));
    return row ?? null;
  }

  async logOut(viewer: Viewer): Promise<void> {
    await this.revoke(viewer, viewer.device.id);
  }

  /** The control list as it changes: the current list first, then again after every change. */
  watch(viewer: Viewer): AsyncIterableIterator<DeviceView[]> {
    return this.deps.events.watch(topics.devices(viewer.user.id), () => this.list(viewer));
  }
}

/** A browser session past its (sliding) end. */
function expired(device: DeviceRow): boolean {
  return device.expiresAt !== null && device.expiresAt.getTime() <= Date.now();
}

function describeBrowser(userAgent: string | null): string {
  if (!userAgent) return 'Browser';
  const browser = /(Firefox|Edg|Chrome|Safari)\/[\d.]+/.exec(userAgent)?.[1];
  const os = /(Windows|Android|iPhone|iPad|Mac OS X|Linux)/.exec(userAgent)?.[1];
  const name = { Edg: 'Edge' }[browser ?? ''] ?? browser ?? 'Browser';
  return os ? `${name} on ${os.replace('Mac OS X', 'macOS')}` : name;
}
