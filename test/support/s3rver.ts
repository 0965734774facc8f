import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The slice of s3rver's API we use (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  port: number;
  address: string;
  silent: boolean;
  directory: string;
  configureBuckets: { name: string }[];
}) => S3rverInstance;

const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

export interface RunningS3rver {
  endpoint: string;
  bucket: string;
  region: string;
  /** s3rver's built-in account; it checks the key id but not SigV4 signatures. */
  accessKeyId: string;
  secretAccessKey: string;
  close(): Promise<void>;
}

/**
 * An in-process S3 server on a free port with one empty bucket, its files in a fresh
 * temporary directory that `close` removes. Remember when using it: s3rver stores
 * aws-chunked framing as content unless the client sets requestChecksumCalculation /
 * responseChecksumValidation to WHEN_REQUIRED, so tests must compare the bytes they read back.
 */
export async function startS3rver(bucket = 'pixshare-test'): Promise<RunningS3rver> {
  const directory = await mkdtemp(path.join(tmpdir(), 'pixshare-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    bucket,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
