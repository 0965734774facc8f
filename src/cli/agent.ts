import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiError, type ApiClient } from '../client/api-client.js';
import { subscriptionData } from '../client/live-client.js';
import { localAddresses } from '../client/local-network.js';
import type { SyncCounts } from '../protocol/sync-counts.js';
import { startAgentEndpoint } from './agent-endpoint.js';
import { describeResult } from './command.js';
import { CountingReporter } from './counting-reporter.js';
import { withLive } from './live.js';
import { push, StopRun, stopFor, type PushSummary } from './push.js';
import type { Reporter } from './reporter.js';
import type { SyncList } from './sync-list.js';

export interface OfferedFolder {
  /** How other devices name it (and the server folder it uploads into). */
  name: string;
  dir: string;
}

export interface AgentOptions {
  folders: OfferedFolder[];
  /** The local endpoint's port; 0 picks a free one (reported to the server either way). */
  port: number;
  concurrency: number;
  memoryBytes: number;
  /** Where the agent keeps the commands it runs, to pick them up again after a restart. */
  stateFile: string;
}

interface Command {
  id: string;
  status: 'PENDING' | 'RUNNING' | 'DONE' | 'FAILED' | 'CANCELLED' | 'EXPIRED';
  folder: string | null;
  since: string | null;
  path: 'DIRECT' | 'RELAYED' | null;
  deliverAfter: string;
  leaseUntil: string | null;
  requester: { name: string } | null;
}

const COMMAND = 'id status folder since path deliverAfter leaseUntil requester { name }';

/** A command this agent holds under its lease, running or waiting its turn. */
interface Held {
  command: Command;
  leaseId: string;
  progress: SyncCounts;
  folderIds: string[];
}

const ZERO: SyncCounts = { filesPlanned: 0, filesDone: 0, filesUploaded: 0, filesInstant: 0, filesInProgress: 0, filesPending: 0, filesFailed: 0, bytesPlanned: 0, bytesDone: 0 };

/**
 * `pixshare agent`: keeps this device reachable for commands from the account's other devices
 * (D2, D3). It announces where it listens and which folders it offers, holds one subscription for
 * the commands addressed to it, and serves a local endpoint other devices on its network hand
 * commands to directly. Each command is taken up under a lease (one agent wins, however many serve
 * the device), run as a normal push of the offered folder, reported as it goes, and ended once. A
 * command it was running when it stopped is picked up again when it starts (its lease is kept in
 * `stateFile`); one whose agent is gone for good is taken over once its lease runs out.
 */
