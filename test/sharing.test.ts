import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import exifReader from 'exif-reader';
import sharp from 'sharp';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../src/client/api-client.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';
import { befriend, createShare, SHARED_VIEW, tokenOf, uploadPhotos, type Client, type SharedView } from './support/sharing.js';
import { startSmtp, type RunningSmtp } from './support/smtp.js';

let app: TestApp;
let smtp: RunningSmtp;
let files: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  smtp = await startSmtp();
  app = await startTestApp({ SMTP_URL: smtp.url, MAIL_FROM: 'pixshare <photos@example.org>' });
  files = await scratchDir();
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await smtp.close();
  await files.remove();
});

/** share(token) as anyone holding the link (no account). */
async function openLink(token: string, headers: Record<string, string> = {}) {
  return app.gql<{ share: SharedView }>(`query($t: String!) { share(token: $t) { ${SHARED_VIEW} } }`, { t: token }, { headers });
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const fetchBytes = async (url: string) => {
  const response = await fetch(url);
  return { status: response.status, type: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()), headers: response.headers };
};

/** The members of a ZIP: name → bytes. */
function unzip(zip: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true, validateEntrySizes: true }, (error, archive) => {
      if (error) return reject(error);
      const members = new Map<string, Buffer>();
      archive.on('entry', (entry: yauzl.Entry) => {
        archive.openReadStream(entry, (streamError, stream) => {
          if (streamError) return reject(streamError);
          const parts: Buffer[] = [];
          stream.on('data', (part: Buffer) => parts.push(part));
          stream.on('end', () => {
            members.set(entry.fileName, Buffer.concat(parts));
            archive.readEntry();
          });
          stream.on('error', reject);
        });
      });
      archive.on('end', () => resolve(members));
      archive.on('error', reject);
      archive.readEntry();
    });
  });
}

