import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ParsedMail } from 'mailparser';
import postgres from 'postgres';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { freePort, PASSWORD } from './support/app.js';
import { createTestDatabase } from './support/database.js';
import { scratchDir } from './support/files.js';
import { startServerProcess, type ServerProcess } from './support/server-process.js';
import { createShare, SHARED_VIEW, tokenOf, uploadPhotos, type Client, type CreatedShare, type SharedView } from './support/sharing.js';
import { startSmtp, type RunningSmtp } from './support/smtp.js';

/**
 * Kill the server between queuing a share's mail and sending it: the mail still goes out, once.
 * `src/main.ts` runs as its own process (A), is SIGKILLed, and a second process (B) starts on the
 * same database and data directory (same signing secret, same files). A SIGKILLed worker's locks
 * are only released by graphile-worker after 4 hours, so A dies while the job is *not* running:
 * between a failed attempt and its retry, or before any worker took it.
 */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let sql: postgres.Sql;
let dataDir: string;
let port: number;
let smtp: RunningSmtp;
let files: Awaited<ReturnType<typeof scratchDir>>;
const children = new Set<ChildProcess>();

beforeEach(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pixshare-mailkill-'));
  await fs.chmod(dataDir, 0o755);
  port = await freePort();
  smtp = await startSmtp();
  files = await scratchDir();
});
afterEach(async () => {
  for (const child of children) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  await sql.end();
  await database.drop();
  await smtp.close();
  await files.remove();
  await fs.rm(dataDir, { recursive: true, force: true });
});

/** The server as its own process on this test's database, data directory and port. */
async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir, port, env: { DATABASE_URL: database.url, MAIL_FROM: 'pixshare <photos@example.org>', ...env } });
  children.add(server.child);
  void server.exited.then(() => children.delete(server.child));
  return server;
}

async function kill(server: ServerProcess): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exited;
  expect(server.child.signalCode).toBe('SIGKILL');
}

const base = () => `http://127.0.0.1:${port}`;

/** An owner with one photo, sharing it with a plain address (the mail job is queued in createShare's transaction). */
async function shareWithAddress(to: string): Promise<{ owner: Client; created: CreatedShare; photoId: string }> {
  const email = `owner-${Date.now()}@example.com`;
  const { signUp } = await new ApiClient(base()).graphql<{ signUp: { token: string; user: { id: string } } }>(
    'mutation($e: String!, $p: String!) { signUp(email: $e, password: $p, device: { name: "phone", platform: "cli" }) { token user { id } } }',
    { e: email, p: PASSWORD },
  );
  const owner: Client = Object.assign(new ApiClient(base(), signUp.token), { userId: signUp.user.id, email, token: signUp.token });
  // The first server may run no jobs: the thumbnails come with the one that does.
  const [photo] = await uploadPhotos(owner, files, 1, { waitForThumbnails: false });
  const created = await createShare(owner, { assetIds: [photo!.id], emails: [to], message: 'Made it through a crash' });
  expect(created.share.recipients).toMatchObject([{ email: to, via: 'EMAIL', mailStatus: 'QUEUED' }]);
  return { owner, created, photoId: photo!.id };
}

async function mailStatus(owner: Client, shareId: string): Promise<string> {
  const { sentShare } = await owner.graphql<{ sentShare: { recipients: { mailStatus: string }[] } }>('query($id: ID!) { sentShare(id: $id) { recipients { mailStatus } } }', { id: shareId });
  return sentShare.recipients[0]!.mailStatus;
}

const mailsTo = (to: string) => smtp.received.filter((m) => JSON.stringify(m.to).toLowerCase().includes(to.toLowerCase()));

interface JobRow {
  attempts: number;
  locked: boolean;
  /** Seconds until the job may run (negative: due). */
  due_in: number;
  last_error: string | null;
}
const shareMailJobs = () =>
  sql<JobRow[]>`select attempts, locked_at is not null as locked, extract(epoch from run_at - now())::float8 as due_in, last_error
                from graphile_worker.jobs where task_identifier = 'send-share-mail'`;

