import { and, eq } from 'drizzle-orm';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { friendRequests, users } from '../../db/schema/index.js';
import type { Mailer } from '../mail/mailer.js';
import { mjml, renderMjml } from '../mail/render-mail.js';

/**
 * The mail of a friend request (S6, S9): who asks, and where to answer — for an address without an
 * account, an invitation to sign up with it. A job (see JobQueue): a request withdrawn or answered
 * before the job runs sends nothing.
 */
export async function sendFriendRequestMail(deps: { db: Db; mailer: Mailer; config: Pick<Config, 'publicUrl'> }, requestId: string): Promise<void> {
  const [row] = await deps.db
    .select({ toEmail: friendRequests.toEmail, nickname: users.nickname, email: users.email })
    .from(friendRequests)
    .innerJoin(users, eq(users.id, friendRequests.fromUserId))
    .where(and(eq(friendRequests.id, requestId), eq(friendRequests.status, 'pending')));
  if (!row) return;
  const [addressee] = await deps.db.select({ id: users.id }).from(users).where(eq(users.email, row.toEmail));
  const link = deps.config.publicUrl + '/';
  const action = addressee ? 'Open pixshare to answer' : `Sign up with ${row.toEmail} to answer`;
  const subject = `${row.nickname} wants to be your friend on pixshare`;
  const html = await renderMjml(mjml`
    <mjml>
      <mj-head><mj-title>${subject}</mj-title><mj-preview>${row.nickname} (${row.email}) would like to share photos with you</mj-preview></mj-head>
      <mj-body background-color="#f4f4f5">
        <mj-section background-color="#ffffff" padding="24px">
          <mj-column>
            <mj-text font-size="20px" font-weight="bold">${row.nickname} wants to be your friend</mj-text>
            <mj-text>${row.nickname} (${row.email}) asked to be friends on pixshare, so that you can share photos with each other.</mj-text>
            <mj-button href="${link}" background-color="#2563eb">${action}</mj-button>
            <mj-text font-size="12px" color="#71717a">If you do not know ${row.nickname}, ignore this mail: nothing happens unless you accept.</mj-text>
          </mj-column>
        </mj-section>
      </mj-body>
    </mjml>`);
  const text = [
    `${row.nickname} (${row.email}) asked to be friends on pixshare, so that you can share photos with each other.`,
    '',
    `${action}: ${link}`,
    '',
    `If you do not know ${row.nickname}, ignore this mail: nothing happens unless you accept.`,
  ].join('\n');
  await deps.mailer.send({ to: row.toEmail, subject, html, text });
}
