import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { mediaTypeFromName } from '../protocol/media-types.js';

export interface FoundFile {
  /** Absolute path. */
  path: string;
  /** The folder it goes into on the server: the tree's own name unless one was given. */
  folder: string;
  size: number;
  mtimeMs: number;
  inode: number;
}

export interface WalkOptions {
  folder?: string;
  /** Folders (absolute paths) never walked into, e.g. where watch moves what it sent. */
  excludeDirs?: string[];
  /** Glob patterns of files and folders to leave out ('*.tmp', 'Thumbs', 'raw/**'): a pattern without a slash matches a name anywhere. */
  ignore?: string[];
  /** Every file, not only photos and videos. */
  all?: boolean;
  includeHidden?: boolean;
}

export interface WalkResult {
  files: FoundFile[];
  /** Files left out because they are not photos or videos (without --all). */
  skipped: number;
  /** Paths that could not be read, with why. */
  unreadable: { path: string; message: string }[];
}

/**
 * The files of the given paths: a file as it is, a folder with everything below it (symbolic links
 * are not followed, so a link cannot lead the walk in circles). A folder's files go into a server
 * folder named after it unless `folder` names one; loose files into `folder` or none.
 */
export async function findFiles(paths: string[], options: WalkOptions): Promise<WalkResult> {
  const result: WalkResult = { files: [], skipped: 0, unreadable: [] };
  const ignored = ignoreMatcher(options.ignore);
  const add = (file: string, folder: string, info: { size: number; mtimeMs: number; ino: number }) => {
    if (!options.all && !mediaTypeFromName(file)) {
      result.skipped++;
      return;
    }
    result.files.push({ path: file, folder, size: info.size, mtimeMs: info.mtimeMs, inode: info.ino });
  };
  const walk = async (dir: string, folder: string, top: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      result.unreadable.push({ path: dir, message: errorMessage(error) });
      return;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!options.includeHidden && entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (ignored(path.relative(top, full)) || (entry.isDirectory() && options.excludeDirs?.includes(full))) continue;
      if (entry.isDirectory()) await walk(full, folder, top);
      else if (entry.isFile()) {
        try {
          add(full, folder, await stat(full));
        } catch (error) {
          result.unreadable.push({ path: full, message: errorMessage(error) });
        }
      }
    }
  };
  for (const given of paths) {
    const full = path.resolve(given);
    let info;
    try {
      info = await lstat(full);
      if (info.isSymbolicLink()) info = await stat(full);
    } catch (error) {
      result.unreadable.push({ path: full, message: errorMessage(error) });
      continue;
    }
    if (info.isDirectory()) await walk(full, options.folder ?? path.basename(full), full);
    else if (info.isFile() && !ignored(path.basename(full))) add(full, options.folder ?? '', info);
  }
  return result;
}

/** Whether a path (relative to the tree walked, '/'-separated or not) is left out by the patterns. */
export function ignoreMatcher(patterns: string[] = []): (relative: string) => boolean {
  if (patterns.length === 0) return () => false;
  const match = picomatch(patterns, { dot: true, basename: true });
  return (relative) => match(relative.split(path.sep).join('/'));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
