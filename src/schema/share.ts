import { z } from 'zod';
import type { AssetRow, ShareRecipientRow, ShareRow } from '../db/schema/index.js';
import type { CreatedShare, Page, ReceivedShare, ShareLink } from '../services/sharing/share-service.js';
import { PageInfo } from './asset.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { PersonRef } from './friend.js';
import { uuidArg } from './id-arg.js';

const ImageFormat = builder.enumType('ImageFormat', { values: ['JPEG', 'WEBP', 'AVIF', 'PNG'] as const });

const EditRuleRef = builder.objectRef<{ maxDimension: number | null; format: string; quality: number; grayscale: boolean; colors: number | null; keepCamera: boolean; keepLocation: boolean }>('EditRule').implement({
  description: 'What a share does to its photos before recipients see them (G3).',
  fields: (t) => ({
    maxDimension: t.exposeInt('maxDimension', { nullable: true, description: 'Longest side in pixels (never enlarged); null: full size' }),
    format: t.field({ type: ImageFormat, resolve: (r) => r.format.toUpperCase() as 'JPEG' }),
    quality: t.exposeInt('quality'),
    grayscale: t.exposeBoolean('grayscale'),
    colors: t.exposeInt('colors', { nullable: true, description: 'A palette of this many colours (PNG only)' }),
    keepCamera: t.exposeBoolean('keepCamera', { description: 'Camera make, model and capture time stay in the images' }),
    keepLocation: t.exposeBoolean('keepLocation', { description: 'All metadata stays, GPS included' }),
  }),
});

const EditRuleInput = builder.inputType('EditRuleInput', {
  description: 'G3. Unset fields take their defaults: full size, JPEG, quality 82, colour, no location or camera metadata.',
  fields: (t) => ({
    maxDimension: t.int({ required: false }),
    format: t.field({ type: ImageFormat, required: false }),
    quality: t.int({ required: false }),
    grayscale: t.boolean({ required: false }),
    colors: t.int({ required: false }),
    keepCamera: t.boolean({ required: false }),
    keepLocation: t.boolean({ required: false }),
  }),
});

const ShareState = builder.enumType('ShareState', {
  values: { ACTIVE: {}, EXPIRED: { description: 'Its expiry passed, or its items are gone' }, REVOKED: { description: 'Withdrawn by its owner' } } as const,
});

const MailStatus = builder.enumType('ShareMailStatus', {
  values: {
    QUEUED: { description: 'Waiting to be sent (retried with backoff when the mail server refuses)' },
    SENT: {},
    FAILED: { description: 'Given up after every retry; see mailError' },
    SKIPPED: { description: 'Not sent: the share or recipient was revoked first' },
  } as const,
});

const RecipientVia = builder.enumType('ShareRecipientVia', { values: ['FRIEND', 'GROUP', 'EMAIL'] as const });

