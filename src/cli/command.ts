import type { ApiClient } from '../client/api-client.js';
import { subscriptionData } from '../client/live-client.js';
import { handOverDirectly, type LocalAddress } from '../client/local-network.js';
import type { SyncCounts } from '../protocol/sync-counts.js';
import { withLive } from './live.js';
import { StopRun } from './push.js';
import type { Reporter } from './reporter.js';

interface Device {
  id: string;
  name: string;
  platform: string;
  kind: string;
  online: boolean;
  current: boolean;
  lastSeenAt: string;
  agent: { folders: string[]; seenAt: string } | null;
}

const DEVICE = 'id name platform kind online current lastSeenAt agent { folders seenAt }';

type Status = 'PENDING' | 'RUNNING' | 'DONE' | 'FAILED' | 'CANCELLED' | 'EXPIRED';
const ENDED: Status[] = ['DONE', 'FAILED', 'CANCELLED', 'EXPIRED'];

interface CommandState {
  id: string;
  status: Status;
  path: 'DIRECT' | 'RELAYED' | null;
  attempts: number;
  progress: SyncCounts | null;
  result: { files: number; uploaded: number; instant: number; exists: number; unchanged: number; failed: number; older: number; sentBytes: number } | null;
  error: { code: string; message: string } | null;
}

const STATE = 'id status path attempts progress { filesPlanned filesDone filesUploaded filesInstant filesInProgress filesPending filesFailed bytesPlanned bytesDone } result { files uploaded instant exists unchanged failed older sentBytes } error { code message }';

/** `pixshare devices`: the account's devices (the control list), and what each agent offers. */
export async function listDevices(api: ApiClient, report: Reporter): Promise<void> {
  const { devices } = await api.graphql<{ devices: Device[] }>(`{ devices { ${DEVICE} } }`);
  for (const d of devices) {
    const offers = d.agent ? `; agent offers ${d.agent.folders.map((f) => `"${f}"`).join(', ') || 'no folder'}` : '';
    report.result('device', { ...d }, `${d.current ? '*' : ' '} ${d.name} (${d.platform}, ${d.kind}) — ${d.online ? 'online' : `last seen ${d.lastSeenAt}`}${offers}  [${d.id}]`);
  }
}

/** A device of the account by id, or by name (whole, any case); a clear error otherwise. */
async function findDevice(api: ApiClient, wanted: string): Promise<Device> {
  const { devices } = await api.graphql<{ devices: Device[] }>(`{ devices { ${DEVICE} } }`);
  const byId = devices.find((d) => d.id === wanted);
  if (byId) return byId;
  const named = devices.filter((d) => d.name.toLowerCase() === wanted.toLowerCase());
  if (named.length === 1) return named[0]!;
  const known = devices.map((d) => `"${d.name}"`).join(', ');
  if (named.length > 1) throw new StopRun('AMBIGUOUS_DEVICE', `${named.length} devices are named "${wanted}": give its id (pixshare devices lists them)`, 2);
  throw new StopRun('NOT_FOUND', `no device named "${wanted}" (yours: ${known || 'none'})`, 1);
}

/**
 * `pixshare command <device> upload`: asks another of the account's devices to upload a folder it
 * offers, or what it took since a time (D2). On the same network the command is handed to its
 * agent directly (D3); if that fails, or the devices are apart, the server delivers it. Then the
 * command is followed live until it ends (unless `wait` is false). Exit 0 done, 1 failed or expired.
 */
