import { z } from 'zod';
import type { AssetRow } from '../db/schema/index.js';
import { builder } from './builder.js';
import { uuidArg } from './id-arg.js';
import { encodeCursor } from '../services/library/page-cursor.js';


export const assetUrl = (publicUrl: string, asset: Pick<AssetRow, 'id'>, kind: 'original' | 'thumbnail' | 'preview') => `${publicUrl}/assets/${asset.id}/${kind}`;

const AssetSource = builder.objectRef<{ id: string; name: string; platform: string; revokedAt: Date | null }>('AssetSource').implement({
  description: 'The device a photo came from',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    platform: t.exposeString('platform'),
    revoked: t.boolean({ resolve: (d) => d.revokedAt !== null }),
  }),
});

export const AssetRef = builder.objectRef<AssetRow>('Asset').implement({
  description: 'A photo (or any file) in the library. Its bytes are stored once, however many users have it.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    sha256: t.exposeString('sha256', { description: 'Hex SHA-256 of the bytes: the content identity (U1)' }),
    size: t.exposeFloat('size', { description: 'Bytes' }),
    mimeType: t.exposeString('mimeType', { nullable: true }),
    width: t.exposeInt('width', { nullable: true, description: 'Pixels, after EXIF orientation' }),
    height: t.exposeInt('height', { nullable: true }),
    takenAt: t.expose('takenAt', { type: 'DateTime', nullable: true, description: 'EXIF capture time, else the file time the client sent' }),
    uploadedAt: t.expose('uploadedAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the photo goes if no live folder holds it (S2); null: kept until deleted',
    }),
    origin: t.exposeString('origin', { description: 'upload (bytes were sent) or instant (claimed with a proof of possession)' }),
    device: t.field({
      type: AssetSource,
      nullable: true,
      description: 'The device it was uploaded from (null when unknown)',
      resolve: (a, _args, context) => (context.viewer ? context.services.devices.describe(context.viewer, a.deviceId) : null),
    }),
    perceptualHash: t.string({
      nullable: true,
      description: '64-bit dHash as 16 hex digits; close hashes mean visually similar photos',
      resolve: (a) => (a.phash === null ? null : BigInt.asUintN(64, a.phash).toString(16).padStart(16, '0')),
    }),
    thumbnailStatus: t.exposeString('thumbnailStatus', { description: 'ready, failed (not a readable image) or none' }),
    thumbnailUrl: t.string({
      nullable: true,
      description: 'Small square WebP thumbnail (needs the same credentials as the API)',
      resolve: (a, _args, context) => (a.thumbnailStatus === 'ready' ? assetUrl(context.publicUrl, a, 'thumbnail') : null),
    }),
    previewUrl: t.string({
      nullable: true,
      description: 'Larger WebP preview',
      resolve: (a, _args, context) => (a.thumbnailStatus === 'ready' ? assetUrl(context.publicUrl, a, 'preview') : null),
    }),
    downloadUrl: t.string({
      description: 'The original bytes; answers only to the owner (redirects to a short-lived signed URL on S3)',
      resolve: (a, _args, context) => assetUrl(context.publicUrl, a, 'original'),
    }),
  }),
});

export const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    endCursor: t.exposeString('endCursor', { nullable: true }),
  }),
});

const AssetEdge = builder.objectRef<AssetRow>('AssetEdge').implement({
  fields: (t) => ({
    cursor: t.string({ resolve: (a) => encodeCursor(a) }),
    node: t.field({ type: AssetRef, resolve: (a) => a }),
  }),
});

export const AssetConnection = builder
  .objectRef<{ assets: AssetRow[]; hasNextPage: boolean; endCursor: string | null; totalCount: number }>('AssetConnection')
  .implement({
    description: 'One page of assets, newest first (U9).',
    fields: (t) => ({
      edges: t.field({ type: [AssetEdge], resolve: (p) => p.assets }),
      nodes: t.field({ type: [AssetRef], resolve: (p) => p.assets }),
      pageInfo: t.field({ type: PageInfo, resolve: (p) => p }),
      totalCount: t.exposeInt('totalCount'),
    }),
  });

const SimilarAsset = builder.objectRef<{ asset: AssetRow; distance: number }>('SimilarAsset').implement({
  fields: (t) => ({
    asset: t.field({ type: AssetRef, resolve: (r) => r.asset }),
    distance: t.exposeInt('distance', { description: 'Differing bits of the perceptual hashes (0 = look identical)' }),
  }),
});

builder.queryFields((t) => ({
  assets: t.field({
    type: AssetConnection,
    authScopes: { signedIn: true },
    description: 'The library page by page, newest first; optionally one folder.',
    args: {
      first: t.arg.int({ required: false, validate: z.number().int().min(1).max(200) }),
      after: t.arg.string({ required: false }),
      folderId: t.arg.id({ required: false, validate: uuidArg('folder').optional().nullable() }),
    },
    resolve: (_root, args, context) => context.services.library.listAssets(context.viewer!, { first: args.first, after: args.after, folderId: args.folderId === null || args.folderId === undefined ? null : String(args.folderId) }),
  }),
  asset: t.field({
    type: AssetRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: uuidArg('asset') }) },
    resolve: (_root, { id }, context) => context.services.library.getAsset(context.viewer!, String(id)),
  }),
  similarAssets: t.field({
    type: [SimilarAsset],
    authScopes: { signedIn: true },
    description: 'Near-duplicates of an asset by perceptual-hash distance, nearest first (U1).',
    args: {
      assetId: t.arg.id({ validate: uuidArg('asset') }),
      maxDistance: t.arg.int({ required: false, validate: z.number().int().min(0).max(32) }),
      first: t.arg.int({ required: false, validate: z.number().int().min(1).max(200) }),
    },
    resolve: (_root, args, context) => context.services.library.similarAssets(context.viewer!, String(args.assetId), args),
  }),
}));

builder.mutationField('setAssetExpiry', (t) =>
  t.field({
    type: AssetRef,
    authScopes: { signedIn: true },
    description: "Moves a photo's expiry (S2) within what your level allows; null keeps it until deleted, where your level allows that.",
    args: { id: t.arg.id({ validate: uuidArg('asset') }), expiresAt: t.arg({ type: 'DateTime', required: false }) },
    resolve: (_root, { id, expiresAt }, context) => context.services.library.setAssetExpiry(context.viewer!, String(id), expiresAt ?? null),
  }),
);

builder.mutationField('deleteAsset', (t) =>
  t.field({
    type: AssetRef,
    authScopes: { signedIn: true },
    description: 'Removes an asset from the library; its bytes go when no one else has them.',
    args: { id: t.arg.id({ validate: uuidArg('asset') }) },
    resolve: (_root, { id }, context) => context.services.library.deleteAsset(context.viewer!, String(id)),
  }),
);