const ShareRecipientRef = builder.objectRef<ShareRecipientRow>('ShareRecipient').implement({
  description: 'One person a share went to, as its owner sees them (S10): whether the mail went out, when the link was opened, how many photos were downloaded.',
  fields: (t) => ({
    id: t.exposeID('id'),
    email: t.exposeString('email'),
    person: t.field({
      type: PersonRef,
      nullable: true,
      description: 'The friend, when the share went to an account',
      resolve: async (r, _args, context) => (r.userId ? ((await context.services.friends.friendsAmong(context.viewer!, { ids: [r.userId] }))[0] ?? null) : null),
    }),
    via: t.field({ type: RecipientVia, resolve: (r) => r.via.toUpperCase() as 'FRIEND' }),
    mailStatus: t.field({ type: MailStatus, resolve: (r) => r.mailStatus.toUpperCase() as 'SENT' }),
    mailSentAt: t.expose('mailSentAt', { type: 'DateTime', nullable: true }),
    mailError: t.exposeString('mailError', { nullable: true }),
    firstOpenedAt: t.expose('firstOpenedAt', { type: 'DateTime', nullable: true }),
    lastOpenedAt: t.expose('lastOpenedAt', { type: 'DateTime', nullable: true }),
    opens: t.exposeInt('opens', { description: 'Visits of the link: its requests within 30 minutes of each other count once (a page loading more photos, a reload)' }),
    downloads: t.exposeInt('downloads', { description: 'Photos fetched in full (originals or edited images; a ZIP counts each photo in it)' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
  }),
});

function stateOf(share: ShareRow): 'ACTIVE' | 'EXPIRED' | 'REVOKED' {
  if (share.revokedAt) return 'REVOKED';
  return share.expiresAt <= new Date() ? 'EXPIRED' : 'ACTIVE';
}

const ShareRef = builder.objectRef<ShareRow>('Share').implement({
  description: 'A share you sent (S7): photos and folders, its recipients, options and state.',
  fields: (t) => ({
    id: t.exposeID('id'),
    title: t.exposeString('title', { description: 'The name recipients see: the item, or the first item "and N more"' }),
    message: t.exposeString('message', { nullable: true }),
    allowOriginals: t.exposeBoolean('allowOriginals'),
    editRule: t.field({ type: EditRuleRef, resolve: (s, _args, context) => context.services.shares.editRuleOf(s) }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    state: t.field({ type: ShareState, resolve: stateOf }),
    photoCount: t.int({ description: 'Photos it shows now (a shared folder as it is now)', resolve: (s, _args, context) => context.services.shares.photoCount(context.viewer!, s) }),
    recipients: t.field({ type: [ShareRecipientRef], resolve: (s, _args, context) => context.services.shares.recipientsOf(context.viewer!, s) }),
  }),
});

const ShareLinkRef = builder.objectRef<ShareLink>('ShareLink').implement({
  description: "A recipient's own link, shown once when the share is made (it is also mailed to them); only its hash is kept.",
  fields: (t) => ({
    recipient: t.field({ type: ShareRecipientRef, resolve: (l) => l.recipient }),
    url: t.exposeString('url'),
  }),
});

const CreatedShareRef = builder.objectRef<CreatedShare>('CreatedShare').implement({
  fields: (t) => ({
    share: t.field({ type: ShareRef, resolve: (c) => c.share }),
    links: t.field({ type: [ShareLinkRef], resolve: (c) => c.links }),
  }),
});

/** A photo as one recipient of one share may see it. */
interface SharedPhoto {
  asset: AssetRow;
  grant: ReceivedShare;
}

const url = (context: GraphQLContext, p: SharedPhoto, kind: 'thumbnail' | 'preview' | 'image' | 'original') => context.services.shareUrls.file(p.grant.recipient.id, p.asset.id, kind);

const SharedPhotoRef = builder.objectRef<SharedPhoto>('SharedPhoto').implement({
  description: 'A photo of a share, as its recipient sees it: every URL is signed for this recipient, short-lived, and stops working when the share ends.',
  fields: (t) => ({
    id: t.id({ resolve: (p) => p.asset.id }),
    name: t.string({ resolve: (p) => p.asset.name }),
    mimeType: t.string({ nullable: true, resolve: (p) => p.asset.mimeType }),
    width: t.int({ nullable: true, resolve: (p) => p.asset.width }),
    height: t.int({ nullable: true, resolve: (p) => p.asset.height }),
    takenAt: t.field({ type: 'DateTime', nullable: true, resolve: (p) => p.asset.takenAt }),
    thumbnailUrl: t.string({ nullable: true, description: 'Small square WebP', resolve: (p, _a, c) => (p.asset.thumbnailStatus === 'ready' ? url(c, p, 'thumbnail') : null) }),
    previewUrl: t.string({
      nullable: true,
      description: 'For the lightbox: a WebP preview, or the edited image when the edit rule makes it smaller',
      resolve: (p, _a, c) => (p.asset.thumbnailStatus === 'ready' ? url(c, p, 'preview') : null),
    }),
    imageUrl: t.string({ nullable: true, description: "The photo after the share's edit rule (made on first request)", resolve: (p, _a, c) => (p.asset.thumbnailStatus === 'ready' ? url(c, p, 'image') : null) }),
    originalUrl: t.string({ nullable: true, description: 'The original file, when the share offers originals', resolve: (p, _a, c) => (p.grant.share.allowOriginals ? url(c, p, 'original') : null) }),
    size: t.float({ nullable: true, description: 'Bytes of the original, when offered', resolve: (p) => (p.grant.share.allowOriginals ? p.asset.size : null) }),
  }),
});

const SharedPhotoConnection = builder.objectRef<{ nodes: SharedPhoto[]; hasNextPage: boolean; endCursor: string | null; totalCount: number }>('SharedPhotoConnection').implement({
  fields: (t) => ({
    nodes: t.field({ type: [SharedPhotoRef], resolve: (c) => c.nodes }),
    pageInfo: t.field({ type: PageInfo, resolve: (c) => c }),
    totalCount: t.exposeInt('totalCount'),
  }),
});

const SenderRef = builder.objectRef<ReceivedShare['sender']>('ShareSender').implement({
  fields: (t) => ({ id: t.exposeID('id'), nickname: t.exposeString('nickname') }),
});

const SharedViewRef = builder.objectRef<ReceivedShare>('SharedWithMe').implement({
  description: 'A share as its recipient sees it (S8, S10): who sent what, until when, and the photos.',
  fields: (t) => ({
    id: t.id({ description: "The recipient's entry (one per person and share)", resolve: (g) => g.recipient.id }),
    title: t.string({ resolve: (g) => g.share.title }),
    message: t.string({ nullable: true, resolve: (g) => g.share.message }),
    sender: t.field({ type: SenderRef, resolve: (g) => g.sender }),
    sharedAt: t.field({ type: 'DateTime', resolve: (g) => g.share.createdAt }),
    expiresAt: t.field({ type: 'DateTime', resolve: (g) => g.share.expiresAt }),
    allowOriginals: t.boolean({ resolve: (g) => g.share.allowOriginals }),
    photoCount: t.int({ resolve: async (g, _a, c) => (await c.services.shares.sharedAssets(g, { first: 1 })).totalCount }),
    photos: t.field({
      type: SharedPhotoConnection,
      description: 'Newest first; a shared folder as it is now (photos added later appear)',
      args: { first: t.arg.int({ required: false, validate: z.number().int().min(1).max(200) }), after: t.arg.string({ required: false }) },
      resolve: async (g, args, c) => {
        const page = await c.services.shares.sharedAssets(g, args);
        return { nodes: page.assets.map((asset) => ({ asset, grant: g })), hasNextPage: page.hasNextPage, endCursor: page.endCursor, totalCount: page.totalCount };
      },
    }),
    downloadAllUrl: t.string({
      description: 'The whole share as one ZIP: originals, or the edited images when originals are not offered',
      resolve: (g, _a, c) => c.services.shareUrls.zip(g.recipient.id),
    }),
  }),
});

const SharedWithMeConnection = builder.objectRef<Page<ReceivedShare>>('SharedWithMeConnection').implement({
  fields: (t) => ({
    nodes: t.field({ type: [SharedViewRef], resolve: (p) => p.items }),
    pageInfo: t.field({ type: PageInfo, resolve: (p) => p }),
  }),
});

const ShareConnection = builder.objectRef<Page<ShareRow>>('ShareConnection').implement({
  fields: (t) => ({
    nodes: t.field({ type: [ShareRef], resolve: (p) => p.items }),
    pageInfo: t.field({ type: PageInfo, resolve: (p) => p }),
  }),
});

const ids = (what: string) => z.array(uuidArg(what)).nullish();

const CreateShareInput = builder.inputType('CreateShareInput', {
  fields: (t) => ({
    assetIds: t.idList({ required: false, validate: ids('asset') }),
    folderIds: t.idList({ required: false, validate: ids('folder') }),
    friendIds: t.idList({ required: false, description: 'Friends (user ids)', validate: ids('user') }),
    groupIds: t.idList({ required: false, description: 'Your contact groups, expanded now', validate: ids('contact group') }),
    emails: t.stringList({ required: false, description: 'Plain addresses (an address of a friend counts as that friend)' }),
    expiresAt: t.field({ type: 'DateTime', required: false, description: "Default: your level's expiry; never later than the items'" }),
    message: t.string({ required: false }),
    allowOriginals: t.boolean({ required: false, description: 'Default false: recipients get the edited images' }),
    editRule: t.field({ type: EditRuleInput, required: false }),
  }),
});

builder.queryFields((t) => ({
  share: t.field({
    type: SharedViewRef,
    description:
      'A share link (no account needed): what that recipient may see. Errors: SHARE_EXPIRED, SHARE_REVOKED, NOT_FOUND, BAD_USER_INPUT (not a token), TOO_MANY_ATTEMPTS (too many wrong tokens from this address).',
    args: { token: t.arg.string() },
    resolve: (_root, { token }, context) => context.services.shares.openLink(token, context.origin),
  }),
  sharedWithMe: t.field({
    type: SharedWithMeConnection,
    authScopes: { signedIn: true },
    description: 'What friends shared with you and is still open, newest first (S8).',
    args: { first: t.arg.int({ required: false, validate: z.number().int().min(1).max(100) }), after: t.arg.string({ required: false }) },
    resolve: (_root, args, context) => context.services.shares.sharedWithMe(context.viewer!, args),
  }),
  sharesSent: t.field({
    type: ShareConnection,
    authScopes: { signedIn: true },
    description: 'Your shares, newest first.',
    args: { first: t.arg.int({ required: false, validate: z.number().int().min(1).max(100) }), after: t.arg.string({ required: false }) },
    resolve: (_root, args, context) => context.services.shares.sharesSent(context.viewer!, args),
  }),
  sentShare: t.field({
    type: ShareRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: uuidArg('share') }) },
    resolve: (_root, { id }, context) => context.services.shares.getShare(context.viewer!, String(id)),
  }),
}));

