import { Readable } from 'node:stream';
import { z } from 'zod';
import { isAppError, type AppError } from '../services/app-error.js';
import type { ByteRange as ByteRangeShape } from '../protocol/byte-ranges.js';
import { MAX_CHALLENGE_TOKEN_LENGTH } from '../services/uploads/challenge-tokens.js';
import { MAX_CHECK_BATCH, type CheckAnswer } from '../services/uploads/check-uploads.js';
import type { ChunkResult } from '../services/uploads/commit-chunk.js';
import type { ChallengeView } from '../services/uploads/proof-challenges.js';
import type { UploadView } from '../services/uploads/upload-sessions.js';
import { AssetRef } from './asset.js';
import { isSha256Hex } from '../protocol/sha256.js';
import { builder } from './builder.js';
import { uuidArg } from './id-arg.js';
import { FolderRef } from './folder.js';


const ByteRange = builder.objectRef<ByteRangeShape>('ByteRange').implement({
  description: 'Bytes [offset, offset + length) of a file.',
  fields: (t) => ({ offset: t.exposeFloat('offset'), length: t.exposeFloat('length') }),
});

const ChunkLimits = builder.objectRef<UploadView['limits']>('ChunkLimits').implement({
  fields: (t) => ({
    minChunkBytes: t.exposeInt('minChunkBytes', { description: 'Smallest chunk, except one that ends the file or meets a received chunk' }),
    maxChunkBytes: t.exposeInt('maxChunkBytes'),
  }),
});

const UploadState = builder.enumType('UploadState', { values: ['OPEN', 'COMPLETING', 'DONE', 'FAILED'] as const });

export const UploadRef = builder.objectRef<UploadView>('Upload').implement({
  description: 'A resumable upload session of one file. `missing` is what still has to be sent (U6).',
  fields: (t) => ({
    id: t.exposeID('id'),
    sha256: t.exposeString('sha256'),
    size: t.exposeFloat('size'),
    name: t.exposeString('name'),
    state: t.field({ type: UploadState, resolve: (u) => u.state.toUpperCase() as 'OPEN' }),
    receivedBytes: t.exposeFloat('receivedBytes'),
    progress: t.float({ description: 'Fraction of the bytes received, 0 to 1', resolve: (u) => (u.size === 0 ? (u.state === 'done' ? 1 : 0) : u.receivedBytes / u.size) }),
    missing: t.field({ type: [ByteRange], resolve: (u) => u.missing }),
    limits: t.field({ type: ChunkLimits, resolve: (u) => u.limits }),
    failure: t.exposeString('failure', { nullable: true }),
    asset: t.field({ type: AssetRef, nullable: true, resolve: (u, _args, context) => (u.assetId ? context.services.library.getAsset(context.viewer!, u.assetId).catch(nullIfGone) : null) }),
    folder: t.field({ type: FolderRef, nullable: true, resolve: (u, _args, context) => (u.folderId ? context.services.folders.getFolder(context.viewer!, u.folderId).catch(nullIfGone) : null) }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    lastActivityAt: t.expose('lastActivityAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When the session is dropped if nothing more arrives' }),
  }),
});

