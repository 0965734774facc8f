import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export type JsonLine = Record<string, unknown>;

const bin = path.resolve('bin/pixshare.js');

const parseLines = (text: string): JsonLine[] =>
  text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as JsonLine);

/** The real `pixshare` command as a subprocess, as a person or a script runs it, to its end. */
export async function pixshare(args: string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string; lines: JsonLine[] }> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(options.input ?? '');
  const code = await new Promise<number>((resolve) => child.on('close', (exit) => resolve(exit ?? -1)));
  return { code, stdout, stderr, lines: parseLines(stdout) };
}

/** A long-running `pixshare` (watch, agent, status --follow) as its own process: its JSON lines as they come. */
export function startPixshare(args: string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, [bin, '--json', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: JsonLine[] = [];
  let stderr = '';
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parseLines(parts.join('\n')));
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const until = async (test: (line: JsonLine) => boolean, what: string, timeoutMs = 30_000) => {
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const found = lines.find(test);
      if (found) return found;
      if (child.exitCode !== null || child.signalCode !== null) break;
    }
    throw new Error(`no ${what} within ${timeoutMs} ms; lines: ${JSON.stringify(lines)}; stderr: ${stderr}`);
  };
  return { child, lines, until, exited, stderr: () => stderr };
}
