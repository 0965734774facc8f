/**
 * "5 of 10 uploaded": a folder sync's counters (S3), as the server keeps them and every client
 * reads them (the GraphQL type SyncCounts, which adds `active`).
 */
export interface SyncCounts {
  filesPlanned: number;
  /** Uploaded or instant. */
  filesDone: number;
  filesUploaded: number;
  filesInstant: number;
  /** Uploading or verifying. */
  filesInProgress: number;
  filesPending: number;
  filesFailed: number;
  bytesPlanned: number;
  bytesDone: number;
}
