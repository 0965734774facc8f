import { z } from 'zod';
import type { SyncFileState as SyncFileStateValue } from '../db/schema/index.js';
import { SYNC_PAGE_MAX, type SyncCounts, type SyncFile, type SyncFilePage } from '../services/sync/folder-sync-state.js';
import type { FolderSyncStatus } from '../services/sync/folder-sync-state.js';
import type { LibrarySyncStatus, UploadProgress } from '../services/sync/sync-status-service.js';
import { PageInfo } from './asset.js';
import { builder } from './builder.js';
import { FolderRef } from './folder.js';
import { uuidArg } from './id-arg.js';

const SyncFileState = builder.enumType('SyncFileState', {
  description: 'Where a file of a sync is.',
  values: {
    PENDING: { description: 'Planned; nothing received yet (or waiting for its instant-upload claim)' },
    UPLOADING: { description: 'Chunks arriving; bytesDone received and verified' },
    VERIFYING: { description: 'All bytes there; the whole file is being assembled and its SHA-256 checked' },
    DONE: { description: 'Uploaded and stored (or found already in the library)' },
    INSTANT: { description: 'Stored without sending a byte: the server had it (instant upload, U4)' },
    FAILED: { description: 'Refused or failed: see error; checking the file again retries it' },
    CANCELLED: { description: 'The client cancelled its upload: the file left the plan (not counted); checking it again plans it anew' },
  } as const,
});
const toEnum = (state: SyncFileStateValue) => state.toUpperCase() as 'PENDING';
const fromEnum = (states: readonly string[] | null | undefined) => states?.map((s) => s.toLowerCase() as SyncFileStateValue) ?? null;

export const SyncError = builder.objectRef<{ code: string; message: string }>('SyncError').implement({
  fields: (t) => ({ code: t.exposeString('code', { description: 'Stable code: UPLOAD_DIGEST_MISMATCH, QUOTA_EXCEEDED, UPLOAD_EXPIRED, FILE_TOO_LARGE, …' }), message: t.exposeString('message') }),
});

const SyncFileRef = builder.objectRef<SyncFile>('SyncFile').implement({
  description: 'One file of a folder sync.',
  fields: (t) => ({
    id: t.id({ resolve: (f) => String(f.id) }),
    name: t.exposeString('name'),
    sha256: t.exposeString('sha256'),
    size: t.exposeFloat('size'),
    state: t.field({ type: SyncFileState, resolve: (f) => toEnum(f.state) }),
    bytesDone: t.exposeFloat('bytesDone', { description: 'Bytes received and verified' }),
    progress: t.float({ description: '0 to 1', resolve: (f) => (f.size === 0 ? (f.bytesDone > 0 || f.state === 'done' || f.state === 'instant' ? 1 : 0) : f.bytesDone / f.size) }),
    uploadId: t.id({ nullable: true, resolve: (f) => f.uploadId }),
    assetId: t.id({ nullable: true, description: 'The asset it became (done, instant)', resolve: (f) => f.assetId }),
    error: t.field({ type: SyncError, nullable: true, resolve: (f) => f.error }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When its state last changed (server clock)' }),
  }),
});

const SyncFileConnection = builder.objectRef<SyncFilePage>('SyncFileConnection').implement({
  fields: (t) => ({
    nodes: t.field({ type: [SyncFileRef], resolve: (p) => p.nodes }),
    pageInfo: t.field({ type: PageInfo, resolve: (p) => p }),
  }),
});

export const SyncCountsRef = builder.objectRef<SyncCounts>('SyncCounts').implement({
  description: 'A sync\'s counters: "5 of 10 uploaded" is filesDone of filesPlanned.',
  fields: (t) => ({
    filesPlanned: t.exposeInt('filesPlanned', { description: 'Files in the plan ("of 10")' }),
    filesDone: t.exposeInt('filesDone', { description: 'Files uploaded or instant ("5 of 10")' }),
    filesUploaded: t.exposeInt('filesUploaded', { description: 'Files whose bytes were sent' }),
    filesInstant: t.exposeInt('filesInstant', { description: 'Files stored without sending (instant upload)' }),
    filesInProgress: t.exposeInt('filesInProgress', { description: 'Files uploading or verifying' }),
    filesPending: t.exposeInt('filesPending', { description: 'Files not started' }),
    filesFailed: t.exposeInt('filesFailed', { description: 'Files refused or failed' }),
    bytesPlanned: t.exposeFloat('bytesPlanned', { description: 'Bytes of the files in the plan' }),
    bytesDone: t.exposeFloat('bytesDone', { description: 'Bytes received, and of the files done' }),
    active: t.boolean({ description: 'Files still pending, uploading or verifying', resolve: (c) => c.filesPending + c.filesInProgress > 0 }),
  }),
});

export const FolderSyncRef = builder.objectRef<FolderSyncStatus>('FolderSyncStatus').implement({
  description: 'A folder sync (S3): "5 of 10 uploaded", bytes, and where each file is.',
  fields: (t) => ({
    folderId: t.exposeID('folderId'),
    folder: t.field({ type: FolderRef, resolve: (s, _args, context) => context.services.folders.getFolder(context.viewer!, s.folderId) }),
    run: t.id({ nullable: true, description: 'The current sync run; another value: the plan started over', resolve: (s) => (s.run === null ? null : String(s.run)) }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true }),
    counts: t.field({ type: SyncCountsRef, resolve: (s) => s.counts }),
    changes: t.field({
      type: [SyncFileRef],
      description: `Files changed since the previous message of this subscription. A query, a first message, and the first message of a new run: every file (up to ${SYNC_PAGE_MAX}; see changesComplete).`,
      resolve: (s) => s.changes,
    }),
    changesComplete: t.exposeBoolean('changesComplete', { description: 'false: `changes` was cut at its limit; page through `files`' }),
    files: t.field({
      type: SyncFileConnection,
      description: 'The files of the run in plan order, paged; `states` keeps some only (e.g. [UPLOADING, VERIFYING, FAILED] for a dashboard)',
      args: {
        first: t.arg.int({ required: false, validate: z.number().int().min(1).max(SYNC_PAGE_MAX) }),
        after: t.arg.string({ required: false }),
        states: t.arg({ type: [SyncFileState], required: false }),
      },
      resolve: (s, args) => s.files({ first: args.first, after: args.after, states: fromEnum(args.states) }),
    }),
  }),
});

