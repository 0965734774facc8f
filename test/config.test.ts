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

describe('level and sharing settings', () => {
  const load = (env: Record<string, string>) => loadConfig({ PIXSHARE_DATA_DIR: dataDir, PIXSHARE_SECRET: 'x'.repeat(40), ...env });

  it('default to 30 and 15 days, members without a limit, standard users a year ahead at most', () => {
    const { levels, sharing } = load({});
    expect(levels.member).toMatchObject({ expiryDays: 30, maxExpiryDays: 0 });
    expect(levels.standard).toMatchObject({ expiryDays: 15, maxExpiryDays: 365 });
    expect(sharing).toEqual({ reminderDays: 3, maxTokenFailures: 30, tokenWindowSeconds: 900, urlSeconds: 3600 });
  });

  it('refuse a limit below the default expiry, naming the variable', () => {
    expect(() => load({ PIXSHARE_STANDARD_EXPIRY_DAYS: '30', PIXSHARE_STANDARD_MAX_EXPIRY_DAYS: '10' })).toThrow(/PIXSHARE_STANDARD_MAX_EXPIRY_DAYS/);
    expect(() => load({ PIXSHARE_SHARE_URL_SECONDS: '1' })).toThrow(/PIXSHARE_SHARE_URL_SECONDS/);
  });
});
