import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The agent's local endpoint (D3): a device on the same network hands a command to another
 * device's agent directly. The server issues the credential to both sides: the agent gets its key
 * when it announces itself, the requester gets, with each command it gives, a credential for that
 * command only, valid for a minute — an HMAC of the command under the agent's key, so the agent
 * checks it without asking anyone, and it is worth nothing for any other command or device.
 *
 * Protocol: `POST /pixshare-agent/v1/commands` with a JSON body `DirectCommandRequest`. Answers:
 * 202 and `{ accepted: true, deviceId }` once the agent has taken the command up; 401 for a
 * credential that does not check out (or has expired); 409 when the command cannot be taken (it
 * ran already, or was cancelled or expired); 400 for a malformed body.
 */
export const DIRECT_COMMAND_PATH = '/pixshare-agent/v1/commands';

export interface DirectCommandRequest {
  commandId: string;
  /** When the credential stops working, in ms since the epoch. */
  expiresAt: number;
  credential: string;
}

/** Largest body the endpoint reads. */
export const DIRECT_COMMAND_MAX_BYTES = 4096;

export function directCredential(agentKey: Buffer, commandId: string, expiresAt: number): string {
  return createHmac('sha256', agentKey).update(`pixshare direct command\n${commandId}\n${expiresAt}`).digest('base64url');
}

/** The credential is the one the server issued for this command under this key, and still valid at `now`. */
export function checkDirectCredential(agentKey: Buffer, request: DirectCommandRequest, now = Date.now()): boolean {
  if (!Number.isSafeInteger(request.expiresAt) || request.expiresAt < now) return false;
  const expected = Buffer.from(directCredential(agentKey, request.commandId, request.expiresAt));
  const given = Buffer.from(String(request.credential));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A request body as it arrived: the shape checked, else null. */
export function parseDirectCommandRequest(body: unknown): DirectCommandRequest | null {
  if (typeof body !== 'object' || body === null) return null;
  const { commandId, expiresAt, credential } = body as Record<string, unknown>;
  if (typeof commandId !== 'string' || !/^[0-9a-f-]{36}$/i.test(commandId)) return null;
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt)) return null;
  if (typeof credential !== 'string' || credential.length > 100) return null;
  return { commandId, expiresAt, credential };
}
