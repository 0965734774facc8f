import { z } from 'zod';
import type { FolderRow } from '../db/schema/index.js';
import type { FolderStatus } from '../services/library/folder-service.js';
import { AssetConnection, AssetRef } from './asset.js';
import { builder } from './builder.js';
import { uuidArg } from './id-arg.js';

const FolderStatusRef = builder.objectRef<FolderStatus>('FolderStatus').implement({
  description: 'Sync status of a folder (S3): "10 photos, 5 uploaded".',
  fields: (t) => ({
    total: t.exposeInt('total', { description: 'Files in the folder or on their way to it' }),
    done: t.exposeInt('done', { description: 'Files stored' }),
    bytesTotal: t.exposeFloat('bytesTotal'),
    bytesDone: t.exposeFloat('bytesDone'),
  }),
});

export const FolderRef = builder.objectRef<FolderRow>('Folder').implement({
  description: 'A named group of assets (S1); an asset may be in several folders.',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When the folder goes, with its photos that no other live folder holds (S2); null: kept until deleted',
    }),
    cover: t.field({
      type: AssetRef,
      nullable: true,
      description: 'The asset whose thumbnail stands for the folder (S4)',
      resolve: (folder, _args, context) => context.services.folders.folderCover(context.viewer!, folder),
    }),
    status: t.field({ type: FolderStatusRef, resolve: (folder, _args, context) => context.services.folders.folderStatus(context.viewer!, folder) }),
    assets: t.field({
      type: AssetConnection,
      args: { first: t.arg.int({ required: false, validate: z.number().int().min(1).max(200) }), after: t.arg.string({ required: false }) },
      resolve: (folder, args, context) => context.services.library.listAssets(context.viewer!, { ...args, folderId: folder.id }),
    }),
  }),
});

const uuid = uuidArg('folder');

builder.queryFields((t) => ({
  folders: t.field({
    type: [FolderRef],
    authScopes: { signedIn: true },
    resolve: (_root, _args, context) => context.services.folders.listFolders(context.viewer!),
  }),
  folder: t.field({
    type: FolderRef,
    authScopes: { signedIn: true },
    args: { id: t.arg.id({ validate: uuid }) },
    resolve: (_root, { id }, context) => context.services.folders.getFolder(context.viewer!, String(id)),
  }),
}));

builder.mutationField('createFolder', (t) =>
  t.field({
    type: FolderRef,
    authScopes: { signedIn: true },
    description: 'A folder with this name (the existing one if the name is taken); without a name it is named after your nickname.',
    args: { name: t.arg.string({ required: false, validate: z.string().trim().min(1, 'Folder names have 1 to 200 characters').max(200, 'Folder names have 1 to 200 characters').optional().nullable() }) },
    resolve: (_root, { name }, context) => context.services.folders.createFolder(context.viewer!, name),
  }),
);

builder.subscriptionField('folderStatus', (t) =>
  t.field({
    type: FolderStatusRef,
    authScopes: { signedIn: true },
    description: 'The folder\'s sync status now, then after every change (S3), from any device of the account.',
    args: { folderId: t.arg.id({ validate: uuid }) },
    subscribe: (_root, { folderId }, context) => context.services.folders.watchFolderStatus(context.viewer!, String(folderId)),
    resolve: (status: FolderStatus) => status,
  }),
);

builder.mutationField('setFolderExpiry', (t) =>
  t.field({
    type: FolderRef,
    authScopes: { signedIn: true },
    description: "Moves a folder's expiry (S2) within what your level allows; null keeps it until deleted, where your level allows that.",
    args: { id: t.arg.id({ validate: uuid }), expiresAt: t.arg({ type: 'DateTime', required: false }) },
    resolve: (_root, { id, expiresAt }, context) => context.services.folders.setFolderExpiry(context.viewer!, String(id), expiresAt ?? null),
  }),
);