export async function runAgent(api: ApiClient, syncList: SyncList, options: AgentOptions, report: Reporter, signal: AbortSignal): Promise<void> {
  let key: Buffer | null = null;
  let leaseSeconds = 60;
  const held = new Map<string, Held>();
  const timers = new Map<string, NodeJS.Timeout>();
  const queue: { command: Command; leaseId?: string; claimed?: boolean }[] = [];
  let wake: (() => void) | null = null;
  const runs = new RunsFile(options.stateFile);
  const resumable = await runs.orphaned();
  const say = (kind: string, command: Pick<Command, 'id'>, fields: Record<string, unknown>, sentence: string) =>
    report.result(kind, { commandId: command.id, ...fields }, `command ${command.id.slice(0, 8)}: ${sentence}`);

  const claim = async (command: Command, leaseId: string, direct?: { credential: string; expiresAt: number }): Promise<boolean> => {
    await runs.save(command.id, leaseId);
    try {
      const { claimDeviceCommand } = await api.graphql<{ claimDeviceCommand: Command }>(
        `mutation($id: ID!, $lease: String!, $path: DeviceCommandPath!, $credential: String, $expiresAt: Float) {
          claimDeviceCommand(id: $id, leaseId: $lease, path: $path, credential: $credential, credentialExpiresAt: $expiresAt) { ${COMMAND} } }`,
        { id: command.id, lease: leaseId, path: direct ? 'DIRECT' : 'RELAYED', credential: direct?.credential ?? null, expiresAt: direct?.expiresAt ?? null },
      );
      held.set(command.id, { command: claimDeviceCommand, leaseId, progress: ZERO, folderIds: [] });
      return true;
    } catch (error) {
      await runs.forget(command.id, leaseId);
      if (error instanceof ApiError && ['COMMAND_NOT_OPEN', 'COMMAND_NOT_DUE', 'NOT_FOUND'].includes(error.code)) return false;
      throw error;
    }
  };

  const enqueue = (item: (typeof queue)[number]) => {
    if (!item.claimed && held.has(item.command.id)) return;
    if (queue.some((q) => q.command.id === item.command.id)) return;
    queue.push(item);
    wake?.();
  };

  /** What the subscription says this device may take up: now, when its direct window ends, or when a stopped run's lease runs out. */
  const schedule = (commands: Command[]) => {
    for (const command of commands) {
      if (held.has(command.id) || queue.some((q) => q.command.id === command.id)) continue;
      clearTimeout(timers.get(command.id));
      timers.delete(command.id);
      const own = resumable.get(command.id);
      if (command.status === 'RUNNING' && own) {
        resumable.delete(command.id);
        enqueue({ command, leaseId: own });
        continue;
      }
      const due = command.status === 'PENDING' ? Date.parse(command.deliverAfter) : Date.parse(command.leaseUntil ?? '') + 1000;
      if (!Number.isFinite(due)) continue;
      const wait = due - Date.now();
      if (wait <= 0) enqueue({ command });
      else timers.set(command.id, setTimeout(() => (timers.delete(command.id), enqueue({ command })), Math.min(wait, 2 ** 31 - 1)));
    }
  };

  const sendReport = async (entry: Held) => {
    await api.graphql(`mutation($id: ID!, $lease: String!, $progress: SyncCountsInput!, $folders: [ID!]) { reportDeviceCommand(id: $id, leaseId: $lease, progress: $progress, folderIds: $folders) { id } }`, {
      id: entry.command.id,
      lease: entry.leaseId,
      progress: entry.progress,
      folders: entry.folderIds,
    });
  };

  const run = async (entry: Held) => {
    const { command } = entry;
    const from = command.requester ? ` from ${command.requester.name}` : '';
    say('command', command, { status: 'running', path: command.path?.toLowerCase() ?? null, folder: command.folder }, `upload ${command.folder ? `"${command.folder}"` : 'every offered folder'}${command.since ? ` since ${command.since}` : ''}${from}, ${command.path === 'DIRECT' ? 'handed over directly' : 'through the server'}`);
    const wanted = command.folder === null ? options.folders : options.folders.filter((f) => f.name === command.folder);
    const counter = new CountingReporter(report, (progress) => {
      entry.progress = progress;
      throttledReport(entry);
    });
    const total: PushSummary = { files: 0, uploaded: 0, instant: 0, exists: 0, unchanged: 0, failed: 0, skipped: 0, unreadable: 0, older: 0, sentBytes: 0 };
    let error: { code: string; message: string } | null = null;
    try {
      if (wanted.length === 0) throw new StopRun('FOLDER_NOT_OFFERED', `this agent no longer offers "${command.folder}"`, 1);
      for (const folder of wanted) {
        const { createFolder } = await api.graphql<{ createFolder: { id: string } }>('mutation($name: String!) { createFolder(name: $name) { id } }', { name: folder.name });
        entry.folderIds.push(createFolder.id);
      }
      await sendReport(entry);
      for (const folder of wanted) {
        const summary = await push(api, syncList, [folder.dir], { folder: folder.name, since: command.since ? new Date(command.since) : undefined, concurrency: options.concurrency, memoryBytes: options.memoryBytes }, counter);
        for (const key of Object.keys(total) as (keyof PushSummary)[]) total[key] += summary[key];
      }
    } catch (caught) {
      const stop = caught instanceof StopRun ? caught : stopFor(caught);
      error = { code: stop?.code ?? (caught instanceof ApiError ? caught.code : 'FAILED'), message: caught instanceof Error ? caught.message : String(caught) };
      if (caught instanceof ApiError && caught.code === 'COMMAND_LEASE_LOST') return;
    }
    const result = { files: total.files, uploaded: total.uploaded, instant: total.instant, exists: total.exists, unchanged: total.unchanged, failed: total.failed + total.unreadable, older: total.older, sentBytes: total.sentBytes };
    const { finishDeviceCommand } = await api.graphql<{ finishDeviceCommand: { status: string } }>(
      `mutation($id: ID!, $lease: String!, $result: DeviceCommandResultInput, $progress: SyncCountsInput, $error: DeviceCommandErrorInput) {
        finishDeviceCommand(id: $id, leaseId: $lease, result: $result, progress: $progress, error: $error) { status } }`,
      { id: command.id, lease: entry.leaseId, result: error ? null : result, progress: counter.counts(), error },
    );
    const sentence = error ? `failed: ${error.message}` : `${finishDeviceCommand.status.toLowerCase()}: ${describeResult(result)}`;
    say('command', command, { status: finishDeviceCommand.status.toLowerCase(), result, error }, sentence);
  };

  // Progress goes to the server at most once a second; the lease is renewed by every report.
  const lastReport = new Map<string, number>();
  const throttledReport = (entry: Held) => {
    const now = Date.now();
    if (now - (lastReport.get(entry.command.id) ?? 0) < 1000) return;
    lastReport.set(entry.command.id, now);
    sendReport(entry).catch(() => {});
  };
  const keeper = setInterval(() => {
    for (const entry of held.values()) sendReport(entry).catch(() => {});
  }, 5000);

  const endpoint = await startAgentEndpoint(options.port, () => key, async (request) => {
    const command = { id: request.commandId } as Command;
    try {
      const leaseId = randomBytes(16).toString('base64url');
      if (!(await claim(command, leaseId, { credential: request.credential, expiresAt: request.expiresAt }))) {
        return { status: 409, code: 'COMMAND_NOT_OPEN', message: 'The command cannot be taken up (it ran, runs elsewhere, was cancelled or expired)' };
      }
      clearTimeout(timers.get(command.id));
      enqueue({ command: held.get(command.id)!.command, claimed: true });
      return { status: 202 };
    } catch (error) {
      return { status: 502, code: error instanceof ApiError ? error.code : 'FAILED', message: error instanceof Error ? error.message : String(error) };
    }
  });

  const announce = async () => {
    const { announceAgent } = await api.graphql<{ announceAgent: { key: string; leaseSeconds: number } }>(
      'mutation($port: Int!, $addresses: [AgentAddressInput!]!, $folders: [String!]!) { announceAgent(port: $port, addresses: $addresses, folders: $folders) { key leaseSeconds } }',
      { port: endpoint.port, addresses: localAddresses(), folders: options.folders.map((f) => f.name) },
    );
    key = Buffer.from(announceAgent.key, 'base64url');
    leaseSeconds = announceAgent.leaseSeconds;
  };

  // Commands run one at a time, in the order they became due.
  const worker = (async () => {
    while (!signal.aborted) {
      const next = queue.shift();
      if (!next) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        continue;
      }
      if (!next.claimed && held.has(next.command.id)) continue;
      try {
        if (!next.claimed && !(await claim(next.command, next.leaseId ?? randomBytes(16).toString('base64url')))) continue;
        const entry = held.get(next.command.id)!;
        await run(entry);
      } catch (error) {
        say('error', next.command, { code: error instanceof ApiError ? error.code : 'FAILED' }, `could not run it: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        const entry = held.get(next.command.id);
        if (entry) await runs.forget(next.command.id, entry.leaseId);
        held.delete(next.command.id);
      }
    }
  })();

  try {
    await withLive(
      api,
      signal,
      async (live) => {
        await announce();
        report.result('agent', { port: endpoint.port, folders: options.folders.map((f) => f.name), leaseSeconds }, `agent online: offering ${options.folders.map((f) => `"${f.name}"`).join(', ') || 'no folder'}; direct commands on port ${endpoint.port} (Ctrl-C to stop)`);
        for await (const data of subscriptionData<{ commandsForThisDevice: Command[] }>(live, { query: `subscription { commandsForThisDevice { ${COMMAND} } }` }, signal)) schedule(data.commandsForThisDevice);
      },
      // A connection opened again: the addresses and folders are announced again (the network may have changed).
      { connected: () => void announce().catch(() => {}) },
    );
  } finally {
    clearInterval(keeper);
    for (const timer of timers.values()) clearTimeout(timer);
    (wake as (() => void) | null)?.();
    await endpoint.close();
    void worker;
  }
}

/**
 * The commands this agent holds, with their leases, in a small JSON file (written whole, renamed
 * into place, one write at a time): after a restart it picks its runs up again at once.
 */
class RunsFile {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly file: string) {}

  /** Runs held by an agent that is gone (a process no longer alive), by command id: those to resume. */
  async orphaned(): Promise<Map<string, string>> {
    const runs = new Map<string, string>();
    for (const [id, entry] of Object.entries(await this.read())) if (!alive(entry.pid)) runs.set(id, entry.leaseId);
    return runs;
  }

  save(commandId: string, leaseId: string): Promise<void> {
    return this.change((state) => void (state[commandId] = { leaseId, pid: process.pid }));
  }

  /** Forgets the run, if it is still this lease's. */
  forget(commandId: string, leaseId: string): Promise<void> {
    return this.change((state) => {
      if (state[commandId]?.leaseId === leaseId) delete state[commandId];
    });
  }

  private change(edit: (state: Record<string, { leaseId: string; pid: number }>) => void): Promise<void> {
    const next = this.chain.then(async () => {
      const state = await this.read();
      edit(state);
      const temporary = `${this.file}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify(state), { mode: 0o600 });
      await rename(temporary, this.file);
    });
    this.chain = next.catch(() => {});
    return next;
  }

  private async read(): Promise<Record<string, { leaseId: string; pid: number }>> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as Record<string, { leaseId: string; pid: number }>;
    } catch {
      return {};
    }
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const agentStateFile = (configDir: string) => path.join(configDir, 'agent-commands.json');
