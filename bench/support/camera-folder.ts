/**
 * Photo folders the size of a camera's (2–8 MB JPEGs) and Debian's rsync as the baseline: shared by
 * the client and devices benchmarks.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../../src/db/embedded-postgres.js';
import { photoLikeJpeg } from '../../test/media/photo-like.js';
import { Cleanup, execFileAsync, inParallel, sleep } from './kit.js';

const BASES = 20;

/** 20 photo-like JPEGs from 4.5 to 18 megapixels (4:3): about 2 to 8 MB. */
export async function makeBases(): Promise<Buffer[]> {
  return inParallel(
    Array.from({ length: BASES }, (_, i) => i),
    2,
    async (i) => {
      const megapixels = 4.5 + (13.5 * i) / (BASES - 1);
      const width = Math.round(Math.sqrt((megapixels * 1e6 * 4) / 3) / 8) * 8;
      return photoLikeJpeg({ width, height: Math.round((width * 3) / 4 / 8) * 8, seed: 7000 + i, quality: 95, grain: 14 });
    },
  );
}

/** A folder of `files` photos: file i is base i mod 20 with a comment segment (COM) after the start-of-image marker naming the round and the file. */
export async function writeFolder(folder: string, bases: Buffer[], round: number, files: number): Promise<number> {
  await mkdir(folder, { recursive: true });
  let bytes = 0;
  await inParallel(
    Array.from({ length: files }, (_, i) => i),
    8,
    async (i) => {
      const base = bases[i % bases.length]!;
      const text = Buffer.from(`pixshare client bench, round ${round}, photo ${i + 1}`);
      const segment = Buffer.concat([Buffer.from([0xff, 0xfe, (text.length + 2) >> 8, (text.length + 2) & 0xff]), text]);
      const file = Buffer.concat([base.subarray(0, 2), segment, base.subarray(2)]);
      bytes += file.length;
      await writeFile(path.join(folder, `IMG_${String(i + 1).padStart(4, '0')}.jpg`), file);
    },
  );
  return bytes;
}

/** A command's wall time, in ms. */
export async function timed(command: string, args: string[]): Promise<number> {
  const started = performance.now();
  await execFileAsync(command, args, { maxBuffer: 64 * 2 ** 20 });
  return performance.now() - started;
}

/** Debian's rsync as a daemon on loopback, serving `module` (default: an empty folder under `root`) read-write. */
export async function startRsyncDaemon(cleanup: Cleanup, root: string, module = path.join(root, 'module')): Promise<{ url: string }> {
  await mkdir(module, { recursive: true });
  await mkdir(root, { recursive: true });
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const config = [
    'use chroot = no',
    'pid file = ' + path.join(root, 'rsyncd.pid'),
    ...(asRoot ? ['uid = root', 'gid = root'] : []),
    '[bench]',
    `path = ${module}`,
    'read only = no',
    '',
  ].join('\n');
  const configFile = path.join(root, 'rsyncd.conf');
  await writeFile(configFile, config);
  const daemon = spawn('rsync', ['--daemon', '--no-detach', `--config=${configFile}`, `--port=${port}`, '--address=127.0.0.1', `--log-file=${path.join(root, 'rsyncd.log')}`], { stdio: 'ignore' });
  cleanup.children.add(daemon);
  cleanup.add('rsync daemon', async () => {
    daemon.kill('SIGTERM');
    cleanup.children.delete(daemon);
  });
  const url = `rsync://127.0.0.1:${port}/bench`;
  for (let i = 0; ; i++) {
    try {
      await execFileAsync('rsync', [`rsync://127.0.0.1:${port}/`]);
      break;
    } catch (error) {
      if (i > 100 || daemon.exitCode !== null) throw new Error(`rsync daemon did not start: ${(error as Error).message}`);
      await sleep(50);
    }
  }
  return { url };
}

