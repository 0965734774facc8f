import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import type { Logger } from '../logger.js';
import { Access } from './access.js';
import { AccountService } from './accounts.js';
import { AttemptLimiter } from './attempt-limiter.js';
import { BlobService } from './blobs.js';
import { DeviceService } from './devices.js';
import { DeviceCommandService } from './devices/device-commands.js';
import { Events } from './events.js';
import { ContactGroupService } from './friends/contact-group-service.js';
import { FriendService } from './friends/friend-service.js';
import { sendFriendRequestMail } from './friends/send-friend-request-mail.js';
import { ForegroundActivity } from './jobs/foreground-activity.js';
import type { JobQueue } from './jobs/job-queue.js';
import type { Mailer } from './mail/mailer.js';
import { FolderService } from './library/folder-service.js';
import { LibraryChanges } from './library/library-changes.js';
import { LibraryService } from './library/library-service.js';
import { MediaProcessing } from './library/media-processing.js';
import { Quota } from './library/quota.js';
import type { PubSub } from './pubsub.js';
import { ShareArchives } from './sharing/share-archive.js';
import { remindShareExpiry, sendShareMail } from './sharing/share-mail.js';
import { ShareService } from './sharing/share-service.js';
import { ShareUrls } from './sharing/share-urls.js';
import type { BlobStore } from './storage/blob-store.js';
import { sweepExpired } from './sweep-expired.js';
import { LiveSync } from './sync/live-sync.js';
import { SyncPlan } from './sync/sync-plan.js';
import { SyncStatusService } from './sync/sync-status-service.js';
import { UploadService } from './uploads/upload-service.js';

/** The domain, as the transports (GraphQL, HTTP routes, WebSocket) see it. */
export interface Services {
  access: Access;
  accounts: AccountService;
  devices: DeviceService;
  /** Devices commanding each other (D2, D3): commands stored, delivered once, run by agents. */
  deviceCommands: DeviceCommandService;
  blobs: BlobService;
  /** Thumbnails, previews and facts of stored files, made in the background (S12). */
  media: MediaProcessing;
  library: LibraryService;
  /** The change feed of a library (D4): what to pull since a cursor. */
  libraryChanges: LibraryChanges;
  folders: FolderService;
  uploads: UploadService;
  /** Live sync status (S3): folder plans, upload progress, the library dashboard. */
  sync: SyncStatusService;
  events: Events;
  quota: Quota;
  friends: FriendService;
  contactGroups: ContactGroupService;
  shares: ShareService;
  shareUrls: ShareUrls;
  shareArchives: ShareArchives;
  /** The expiry sweep as of `now` (a scheduled job; tests call it with their own clock). */
  sweepExpired(now?: Date): ReturnType<typeof sweepExpired>;
}

/** How often the expiry sweep runs (cron): every ten minutes, on one instance. */
const SWEEP_SCHEDULE = '*/10 * * * *';
/** The library change feed is pruned once a day, on one instance. */
const PRUNE_SCHEDULE = '17 4 * * *';

/** Builds every service over one database, storage and event bus; each takes what it needs, nothing more. */
export function createServices(deps: { db: Db; storage: BlobStore; pubsub: PubSub; jobs: JobQueue; mailer: Mailer; config: Config; log: Logger }): Services {
  const { db, storage, config, log, jobs, mailer } = deps;
  const events = new Events(deps.pubsub);
  const access = new Access({ db });
  const quota = new Quota(config);
  const limiter = new AttemptLimiter({ db });
  const devices = new DeviceService({ db, events, config });
  const deviceCommands = new DeviceCommandService({ db, events, config });
  const accounts = new AccountService({ db, config, devices, limiter });
  const blobs = new BlobService({ db, storage, config, log });
  // Media processing gives way to uploads receiving bytes in this process (they share its cores).
  const foreground = new ForegroundActivity();
  const media = new MediaProcessing({ db, storage, access, events, jobs, foreground, config, log });
  const library = new LibraryService({ db, access, blobs, media, events, quota, config });
  const libraryChanges = new LibraryChanges({ db });
  const folders = new FolderService({ db, access, events, config });
  const syncPlan = new SyncPlan({ db, events, config });
  const uploads = new UploadService({ db, storage, access, blobs, library, folders, events, quota, syncPlan, foreground, config });
  const sync = new SyncStatusService({ db, access, live: new LiveSync(db, events, log), config });
  const friends = new FriendService({ db, jobs });
  jobs.handle('send-friend-request-mail', ({ requestId }) => sendFriendRequestMail({ db, mailer, config }, requestId));
  const contactGroups = new ContactGroupService({ db, access });
  const shares = new ShareService({ db, access, library, friends, contactGroups, jobs, limiter, config });
  const shareUrls = new ShareUrls(config);
  const shareArchives = new ShareArchives({ shares, blobs, storage, log });
  const mailDeps = { db, shares, storage, mailer, log };
  jobs.handle('send-share-mail', (payload, run) => sendShareMail(mailDeps, payload, run));
  jobs.handle('remind-share-expiry', (payload) => remindShareExpiry(mailDeps, payload));
  const sweep = (now?: Date) => sweepExpired({ db, library, log }, now);
  jobs.handle('sweep-expired', async () => void (await sweep()));
  jobs.every(SWEEP_SCHEDULE, 'sweep-expired');
  jobs.handle('prune-library-changes', async () => {
    while ((await libraryChanges.prune(config.devices.changesRetentionDays)) > 0);
  });
  jobs.every(PRUNE_SCHEDULE, 'prune-library-changes');
  return { access, accounts, devices, deviceCommands, blobs, media, library, libraryChanges, folders, uploads, sync, events, quota, friends, contactGroups, shares, shareUrls, shareArchives, sweepExpired: sweep };
}
