import { sql, type SQL } from 'drizzle-orm';
import { Logger as WorkerLogger, run, runMigrations, type Runner, type Task } from 'graphile-worker';
import pg from 'pg';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';

/** Every background job, with its payload (small: ids; the handler reads the rest when it runs). */
export interface Jobs {
  'send-friend-request-mail': { requestId: string };
  /** `link`: the recipient's link, sealed (see ShareService): the database keeps only its hash. */
  'send-share-mail': { recipientId: string; link: string };
  /**
   * `expiresAt`: the expiry the reminder is for (a share whose expiry changed since is not reminded);
   * `links`: each recipient's link, sealed like the first mail's.
   */
  'remind-share-expiry': { shareId: string; expiresAt: string; links: { recipientId: string; link: string }[] };
  'sweep-expired': Record<string, never>;
  /** Forgets library changes older than the retention (PIXSHARE_CHANGES_RETENTION_DAYS). */
  'prune-library-changes': Record<string, never>;
  /** Thumbnails, preview, facts and perceptual hash of a stored blob; `force` redoes a processed one. */
  'process-media': { sha256: string; force?: boolean };
}

/**
 * Which worker pool runs a job: media jobs (seconds of CPU each) have their own, with their own
 * concurrency per instance (PIXSHARE_MEDIA_CONCURRENCY), so that a camera roll being processed
 * never holds up a mail, and mails never take the cores photos need.
 */
const MEDIA_JOBS: ReadonlySet<JobName> = new Set(['process-media']);

/** What a handler learns about the run it is in. */
export interface JobRun {
  /** 1 on the first try. */
  attempt: number;
  /** The last try: a handler may record the failure for people to see before it throws. */
  lastAttempt: boolean;
}
export type JobName = keyof Jobs;

/** Attempts of a job before it is given up (graphile-worker backs off exponentially between them). */
const MAX_ATTEMPTS = 12;

/**
 * Durable background work over PostgreSQL (graphile-worker): a job is a row, added in the same
 * transaction as the change it is about, so it exists exactly when that change commits; it
 * survives a restart, is retried with backoff, and runs on one instance however many there are
 * (rows are claimed with SKIP LOCKED). Instances with `PIXSHARE_RUN_JOBS=false` only add jobs.
 */
export class JobQueue {
  private readonly tasks: Record<string, Task> = {};
  private readonly mediaTasks: Record<string, Task> = {};
  private readonly schedules: string[] = [];
  private runners: Runner[] = [];
  private pool?: pg.Pool;

  constructor(private readonly deps: { databaseUrl: string; config: Pick<Config, 'jobs' | 'media'>; log: Logger }) {}

  /** Registers the handler of a job; before start(). */
  handle<N extends JobName>(name: N, handler: (payload: Jobs[N], run: JobRun) => Promise<void>): void {
    const tasks = MEDIA_JOBS.has(name) ? this.mediaTasks : this.tasks;
    tasks[name] = async (payload, helpers) =>
      handler(payload as Jobs[N], { attempt: helpers.job.attempts, lastAttempt: helpers.job.attempts >= helpers.job.max_attempts });
  }

  /**
   * Runs a job on a schedule (cron syntax, e.g. every ten minutes: `*\/10 * * * *`). However many
   * instances run jobs, each tick makes one job (graphile-worker's cron keeps track in the database).
   */
  every<N extends JobName>(cron: string, name: N): void {
    this.schedules.push(`${cron} ${name} ?max=3`);
  }

  /** Brings the queue's tables up to date and, on an instance that runs jobs, starts working. */
  async start(): Promise<void> {
    const logger = new WorkerLogger(() => (level, message) => {
      // Warnings too: a job that failed and will be retried, or a worker pool that stopped.
      if (level === 'error' || level === 'warning') this.deps.log.error(`jobs: ${message}`);
    });
    // Our own pool, so that stop() can wait for its connections to close, and a connection the
    // server ends (a restart, a dropped database) is logged instead of crashing the process.
    const { jobs, media } = this.deps.config;
    const pool = new pg.Pool({ connectionString: this.deps.databaseUrl, max: jobs.concurrency + media.concurrency + 3 });
    const closing = () => this.pool !== pool;
    pool.on('error', (error) => {
      if (!closing()) this.deps.log.error('jobs: a database connection failed', error);
    });
    pool.on('connect', (client) => client.on('error', (error) => {
      if (!closing()) this.deps.log.error('jobs: a database connection failed', error);
    }));
    this.pool = pool;
    await runMigrations({ pgPool: pool, logger });
    if (!jobs.run) {
      // An API-only instance adds jobs inside its own transactions; it needs no connections here.
      this.pool = undefined;
      await pool.end();
      return;
    }
    // A runner fetches only the jobs of its own task list: two pools over one table.
    const common = { pgPool: pool, noHandleSignals: true, pollInterval: 2000, logger } as const;
    this.runners.push(await run({ ...common, concurrency: jobs.concurrency, taskList: this.tasks, crontab: this.schedules.join('\n') }));
    if (Object.keys(this.mediaTasks).length > 0) this.runners.push(await run({ ...common, concurrency: media.concurrency, taskList: this.mediaTasks }));
  }

  /**
   * Adds a job inside the caller's transaction (sent with its other statements): it runs only if
   * the transaction commits, and is never lost after it did.
   */
  async addIn<N extends JobName>(tx: { execute(query: SQL): PromiseLike<unknown> }, name: N, payload: Jobs[N], options: { runAt?: Date; key?: string; maxAttempts?: number } = {}): Promise<void> {
    const runAt = options.runAt ? sql`${options.runAt.toISOString()}::timestamptz` : sql`now()`;
    // A key makes the job one of a kind: adding it again while it waits updates the waiting one
    // (keeping its place); while it runs, a new one is queued to run after.
    const key = options.key ? sql`, job_key => ${options.key}, job_key_mode => 'preserve_run_at'` : sql``;
    await tx.execute(sql`select graphile_worker.add_job(${name}, ${JSON.stringify(payload)}::json, run_at => ${runAt}, max_attempts => ${options.maxAttempts ?? MAX_ATTEMPTS}${key})`);
  }

  /**
   * Adds many jobs of one kind in one statement (a share to hundreds of recipients), inside the
   * caller's transaction like addIn.
   */
  async addManyIn<N extends JobName>(
    tx: { execute(query: SQL): PromiseLike<unknown> },
    name: N,
    payloads: readonly Jobs[N][],
    options: { key?: (payload: Jobs[N]) => string; maxAttempts?: number } = {},
  ): Promise<void> {
    if (payloads.length === 0) return;
    const specs = payloads.map((payload) => ({ identifier: name, payload, max_attempts: options.maxAttempts ?? MAX_ATTEMPTS, job_key: options.key?.(payload) ?? null }));
    // Keyed jobs already waiting keep their place (as addIn's preserve_run_at).
    await tx.execute(sql`select graphile_worker.add_jobs(array(select json_populate_recordset(null::graphile_worker.job_spec, ${JSON.stringify(specs)}::json)), true)`);
  }

  /** Lets running jobs finish, then stops taking new ones. */
  async stop(): Promise<void> {
    const runners = this.runners;
    this.runners = [];
    await Promise.all(runners.map((runner) => runner.stop()));
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }
}
