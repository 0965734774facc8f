import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import type { MediaFailure } from './sharp-runtime.js';

/**
 * A video's poster frame, by ffmpeg as a child process. The ffmpeg binary ships inside an npm
 * package for this platform (@ffmpeg-installer/ffmpeg: a static build, nothing downloaded at
 * install time); PIXSHARE_FFMPEG_PATH names another one. ffmpeg turns the frame upright (the
 * track's rotation) and scales it to the preview's size itself, so what comes back is a PNG of
 * at most `maxSide` pixels whatever the video's size.
 */

/** The ffmpeg to run: the configured one, else the packaged one, else none (videos get no poster). */
export function ffmpegPath(configured?: string): string | null {
  if (configured) return configured;
  try {
    return (createRequire(import.meta.url)('@ffmpeg-installer/ffmpeg') as { path: string }).path;
  } catch {
    return null; // no build of it for this platform
  }
}

export interface PosterLimits {
  ffmpeg: string | null;
  /** The poster's longest side. */
  maxSide: number;
  /** The whole run is killed after this long. */
  timeoutSeconds: number;
  /** ffmpeg refuses any single allocation larger than this (a hostile header cannot make it take gigabytes). */
  maxAllocBytes?: number;
}

/** Frames of a fade-in are black; one second in (or half-way, for shorter clips) shows the scene. */
export function posterTime(durationMs: number | null): number {
  if (!durationMs || durationMs <= 0) return 0;
  return Math.min(1, durationMs / 2000);
}

/**
 * One frame at `seconds` as PNG bytes. Falls back to the first frame when the seek finds none
 * (a duration that lied). Never throws: a file ffmpeg cannot read, a run that takes too long or
 * no ffmpeg at all come back as a MediaFailure.
 */
export async function videoPoster(path: string, seconds: number, limits: PosterLimits): Promise<Buffer | MediaFailure> {
  if (!limits.ffmpeg) return { ok: false, reason: 'unsupported', message: 'no ffmpeg for this platform (set PIXSHARE_FFMPEG_PATH)', mediaType: null };
  const first = await runFfmpeg(limits.ffmpeg, path, seconds, limits);
  if (Buffer.isBuffer(first) || seconds === 0 || first.reason === 'timeout') return first;
  return runFfmpeg(limits.ffmpeg, path, 0, limits);
}

function runFfmpeg(ffmpeg: string, path: string, seconds: number, limits: PosterLimits): Promise<Buffer | MediaFailure> {
  const side = limits.maxSide;
  const args = [
    '-nostdin', '-hide_banner', '-loglevel', 'error',
    '-max_alloc', String(limits.maxAllocBytes ?? 512 * 1024 * 1024),
    '-threads', '2',
    // Seeking before the input jumps to the nearest keyframe instead of decoding everything before it.
    '-ss', seconds.toFixed(3),
    '-i', path,
    '-map', '0:v:0', '-frames:v', '1', '-an', '-sn', '-dn',
    '-vf', `scale=w='min(iw,${side})':h='min(ih,${side})':force_original_aspect_ratio=decrease`,
    '-f', 'image2pipe', '-c:v', 'png', 'pipe:1',
  ];
  return new Promise((resolve) => {
    const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let errors = '';
    let settled = false;
    const finish = (result: Buffer | MediaFailure) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(result);
    };
    const fail = (reason: MediaFailure['reason'], message: string) => finish({ ok: false, reason, message, mediaType: null });
    const timer = setTimeout(() => fail('timeout', `no poster frame after ${limits.timeoutSeconds} s`), limits.timeoutSeconds * 1000);
    // A 1600 px PNG is a few MB; more than 64 MB is not a frame of ours.
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > 64 * 1024 * 1024) fail('too_large', 'ffmpeg wrote more than a poster frame');
      else out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (errors.length < 4000) errors += chunk.toString('utf8');
    });
    child.on('error', (error) => fail('unsupported', `ffmpeg could not run: ${error.message}`));
    child.on('close', (code) => {
      const message = errors.split('\n').map((line) => line.trim()).filter(Boolean).slice(-3).join('; ');
      if (code === 0 && outBytes > 0) finish(Buffer.concat(out));
      else fail('corrupt', message || `ffmpeg found no video frame (exit code ${code})`);
    });
  });
}