describe('a share to groups and an address, with an edit rule (S7, S9, S10, G1–G3)', () => {
  let owner: Client;
  let family: Client[];
  let colleagues: Client[];
  let photos: { id: string; name: string; bytes: Buffer }[];
  let created: Awaited<ReturnType<typeof createShare>>;
  const stranger = `someone-${Date.now()}@example.net`;

  beforeAll(async () => {
    owner = await newClient(app);
    family = [await newClient(app), await newClient(app)];
    colleagues = [await newClient(app), family[1]!];
    for (const friend of new Set([...family, ...colleagues])) await befriend(owner, friend);
    const group = async (name: string, members: Client[]) =>
      (await owner.graphql<{ createContactGroup: { id: string } }>('mutation($n: String!, $m: [ID!]) { createContactGroup(name: $n, memberIds: $m) { id } }', { n: name, m: members.map((m) => m.userId) })).createContactGroup.id;
    const groupIds = [await group('family', family), await group('colleagues', colleagues)];
    photos = await uploadPhotos(owner, files, 7, { folder: 'Holidays', width: 1600, height: 1200 });
    const { folders } = await owner.graphql<{ folders: { id: string; name: string }[] }>('{ folders { id name } }');
    const putsBefore = vi.spyOn(app.storage, 'put');
    created = await createShare(owner, {
      folderIds: [folders.find((f) => f.name === 'Holidays')!.id],
      groupIds,
      emails: [stranger],
      message: 'From our trip <3 & more',
      editRule: { maxDimension: 1024, format: 'WEBP' },
    });
    expect(putsBefore).not.toHaveBeenCalled(); // nothing is copied or made when sharing
    putsBefore.mockRestore();
  });

  it('expands the groups now, each person once, plus the address; mails each their own link', async () => {
    const emails = created.share.recipients.map((r) => r.email).sort();
    expect(emails).toEqual([...new Set([...family, ...colleagues].map((c) => c.email)), stranger].sort());
    expect(created.share.recipients.find((r) => r.email === stranger)?.via).toBe('EMAIL');
    expect(created.share.title).toBe('Holidays');
    const tokens = created.links.map((l) => tokenOf(l.url));
    expect(new Set(tokens).size).toBe(tokens.length);
    for (const token of tokens) expect(token).toMatch(/^pxl_[A-Za-z0-9_-]{43}$/); // 256 random bits

    const mail = await smtp.next(stranger);
    const link = created.links.find((l) => l.recipient.email === stranger)!.url;
    expect(mail.subject).toContain('Holidays');
    expect(mail.html).toContain(link);
    expect(mail.text).toContain(link);
    for (const part of [owner.email.split('@')[0]!, 'Holidays', '7 photos', 'available until']) {
      expect(mail.text, part).toContain(part);
      expect(mail.html, part).toContain(part);
    }
    // The message is escaped in the HTML, whole in the text.
    expect(mail.html).toContain('From our trip &lt;3 &amp; more');
    expect(mail.text).toContain('From our trip <3 & more');
    // Six thumbnails travel inside the mail as JPEGs, each shown in the HTML.
    const inline = mail.attachments.filter((a) => a.contentDisposition === 'inline');
    expect(inline).toHaveLength(6);
    for (const image of inline) {
      expect(image.contentType).toBe('image/jpeg');
      expect((await sharp(image.content).metadata()).format).toBe('jpeg');
    }
    // (mailparser puts the inline images into the HTML in place of their cid: references.)
    expect(String(mail.html).match(/src="data:image\/jpeg;base64,/g)).toHaveLength(6);
    // Following the mail's link shows exactly that share.
    const token = tokenOf(/\/s\/(pxl_[A-Za-z0-9_-]{43})/.exec(mail.text!)![0]);
    const opened = await openLink(token);
    expect(opened.errors).toBeUndefined();
    expect(opened.data!.share).toMatchObject({ title: 'Holidays', message: 'From our trip <3 & more', photoCount: 7, allowOriginals: false });
    expect(opened.data!.share.photos.nodes.map((p) => p.id).sort()).toEqual(photos.map((p) => p.id).sort());
    // Asked again at once (the page loading more photos, a reload): the same visit.
    expect((await openLink(token)).errors).toBeUndefined();
    // The owner sees per recipient that the mail went out and the link was opened (once).
    await vi.waitFor(async () => {
      const { sentShare } = await owner.graphql<{ sentShare: { recipients: { email: string; mailStatus: string; opens: number; firstOpenedAt: string | null }[] } }>(
        'query($id: ID!) { sentShare(id: $id) { recipients { email mailStatus opens firstOpenedAt } } }',
        { id: created.share.id },
      );
      expect(sentShare.recipients.every((r) => r.mailStatus === 'SENT')).toBe(true);
      expect(sentShare.recipients.find((r) => r.email === stranger)).toMatchObject({ opens: 1, firstOpenedAt: expect.any(String) });
    }, { timeout: 15_000, interval: 200 });
  });

  it("gives every recipient WebP images of at most 1024 px without GPS, each made once; the owner's original is untouched", async () => {
    const puts = vi.spyOn(app.storage, 'put');
    const derivations = () => puts.mock.calls.filter(([key]) => /^derived\/[0-9a-f]{64}\/rule-/.test(key)).length;
    const seen = new Map<string, string>();
    for (const link of created.links) {
      const view = await openLink(tokenOf(link.url));
      expect(view.errors, link.recipient.email).toBeUndefined();
      // Two recipients asking at once still get one making.
      await Promise.all(
        view.data!.share.photos.nodes.map(async (photo) => {
          expect(photo.originalUrl).toBeNull();
          const image = await fetchBytes(photo.imageUrl!);
          expect(image.status).toBe(200);
          expect(image.type).toBe('image/webp');
          const meta = await sharp(image.bytes).metadata();
          expect(meta.format).toBe('webp');
          expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(1024);
          expect(meta.exif ? exifReader(meta.exif).GPSInfo : undefined).toBeUndefined();
          const digest = sha(image.bytes);
          if (seen.has(photo.id)) expect(digest).toBe(seen.get(photo.id));
          seen.set(photo.id, digest);
          // The lightbox preview never shows more than the rule allows.
          const preview = await sharp((await fetchBytes(photo.previewUrl!)).bytes).metadata();
          expect(Math.max(preview.width!, preview.height!)).toBeLessThanOrEqual(1024);
        }),
      );
    }
    expect(seen.size).toBe(photos.length);
    expect(derivations()).toBe(photos.length);
    puts.mockRestore();
    for (const photo of photos) {
      const original = await fetch(`${app.url}/assets/${photo.id}/original`, { headers: { authorization: `Bearer ${owner.token}` } });
      expect(sha(Buffer.from(await original.arrayBuffer()))).toBe(sha(photo.bytes));
    }
    // Downloads are counted per recipient.
    const { sentShare } = await owner.graphql<{ sentShare: { recipients: { downloads: number }[] } }>('query($id: ID!) { sentShare(id: $id) { recipients { downloads } } }', { id: created.share.id });
    expect(sentShare.recipients.every((r) => r.downloads === photos.length)).toBe(true);
  });

  it('does not change who received it when a group changes later, and shows photos added to the folder since', async () => {
    const newcomer = await newClient(app);
    await befriend(owner, newcomer);
    const { contactGroups } = await owner.graphql<{ contactGroups: { id: string; name: string }[] }>('{ contactGroups { id name } }');
    await owner.graphql('mutation($g: ID!, $m: [ID!]!) { addContactGroupMembers(id: $g, memberIds: $m) { id } }', { g: contactGroups.find((g) => g.name === 'family')!.id, m: [newcomer.userId] });
    const { sentShare } = await owner.graphql<{ sentShare: { recipients: { email: string }[] } }>('query($id: ID!) { sentShare(id: $id) { recipients { email } } }', { id: created.share.id });
    expect(sentShare.recipients.map((r) => r.email)).not.toContain(newcomer.email);

    const [added] = await uploadPhotos(owner, files, 1, { folder: 'Holidays', seed: 99 });
    const view = await openLink(tokenOf(created.links[0]!.url));
    expect(view.data!.share.photoCount).toBe(photos.length + 1);
    expect(view.data!.share.photos.nodes.map((p) => p.id)).toContain(added!.id);
    photos.push(added!);
  });

  it('lists the share under sharedWithMe for a friend who received it, with sender, count and thumbnails', async () => {
    const friend = family[0]!;
    const { sharedWithMe } = await friend.graphql<{ sharedWithMe: { nodes: SharedView[]; pageInfo: { hasNextPage: boolean } } }>(`{ sharedWithMe { nodes { ${SHARED_VIEW} } pageInfo { hasNextPage } } }`);
    expect(sharedWithMe.nodes).toHaveLength(1);
    const [received] = sharedWithMe.nodes;
    expect(received).toMatchObject({ title: 'Holidays', photoCount: photos.length, sender: { nickname: expect.any(String) } });
    const thumbnail = await fetchBytes(received!.photos.nodes[0]!.thumbnailUrl!);
    expect(thumbnail).toMatchObject({ status: 200, type: 'image/webp' });
    // The owner and a friend who did not receive it see nothing of it there.
    const other = await newClient(app);
    await befriend(owner, other);
    expect((await other.graphql<{ sharedWithMe: { nodes: unknown[] } }>('{ sharedWithMe { nodes { id } } }')).sharedWithMe.nodes).toEqual([]);
    expect((await owner.graphql<{ sharedWithMe: { nodes: unknown[] } }>('{ sharedWithMe { nodes { id } } }')).sharedWithMe.nodes).toEqual([]);
  });

  it('streams "download all" as a ZIP of the edited images when originals are not offered', async () => {
    const view = (await openLink(tokenOf(created.links[0]!.url))).data!.share;
    const zip = await fetchBytes(view.downloadAllUrl);
    expect(zip.status).toBe(200);
    expect(zip.type).toBe('application/zip');
    const members = await unzip(zip.bytes);
    expect(members.size).toBe(photos.length);
    for (const [name, bytes] of members) {
      expect(name).toMatch(/^IMG_\d{4}( \(2\))?\.webp$/); // the photo added later has a name taken already
      expect((await sharp(bytes).metadata()).format).toBe('webp');
    }
  });

  it('revokes one recipient alone, then the whole share', async () => {
    const [first, second] = created.links;
    await owner.graphql('mutation($id: ID!) { revokeShareRecipient(id: $id) { id revokedAt } }', { id: first!.recipient.id });
    const revoked = await openLink(tokenOf(first!.url));
    expect(revoked.errors?.[0]?.extensions?.code).toBe('SHARE_REVOKED');
    expect(revoked.data?.share ?? null).toBeNull();
    expect((await openLink(tokenOf(second!.url))).errors).toBeUndefined();
    await owner.graphql('mutation($id: ID!) { revokeShare(id: $id) { state } }', { id: created.share.id });
    expect((await openLink(tokenOf(second!.url))).errors?.[0]?.extensions?.code).toBe('SHARE_REVOKED');
  });
});

describe('download all with originals', () => {
  it('unpacks to byte-identical originals of a 50-photo share, with safe unique names', async () => {
    const owner = await newClient(app);
    const photos = await uploadPhotos(owner, files, 50, { seed: 7, name: (i) => (i < 3 ? '../same name.jpg' : `photo ${i}.JPG`) });
    const created = await createShare(owner, { assetIds: photos.map((p) => p.id), emails: [`zip-${Date.now()}@example.org`], allowOriginals: true });
    const view = (await openLink(tokenOf(created.links[0]!.url))).data!.share;
    const response = await fetch(view.downloadAllUrl);
    expect(response.status).toBe(200);
    const bytes = Buffer.from(await response.arrayBuffer());
    // Members are stored, so the length is known before the first byte.
    expect(Number(response.headers.get('content-length'))).toBe(bytes.length);
    const members = await unzip(bytes);
    expect(members.size).toBe(50);
    // No path survives ("../" is not a directory), and equal names are numbered.
    expect([...members.keys()].filter((n) => n.includes('same name')).sort()).toEqual(['_same name (2).jpg', '_same name (3).jpg', '_same name.jpg']);
    const byDigest = new Map(photos.map((p) => [sha(p.bytes), p]));
    for (const bytes of members.values()) expect(byDigest.has(sha(bytes))).toBe(true);
    expect(new Set([...members.values()].map(sha)).size).toBe(50);
    // Originals are offered one by one too.
    const original = await fetchBytes(view.photos.nodes[0]!.originalUrl!);
    expect(byDigest.has(sha(original.bytes))).toBe(true);
  });
});

describe('bad input to sharing: a stable code, nothing changed', () => {
  it('refuses each with its code and shares nothing', async () => {
    const owner = await newClient(app);
    const other = await newClient(app);
    const [mine] = await uploadPhotos(owner, files, 1, { seed: 501 });
    const [theirs] = await uploadPhotos(other, files, 1, { seed: 502 });
    const count = async () => ((await app.database.db.execute(sql`select (select count(*) from shares)::int as shares, (select count(*) from share_recipients)::int as recipients`)) as unknown as { shares: number; recipients: number }[])[0];
    const before = await count();
    const share = (input: Record<string, unknown>) => createShare(owner, { assetIds: [mine!.id], ...input });
    const cases: [string, () => Promise<unknown>, string][] = [
      ['an invalid address', () => share({ emails: ['not an address'] }), 'BAD_USER_INPUT'],
      ['a 10,000-character address', () => share({ emails: [`${'a'.repeat(9990)}@example.org`] }), 'BAD_USER_INPUT'],
      ['10,000 recipients', () => share({ emails: Array.from({ length: 10_000 }, (_, i) => `r${i}@example.org`) }), 'BATCH_TOO_LARGE'],
      ["someone else's photo", () => share({ assetIds: [theirs!.id], emails: ['a@example.org'] }), 'NOT_FOUND'],
      ['a stranger as a friend', () => share({ friendIds: [other.userId] }), 'NOT_A_FRIEND'],
      ['no recipient', () => share({}), 'BAD_USER_INPUT'],
      ['nothing to share', () => createShare(owner, { emails: ['a@example.org'] }), 'BAD_USER_INPUT'],
      ['an expiry in the past', () => share({ emails: ['a@example.org'], expiresAt: new Date(Date.now() - 1000).toISOString() }), 'BAD_USER_INPUT'],
      ['an impossible edit rule', () => share({ emails: ['a@example.org'], editRule: { maxDimension: 2 } }), 'BAD_USER_INPUT'],
      ['a 3,000-character message', () => share({ emails: ['a@example.org'], message: 'x'.repeat(3000) }), 'BAD_USER_INPUT'],
      ['a malformed id', () => share({ assetIds: ['not-a-uuid'], emails: ['a@example.org'] }), 'BAD_USER_INPUT'],
      ['befriending yourself', () => owner.graphql('mutation($e: String!) { requestFriend(email: $e) { id } }', { e: owner.email }), 'CANNOT_BEFRIEND_SELF'],
    ];
    for (const [what, attempt, code] of cases) {
      const error = await attempt().then(() => undefined, (e: unknown) => e);
      expect(error, what).toBeInstanceOf(ApiError);
      expect((error as ApiError).code, `${what}: ${(error as ApiError).message}`).toBe(code);
    }
    for (const token of ['', 'pxl_', `pxl_${'a'.repeat(42)}`, `pxl_${'a'.repeat(44)}`, `pxd_${'a'.repeat(43)}`, 'x'.repeat(10_000)]) {
      const opened = await app.gql('query($t: String!) { share(token: $t) { id } }', { t: token });
      expect(opened.errors?.[0]?.extensions?.code, token.slice(0, 20)).toBe('BAD_USER_INPUT');
    }
    expect(await count()).toEqual(before);
  });
});

describe('the reminder before a share ends', () => {
  it('mails each recipient (with their link) and the owner the set number of days before, once', async () => {
    const owner = await newClient(app);
    const [photo] = await uploadPhotos(owner, files, 1, { seed: 601 });
    const address = `reminded-${Date.now()}@example.org`;
    // Reminders go 3 days before the end (the default): a share ending in 3 days and 2 seconds is reminded in 2 seconds.
    const expiresAt = new Date(Date.now() + 3 * 86_400_000 + 2000).toISOString();
    const created = await createShare(owner, { assetIds: [photo!.id], emails: [address], expiresAt });
    const link = created.links[0]!.url;
    await vi.waitFor(() => expect(smtp.received.filter((m) => m.subject?.includes(' goes ') && JSON.stringify(m.to).includes(address))).toHaveLength(1), { timeout: 20_000, interval: 250 });
    const reminder = smtp.received.find((m) => m.subject?.includes(' goes ') && JSON.stringify(m.to).includes(address))!;
    expect(reminder.text).toContain(link);
    await vi.waitFor(() => expect(smtp.received.filter((m) => JSON.stringify(m.to).includes(owner.email) && m.subject?.startsWith('Your share'))).toHaveLength(1), { timeout: 10_000, interval: 250 });
  });
});

describe('friendship and sharing', () => {
  it('ends what either shared with the other as a friend when the friendship ends; plain-address shares stay', async () => {
    const owner = await newClient(app);
    const friend = await newClient(app);
    await befriend(owner, friend);
    const [photo] = await uploadPhotos(owner, files, 1, { seed: 701 });
    const created = await createShare(owner, { assetIds: [photo!.id], friendIds: [friend.userId], emails: [`kept-${Date.now()}@example.org`] });
    const { sentShare } = await owner.graphql<{ sentShare: { photoCount: number } }>('query($id: ID!) { sentShare(id: $id) { photoCount } }', { id: created.share.id });
    expect(sentShare.photoCount).toBe(1);
    await owner.graphql('mutation($id: ID!) { removeFriend(userId: $id) { id } }', { id: friend.userId });
    const friendsLink = created.links.find((l) => l.recipient.email === friend.email)!;
    expect((await openLink(tokenOf(friendsLink.url))).errors?.[0]?.extensions?.code).toBe('SHARE_REVOKED');
    expect((await friend.graphql<{ sharedWithMe: { nodes: unknown[] } }>('{ sharedWithMe { nodes { id } } }')).sharedWithMe.nodes).toEqual([]);
    const other = created.links.find((l) => l !== friendsLink)!;
    expect((await openLink(tokenOf(other.url))).errors).toBeUndefined();
  });
});
