import { randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';

export interface MailMessage {
  to: string;
  subject: string;
  html: string;
  text: string;
  /** Images shown in the HTML part (`<img src="cid:…">`): inside the mail, so they need no link that could expire. */
  inlineImages?: { cid: string; filename: string; content: Buffer; contentType: string }[];
}

/**
 * Sends mail: over SMTP when `SMTP_URL` is set, otherwise into the outbox folder as `.eml` files (with a
 * line in the log), so `npm start` alone shows the whole flow. Either way a rejected send throws, and
 * the job that asked for it is tried again.
 */
export class Mailer {
  private readonly transport: Transporter;

  constructor(private readonly deps: { config: Pick<Config, 'mail'>; log: Logger }) {
    const { smtpUrl } = deps.config.mail;
    this.transport = smtpUrl ? nodemailer.createTransport(smtpUrl) : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  }

  /** Where mail goes, for the start-up lines. */
  describe(): string {
    const { smtpUrl, outboxDir } = this.deps.config.mail;
    return smtpUrl ? `SMTP ${new URL(smtpUrl).host}` : `files in ${outboxDir} (set SMTP_URL to send)`;
  }

  async send(message: MailMessage): Promise<void> {
    const { inlineImages, ...rest } = message;
    const info = await this.transport.sendMail({ from: this.deps.config.mail.from, ...rest, attachments: inlineImages?.map((image) => ({ ...image, contentDisposition: 'inline' as const })) });
    if (this.deps.config.mail.smtpUrl) return;
    // The outbox: written whole, then renamed, so a reader never sees half a message.
    const { outboxDir } = this.deps.config.mail;
    await mkdir(outboxDir, { recursive: true });
    const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}.eml`;
    const temporary = path.join(outboxDir, `.${name}.tmp`);
    await writeFile(temporary, (info as unknown as { message: Buffer }).message);
    await rename(temporary, path.join(outboxDir, name));
    this.deps.log.info(`mail to ${message.to} ("${message.subject}") written to ${path.join(outboxDir, name)}`);
  }

  close(): void {
    this.transport.close();
  }
}
