import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../src/app.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient } from './support/files.js';
import { startSmtp, type RunningSmtp } from './support/smtp.js';

let smtp: RunningSmtp;
beforeAll(async () => {
  smtp = await startSmtp();
});
afterAll(async () => {
  await smtp.close();
});

const ASK = 'mutation($e: String!) { requestFriend(email: $e) { id } }';
const quietLog = { info: () => {}, error: (message: string, error?: unknown) => console.error(message, error) };

describe('mail over SMTP (S9)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ SMTP_URL: smtp.url, MAIL_FROM: 'pixshare <photos@example.org>' });
  });
  afterAll(async () => {
    expect(app.loggedErrors).toEqual([]);
    await app.close();
  });

  it('tells the addressee of a friend request who asks and where to answer, with every value escaped', async () => {
    const anna = await newClient(app);
    await app.database.sql`update users set nickname = ${'Anna <b>"Bold"</b> & Co'} where id = ${anna.userId}`;
    const to = `newcomer-${Date.now()}@example.com`;
    await anna.graphql(ASK, { e: to });
    const mail = await smtp.next(to);
    expect(mail.subject).toBe('Anna <b>"Bold"</b> & Co wants to be your friend on pixshare');
    expect(mail.from?.value).toEqual([{ name: 'pixshare', address: 'photos@example.org' }]);
    // The HTML has the name as text, never as markup; the link leads to this server.
    expect(mail.html).toContain('Anna &lt;b&gt;&quot;Bold&quot;&lt;/b&gt; &amp; Co');
    expect(mail.html).not.toContain('<b>"Bold"</b>');
    expect(mail.html).toContain(`href="${app.config.publicUrl}/"`);
    expect(mail.html).toContain(`Sign up with ${to} to answer`);
    expect(mail.text).toContain(`Sign up with ${to} to answer: ${app.config.publicUrl}/`);
    expect(mail.text).toContain(anna.email);
  });

  it('mails an address once a week, however often a request is withdrawn and made again', async () => {
    const anna = await newClient(app);
    const to = `once-${Date.now()}@example.com`;
    for (let i = 0; i < 3; i++) {
      const { requestFriend } = await anna.graphql<{ requestFriend: { id: string } }>(ASK, { e: to });
      await smtp.next(to);
      await anna.graphql('mutation($id: ID!) { cancelFriendRequest(id: $id) { id } }', { id: requestFriend.id });
    }
    const witness = `after-once-${Date.now()}@example.com`;
    await anna.graphql(ASK, { e: witness });
    await smtp.next(witness);
    expect(smtp.received.filter((m) => JSON.stringify(m.to).includes(to))).toHaveLength(1);
  });

  it('sends nothing to someone who blocked the sender', async () => {
    const [anna, eve] = [await newClient(app), await newClient(app)];
    // Anna knows Eve (she asked her once), and blocks her.
    await anna.graphql(ASK, { e: eve.email });
    await anna.graphql('mutation($id: ID!) { blockUser(userId: $id) { id } }', { id: eve.userId });
    await eve.graphql(ASK, { e: anna.email });
    // A mail to someone else, queued after: once it is here, Anna's would have been too.
    const other = `witness-${Date.now()}@example.com`;
    await eve.graphql(ASK, { e: other });
    await smtp.next(other);
    expect(smtp.received.filter((m) => m.text?.includes(eve.email) && JSON.stringify(m.to).includes(anna.email))).toEqual([]);
  });
});

describe('background jobs (durable, once across instances)', () => {
  it('sends a mail queued by an instance that does not run jobs, once, from whichever instance runs them', async () => {
    // An API-only instance queues; it never sends.
    const api = await startTestApp({ SMTP_URL: smtp.url, PIXSHARE_RUN_JOBS: 'false' });
    const workers: App[] = [];
    try {
      const anna = await newClient(api);
      const kept = `kept-${Date.now()}@example.com`;
      const withdrawn = `withdrawn-${Date.now()}@example.com`;
      await anna.graphql(ASK, { e: kept });
      const { requestFriend } = await anna.graphql<{ requestFriend: { id: string } }>(ASK, { e: withdrawn });
      await anna.graphql('mutation($id: ID!) { cancelFriendRequest(id: $id) { id } }', { id: requestFriend.id });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(smtp.received.filter((m) => JSON.stringify(m.to).includes(kept))).toEqual([]);
      const [queued] = await api.database.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs`;
      expect(queued!.n).toBe(2);

      // Two instances that run jobs start on the same database: the mail goes out once.
      for (let i = 0; i < 2; i++) workers.push(await startApp({ ...api.config, port: 0, jobs: { run: true, concurrency: 2 } }, quietLog));
      await smtp.next(kept);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(smtp.received.filter((m) => JSON.stringify(m.to).includes(kept))).toHaveLength(1);
      // The withdrawn request's job ran and sent nothing.
      expect(smtp.received.filter((m) => JSON.stringify(m.to).includes(withdrawn))).toEqual([]);
      const [left] = await api.database.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs`;
      expect(left!.n).toBe(0);
    } finally {
      for (const worker of workers) await worker.close();
      await api.close();
    }
  });
});

describe('mail without SMTP', () => {
  it('writes each mail to the outbox folder as an .eml file', async () => {
    const app = await startTestApp();
    try {
      const anna = await newClient(app);
      const to = `outbox-${Date.now()}@example.com`;
      await anna.graphql(ASK, { e: to });
      const outbox = app.config.mail.outboxDir;
      let files: string[] = [];
      for (let i = 0; i < 100 && files.length === 0; i++) {
        files = (await readdir(outbox).catch(() => [] as string[])).filter((f) => f.endsWith('.eml'));
        if (files.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(files).toHaveLength(1);
      const mail = await simpleParser(await readFile(path.join(outbox, files[0]!)));
      expect(mail.subject).toMatch(/wants to be your friend on pixshare$/);
      expect(JSON.stringify(mail.to)).toContain(to);
      expect(mail.text).toContain(anna.email);
    } finally {
      await app.close();
    }
  });
});
