import { sql, type SQL } from 'drizzle-orm';
import { Logger as WorkerLogger, run, runMigrations, type Runner, type Task } from 'graphile-worker';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';

/** Every background job, with its payload (small: ids; the handler reads the rest when it runs). */
export interface Jobs {
  'send-friend-request-mail': { requestId: string };
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
  private runner?: Runner;

  constructor(private readonly deps: { databaseUrl: string; config: Pick<Config, 'jobs'>; log: Logger }) {}

  /** Registers the handler of a job; before start(). */
  handle<N extends JobName>(name: N, handler: (payload: Jobs[N]) => Promise<void>): void {
    this.tasks[name] = async (payload) => handler(payload as Jobs[N]);
  }

  /** Brings the queue's tables up to date and, on an instance that runs jobs, starts working. */
  async start(): Promise<void> {
    const logger = new WorkerLogger(() => (level, message) => {
      // Warnings too: a job that failed and will be retried, or a worker pool that stopped.
      if (level === 'error' || level === 'warning') this.deps.log.error(`jobs: ${message}`);
    });
    await runMigrations({ connectionString: this.deps.databaseUrl, logger });
    if (!this.deps.config.jobs.run) return;
    this.runner = await run({
      connectionString: this.deps.databaseUrl,
      concurrency: this.deps.config.jobs.concurrency,
      maxPoolSize: this.deps.config.jobs.concurrency + 2,
      noHandleSignals: true,
      pollInterval: 2000,
      taskList: this.tasks,
      logger,
    });
  }

  /**
   * Adds a job inside the caller's transaction (sent with its other statements): it runs only if
   * the transaction commits, and is never lost after it did.
   */
  async addIn<N extends JobName>(tx: { execute(query: SQL): PromiseLike<unknown> }, name: N, payload: Jobs[N]): Promise<void> {
    await tx.execute(sql`select graphile_worker.add_job(${name}, ${JSON.stringify(payload)}::json, max_attempts => ${MAX_ATTEMPTS})`);
  }

  /** Lets running jobs finish, then stops taking new ones. */
  async stop(): Promise<void> {
    await this.runner?.stop();
    this.runner = undefined;
  }
}