export async function giveCommand(api: ApiClient, deviceName: string, options: { folder?: string; since?: Date; wait: boolean; direct: boolean }, report: Reporter, signal: AbortSignal): Promise<void> {
  const device = await findDevice(api, deviceName);
  const { commandDevice } = await api.graphql<{ commandDevice: { command: CommandState; direct: { addresses: LocalAddress[]; port: number; credential: string; expiresAt: number } | null } }>(
    `mutation($device: ID!, $folder: String, $since: DateTime) { commandDevice(deviceId: $device, folder: $folder, since: $since) {
      command { ${STATE} } direct { addresses { address prefixLength } port credential expiresAt } } }`,
    { device: device.id, folder: options.folder ?? null, since: options.since?.toISOString() ?? null },
  );
  const { command, direct } = commandDevice;
  const what = `upload ${options.folder ? `"${options.folder}"` : 'every folder it offers'}${options.since ? ` since ${options.since.toLocaleString()}` : ''}`;
  report.result('given', { commandId: command.id, deviceId: device.id, device: device.name }, `asked ${device.name} to ${what} (command ${command.id.slice(0, 8)})`);

  if (direct && options.direct) {
    const outcome = await handOverDirectly(direct, { commandId: command.id, credential: direct.credential, expiresAt: direct.expiresAt });
    if (outcome.ok) report.result('delivery', { path: 'direct', address: outcome.address, ms: Math.round(outcome.ms) }, `handed over directly to ${outcome.address} in ${Math.round(outcome.ms)} ms`);
    else {
      await api.graphql(`mutation($id: ID!) { relayDeviceCommand(id: $id) { id } }`, { id: command.id });
      report.result('delivery', { path: 'relayed', directFailures: outcome.reasons }, `not reachable directly (${outcome.reasons.join('; ') || 'no answer'}): sent through the server`);
    }
  } else {
    if (direct) await api.graphql(`mutation($id: ID!) { relayDeviceCommand(id: $id) { id } }`, { id: command.id });
    report.result('delivery', { path: 'relayed' }, `sent through the server${device.online ? '' : `; ${device.name} is offline: it runs when its agent next connects`}`);
  }
  if (!options.wait) return;

  let last = '';
  const final = await withLive(api, signal, async (live) => {
    for await (const data of subscriptionData<{ deviceCommand: CommandState }>(live, { query: `subscription($id: ID!) { deviceCommand(id: $id) { ${STATE} } }`, variables: { id: command.id } }, signal)) {
      const state = data.deviceCommand;
      const sentence = describe(state);
      if (sentence !== last) {
        last = sentence;
        report.result('command', { commandId: state.id, status: state.status.toLowerCase(), path: state.path?.toLowerCase() ?? null, attempts: state.attempts, progress: state.progress, result: state.result, error: state.error }, sentence);
      }
      if (ENDED.includes(state.status)) return state;
    }
    return null;
  });
  if (final && final.status !== 'DONE') throw new StopRun(final.error?.code ?? final.status, `the command ${final.status.toLowerCase()}${final.error ? `: ${final.error.message}` : ''}`, 1);
}

function describe(state: CommandState): string {
  const p = state.progress;
  switch (state.status) {
    case 'PENDING':
      return 'waiting for the device to take it up';
    case 'RUNNING':
      return p && p.filesPlanned > 0
        ? `running (${state.path?.toLowerCase()}): ${p.filesDone} of ${p.filesPlanned} stored${p.filesFailed ? `, ${p.filesFailed} failed` : ''} — ${(p.bytesDone / 1e6).toFixed(1)} of ${(p.bytesPlanned / 1e6).toFixed(1)} MB`
        : `running (${state.path?.toLowerCase()})`;
    case 'DONE': {
      const r = state.result;
      return r ? `done: ${describeResult(r)}; ${(r.sentBytes / 1e6).toFixed(1)} MB sent` : 'done';
    }
    default:
      return `${state.status.toLowerCase()}${state.error ? `: ${state.error.message}` : ''}`;
  }
}

/** "19 files, 3 sent, 16 already on the server": what a run did, as the agent and the requester say it. */
export function describeResult(r: { files: number; uploaded: number; instant: number; exists: number; unchanged: number; failed: number; older: number }): string {
  return (
    `${r.files} files, ${r.uploaded} sent, ${r.instant + r.exists} already on the server, ${r.unchanged} unchanged` +
    `${r.older ? `, ${r.older} taken before the time asked` : ''}${r.failed ? `, ${r.failed} failed` : ''}`
  );
}
