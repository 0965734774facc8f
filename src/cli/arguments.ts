import { stat } from 'node:fs/promises';
import path from 'node:path';
import { CommanderError, InvalidArgumentError } from 'commander';
import { parseSince } from './capture-time.js';

// What the `pixshare` commands share besides their actions: argument parsers, the exit codes, and
// how a long-running command ends on Ctrl-C.

/** Exit codes: 0 done, 1 some files failed, 2 usage, 3 cannot reach the server or it does not take our login. */
export const EXIT = { done: 0, someFailed: 1, usage: 2, unreachable: 3 } as const;

export const positiveInt = (value: string) => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > 64) throw new InvalidArgumentError('a whole number from 1 to 64');
  return number;
};

/** Runs `work` with a signal that Ctrl-C (SIGINT) or SIGTERM aborts: long-running commands end cleanly. */
export async function untilInterrupted<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    return await work(stop.signal);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

export function portArg(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidArgumentError('a port number from 0 to 65535');
  return port;
}

/** --folder of the agent: DIR or NAME=DIR, each an existing directory, names distinct. */
export async function offeredFolders(values: string[]): Promise<{ name: string; dir: string }[]> {
  const folders: { name: string; dir: string }[] = [];
  for (const value of values) {
    const split = /^([^=/\\]+)=(.+)$/.exec(value);
    const dir = path.resolve(split ? split[2]! : value);
    const name = split ? split[1]!.trim() : path.basename(dir);
    const info = await stat(dir).catch(() => null);
    if (!info?.isDirectory()) throw new CommanderError(EXIT.usage, 'pixshare.usage', `--folder ${value}: not a directory`);
    if (!name || name.length > 200) throw new CommanderError(EXIT.usage, 'pixshare.usage', `--folder ${value}: a name of 1 to 200 characters is needed (NAME=DIR)`);
    if (folders.some((f) => f.name === name)) throw new CommanderError(EXIT.usage, 'pixshare.usage', `two folders named "${name}": name them (NAME=DIR)`);
    folders.push({ name, dir });
  }
  return folders;
}

export function memoryArg(value: string): number {
  const mib = Number(value);
  if (!Number.isInteger(mib) || mib < 4 || mib > 65_536) throw new InvalidArgumentError('a whole number of MiB from 4 to 65536');
  return mib;
}

export function periodArg(value: string): number {
  const match = /^(\d+)\s*(ms|s|m|h)$/i.exec(value.trim());
  if (!match || Number(match[1]) === 0) throw new InvalidArgumentError('a period like 30s, 10m or 1h');
  return Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2]!.toLowerCase() as 'ms' | 's' | 'm' | 'h'];
}

export function sinceArg(value: string): Date {
  const since = parseSince(value);
  if (!since) throw new InvalidArgumentError('a period like 7d, 12h, 2w, 3m, 1y, or a date like 2026-11-01');
  return since;
}

/** Standard input's lines when it is not a terminal (answers piped in by a script), read by one reader for all questions. */
