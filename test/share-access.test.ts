import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';
import { befriend, createShare, SHARED_VIEW, tokenOf, uploadPhotos, type Client, type SharedView } from './support/sharing.js';

/**
 * Who may do what with a share (S10): every sharing query, mutation and route, asked by every
 * kind of visitor. Each row of the table below is one visitor; each column one operation; each
 * cell the answer expected (OK, or the error code).
 */

let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  // Plenty of wrong tokens allowed here (every request comes from 127.0.0.1); the limit has its own test.
  app = await startTestApp({ PIXSHARE_SHARE_TOKEN_MAX_FAILURES: '10000' });
  files = await scratchDir();
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

type Code = 'OK' | 'NOT_FOUND' | 'UNAUTHENTICATED' | 'SHARE_REVOKED' | 'SHARE_EXPIRED' | 'FORBIDDEN' | 'N/A';

interface Visitor {
  /** Signed in as (bearer token), if at all. */
  bearer?: string;
  /** The share link they hold, if any. */
  link?: string;
  /** Signed file URLs they were handed while their link still worked. */
  urls?: { thumbnail: string; original: string | null; zip: string };
}

const randomToken = () => `pxl_${randomBytes(32).toString('base64url')}`;

describe('the authorization matrix of sharing', () => {
  let owner: Client;
  let friendRecipient: Client;
  let friendNot: Client;
  let stranger: Client;
  let photos: { id: string }[];
  let unshared: { id: string };
  let shareA: Awaited<ReturnType<typeof createShare>>;
  let shareB: Awaited<ReturnType<typeof createShare>>;
  let spareRecipient: string;
  let throwawayShare: string;
  const visitors: Record<string, Visitor> = {};

  const gql = (visitor: Visitor, query: string, variables: Record<string, unknown> = {}) => app.gql<Record<string, unknown>>(query, variables, { token: visitor.bearer });
  const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }): string => result.errors?.[0]?.extensions?.code ?? 'OK';
  const httpCode = async (url: string, bearer?: string): Promise<string> => {
    const response = await fetch(url, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    if (response.ok) {
      await response.arrayBuffer();
      return 'OK';
    }
    return ((await response.json()) as { error: { code: string } }).error.code;
  };
  const openShare = async (visitor: Visitor) => gql(visitor, `query($t: String!) { share(token: $t) { ${SHARED_VIEW} } }`, { t: visitor.link ? tokenOf(visitor.link) : randomToken() });

  beforeAll(async () => {
    owner = await newClient(app);
    friendRecipient = await newClient(app);
    friendNot = await newClient(app);
    stranger = await newClient(app);
    await befriend(owner, friendRecipient);
    await befriend(owner, friendNot);
    photos = await uploadPhotos(owner, files, 3, { folder: 'Shared folder', seed: 11 });
    unshared = (await uploadPhotos(owner, files, 1, { seed: 12 }))[0]!;
    const { folders } = await owner.graphql<{ folders: { id: string; name: string }[] }>('{ folders { id name } }');
    const folderId = folders.find((f) => f.name === 'Shared folder')!.id;
    const address = (name: string) => `${name}-${Date.now()}@example.org`;
    shareA = await createShare(owner, { folderIds: [folderId], friendIds: [friendRecipient.userId], emails: [address('right'), address('revoked'), address('spare')] });
    shareB = await createShare(owner, { assetIds: [photos[0]!.id], emails: [address('other')], allowOriginals: true });
    const shareC = await createShare(owner, { assetIds: [photos[1]!.id], emails: [address('late')] });
    throwawayShare = (await createShare(owner, { assetIds: [photos[2]!.id], emails: [address('throwaway')] })).share.id;
    const linkOf = (share: typeof shareA, prefix: string) => share.links.find((l) => l.recipient.email.startsWith(prefix))!;
    spareRecipient = linkOf(shareA, 'spare').recipient.id;

    const anonymous: Visitor = {};
    visitors.owner = { bearer: owner.token };
    visitors['friend who is a recipient'] = { bearer: friendRecipient.token, link: linkOf(shareA, friendRecipient.email).url };
    visitors['friend who is not'] = { bearer: friendNot.token };
    visitors.stranger = { bearer: stranger.token };
    visitors['anonymous, right token'] = { link: linkOf(shareA, 'right').url };
    visitors["anonymous, another recipient's token"] = { link: linkOf(shareB, 'other').url };
    visitors['anonymous, revoked token'] = { link: linkOf(shareA, 'revoked').url };
    visitors['anonymous, after expiry'] = { link: linkOf(shareC, 'late').url };
    visitors.anonymous = anonymous;
    // Everyone with a working link gets their signed URLs now, before one is revoked and one expires.
    for (const visitor of Object.values(visitors)) {
      if (!visitor.link) continue;
      const view = (await openShare(visitor)).data!.share as SharedView;
      const first = view.photos.nodes.find((p) => p.id === photos[0]!.id || p.id === photos[1]!.id)!;
      // Where originals are not offered, a correctly signed URL for one is made by hand: the route must still refuse it.
      visitor.urls = { thumbnail: first.thumbnailUrl!, original: first.originalUrl ?? app.services.shareUrls.file(view.id, first.id, 'original'), zip: view.downloadAllUrl };
    }
    await owner.graphql('mutation($id: ID!) { revokeShareRecipient(id: $id) { id } }', { id: linkOf(shareA, 'revoked').recipient.id });
    // The clock moves past share C's expiry.
    await app.database.db.execute(sql`update shares set expires_at = now() - interval '1 second' where id = ${shareC.share.id}`);
  });

  // The table: one row per visitor, one column per operation.
  const operations = ['share(token)', 'sharedWithMe', 'sentShare', 'sharesSent', 'createShare of the owner’s photo', 'owner’s file route', 'thumbnail URL', 'original URL', 'ZIP URL', 'ZIP by link'] as const;
  const expected: Record<string, Record<(typeof operations)[number], Code | 'LISTED' | 'EMPTY'>> = {
    owner: { 'share(token)': 'NOT_FOUND', sharedWithMe: 'EMPTY', sentShare: 'OK', sharesSent: 'LISTED', 'createShare of the owner’s photo': 'OK', 'owner’s file route': 'OK', 'thumbnail URL': 'N/A', 'original URL': 'N/A', 'ZIP URL': 'N/A', 'ZIP by link': 'NOT_FOUND' },
    'friend who is a recipient': { 'share(token)': 'OK', sharedWithMe: 'LISTED', sentShare: 'NOT_FOUND', sharesSent: 'EMPTY', 'createShare of the owner’s photo': 'NOT_FOUND', 'owner’s file route': 'NOT_FOUND', 'thumbnail URL': 'OK', 'original URL': 'FORBIDDEN', 'ZIP URL': 'OK', 'ZIP by link': 'OK' },
    'friend who is not': { 'share(token)': 'NOT_FOUND', sharedWithMe: 'EMPTY', sentShare: 'NOT_FOUND', sharesSent: 'EMPTY', 'createShare of the owner’s photo': 'NOT_FOUND', 'owner’s file route': 'NOT_FOUND', 'thumbnail URL': 'N/A', 'original URL': 'N/A', 'ZIP URL': 'N/A', 'ZIP by link': 'NOT_FOUND' },
    stranger: { 'share(token)': 'NOT_FOUND', sharedWithMe: 'EMPTY', sentShare: 'NOT_FOUND', sharesSent: 'EMPTY', 'createShare of the owner’s photo': 'NOT_FOUND', 'owner’s file route': 'NOT_FOUND', 'thumbnail URL': 'N/A', 'original URL': 'N/A', 'ZIP URL': 'N/A', 'ZIP by link': 'NOT_FOUND' },
    'anonymous, right token': { 'share(token)': 'OK', sharedWithMe: 'UNAUTHENTICATED', sentShare: 'UNAUTHENTICATED', sharesSent: 'UNAUTHENTICATED', 'createShare of the owner’s photo': 'UNAUTHENTICATED', 'owner’s file route': 'UNAUTHENTICATED', 'thumbnail URL': 'OK', 'original URL': 'FORBIDDEN', 'ZIP URL': 'OK', 'ZIP by link': 'OK' },
    "anonymous, another recipient's token": { 'share(token)': 'OK', sharedWithMe: 'UNAUTHENTICATED', sentShare: 'UNAUTHENTICATED', sharesSent: 'UNAUTHENTICATED', 'createShare of the owner’s photo': 'UNAUTHENTICATED', 'owner’s file route': 'UNAUTHENTICATED', 'thumbnail URL': 'OK', 'original URL': 'OK', 'ZIP URL': 'OK', 'ZIP by link': 'OK' },
    'anonymous, revoked token': { 'share(token)': 'SHARE_REVOKED', sharedWithMe: 'UNAUTHENTICATED', sentShare: 'UNAUTHENTICATED', sharesSent: 'UNAUTHENTICATED', 'createShare of the owner’s photo': 'UNAUTHENTICATED', 'owner’s file route': 'UNAUTHENTICATED', 'thumbnail URL': 'SHARE_REVOKED', 'original URL': 'SHARE_REVOKED', 'ZIP URL': 'SHARE_REVOKED', 'ZIP by link': 'SHARE_REVOKED' },
    'anonymous, after expiry': { 'share(token)': 'SHARE_EXPIRED', sharedWithMe: 'UNAUTHENTICATED', sentShare: 'UNAUTHENTICATED', sharesSent: 'UNAUTHENTICATED', 'createShare of the owner’s photo': 'UNAUTHENTICATED', 'owner’s file route': 'UNAUTHENTICATED', 'thumbnail URL': 'SHARE_EXPIRED', 'original URL': 'SHARE_EXPIRED', 'ZIP URL': 'SHARE_EXPIRED', 'ZIP by link': 'SHARE_EXPIRED' },
    anonymous: { 'share(token)': 'NOT_FOUND', sharedWithMe: 'UNAUTHENTICATED', sentShare: 'UNAUTHENTICATED', sharesSent: 'UNAUTHENTICATED', 'createShare of the owner’s photo': 'UNAUTHENTICATED', 'owner’s file route': 'UNAUTHENTICATED', 'thumbnail URL': 'N/A', 'original URL': 'N/A', 'ZIP URL': 'N/A', 'ZIP by link': 'NOT_FOUND' },
  };

  it.each(Object.keys(expected))('%s', async (name) => {
    const visitor = visitors[name]!;
    const row = expected[name]!;
    const got: Record<string, string> = {};

    const opened = await openShare(visitor);
    got['share(token)'] = codeOf(opened);
    if (got['share(token)'] === 'OK') {
      // A link shows its own share and nothing of another.
      const view = opened.data!.share as SharedView;
      const own = name === "anonymous, another recipient's token" ? shareB : shareA;
      expect(view.id).toBe(own.links.find((l) => l.url === visitor.link)!.recipient.id);
      const visible = view.photos.nodes.map((p) => p.id).sort();
      expect(visible).toEqual(own === shareB ? [photos[0]!.id] : photos.map((p) => p.id).sort());
      expect(visible).not.toContain(unshared.id);
    }

    const listed = await gql(visitor, '{ sharedWithMe { nodes { id title } } }');
    got.sharedWithMe = codeOf(listed) !== 'OK' ? codeOf(listed) : (listed.data!.sharedWithMe as { nodes: unknown[] }).nodes.length > 0 ? 'LISTED' : 'EMPTY';
    got.sentShare = codeOf(await gql(visitor, 'query($id: ID!) { sentShare(id: $id) { id recipients { email } } }', { id: shareA.share.id }));
    const sent = await gql(visitor, '{ sharesSent { nodes { id } } }');
    got.sharesSent = codeOf(sent) !== 'OK' ? codeOf(sent) : (sent.data!.sharesSent as { nodes: unknown[] }).nodes.length > 0 ? 'LISTED' : 'EMPTY';
    got['createShare of the owner’s photo'] = codeOf(
      await gql(visitor, 'mutation($input: CreateShareInput!) { createShare(input: $input) { share { id } } }', { input: { assetIds: [unshared.id], emails: ['x@example.org'] } }),
    );
    got['owner’s file route'] = await httpCode(`${app.url}/assets/${photos[0]!.id}/thumbnail`, visitor.bearer);
    got['thumbnail URL'] = visitor.urls ? await httpCode(visitor.urls.thumbnail) : 'N/A';
    got['original URL'] = visitor.urls?.original ? await httpCode(visitor.urls.original) : 'N/A';
    got['ZIP URL'] = visitor.urls ? await httpCode(visitor.urls.zip) : 'N/A';
    got['ZIP by link'] = await httpCode(`${app.url}/s/${visitor.link ? tokenOf(visitor.link) : randomToken()}/download.zip`);
    expect(got).toEqual(row);
  });

  it('lets only the owner revoke, a recipient or the whole share', async () => {
    for (const [name, visitor] of Object.entries(visitors)) {
      if (name === 'owner') continue;
      const code = visitor.bearer ? 'NOT_FOUND' : 'UNAUTHENTICATED';
      expect(codeOf(await gql(visitor, 'mutation($id: ID!) { revokeShareRecipient(id: $id) { id } }', { id: spareRecipient })), name).toBe(code);
      expect(codeOf(await gql(visitor, 'mutation($id: ID!) { revokeShare(id: $id) { id } }', { id: throwawayShare })), name).toBe(code);
    }
    expect(codeOf(await gql(visitors.owner!, 'mutation($id: ID!) { revokeShareRecipient(id: $id) { revokedAt } }', { id: spareRecipient }))).toBe('OK');
    expect(codeOf(await gql(visitors.owner!, 'mutation($id: ID!) { revokeShare(id: $id) { state } }', { id: throwawayShare }))).toBe('OK');
  });

  it('refuses signed URLs that were altered or made for a photo outside the share', async () => {
    const visitor = visitors['anonymous, right token']!;
    const thumbnail = new URL(visitor.urls!.thumbnail);
    // Another photo under the same signature.
    const shown = photos.find((p) => thumbnail.pathname.includes(p.id))!;
    const swapped = thumbnail.toString().replace(shown.id, photos.find((p) => p !== shown)!.id);
    expect(await httpCode(swapped)).toBe('INVALID_SIGNATURE');
    thumbnail.searchParams.set('exp', String(Number(thumbnail.searchParams.get('exp')) + 3600));
    expect(await httpCode(thumbnail.toString())).toBe('INVALID_SIGNATURE');
    // Even a correctly signed URL reaches only what the share holds.
    const recipientId = shareA.links.find((l) => l.url === visitor.link)!.recipient.id;
    expect(await httpCode(app.services.shareUrls.file(recipientId, unshared.id, 'thumbnail'))).toBe('NOT_FOUND');
    expect(await httpCode(app.services.shareUrls.file(recipientId, unshared.id, 'preview').replace(/exp=\d+/, 'exp=1'))).toBe('INVALID_SIGNATURE');
  });
});

