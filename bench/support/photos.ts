/**
 * Photos for the benchmarks: many distinct photo-like JPEGs, uploaded with the SDK into a folder.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { uploadFile } from '../../src/client/upload-file.js';
import { photoLikePixels } from '../../test/media/photo-like.js';
import type { ApiClient } from '../../src/client/api-client.js';
import { inParallel } from './kit.js';

/** `count` distinct photo-like JPEGs of 320×240: ten scenes, each copy stamped with its number. */
export async function makePhotos(dir: string, count: number): Promise<{ file: string; name: string }[]> {
  const scenes = await Promise.all(Array.from({ length: 10 }, (_, i) => photoLikePixels({ width: 320, height: 240, seed: 1000 + i })));
  return inParallel(
    Array.from({ length: count }, (_, i) => i),
    4,
    async (i) => {
      const scene = scenes[i % scenes.length]!;
      const pixels = Buffer.from(scene.data);
      // The number in 8×8 black and white squares along the top edge: every file is different.
      for (let bit = 0; bit < 16; bit++) {
        const value = (i >> bit) & 1 ? 255 : 0;
        for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) pixels.fill(value, (y * scene.width + bit * 8 + x) * 3, (y * scene.width + bit * 8 + x) * 3 + 3);
      }
      const name = `IMG_${String(i + 1).padStart(4, '0')}.jpg`;
      const file = path.join(dir, name);
      await writeFile(file, await sharp(pixels, { raw: scene }).jpeg({ quality: 85 }).toBuffer());
      return { file, name };
    },
  );
}

/**
 * Uploads the files into a folder, then waits until the server's background processing has made
 * their thumbnails (or found a file unreadable), so that what a benchmark times next does not share
 * the CPU with it.
 */
export async function uploadAll(owner: ApiClient, files: { file: string; name: string }[], folder: string, parallel: number): Promise<{ id: string; sha256: string; size: number }[]> {
  const uploaded = await inParallel(files, parallel, async ({ file, name }) => {
    const result = await uploadFile(owner, file, { name, folder });
    if (result.outcome !== 'uploaded') throw new Error(`${name}: expected an upload, got ${result.outcome}`);
    return { id: result.asset.id, sha256: result.asset.sha256, size: result.asset.size };
  });
  const id = await folderId(owner, folder);
  for (const deadline = Date.now() + 600_000; await thumbnailsPending(owner, id); await new Promise((resolve) => setTimeout(resolve, 500))) {
    if (Date.now() > deadline) throw new Error(`thumbnails of ${folder} still pending after 10 minutes`);
  }
  return uploaded;
}

/** Whether any asset of the folder still waits for its thumbnails. */
export async function thumbnailsPending(owner: ApiClient, folderId: string): Promise<boolean> {
  for (let after: string | null = null; ; ) {
    type Page = { folder: { assets: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: { thumbnailStatus: string }[] } } };
    const page: Page = await owner.graphql<Page>('query($id: ID!, $after: String) { folder(id: $id) { assets(first: 200, after: $after) { pageInfo { hasNextPage endCursor } nodes { thumbnailStatus } } } }', { id: folderId, after });
    if (page.folder.assets.nodes.some((asset) => asset.thumbnailStatus === 'pending')) return true;
    if (!page.folder.assets.pageInfo.hasNextPage) return false;
    after = page.folder.assets.pageInfo.endCursor;
  }
}

export async function folderId(owner: ApiClient, name: string): Promise<string> {
  const { folders } = await owner.graphql<{ folders: { id: string; name: string }[] }>('{ folders { id name } }');
  const folder = folders.find((f) => f.name === name);
  if (!folder) throw new Error(`folder "${name}" not found`);
  return folder.id;
}

