import { buffer } from 'node:stream/consumers';
import { and, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { shareRecipients, shares, users, type AssetRow, type ShareRow } from '../../db/schema/index.js';
import type { Logger } from '../../logger.js';
import type { ShareGrant } from '../access.js';
import { derivedKey } from '../blobs.js';
import type { JobRun, Jobs } from '../jobs/job-queue.js';
import type { Mailer, MailMessage } from '../mail/mailer.js';
import { mjml, renderMjml, type Markup } from '../mail/render-mail.js';
import { applyEditRule, parseEditRule } from '../media/apply-edit-rule.js';
import { withImageSlot } from '../media/sharp-runtime.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { ShareService } from './share-service.js';

/** Thumbnails in a share's mail (S9). */
export const MAIL_THUMBNAILS = 6;
/** Mail clients do not all show WebP (our thumbnails): the mail carries small JPEGs. */
const MAIL_THUMBNAIL_RULE = parseEditRule({ format: 'jpeg', maxDimension: 180, quality: 75 });

interface Deps {
  db: Db;
  shares: ShareService;
  storage: BlobStore;
  mailer: Mailer;
  log: Pick<Logger, 'error'>;
}

/** What a share's mails say, the same for the first mail and the reminder. */
interface ShareFacts {
  share: ShareRow;
  senderName: string;
  senderEmail: string;
  count: number;
  photos: AssetRow[];
}

/**
 * The mail telling a recipient about a share (S9): sender, item name, message, expiry, photo count,
 * up to six thumbnails and a button to their page; a plain-text part too. A job (see JobQueue): a
 * recipient or share revoked before it runs is not mailed (`skipped`); a mail sent once is not sent
 * again by a retry; the last failed attempt is recorded for the owner to see (`failed`).
 */
export async function sendShareMail(deps: Deps, payload: Jobs['send-share-mail'], run: JobRun): Promise<void> {
  const grant = await deps.shares.grantFor(payload.recipientId).catch(() => null);
  if (!grant || grant.recipient.mailStatus === 'sent') {
    if (grant === null) await markMail(deps.db, payload.recipientId, { mailStatus: 'skipped' }, 'queued');
    return;
  }
  const link = deps.shares.openSealedLink(payload.link);
  if (!link) throw new Error(`share mail ${payload.recipientId}: the sealed link does not open (was the secret changed?)`);
  try {
    const facts = await shareFacts(deps, grant);
    await deps.mailer.send(await composeShareMail(deps, facts, grant.recipient.email, link, 'new'));
    await markMail(deps.db, payload.recipientId, { mailStatus: 'sent', mailSentAt: new Date(), mailError: null });
  } catch (error) {
    if (run.lastAttempt) await markMail(deps.db, payload.recipientId, { mailStatus: 'failed', mailError: String((error as Error).message ?? error).slice(0, 500) });
    throw error;
  }
}

/**
 * The reminder a setting's number of days before a share's items go: to each recipient still
 * holding the share (with their link) and to its owner. A share whose expiry changed since, or
 * that ended, is not reminded; everyone reminded once is not reminded again by a retry.
 */
export async function remindShareExpiry(deps: Deps, payload: Jobs['remind-share-expiry']): Promise<void> {
  const [share] = await deps.db.select().from(shares).where(eq(shares.id, payload.shareId));
  if (!share || share.revokedAt || share.expiresAt.toISOString() !== payload.expiresAt || share.expiresAt <= new Date()) return;
  for (const { recipientId, link } of payload.links) {
    const grant = await deps.shares.grantFor(recipientId).catch(() => null);
    if (!grant || grant.recipient.remindedAt) continue;
    const url = deps.shares.openSealedLink(link);
    if (!url) continue;
    const facts = await shareFacts(deps, grant);
    await deps.mailer.send(await composeShareMail(deps, facts, grant.recipient.email, url, 'reminder'));
    await deps.db.update(shareRecipients).set({ remindedAt: sql`now()` }).where(eq(shareRecipients.id, recipientId));
  }
  const [claimed] = await deps.db.update(shares).set({ remindedAt: sql`now()` }).where(and(eq(shares.id, share.id), isNull(shares.remindedAt))).returning();
  if (!claimed) return;
  const [owner] = await deps.db.select({ email: users.email, nickname: users.nickname }).from(users).where(eq(users.id, share.ownerId));
  if (!owner) return;
  const subject = `Your share "${share.title}" ends ${formatDay(share.expiresAt)}`;
  const body = `The photos you shared as "${share.title}" go on ${formatDay(share.expiresAt)}. To keep them longer, extend their expiry in pixshare before then.`;
  const html = await renderMjml(mjml`
    <mjml>
      <mj-head><mj-title>${subject}</mj-title></mj-head>
      <mj-body background-color="#f4f4f5">
        <mj-section background-color="#ffffff" padding="24px"><mj-column><mj-text font-size="16px">${body}</mj-text></mj-column></mj-section>
      </mj-body>
    </mjml>`);
  await deps.mailer.send({ to: owner.email, subject, html, text: body });
}

/**
 * Photos shared right after their upload may still have their thumbnails made in the background;
 * the mail waits this long for those it would show, then goes with what is there.
 */
const THUMBNAIL_WAIT_MS = 30_000;

async function shareFacts(deps: Deps, grant: ShareGrant): Promise<ShareFacts> {
  let page = await deps.shares.sharedAssets(grant, { first: 50 });
  for (const deadline = Date.now() + THUMBNAIL_WAIT_MS; Date.now() < deadline; ) {
    if (!page.assets.slice(0, MAIL_THUMBNAILS * 2).some((a) => a.thumbnailStatus === 'pending')) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
    page = await deps.shares.sharedAssets(grant, { first: 50 });
  }
  const [sender] = await deps.db.select({ nickname: users.nickname, email: users.email }).from(users).where(eq(users.id, grant.share.ownerId));
  return {
    share: grant.share,
    senderName: sender?.nickname ?? 'Someone',
    senderEmail: sender?.email ?? '',
    count: page.totalCount,
    photos: page.assets.filter((a) => a.thumbnailStatus === 'ready').slice(0, MAIL_THUMBNAILS),
  };
}

async function composeShareMail(deps: Deps, facts: ShareFacts, to: string, link: string, kind: 'new' | 'reminder'): Promise<MailMessage> {
  const { share, senderName, count } = facts;
  const photos = `${count} ${count === 1 ? 'photo' : 'photos'}`;
  const until = formatDay(share.expiresAt);
  const subject = kind === 'new' ? `${senderName} shared "${share.title}" with you` : `"${share.title}" from ${senderName} goes ${until}`;
  const lead = kind === 'new' ? `${senderName} shared ${photos} with you` : `${senderName}'s photos go ${until}`;
  const inlineImages = await mailThumbnails(deps, share.id, facts.photos);
  // Rows of three that stay rows on a phone (mj-group keeps its columns side by side); square
  // thumbnails, so only the width is given.
  const cells: Markup[] = inlineImages.map((image) => mjml`<mj-column width="33.33%" padding="4px"><mj-image src="cid:${image.cid}" alt="${image.alt}" width="180px" padding="0" border-radius="6px" href="${link}" /></mj-column>`);
  const rows: Markup[] = [];
  for (let i = 0; i < cells.length; i += 3) rows.push(mjml`<mj-section background-color="#ffffff" padding="0 20px"><mj-group>${cells.slice(i, i + 3)}</mj-group></mj-section>`);
  const html = await renderMjml(mjml`
    <mjml>
      <mj-head>
        <mj-title>${subject}</mj-title>
        <mj-preview>${share.title} — ${photos}, until ${until}</mj-preview>
        <mj-attributes>
          <mj-all font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif" />
          <mj-text padding="6px 0" line-height="1.45" />
        </mj-attributes>
      </mj-head>
      <mj-body background-color="#f4f4f5">
       <mj-wrapper padding="16px 0">
        <mj-section background-color="#ffffff" padding="24px 24px 8px">
          <mj-column>
            <mj-text font-size="20px" font-weight="bold" color="#18181b">${lead}</mj-text>
            <mj-text font-size="16px" color="#18181b">${share.title}</mj-text>
            ${share.message ? mjml`<mj-text font-size="15px" font-style="italic" color="#3f3f46">“${share.message}”</mj-text>` : mjml``}
            <mj-text font-size="14px" color="#52525b">${photos} · available until ${until}</mj-text>
          </mj-column>
        </mj-section>
        ${rows}
        <mj-section background-color="#ffffff" padding="8px 24px 24px">
          <mj-column>
            <mj-button href="${link}" background-color="#2563eb" font-size="16px">See the photos</mj-button>
            <mj-text font-size="12px" color="#71717a">This link is yours alone: anyone who has it sees these photos until ${until}. From ${senderName} (${facts.senderEmail}) via pixshare.</mj-text>
          </mj-column>
        </mj-section>
       </mj-wrapper>
      </mj-body>
    </mjml>`);
  const text = [
    `${lead}: "${share.title}"`,
    ...(share.message ? ['', `“${share.message}”`] : []),
    '',
    `${photos}, available until ${until}.`,
    '',
    `See the photos: ${link}`,
    '',
    `This link is yours alone: anyone who has it sees these photos until ${until}. From ${senderName} (${facts.senderEmail}) via pixshare.`,
  ].join('\n');
  return { to, subject, html, text, inlineImages: inlineImages.map(({ alt: _alt, ...image }) => image) };
}

type MailThumbnail = NonNullable<Awaited<ReturnType<typeof mailThumbnail>>>;
/** A share's mail thumbnails, made once for all its recipients' mails (briefly kept, per instance). */
const madeThumbnails = new Map<string, { until: number; images: Promise<MailThumbnail[]> }>();
const THUMBNAILS_KEPT_MS = 10 * 60_000;

function mailThumbnails(deps: Deps, shareId: string, photos: AssetRow[]): Promise<MailThumbnail[]> {
  const now = Date.now();
  for (const [id, entry] of madeThumbnails) if (entry.until < now) madeThumbnails.delete(id);
  const key = `${shareId}:${photos.map((p) => p.id).join(',')}`;
  let entry = madeThumbnails.get(key);
  if (!entry) {
    entry = { until: now + THUMBNAILS_KEPT_MS, images: Promise.all(photos.map((photo, i) => mailThumbnail(deps, photo, i))).then((all) => all.filter((image) => image !== null)) };
    madeThumbnails.set(key, entry);
    if (madeThumbnails.size > 100) madeThumbnails.delete(madeThumbnails.keys().next().value!);
  }
  return entry.images;
}

async function mailThumbnail(deps: Deps, photo: AssetRow, index: number) {
  try {
    const webp = await buffer(await deps.storage.get(derivedKey(photo.sha256, 'thumbnail')));
    const jpeg = await withImageSlot(() => applyEditRule(webp, MAIL_THUMBNAIL_RULE));
    if (!jpeg.ok) return null;
    return { cid: `photo${index + 1}@pixshare`, filename: `photo${index + 1}.jpg`, content: jpeg.data, contentType: 'image/jpeg', alt: photo.name };
  } catch (error) {
    // A missing thumbnail leaves a gap in the mail, never the mail unsent.
    deps.log.error(`thumbnail of ${photo.id} for a share mail`, error);
    return null;
  }
}

async function markMail(db: Db, recipientId: string, set: Partial<typeof shareRecipients.$inferInsert>, onlyIf?: 'queued'): Promise<void> {
  await db
    .update(shareRecipients)
    .set(set)
    .where(and(eq(shareRecipients.id, recipientId), onlyIf ? eq(shareRecipients.mailStatus, onlyIf) : undefined));
}

/** "14 December 2026" (UTC): the day a share ends, for people. */
function formatDay(date: Date): string {
  return date.toLocaleDateString('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
}
