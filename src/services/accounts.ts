import { hash, verify } from '@node-rs/argon2';
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import { users, type DeviceRow, type UserRow } from '../db/schema/index.js';
import { AppError } from './app-error.js';
import type { AttemptLimiter } from './attempt-limiter.js';
import type { DeviceService } from './devices.js';
import type { RequestOrigin } from './request-origin.js';

/** The few passwords every cracking list starts with; refused outright. */
const COMMON_PASSWORDS = new Set(['password', 'password1', 'password123', '12345678', '123456789', '1234567890', 'qwertyuiop', 'qwerty123', '11111111', '00000000', 'iloveyou', 'abcdefgh', 'letmein1', 'pixshare', 'passw0rd', 'abc12345']);

export const MAX_PASSWORD_LENGTH = 256;
export const MIN_PASSWORD_LENGTH = 10;

export const emailSchema = z
  .string()
  .trim()
  .max(254, 'Email address is too long (at most 254 characters)')
  .pipe(z.email('Not a valid email address'))
  .transform((email) => email.toLowerCase());

export const passwordSchema = z
  .string()
  .max(MAX_PASSWORD_LENGTH, `Password is too long (at most ${MAX_PASSWORD_LENGTH} characters)`)
  .min(MIN_PASSWORD_LENGTH, `Password is too short (at least ${MIN_PASSWORD_LENGTH} characters)`)
  .refine((p) => !COMMON_PASSWORDS.has(p.toLowerCase()), 'Password is too common')
  .refine((p) => new Set(p).size >= 4, 'Password is too simple (use at least 4 different characters)');

export const nicknameSchema = z.string().trim().min(1, 'Nickname must not be empty').max(64, 'Nickname is too long (at most 64 characters)');

export const deviceInputSchema = z.object({
  name: z.string().trim().min(1, 'Device name must not be empty').max(100, 'Device name is too long (at most 100 characters)'),
  platform: z.string().trim().min(1, 'Platform must not be empty').max(50, 'Platform is too long (at most 50 characters)'),
});

export interface DeviceInput {
  name: string;
  platform: string;
}

export interface SignUpInput {
  email: string;
  password: string;
  nickname?: string | null;
  device?: DeviceInput | null;
}

export interface LogInInput {
  email: string;
  password: string;
  /** Given by programs (G5): they get a device token. Absent for browsers: they get a cookie session. */
  device?: DeviceInput | null;
}

export interface AuthResult {
  user: UserRow;
  device: DeviceRow;
  /** The secret to present later: a device token for programs, the session cookie value for browsers. */
  token: string;
}

/** Parses with a zod schema; the first problem becomes a BAD_USER_INPUT naming the field. */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new AppError('BAD_USER_INPUT', issue?.message ?? `Invalid ${field}`, { field });
}

export class AccountService {
  constructor(
    private readonly deps: {
      db: Db;
      config: Pick<Config, 'auth'>;
      devices: DeviceService;
      limiter: AttemptLimiter;
    },
  ) {}

  private async hashPassword(password: string): Promise<string> {
    return hash(password, { memoryCost: this.deps.config.auth.argon2MemoryKiB, timeCost: 2, parallelism: 1 });
  }

  async signUp(input: SignUpInput, origin: RequestOrigin): Promise<AuthResult> {
    const email = parseInput(emailSchema, input.email, 'email');
    const password = parseInput(passwordSchema, input.password, 'password');
    const nickname = parseInput(nicknameSchema, input.nickname ?? email.split('@')[0], 'nickname');
    const device = input.device ? parseInput(deviceInputSchema, input.device, 'device') : undefined;
    const passwordHash = await this.hashPassword(password);
    const [user] = await this.deps.db.insert(users).values({ email, passwordHash, nickname }).onConflictDoNothing().returning();
    if (!user) throw new AppError('EMAIL_TAKEN', 'An account with this email address already exists');
    return this.deps.devices.register(user, device, origin);
  }

  async logIn(input: LogInInput, origin: RequestOrigin): Promise<AuthResult> {
    const email = parseInput(emailSchema, input.email, 'email');
    if (typeof input.password !== 'string' || input.password.length === 0) throw new AppError('BAD_USER_INPUT', 'Password is required', { field: 'password' });
    if (input.password.length > MAX_PASSWORD_LENGTH) throw new AppError('BAD_USER_INPUT', `Password is too long (at most ${MAX_PASSWORD_LENGTH} characters)`, { field: 'password' });
    const device = input.device ? parseInput(deviceInputSchema, input.device, 'device') : undefined;
    const { maxLoginFailures, loginWindowSeconds } = this.deps.config.auth;
    const throttleKeys = [`email:${email}`, ...(origin.address ? [`ip:${origin.address}`] : [])];
    await this.deps.limiter.refuseIfThrottled(throttleKeys, loginWindowSeconds, (key) => (key.startsWith('ip:') ? maxLoginFailures * 4 : maxLoginFailures), 'failed log-ins');

    const [user] = await this.deps.db.select().from(users).where(eq(users.email, email));
    // Verify against a real hash even for unknown emails so timing does not reveal which accounts exist.
    const ok = await verify(user?.passwordHash ?? (await this.dummyHash()), input.password).catch(() => false);
    if (!user || !ok) {
      await this.deps.limiter.recordFailure(throttleKeys, loginWindowSeconds);
      throw new AppError('INVALID_CREDENTIALS', 'Wrong email or password');
    }
    await this.deps.limiter.clear(`email:${email}`);
    return this.deps.devices.register(user, device, origin);
  }

  async getUser(userId: string): Promise<UserRow> {
    const [user] = await this.deps.db.select().from(users).where(eq(users.id, userId));
    if (!user) throw new AppError('NOT_FOUND', 'No such user');
    return user;
  }

  private dummy?: Promise<string>;
  private dummyHash(): Promise<string> {
    this.dummy ??= this.hashPassword('not-a-real-password-used-for-timing');
    return this.dummy;
  }
}
