import { safeFileName, UniqueNames } from '../../protocol/safe-names.js';
import { createRequire } from 'node:module';
import { PassThrough, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import yazl from 'yazl';
import type { AssetRow } from '../../db/schema/index.js';
import type { ShareGrant } from '../access.js';
import { AppError } from '../app-error.js';
import { blobKey, type BlobService } from '../blobs.js';
import type { Logger } from '../../logger.js';
import { EDIT_RULE_EXTENSIONS } from '../media/apply-edit-rule.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { ShareService } from './share-service.js';

/**
 * yazl works out each member's CRC-32 with buffer-crc32, one byte at a time in JavaScript: about
 * 350 MB/s, two thirds of the server's CPU for a ZIP of originals (bench/share.ts). Node's native
 * zlib.crc32 (Node 20.15+, 22.2+) is the same CRC-32 about 15 times faster, so yazl's own instance
 * of buffer-crc32 answers with it: same values, same ZIP bytes. Only when Node has it and it agrees
 * with the JavaScript one on a probe; yazl's calls pass a number (or nothing) as the running value,
 * anything else still goes to the original.
 */
function useNativeCrc32ForYazl(): void {
  const native = (zlib as Partial<typeof zlib>).crc32;
  if (typeof native !== 'function') return;
  const requireFromYazl = createRequire(createRequire(import.meta.url).resolve('yazl'));
  const crc32 = requireFromYazl('buffer-crc32') as { unsigned: (buffer: Buffer | string, previous?: unknown) => number };
  const js = crc32.unsigned;
  const probe = Buffer.from('pixshare: the same CRC-32 either way');
  if (native(probe) !== js(probe) || native(probe, 0x1234abcd) !== js(probe, 0x1234abcd)) return;
  crc32.unsigned = (buffer, previous) =>
    (previous === undefined || (typeof previous === 'number' && previous >>> 0 === previous)) && typeof buffer !== 'string'
      ? native(buffer, (previous as number | undefined) ?? 0)
      : js(buffer, previous);
}
useNativeCrc32ForYazl();

/** Members one ZIP may have; a larger share is downloaded folder by folder or photo by photo. */
export const MAX_ARCHIVE_MEMBERS = 20_000;
const PAGE = 200;

export interface ShareArchive {
  /** The ZIP, made while it is read: a member's bytes are read from storage only when its turn comes. */
  stream: Readable;
  /** Bytes of the whole ZIP when known beforehand (originals, or edited images already made): the Content-Length. */
  size: number | null;
  fileName: string;
  members: number;
}

/**
 * "Download all" (S10): a share as one ZIP, streamed — memory stays flat whatever the size. Members
 * are stored, not compressed (photos do not compress), so the size is known before the first byte
 * and a client can restart a broken download knowing what to expect. Originals when the share
 * offers them, otherwise the images its edit rule makes (made on the way if not made yet). Names
 * are made safe (no paths, no control characters) and unique; each member carries the photo's time.
 */
export class ShareArchives {
  constructor(private readonly deps: { shares: ShareService; blobs: BlobService; storage: BlobStore; log: Pick<Logger, 'error'> }) {}

  async build(grant: ShareGrant): Promise<ShareArchive> {
    const photos = await this.photosOf(grant);
    const rule = this.deps.shares.editRuleOf(grant.share);
    const originals = grant.share.allowOriginals;
    // Without originals only images can be given (as edited images); other files are left out.
    const members = originals ? photos : photos.filter((a) => a.thumbnailStatus === 'ready');
    const made = originals ? new Map() : await this.deps.blobs.editedImagesMade(members.map((a) => a.sha256), rule);
    const zip = new yazl.ZipFile();
    const names = new UniqueNames();
    let sizeKnown = true;
    for (const asset of members) {
      const name = names.take(safeFileName(asset.name, originals ? null : EDIT_RULE_EXTENSIONS[rule.format]));
      const options = { compress: false, mtime: asset.takenAt ?? asset.uploadedAt, mode: 0o100644 };
      if (originals) {
        zip.addReadStreamLazy(name, { ...options, size: asset.size }, (done) => this.open(blobKey(asset.sha256), done));
        continue;
      }
      const edited = made.get(asset.sha256);
      if (!edited) sizeKnown = false;
      zip.addReadStreamLazy(name, edited ? { ...options, size: edited.size } : options, (done) => {
        this.deps.blobs.editedImage(asset.sha256, rule).then(
          (image) => this.open(image.key, done),
          (error: unknown) => done(error as Error, undefined as never),
        );
      });
    }
    let size: number | null = null;
    // (@types/yazl lags behind yazl 3: the callback gets the total size.)
    (zip as unknown as { end(options: object, calculated: (total: number) => void): void }).end({}, (total) => {
      size = total >= 0 && sizeKnown ? total : null;
    });
    const stream = new PassThrough({ highWaterMark: 1 << 20 });
    zip.outputStream.on('error', (error) => stream.destroy(error));
    zip.outputStream.pipe(stream);
    // A member that cannot be read ends the download with an error, not with a broken ZIP that looks whole.
    (zip as unknown as NodeJS.EventEmitter).on('error', (error: Error) => stream.destroy(error));
    stream.on('end', () => {
      this.deps.shares.countDownloads(grant, members.length).catch((error: unknown) => this.deps.log.error('counting a ZIP download failed', error));
    });
    return { stream, size, fileName: `${safeFileName(grant.share.title, null).replace(/\.[^.]*$/, '') || 'photos'}.zip`, members: members.length };
  }

  private async photosOf(grant: ShareGrant): Promise<AssetRow[]> {
    const photos: AssetRow[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await this.deps.shares.sharedAssets(grant, { first: PAGE, after });
      if (page.totalCount > MAX_ARCHIVE_MEMBERS) {
        throw new AppError('LIMIT_REACHED', `A ZIP holds at most ${MAX_ARCHIVE_MEMBERS} photos; download this share in parts`, { limit: MAX_ARCHIVE_MEMBERS });
      }
      photos.push(...page.assets);
      if (!page.hasNextPage) return photos;
      after = page.endCursor;
    }
  }

  private open(key: string, done: (error: Error | null, stream: Readable) => void): void {
    this.deps.storage.get(key).then(
      (stream) => done(null, stream),
      (error: unknown) => done(error as Error, undefined as never),
    );
  }
}
