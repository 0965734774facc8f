import { z } from 'zod';
import type { LibraryChange, LibraryChangePage } from '../services/library/library-changes.js';
import { AssetRef } from './asset.js';
import { builder } from './builder.js';

const LibraryChangeOp = builder.enumType('LibraryChangeOp', {
  values: {
    ADDED: { description: 'New in the library' },
    UPDATED: { description: 'Renamed' },
    REMOVED: { description: 'Gone from the library (asset is null)' },
    MOVED: { description: 'Put into or taken out of a folder, or its folder renamed' },
  } as const,
});

const ChangeFolderRef = builder.objectRef<{ id: string; name: string }>('LibraryChangeFolder').implement({
  fields: (t) => ({ id: t.exposeID('id'), name: t.exposeString('name') }),
});

const LibraryChangeRef = builder.objectRef<LibraryChange>('LibraryChange').implement({
  description: 'What happened to an asset since the cursor, and the asset as it is now.',
  fields: (t) => ({
    op: t.field({ type: LibraryChangeOp, resolve: (c) => c.op.toUpperCase() as 'ADDED' }),
    assetId: t.exposeID('assetId'),
    asset: t.field({ type: AssetRef, nullable: true, description: 'Null once removed', resolve: (c) => c.asset }),
    folders: t.field({ type: [ChangeFolderRef], description: 'The folders holding it now', resolve: (c) => c.folders }),
  }),
});

const LibraryChangePageRef = builder.objectRef<LibraryChangePage>('LibraryChangePage').implement({
  fields: (t) => ({
    changes: t.field({ type: [LibraryChangeRef], resolve: (p) => p.changes }),
    cursor: t.exposeString('cursor', { description: 'Where to go on from: keep it, and pass it as after next time' }),
    hasMore: t.exposeBoolean('hasMore', { description: 'More is there now: ask again at once with cursor' }),
  }),
});

builder.queryField('changes', (t) =>
  t.field({
    type: LibraryChangePageRef,
    authScopes: { signedIn: true },
    description:
      "The library's change feed (D4): assets added, renamed, removed or moved between folders since `after`, each with its current state; without `after`, the whole library first. Cursors survive server restarts; one older than the feed keeps (PIXSHARE_CHANGES_RETENTION_DAYS) is refused with CURSOR_EXPIRED: start over without it.",
    args: { after: t.arg.string({ required: false, validate: z.string().max(100).nullish() }), first: t.arg.int({ required: false, validate: z.number().int().min(1).max(1000).nullish() }) },
    resolve: (_root, args, context) => context.services.libraryChanges.changes(context.viewer!, args),
  }),
);
