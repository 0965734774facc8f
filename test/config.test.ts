import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'pixshare-config-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('mail and job settings', () => {
  const load = (env: Record<string, string>) => loadConfig({ PIXSHARE_DATA_DIR: dataDir, PIXSHARE_SECRET: 'x'.repeat(40), ...env });

  it('default to the outbox, a sender at PUBLIC_URL\'s host, and jobs run here', () => {
    const config = load({ PUBLIC_URL: 'https://photos.example.org' });
    expect(config.mail).toEqual({ smtpUrl: undefined, outboxDir: path.join(dataDir, 'outbox'), from: 'pixshare <pixshare@photos.example.org>' });
    expect(config.jobs).toEqual({ run: true, concurrency: 2 });
  });

  it('take a sender, an SMTP URL and an API-only instance', () => {
    const config = load({ MAIL_FROM: 'Photos <photos@example.org>', SMTP_URL: 'smtps://u:p@mail.example.org:465', PIXSHARE_RUN_JOBS: 'false' });
    expect(config.mail).toMatchObject({ from: 'Photos <photos@example.org>', smtpUrl: 'smtps://u:p@mail.example.org:465' });
    expect(config.jobs.run).toBe(false);
  });

  it('refuse a sender without an address, a header break, or a foreign scheme, naming the variable', () => {
    for (const [name, value] of [
      ['MAIL_FROM', 'nobody'],
      ['MAIL_FROM', 'a@b.org\r\nBcc: everyone@example.org'],
      ['SMTP_URL', 'http://mail.example.org'],
      ['PIXSHARE_JOB_CONCURRENCY', '0'],
    ] as const) {
      expect(() => load({ [name]: value }), `${name}=${value}`).toThrow(expect.objectContaining({ message: expect.stringContaining(name) }));
    }
  });
});
