import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { z } from 'zod';

/**
 * Every setting of the service, read from the environment once, validated, typed.
 * The defaults need nothing installed: embedded PostgreSQL and filesystem storage
 * under the data directory. A wrong value stops start-up with a message naming
 * the variable (see ConfigError).
 */
export type UserLevel = 'member' | 'standard';

export interface LevelSettings {
  /** Upload space in bytes (S5). */
  quotaBytes: number;
  /** Default lifetime of uploaded files, folders and shares, in days (S2). */
  expiryDays: number;
  /** How far ahead the owner may set an expiry, in days; 0: no limit (an expiry may also be cleared). */
  maxExpiryDays: number;
}

export type StorageConfig =
  | { driver: 'fs'; root: string }
  | {
      driver: 's3';
      /** Omit for AWS; set for MinIO, Garage, R2, s3rver. */
      endpoint?: string;
      region: string;
      bucket: string;
      /** Omit both to use the SDK's default credential chain (env, instance role…). */
      accessKeyId?: string;
      secretAccessKey?: string;
      /** Self-hosted stores (MinIO, Garage, s3rver) want path-style addressing. */
      forcePathStyle: boolean;
    };

export interface Config {
  env: 'development' | 'production' | 'test';
  dataDir: string;
  host: string;
  port: number;
  /** The address people and devices use to reach this server (links, signed URLs). */
  publicUrl: string;
  /** Secret for signing download URLs; shared by every instance of a deployment. */
  secret: string;
  database: { url: string } | { embedded: { dir: string } };
  /** Redis for live events between instances (large deployments); unset: PostgreSQL LISTEN/NOTIFY. */
  redisUrl?: string;
  storage: StorageConfig;
  mail: {
    /** SMTP server (smtp:// or smtps://, with credentials in the URL); unset: mails are written to `outbox` as .eml files. */
    smtpUrl?: string;
    outboxDir: string;
    /** The From header, e.g. `pixshare <photos@example.org>`. */
    from: string;
  };
  jobs: {
    /** Whether this instance runs background jobs (mail); API-only instances of a large deployment can leave it to others. */
    run: boolean;
    /** Jobs one instance runs at once. */
    concurrency: number;
  };
  /** Background processing of stored photos and videos: thumbnails, previews, facts, perceptual hash. */
  media: {
    /** Files one instance processes at once (each takes a core while it decodes). */
    concurrency: number;
    /** One decode, HEIC conversion or ffmpeg run is abandoned after this long. */
    timeoutSeconds: number;
    /** HEIC files, RAW previews and video frames above this size are not read into memory. */
    maxInputBytes: number;
    /** The ffmpeg binary for video posters; unset: the one shipped in @ffmpeg-installer/ffmpeg. */
    ffmpegPath?: string;
    /** A job waits up to this long for this instance's uploads to pause before it starts (0: never waits). */
    yieldSeconds: number;
  };
  sharing: {
    /** Recipients and owner are reminded this many days before a share's items go (0: no reminder). */
    reminderDays: number;
    /** Wrong share-link tokens one client address may present inside the window before it is refused. */
    maxTokenFailures: number;
    tokenWindowSeconds: number;
    /** Lifetime of the signed URLs a recipient's page gets for thumbnails, images and originals. */
    urlSeconds: number;
  };
  live: {
    /** Messages a live sync subscription gets per second at most: bursts fold into one (the last state always goes). */
    messagesPerSecond: number;
    /** A folder sync stays on the library dashboard this long after its last change (in flight: always). */
    activityHours: number;
    /** A check for a folder whose sync has been idle (nothing in flight, no change) this long starts a new run ("0 of n" again). */
    runGapMinutes: number;
  };
  graphiql: boolean;
  levels: Record<UserLevel, LevelSettings>;
  auth: {
    /** Browser sessions (cookie) last this long after the last request. */
    sessionDays: number;
    /** Failed log-ins allowed per email (and 4× per address) inside the window. */
    maxLoginFailures: number;
    loginWindowSeconds: number;
    /** argon2id cost; lowered only in tests. */
    argon2MemoryKiB: number;
  };
  limits: {
    /** Largest accepted GraphQL request body that is not a file upload. */
    maxRequestBytes: number;
    maxQueryDepth: number;
    maxQueryCost: number;
    maxAliases: number;
    maxTokens: number;
  };
  devices: {
    /** A device seen within this many seconds counts as online (D1). */
    onlineWindowSeconds: number;
    /** A command not taken up by its device within this time expires and never runs (D2). */
    commandTtlSeconds: number;
    /** An agent running a command reports at least this often, else another run may take it over. */
    commandLeaseSeconds: number;
    /** While a requester on the same network hands a command over directly, the server holds it back this long (D3). */
    directWindowSeconds: number;
    /** The library change feed (pull sync, D4) keeps this many days; a device away longer lists the library again. */
    changesRetentionDays: number;
  };
  uploads: {
    /** `global`: a file any user stored can be claimed by others after a proof of possession; `user`: only within one account. */
    dedupScope: 'global' | 'user';
    /** What happens when an upload would exceed the user's quota. */
    quotaPolicy: 'refuse' | 'evict-oldest';
    minChunkBytes: number;
    maxChunkBytes: number;
    maxFileBytes: number;
    /** Unfinished uploads idle this long are removed with their staged bytes. */
    sessionIdleSeconds: number;
    /** Unreferenced blobs are deleted this long after their last asset went away. */
    blobGraceSeconds: number;
    /** Proof-of-possession challenges must be answered within this time. */
    challengeSeconds: number;
    /** Largest image (in pixels) that thumbnails are made for: guards against decompression bombs. */
    maxImagePixels: number;
    /** How often each instance looks for expired sessions and unreferenced blobs. */
    housekeepingSeconds: number;
    /** Lifetime of signed download URLs handed out in asset listings. */
    downloadUrlSeconds: number;
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`Invalid setting ${setting}: ${message}`);
  }
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Parses "512MiB", "10 GB", "1048576" into bytes. */
export function parseByteSize(value: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!match) return undefined;
  const unit = SIZE_UNITS[match[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

type Env = Record<string, string | undefined>;

/** Reads one variable through a zod schema; failures name the variable. */
function read<T>(env: Env, name: string, schema: z.ZodType<T>): T {
  const raw = env[name];
  const result = schema.safeParse(raw === '' ? undefined : raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(name, `${issue?.message ?? 'invalid value'} (got ${JSON.stringify(raw)})`);
  }
  return result.data;
}

const integer = (min: number, max: number) =>
  z.coerce
    .number({ message: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const byteSize = z.string().transform((value, ctx) => {
  const bytes = parseByteSize(value);
  if (bytes === undefined || bytes <= 0) {
    ctx.addIssue({ code: 'custom', message: 'must be a size such as 10GiB, 500MB or 1048576' });
    return z.NEVER;
  }
  return bytes;
});

const boolean = z.enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' }).transform((v) => ['true', '1', 'yes'].includes(v));

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

/** A deployment's signing secret: taken from PIXSHARE_SECRET, else created once under the data directory. */
function loadSecret(env: Env, dataDir: string): string {
  const given = read(env, 'PIXSHARE_SECRET', z.string().min(32, 'must be at least 32 characters').optional());
  if (given) return given;
  const file = path.join(dataDir, 'secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

function loadStorage(env: Env, dataDir: string): StorageConfig {
  const s3Vars = ['S3_ENDPOINT', 'S3_BUCKET', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'].filter((name) => env[name]);
  if (s3Vars.length === 0) return { driver: 'fs', root: path.join(dataDir, 'blobs') };
  const bucket = read(env, 'S3_BUCKET', z.string({ message: `is required when ${s3Vars.join(', ')} is set` }).regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid bucket name'));
  const endpoint = read(env, 'S3_ENDPOINT', url(['http:', 'https:']).optional());
  const accessKeyId = read(env, 'S3_ACCESS_KEY_ID', z.string().optional());
  const secretAccessKey = read(env, 'S3_SECRET_ACCESS_KEY', z.string().optional());
  if (!!accessKeyId !== !!secretAccessKey) {
    throw new ConfigError(accessKeyId ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID', 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together');
  }
  return {
    driver: 's3',
    bucket,
    endpoint,
    region: read(env, 'S3_REGION', z.string().default('us-east-1')),
    accessKeyId,
    secretAccessKey,
    // Self-hosted stores (MinIO, Garage, s3rver) want path-style addressing.
    forcePathStyle: read(env, 'S3_FORCE_PATH_STYLE', boolean.optional()) ?? endpoint !== undefined,
  };
}

function loadUploads(env: Env): Config['uploads'] {
  const minChunkBytes = read(env, 'PIXSHARE_MIN_CHUNK_SIZE', byteSize.default(64 * 1024));
  const maxChunkBytes = read(env, 'PIXSHARE_MAX_CHUNK_SIZE', byteSize.default(64 * 2 ** 20));
  if (maxChunkBytes < minChunkBytes) throw new ConfigError('PIXSHARE_MAX_CHUNK_SIZE', 'must not be smaller than PIXSHARE_MIN_CHUNK_SIZE');
  if (maxChunkBytes > 2 ** 31 - 1) throw new ConfigError('PIXSHARE_MAX_CHUNK_SIZE', 'must be below 2 GiB');
  return {
    dedupScope: read(env, 'PIXSHARE_DEDUP_SCOPE', z.enum(['global', 'user'], { message: 'must be global or user' }).default('global')),
    quotaPolicy: read(env, 'PIXSHARE_QUOTA_POLICY', z.enum(['refuse', 'evict-oldest'], { message: 'must be refuse or evict-oldest' }).default('refuse')),
    minChunkBytes,
    maxChunkBytes,
    maxFileBytes: read(env, 'PIXSHARE_MAX_FILE_SIZE', byteSize.default(4 * 2 ** 30)),
    sessionIdleSeconds: read(env, 'PIXSHARE_UPLOAD_IDLE_SECONDS', integer(10, 365 * 86400).default(7 * 86400)),
    blobGraceSeconds: read(env, 'PIXSHARE_BLOB_GRACE_SECONDS', integer(0, 365 * 86400).default(3600)),
    challengeSeconds: read(env, 'PIXSHARE_CHALLENGE_SECONDS', integer(1, 3600).default(120)),
    maxImagePixels: read(env, 'PIXSHARE_MAX_IMAGE_PIXELS', integer(1, 2 ** 31).default(100_000_000)),
    housekeepingSeconds: read(env, 'PIXSHARE_HOUSEKEEPING_SECONDS', integer(1, 86400).default(60)),
    downloadUrlSeconds: read(env, 'PIXSHARE_DOWNLOAD_URL_SECONDS', integer(10, 7 * 86400).default(3600)),
  };
}

function loadLevel(env: Env, prefix: 'MEMBER' | 'STANDARD', defaults: { quota: number; expiryDays: number; maxExpiryDays: number }): LevelSettings {
  const expiryDays = read(env, `PIXSHARE_${prefix}_EXPIRY_DAYS`, integer(1, 36500).default(defaults.expiryDays));
  const maxExpiryDays = read(env, `PIXSHARE_${prefix}_MAX_EXPIRY_DAYS`, integer(0, 36500).default(defaults.maxExpiryDays));
  if (maxExpiryDays !== 0 && maxExpiryDays < expiryDays) {
    throw new ConfigError(`PIXSHARE_${prefix}_MAX_EXPIRY_DAYS`, `must be 0 (no limit) or at least PIXSHARE_${prefix}_EXPIRY_DAYS (${expiryDays})`);
  }
  return { quotaBytes: read(env, `PIXSHARE_${prefix}_QUOTA`, byteSize.default(defaults.quota)), expiryDays, maxExpiryDays };
}

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const nodeEnv = read(env, 'NODE_ENV', z.enum(['development', 'production', 'test']).default('production'));
  const dataDir = path.resolve(cwd, read(env, 'PIXSHARE_DATA_DIR', z.string().default('data')));
  const port = read(env, 'PORT', integer(0, 65535).default(4000));
  const host = read(env, 'HOST', z.string().default('0.0.0.0'));
  const publicUrl = read(env, 'PUBLIC_URL', url(['http:', 'https:']).optional()) ?? `http://localhost:${port}`;
  const databaseUrl = read(env, 'DATABASE_URL', url(['postgres:', 'postgresql:']).optional());

  return {
    env: nodeEnv,
    dataDir,
    host,
    port,
    publicUrl: publicUrl.replace(/\/+$/, ''),
    secret: loadSecret(env, dataDir),
    database: databaseUrl ? { url: databaseUrl } : { embedded: { dir: path.join(dataDir, 'pg') } },
    redisUrl: read(env, 'REDIS_URL', url(['redis:', 'rediss:']).optional()),
    storage: loadStorage(env, dataDir),
    mail: {
      smtpUrl: read(env, 'SMTP_URL', url(['smtp:', 'smtps:']).optional()),
      outboxDir: path.join(dataDir, 'outbox'),
      from: read(env, 'MAIL_FROM', z.string().trim().max(320).regex(/^[^\r\n]*[^\s@<>]+@[^\s@<>]+\.?[^\s@<>]*>?$/, 'must be an address, e.g. "pixshare <photos@example.org>"').default(`pixshare <pixshare@${new URL(publicUrl).hostname}>`)),
    },
    jobs: {
      run: read(env, 'PIXSHARE_RUN_JOBS', boolean.optional()) ?? true,
      concurrency: read(env, 'PIXSHARE_JOB_CONCURRENCY', integer(1, 100).default(2)),
    },
    media: {
      concurrency: read(env, 'PIXSHARE_MEDIA_CONCURRENCY', integer(1, 64).default(Math.max(1, Math.min(4, os.availableParallelism())))),
      timeoutSeconds: read(env, 'PIXSHARE_MEDIA_TIMEOUT_SECONDS', integer(1, 3600).default(60)),
      maxInputBytes: read(env, 'PIXSHARE_MEDIA_MAX_INPUT_BYTES', integer(1024, 2 ** 31).default(256 * 1024 * 1024)),
      ffmpegPath: read(env, 'PIXSHARE_FFMPEG_PATH', z.string().min(1).optional()),
      yieldSeconds: read(env, 'PIXSHARE_MEDIA_YIELD_SECONDS', integer(0, 3600).default(30)),
    },
    sharing: {
      reminderDays: read(env, 'PIXSHARE_SHARE_REMINDER_DAYS', integer(0, 365).default(3)),
      maxTokenFailures: read(env, 'PIXSHARE_SHARE_TOKEN_MAX_FAILURES', integer(1, 100_000).default(30)),
      tokenWindowSeconds: read(env, 'PIXSHARE_SHARE_TOKEN_WINDOW_SECONDS', integer(1, 86400).default(900)),
      urlSeconds: read(env, 'PIXSHARE_SHARE_URL_SECONDS', integer(10, 7 * 86400).default(3600)),
    },
    live: {
      messagesPerSecond: read(env, 'PIXSHARE_LIVE_MESSAGES_PER_SECOND', z.coerce.number().min(0.1).max(1000).default(10)),
      activityHours: read(env, 'PIXSHARE_LIVE_ACTIVITY_HOURS', integer(1, 24 * 365).default(24)),
      runGapMinutes: read(env, 'PIXSHARE_SYNC_RUN_GAP_MINUTES', integer(0, 7 * 24 * 60).default(30)),
    },
    // On by default: the page only shows the schema (which is public); every operation still needs credentials.
    graphiql: read(env, 'PIXSHARE_GRAPHIQL', boolean.optional()) ?? true,
    levels: {
      member: loadLevel(env, 'MEMBER', { quota: 50 * 2 ** 30, expiryDays: 30, maxExpiryDays: 0 }),
      standard: loadLevel(env, 'STANDARD', { quota: 10 * 2 ** 30, expiryDays: 15, maxExpiryDays: 365 }),
    },
    auth: {
      sessionDays: read(env, 'PIXSHARE_SESSION_DAYS', integer(1, 3650).default(30)),
      maxLoginFailures: read(env, 'PIXSHARE_LOGIN_MAX_FAILURES', integer(1, 1000).default(5)),
      loginWindowSeconds: read(env, 'PIXSHARE_LOGIN_WINDOW_SECONDS', integer(1, 86400).default(900)),
      argon2MemoryKiB: read(env, 'PIXSHARE_ARGON2_MEMORY_KIB', integer(1024, 1 << 22).default(19456)),
    },
    limits: {
      maxRequestBytes: read(env, 'PIXSHARE_MAX_REQUEST_SIZE', byteSize.default(1 << 20)),
      maxQueryDepth: read(env, 'PIXSHARE_MAX_QUERY_DEPTH', integer(2, 100).default(12)),
      maxQueryCost: read(env, 'PIXSHARE_MAX_QUERY_COST', integer(10, 1_000_000).default(5000)),
      maxAliases: read(env, 'PIXSHARE_MAX_ALIASES', integer(1, 1000).default(30)),
      maxTokens: read(env, 'PIXSHARE_MAX_TOKENS', integer(100, 1_000_000).default(5000)),
    },
    devices: {
      onlineWindowSeconds: read(env, 'PIXSHARE_DEVICE_ONLINE_SECONDS', integer(5, 86400).default(120)),
      commandTtlSeconds: read(env, 'PIXSHARE_COMMAND_TTL_SECONDS', integer(1, 30 * 86400).default(7 * 86400)),
      commandLeaseSeconds: read(env, 'PIXSHARE_COMMAND_LEASE_SECONDS', integer(2, 3600).default(60)),
      directWindowSeconds: read(env, 'PIXSHARE_COMMAND_DIRECT_SECONDS', integer(1, 300).default(10)),
      changesRetentionDays: read(env, 'PIXSHARE_CHANGES_RETENTION_DAYS', integer(1, 3650).default(90)),
    },
    uploads: loadUploads(env),
  };
}
