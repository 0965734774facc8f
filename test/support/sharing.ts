import sharp from 'sharp';
import type { ApiClient } from '../../src/client/api-client.js';
import { uploadFile } from '../../src/client/upload-file.js';
import { photoLikeJpeg } from '../media/photo-like.js';
import type { scratchDir } from './files.js';

export type Client = ApiClient & { userId: string; email: string; token?: string };

/** Makes two users friends (a asks, b accepts). */
export async function befriend(a: Client, b: Client): Promise<void> {
  const { requestFriend } = await a.graphql<{ requestFriend: { id: string } }>('mutation($e: String!) { requestFriend(email: $e) { id } }', { e: b.email });
  await b.graphql('mutation($id: ID!) { acceptFriendRequest(id: $id) { id } }', { id: requestFriend.id });
}

/** A JPEG that looks like a photo, with a camera and (unless `gps` is false) where it was taken. */
export async function cameraJpeg(seed: number, options: { width?: number; height?: number; gps?: boolean } = {}): Promise<Buffer> {
  const image = sharp(await photoLikeJpeg({ width: options.width ?? 1600, height: options.height ?? 1200, seed }));
  return image
    .withExif({
      IFD0: { Make: 'Acme Optical', Model: 'X-100', DateTime: '2024:05:06 07:08:09' },
      ...(options.gps === false ? {} : { IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 3/1' } }),
    })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** Uploads `count` distinct photos (into a folder when given); returns their asset ids and bytes, in upload order. */
export async function uploadPhotos(
  client: Client,
  files: Awaited<ReturnType<typeof scratchDir>>,
  count: number,
  options: { folder?: string; seed?: number; width?: number; height?: number; name?: (i: number) => string; waitForThumbnails?: boolean } = {},
): Promise<{ id: string; name: string; bytes: Buffer }[]> {
  const uploaded: { id: string; name: string; bytes: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    const name = options.name?.(i) ?? `IMG_${String(i + 1).padStart(4, '0')}.jpg`;
    const bytes = await cameraJpeg((options.seed ?? 1) * 1000 + i, { width: options.width ?? 640, height: options.height ?? 480 });
    const result = await uploadFile(client, await files.write(`${options.seed ?? 1}-${i}.jpg`, bytes), { name, folder: options.folder });
    uploaded.push({ id: result.asset.id, name, bytes });
  }
  // Thumbnails are made in the background: wait for them, as the app's pages do (unless no server runs jobs).
  for (const deadline = Date.now() + 30_000; options.waitForThumbnails !== false; ) {
    const { assets } = await client.graphql<{ assets: { nodes: { thumbnailStatus: string }[] } }>('query { assets(first: 200) { nodes { thumbnailStatus } } }');
    if (!assets.nodes.some((a) => a.thumbnailStatus === 'pending')) break;
    if (Date.now() > deadline) throw new Error('thumbnails still pending after 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return uploaded;
}

export interface ShareInput {
  assetIds?: string[];
  folderIds?: string[];
  friendIds?: string[];
  groupIds?: string[];
  emails?: string[];
  expiresAt?: string;
  message?: string;
  allowOriginals?: boolean;
  editRule?: Record<string, unknown>;
}

export interface CreatedShare {
  share: { id: string; title: string; expiresAt: string; recipients: { id: string; email: string; via: string; mailStatus: string }[] };
  links: { url: string; recipient: { id: string; email: string } }[];
}

export async function createShare(client: Client, input: ShareInput): Promise<CreatedShare> {
  const { createShare } = await client.graphql<{ createShare: CreatedShare }>(
    'mutation($input: CreateShareInput!) { createShare(input: $input) { share { id title expiresAt recipients { id email via mailStatus } } links { url recipient { id email } } } }',
    { input },
  );
  return createShare;
}

/** The token inside a share link (…/s/<token>). */
export const tokenOf = (url: string) => url.slice(url.lastIndexOf('/s/') + 3);

export const SHARED_VIEW = 'id title message sender { nickname } expiresAt allowOriginals photoCount downloadAllUrl photos(first: 60) { totalCount nodes { id name width height thumbnailUrl previewUrl imageUrl originalUrl } }';

export interface SharedView {
  id: string;
  title: string;
  message: string | null;
  sender: { nickname: string };
  expiresAt: string;
  allowOriginals: boolean;
  photoCount: number;
  downloadAllUrl: string;
  photos: { totalCount: number; nodes: { id: string; name: string; width: number; height: number; thumbnailUrl: string | null; previewUrl: string | null; imageUrl: string | null; originalUrl: string | null }[] };
}
