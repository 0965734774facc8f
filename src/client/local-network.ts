import http from 'node:http';
import { BlockList, isIPv6 } from 'node:net';
import os from 'node:os';
import { DIRECT_COMMAND_PATH, type DirectCommandRequest } from '../protocol/direct-command.js';

/** A local address with its subnet, as an agent reports it and a requester ranks it. */
export interface LocalAddress {
  address: string;
  prefixLength: number;
}

type Interfaces = ReturnType<typeof os.networkInterfaces>;

/**
 * The addresses this machine can be reached on from its networks, loopback included (two agents on
 * one machine are on the same network); IPv6 link-local addresses are left out (dialling them
 * needs the interface, which the other side cannot know).
 */
export function localAddresses(interfaces: Interfaces = os.networkInterfaces()): LocalAddress[] {
  const found: LocalAddress[] = [];
  for (const entries of Object.values(interfaces)) {
    for (const entry of entries ?? []) {
      if (entry.family === 'IPv6' && /^fe[89ab]/i.test(entry.address)) continue;
      const prefixLength = Number(entry.cidr?.split('/')[1] ?? (entry.family === 'IPv4' ? 32 : 128));
      found.push({ address: entry.address, prefixLength });
    }
  }
  return found;
}

/**
 * The target's addresses in the order to dial them, as Syncthing ranks them: those inside a subnet
 * of one of this machine's own interfaces first (the same network), the others after, each group
 * in the order reported.
 */
export function rankAddresses<T extends LocalAddress>(addresses: readonly T[], own: readonly LocalAddress[] = localAddresses()): { near: T[]; far: T[] } {
  const subnets = new BlockList();
  for (const mine of own) subnets.addSubnet(mine.address, mine.prefixLength, isIPv6(mine.address) ? 'ipv6' : 'ipv4');
  const near: T[] = [];
  const far: T[] = [];
  for (const candidate of addresses) (subnets.check(candidate.address, isIPv6(candidate.address) ? 'ipv6' : 'ipv4') ? near : far).push(candidate);
  return { near, far };
}

/** How the direct handover went: which address answered, or why none did. */
export type HandoverOutcome = { ok: true; address: string; ms: number } | { ok: false; reasons: string[] };

/** Addresses outside this machine's subnets are dialled this long after those inside. */
const FAR_DELAY_MS = 250;

/**
 * Hands a command to an agent over the local network (D3): its addresses dialled in parallel —
 * those on this machine's own subnets at once, the others a moment later — and the first agent
 * that takes the command up (202) wins; the other attempts are cancelled. Gives up after
 * `timeoutMs` or when every address has failed; the caller then has the server relay it.
 */
export async function handOverDirectly(target: { addresses: readonly LocalAddress[]; port: number }, request: DirectCommandRequest, options: { timeoutMs?: number; own?: readonly LocalAddress[] } = {}): Promise<HandoverOutcome> {
  const { near, far } = rankAddresses(target.addresses, options.own);
  const ordered = [...near.map((a) => ({ ...a, delay: 0 })), ...far.map((a) => ({ ...a, delay: near.length ? FAR_DELAY_MS : 0 }))];
  if (ordered.length === 0) return { ok: false, reasons: ['the agent reported no addresses'] };
  const started = performance.now();
  const stop = new AbortController();
  const overall = setTimeout(() => stop.abort(), options.timeoutMs ?? 3000);
  const reasons: string[] = [];
  const body = JSON.stringify(request);
  try {
    const address = await Promise.any(
      ordered.map(async (candidate) => {
        if (candidate.delay) await new Promise((resolve) => setTimeout(resolve, candidate.delay));
        if (stop.signal.aborted) throw new Error('cancelled');
        try {
          await post(candidate.address, target.port, body, stop.signal);
          return candidate.address;
        } catch (error) {
          reasons.push(`${candidate.address}: ${error instanceof Error ? error.message : String(error)}`);
          throw error;
        }
      }),
    );
    return { ok: true, address, ms: performance.now() - started };
  } catch {
    return { ok: false, reasons: stop.signal.aborted && reasons.length < ordered.length ? [...reasons, 'no answer in time'] : reasons };
  } finally {
    clearTimeout(overall);
    stop.abort();
  }
}

/** One POST to an agent's endpoint; resolves on 202, rejects with the agent's answer otherwise. */
function post(address: string, port: number, body: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: address, family: isIPv6(address) ? 6 : 4, port, path: DIRECT_COMMAND_PATH, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, signal, agent: false },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (piece: string) => (text = (text + piece).slice(0, 4096)));
        response.on('end', () => {
          if (response.statusCode === 202) return resolve();
          let message = `HTTP ${response.statusCode}`;
          try {
            const error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
            if (error?.code) message = `${error.code}: ${error.message ?? ''}`;
          } catch {
            // not JSON: the status says enough
          }
          reject(new Error(message));
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}