builder.mutationFields((t) => ({
  createShare: t.field({
    type: CreatedShareRef,
    authScopes: { signedIn: true },
    description:
      'Shares photos and folders with friends, contact groups and email addresses at once (S7, G1, G2). Each recipient gets their own link by mail. Nothing is copied.',
    args: { input: t.arg({ type: CreateShareInput }) },
    resolve: (_root, { input }, context) =>
      context.services.shares.createShare(context.viewer!, {
        assetIds: input.assetIds?.map(String),
        folderIds: input.folderIds?.map(String),
        friendIds: input.friendIds?.map(String),
        groupIds: input.groupIds?.map(String),
        emails: input.emails,
        expiresAt: input.expiresAt,
        message: input.message,
        allowOriginals: input.allowOriginals,
        editRule: input.editRule ? Object.fromEntries(Object.entries({ ...input.editRule, format: input.editRule.format?.toLowerCase() }).filter(([, v]) => v !== null && v !== undefined)) : undefined,
      }),
  }),
  revokeShare: t.field({
    type: ShareRef,
    authScopes: { signedIn: true },
    description: 'Ends a share for all its recipients: their links answer SHARE_REVOKED.',
    args: { id: t.arg.id({ validate: uuidArg('share') }) },
    resolve: (_root, { id }, context) => context.services.shares.revokeShare(context.viewer!, String(id)),
  }),
  revokeShareRecipient: t.field({
    type: ShareRecipientRef,
    authScopes: { signedIn: true },
    description: "Ends one recipient's access; the others keep theirs.",
    args: { id: t.arg.id({ validate: uuidArg('share recipient') }) },
    resolve: (_root, { id }, context) => context.services.shares.revokeRecipient(context.viewer!, String(id)),
  }),
}));