const LibrarySyncRef = builder.objectRef<LibrarySyncStatus>('LibrarySyncStatus').implement({
  description: 'Every folder of the account with sync activity, for a dashboard.',
  fields: (t) => ({
    counts: t.field({ type: SyncCountsRef, description: 'Over all the folders with activity', resolve: (s) => s.counts }),
    folderCount: t.exposeInt('folderCount', { description: 'Folders with activity' }),
    folders: t.field({
      type: [FolderSyncRef],
      description: 'A query and a first message: the folders with activity (a page). Later messages: the folders that changed since the previous one (a folder starting a sync joins).',
      resolve: (s) => s.folders,
    }),
    pageInfo: t.field({ type: PageInfo, resolve: (s) => s }),
  }),
});

const UploadProgressRef = builder.objectRef<UploadProgress>('UploadProgress').implement({
  description: 'One upload session\'s progress.',
  fields: (t) => ({
    uploadId: t.exposeID('uploadId'),
    name: t.exposeString('name'),
    sha256: t.exposeString('sha256'),
    size: t.exposeFloat('size'),
    folderId: t.id({ nullable: true, resolve: (u) => u.folderId }),
    state: t.field({ type: SyncFileState, resolve: (u) => toEnum(u.state) }),
    bytesReceived: t.exposeFloat('bytesReceived'),
    progress: t.float({ description: '0 to 1', resolve: (u) => (u.size === 0 ? (u.state === 'done' ? 1 : 0) : u.bytesReceived / u.size) }),
    assetId: t.id({ nullable: true, resolve: (u) => u.assetId }),
    error: t.field({ type: SyncError, nullable: true, resolve: (u) => u.error }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const folderArg = uuidArg('folder');
const uploadArg = uuidArg('upload');

builder.queryFields((t) => ({
  folderSyncStatus: t.field({
    type: FolderSyncRef,
    authScopes: { signedIn: true },
    description: 'A folder sync\'s status (S3): counters and per-file states.',
    args: { folderId: t.arg.id({ validate: folderArg }) },
    resolve: (_root, { folderId }, context) => context.services.sync.folderSyncStatus(context.viewer!, String(folderId)),
  }),
  uploadProgress: t.field({
    type: UploadProgressRef,
    authScopes: { signedIn: true },
    args: { uploadId: t.arg.id({ validate: uploadArg }) },
    resolve: (_root, { uploadId }, context) => context.services.sync.uploadProgress(context.viewer!, String(uploadId)),
  }),
  librarySyncStatus: t.field({
    type: LibrarySyncRef,
    authScopes: { signedIn: true },
    description: 'Every folder with sync activity (in flight, or changed within PIXSHARE_LIVE_ACTIVITY_HOURS), newest first, paged.',
    args: { first: t.arg.int({ required: false, validate: z.number().int().min(1).max(200) }), after: t.arg.string({ required: false }) },
    resolve: (_root, args, context) => context.services.sync.librarySyncStatus(context.viewer!, args),
  }),
}));

builder.subscriptionFields((t) => ({
  folderSyncStatus: t.field({
    type: FolderSyncRef,
    authScopes: { signedIn: true },
    description: 'The folder sync\'s status now, then as it changes (at most PIXSHARE_LIVE_MESSAGES_PER_SECOND messages a second; the last state always arrives), from any device of the account and any server instance.',
    args: { folderId: t.arg.id({ validate: folderArg }) },
    subscribe: (_root, { folderId }, context) => context.services.sync.watchFolderSync(context.viewer!, String(folderId)),
    resolve: (status: FolderSyncStatus) => status,
  }),
  uploadProgress: t.field({
    type: UploadProgressRef,
    authScopes: { signedIn: true },
    description: 'An upload\'s progress now, then as it moves on.',
    args: { uploadId: t.arg.id({ validate: uploadArg }) },
    subscribe: (_root, { uploadId }, context) => context.services.sync.watchUploadProgress(context.viewer!, String(uploadId)),
    resolve: (progress: UploadProgress) => progress,
  }),
  librarySyncStatus: t.field({
    type: LibrarySyncRef,
    authScopes: { signedIn: true },
    description: 'Every folder with sync activity now, then the folders that change.',
    subscribe: (_root, _args, context) => context.services.sync.watchLibrarySync(context.viewer!),
    resolve: (status: LibrarySyncStatus) => status,
  }),
}));