describe('token guessing', () => {
  it('is limited per client address, on GraphQL and the HTTP routes alike, and a token of the wrong shape is refused as such', async () => {
    const limited = await startTestApp({ PIXSHARE_SHARE_TOKEN_MAX_FAILURES: '5' });
    try {
      const wrongShape = await limited.gql('query($t: String!) { share(token: $t) { id } }', { t: 'pxl_short' });
      expect(wrongShape.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'token' });
      for (let i = 0; i < 2; i++) expect((await limited.gql('query($t: String!) { share(token: $t) { id } }', { t: randomToken() })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      for (let i = 0; i < 2; i++) expect((await fetch(`${limited.url}/s/${randomToken()}/download.zip`)).status).toBe(404);
      // Five failures: the sixth try is refused before the token is even looked up, whichever way it comes.
      const refused = await limited.gql('query($t: String!) { share(token: $t) { id } }', { t: randomToken() });
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'TOO_MANY_ATTEMPTS', retryAfterSeconds: expect.any(Number) });
      const route = await fetch(`${limited.url}/s/${randomToken()}/download.zip`);
      expect(route.status).toBe(429);
      expect(((await route.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_ATTEMPTS');
      expect(limited.loggedErrors).toEqual([]);
    } finally {
      await limited.close();
    }
  });
});