const Challenge = builder.objectRef<ChallengeView>('UploadChallenge').implement({
  description: 'Proof of possession for an instant upload: answer claimUpload with the hex SHA-256 of the nonce\'s 32 bytes followed by the bytes of each range, in order.',
  fields: (t) => ({
    id: t.exposeID('id'),
    nonce: t.exposeString('nonce'),
    ranges: t.field({ type: [ByteRange], resolve: (c) => c.ranges }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime' }),
  }),
});

const ErrorRef = builder.objectRef<Pick<AppError, 'code' | 'message'>>('CheckError').implement({
  fields: (t) => ({
    code: t.exposeString('code'),
    message: t.exposeString('message'),
  }),
});

const CheckStatus = builder.enumType('CheckStatus', {
  values: {
    EXISTS: { description: 'Already in your library: nothing to send' },
    PROOF_REQUIRED: { description: 'The server has these bytes: answer the challenge with claimUpload for an instant upload' },
    UPLOAD: { description: 'Send the missing ranges of the upload session' },
    REFUSED: { description: 'Cannot be taken (see error: quota, size, bad input)' },
  } as const,
});

const CheckResult = builder.objectRef<CheckAnswer>('CheckResult').implement({
  fields: (t) => ({
    sha256: t.exposeString('sha256'),
    status: t.field({ type: CheckStatus, resolve: (a) => a.status }),
    assetId: t.id({ nullable: true, description: 'The asset it already is (EXISTS); cheaper than asking for `asset`', resolve: (a) => (a.status === 'EXISTS' ? a.assetId : null) }),
    asset: t.field({
      type: AssetRef,
      nullable: true,
      description: 'The asset it already is (EXISTS), loaded in one batch for the whole answer',
      resolve: (a, _args, context) => (a.status === 'EXISTS' ? context.loaders.asset.load(a.assetId) : null),
    }),
    challenge: t.field({ type: Challenge, nullable: true, resolve: (a) => (a.status === 'PROOF_REQUIRED' ? a.challenge : null) }),
    upload: t.field({ type: UploadRef, nullable: true, resolve: (a) => (a.status === 'UPLOAD' ? a.upload : null) }),
    // A plain object: graphql-js treats an Error instance returned as a value as a thrown error.
    error: t.field({ type: ErrorRef, nullable: true, resolve: (a) => (a.status === 'REFUSED' ? { code: a.error.code, message: a.error.message } : null) }),
  }),
});

const CheckFileInput = builder.inputType('CheckFileInput', {
  fields: (t) => ({
    sha256: t.string({ description: 'Hex SHA-256 of the file' }),
    size: t.float({ description: 'Bytes' }),
    name: t.string({ description: 'File name' }),
    folder: t.string({ required: false, description: 'Name of the folder the file belongs to (created on first use)' }),
    takenAt: t.field({ type: 'DateTime', required: false, description: 'File time, used when the photo has no EXIF date' }),
    perceptualHash: t.string({ required: false, description: "The image's 64-bit dHash as 16 hex digits (the server's recipe, protocol/perceptual-hash.ts): the asset's until the server computes its own, and kept if it cannot" }),
  }),
});

const ChunkResultRef = builder.objectRef<ChunkResult>('ChunkResult').implement({
  fields: (t) => ({
    upload: t.field({ type: UploadRef, resolve: (r) => r.upload }),
    asset: t.field({ type: AssetRef, nullable: true, description: 'Set when this chunk completed the upload', resolve: (r) => r.asset }),
  }),
});

builder.queryFields((t) => ({
  upload: t.field({
    type: UploadRef,
    authScopes: { signedIn: true },
    description: 'An upload session: what is missing, for resuming (U6).',
    args: { id: t.arg.id({ validate: uuidArg('upload') }) },
    resolve: (_root, { id }, context) => context.services.uploads.getUpload(context.viewer!, String(id)),
  }),
}));

builder.mutationFields((t) => ({
  checkUploads: t.field({
    type: [CheckResult],
    authScopes: { signedIn: true },
    description: `The detection request (U3): for each file, whether it is already yours, can be claimed instantly, or must be (re)sent. At most ${MAX_CHECK_BATCH} files.`,
    args: { files: t.arg({ type: [CheckFileInput] }) },
    resolve: (_root, { files }, context) => context.services.uploads.checkUploads(context.viewer!, files),
  }),
  claimUpload: t.field({
    type: AssetRef,
    authScopes: { signedIn: true },
    description: 'Instant upload (U4): answer a proof-of-possession challenge. Single use; on PROOF_REJECTED, CHALLENGE_EXPIRED or CHALLENGE_USED, upload the file (startUpload).',
    args: {
      // Any other string is no challenge of ours: NOT_FOUND, so that a client falls back to uploading.
      challengeId: t.arg.id({ description: 'The challenge\'s id, as the check gave it', validate: z.coerce.string().max(MAX_CHALLENGE_TOKEN_LENGTH, 'Not a valid challenge id') }),
      // Malformed is a mistake, not a wrong answer: refused before the challenge is used up.
      proof: t.arg.string({ description: 'Hex SHA-256 (64 characters)', validate: z.string().refine(isSha256Hex, 'proof must be the hex SHA-256 of the nonce and the ranges (64 hexadecimal characters)') }),
    },
    resolve: (_root, args, context) => context.services.uploads.claimUpload(context.viewer!, String(args.challengeId), args.proof),
  }),
  startUpload: t.field({
    type: UploadRef,
    authScopes: { signedIn: true },
    description: 'An upload session for one file without deduplication (the fallback after a refused proof); resumes an unfinished one.',
    args: { file: t.arg({ type: CheckFileInput }) },
    resolve: (_root, { file }, context) => context.services.uploads.startUpload(context.viewer!, file),
  }),
  commitChunk: t.field({
    type: ChunkResultRef,
    authScopes: { signedIn: true },
    description: 'Sends one chunk as a multipart file (GraphQL multipart request spec), of at most 8 MiB whatever limits.maxChunkBytes says (a larger body is refused with PAYLOAD_TOO_LARGE and its limitBytes); larger chunks go by PUT /uploads/{id}/chunks/{offset}.',
    args: {
      uploadId: t.arg.id({ validate: uuidArg('upload') }),
      offset: t.arg.float(),
      sha256: t.arg.string({ description: 'Hex SHA-256 of the chunk' }),
      chunk: t.arg({ type: 'File' }),
    },
    resolve: async (_root, args, context) =>
      context.services.uploads.commitChunk(context.viewer!, {
        uploadId: String(args.uploadId),
        offset: args.offset,
        length: args.chunk.size,
        sha256: args.sha256,
        // The multipart parser has already buffered the part (bounded by the chunk limit).
        body: Readable.from([Buffer.from(await args.chunk.arrayBuffer())]),
      }),
  }),
  completeUpload: t.field({
    type: AssetRef,
    authScopes: { signedIn: true },
    description: 'Finishes an upload whose bytes are all there (chunks complete it by themselves; this retries).',
    args: { uploadId: t.arg.id({ validate: uuidArg('upload') }) },
    resolve: (_root, { uploadId }, context) => context.services.uploads.completeUpload(context.viewer!, String(uploadId)),
  }),
  cancelUpload: t.boolean({
    authScopes: { signedIn: true },
    description: 'Gives up on a file: the upload session goes with the bytes sent so far, and the file leaves its folders\' sync plans (CANCELLED). A finished or completing upload: UPLOAD_NOT_OPEN.',
    args: { uploadId: t.arg.id({ validate: uuidArg('upload') }) },
    resolve: async (_root, { uploadId }, context) => {
      await context.services.uploads.cancelUpload(context.viewer!, String(uploadId));
      return true;
    },
  }),
}));

builder.subscriptionField('upload', (t) =>
  t.field({
    type: UploadRef,
    authScopes: { signedIn: true },
    description: 'An upload session now, then after every chunk, from any device of the account.',
    args: { id: t.arg.id({ validate: uuidArg('upload') }) },
    subscribe: (_root, { id }, context) => context.services.uploads.watchUpload(context.viewer!, String(id)),
    resolve: (upload: UploadView) => upload,
  }),
);

/** An upload's asset or folder deleted since: null. Anything else is an error, not a silent null. */
function nullIfGone(error: unknown): null {
  if (isAppError(error) && error.code === 'NOT_FOUND') return null;
  throw error;
}
