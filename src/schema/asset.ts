import { z } from 'zod';
import type { AssetRow } from '../db/schema/index.js';
import { builder } from './builder.js';
import { uuidArg } from './id-arg.js';
import { encodeCursor } from '../services/library/page-cursor.js';
import { localTakenAt } from '../services/media/read-media-facts.js';


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

const Camera = builder.objectRef<{ make: string | null; model: string | null }>('Camera').implement({
  description: 'The camera or phone, as its metadata names it',
  fields: (t) => ({
    make: t.exposeString('make', { nullable: true }),
    model: t.exposeString('model', { nullable: true }),
  }),
});

const Location = builder.objectRef<{ latitude: number; longitude: number; altitude: number | null }>('Location').implement({
  description: "Where a photo or video was taken (GPS). Only its owner sees it; shared images leave it out unless the share's rule keeps it.",
  fields: (t) => ({
    latitude: t.exposeFloat('latitude'),
    longitude: t.exposeFloat('longitude'),
    altitude: t.exposeFloat('altitude', { nullable: true, description: 'Metres above sea level' }),
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
    takenAt: t.expose('takenAt', {
      type: 'DateTime',
      nullable: true,
      description: "Capture time from the file's metadata, else the file time the client sent. When takenAtZone is null it is the camera's wall-clock time written as if it were UTC",
    }),
    takenAtZone: t.exposeString('takenAtZone', {
      nullable: true,
      description: "The UTC offset the file recorded ('+02:00'), 'Z' when takenAt is exact but the local zone unknown, null when the camera recorded no zone",
    }),
    takenAtLocal: t.string({
      nullable: true,
      description: "The wall-clock time where it was taken, 'YYYY-MM-DDTHH:mm:ss' (UTC when the zone is 'Z')",
      resolve: (a) => localTakenAt(a.takenAt, a.takenAtZone),
    }),
    kind: t.string({
      description: 'image, video or other (by its content)',
      resolve: (a) => (a.mimeType?.startsWith('video/') ? 'video' : a.mimeType?.startsWith('image/') ? 'image' : 'other'),
    }),
    durationSeconds: t.float({ nullable: true, description: 'Videos: length in seconds', resolve: (a) => (a.durationMs === null ? null : a.durationMs / 1000) }),
    videoCodec: t.exposeString('videoCodec', { nullable: true, description: "Videos: the video stream's codec, e.g. avc1 or hvc1" }),
    camera: t.field({ type: Camera, nullable: true, resolve: (a) => (a.make || a.model ? { make: a.make, model: a.model } : null) }),
    location: t.field({
      type: Location,
      nullable: true,
      resolve: (a) => (a.latitude !== null && a.longitude !== null ? { latitude: a.latitude, longitude: a.longitude, altitude: a.altitude } : null),
    }),
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
    thumbnailStatus: t.exposeString('thumbnailStatus', {
      description: 'pending (stored; thumbnails, preview and facts are being made in the background), ready, or failed (not a readable image or video)',
    }),
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

builder.mutationField('reprocessMedia', (t) =>
  t.int({
    authScopes: { signedIn: true },
    description:
      'Makes thumbnails, preview and facts again in the background — of one asset, or of the whole library when assetId is left out (after an upgrade that reads more formats). Returns how many files were queued; assetsProcessed tells when each is done.',
    args: { assetId: t.arg.id({ required: false, validate: uuidArg('asset').optional().nullable() }) },
    resolve: (_root, { assetId }, context) => context.services.media.reprocess(context.viewer!, assetId === null || assetId === undefined ? null : String(assetId)),
  }),
);

builder.subscriptionField('assetsProcessed', (t) =>
  t.field({
    type: [AssetRef],
    authScopes: { signedIn: true },
    description: 'Your assets whose background processing just finished (thumbnails ready, or failed), as it happens.',
    subscribe: (_root, _args, context) => context.services.media.watchProcessed(context.viewer!),
    resolve: (assets) => assets,
  }),
);