/**
 * B has the mail out exactly once: one arrives, the job is gone (completed, not waiting for a retry),
 * and nothing more comes; its link opens the share through B, and the owner sees SENT.
 */
async function expectMailedOnce(to: string, { owner, created, photoId }: Awaited<ReturnType<typeof shareWithAddress>>): Promise<ParsedMail> {
  const mail = await smtp.next(to, 20_000);
  await vi.waitFor(async () => expect(await shareMailJobs()).toEqual([]), { timeout: 5_000, interval: 100 });
  // B polls for due jobs every 2 s: give a second sending (from a retry or a second copy) time to show.
  await new Promise((r) => setTimeout(r, 3_000));
  expect(mailsTo(to)).toHaveLength(1);

  const link = created.links.find((l) => l.recipient.email === to)!.url;
  expect(mail.text).toContain(link);
  expect(mail.html).toContain(link);
  const token = tokenOf(/\/s\/(pxl_[A-Za-z0-9_-]{43})/.exec(mail.text!)![0]);
  expect(token).toBe(tokenOf(link));
  const { share } = await new ApiClient(base()).graphql<{ share: SharedView }>(`query($t: String!) { share(token: $t) { ${SHARED_VIEW} } }`, { t: token });
  expect(share).toMatchObject({ title: created.share.title, message: 'Made it through a crash', photoCount: 1 });
  expect(share.photos.nodes.map((p) => p.id)).toEqual([photoId]);
  await vi.waitFor(async () => expect(await mailStatus(owner, created.share.id)).toBe('SENT'), { timeout: 5_000, interval: 100 });
  return mail;
}

describe('a share mail survives the server being killed between queuing and sending', () => {
  it('is sent once by the next server when the first died while waiting to retry a failed attempt', async () => {
    const to = `crash-retry-${Date.now()}@example.net`;
    // Nothing listens there: the first attempt fails (connection refused) and waits e^1 ≈ 2.7 s to be retried.
    const deadSmtp = `smtp://127.0.0.1:${await freePort()}`;
    const a = await start({ SMTP_URL: deadSmtp });
    const shared = await shareWithAddress(to);
    const { created } = shared;

    // Kill A only once the job failed and is back in the queue, not locked, its retry still ahead.
    let seen: JobRow | undefined;
    await vi.waitFor(
      async () => {
        [seen] = await shareMailJobs();
        expect(seen).toMatchObject({ attempts: 1, locked: false });
        expect(seen!.due_in).toBeGreaterThan(0.5);
      },
      { timeout: 10_000, interval: 25 },
    );
    await kill(a);
    expect(seen!.last_error).toMatch(/ECONNREFUSED/);
    const [row] = await shareMailJobs();
    expect(row).toMatchObject({ attempts: 1, locked: false }); // the retry did not start before A died
    const [recipient] = await sql<{ mail_status: string }[]>`select mail_status from share_recipients where share_id = ${created.share.id}`;
    expect(recipient!.mail_status).toBe('queued'); // a failed attempt that is not the last leaves it queued
    expect(mailsTo(to)).toEqual([]);

    const b = await start({ SMTP_URL: smtp.url });
    await expectMailedOnce(to, shared);
    expect(b.output()).not.toMatch(/ECONNREFUSED/);
  }, 90_000); // two server starts, ~5 s each on an idle machine, far more on a busy one

  it('is sent once by a server that runs jobs when the API-only server that queued it was killed', async () => {
    const to = `crash-queued-${Date.now()}@example.net`;
    const a = await start({ SMTP_URL: smtp.url, PIXSHARE_RUN_JOBS: 'false' });
    const shared = await shareWithAddress(to);
    await kill(a); // right after createShare returned
    const [row] = await shareMailJobs();
    expect(row).toMatchObject({ attempts: 0, locked: false });
    expect(mailsTo(to)).toEqual([]);

    await start({ SMTP_URL: smtp.url });
    await expectMailedOnce(to, shared);
  }, 90_000); // two server starts, ~5 s each on an idle machine, far more on a busy one
});
