import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkDirectCredential, DIRECT_COMMAND_MAX_BYTES, DIRECT_COMMAND_PATH, parseDirectCommandRequest, type DirectCommandRequest } from '../protocol/direct-command.js';

/** What the agent does with a command handed over directly, once its credential checked out. */
export type TakeDirect = (request: DirectCommandRequest) => Promise<{ status: 202 } | { status: 409 | 502; code: string; message: string }>;

export interface AgentEndpoint {
  port: number;
  close(): Promise<void>;
}

/**
 * The agent's local endpoint (D3, protocol/direct-command.ts): one route, a small JSON body, the
 * credential checked against the agent's key before anything else happens. Listens on every
 * interface (the requester may be on any of this machine's networks), IPv6 and IPv4.
 */
export async function startAgentEndpoint(port: number, key: () => Buffer | null, take: TakeDirect): Promise<AgentEndpoint> {
  const server = http.createServer((req, res) => {
    const answer = (status: number, body: object) => {
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify(body));
    };
    if (req.url !== DIRECT_COMMAND_PATH) return answer(404, { error: { code: 'NOT_FOUND', message: 'Nothing here' } });
    if (req.method !== 'POST') return answer(405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'POST a command' } });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > DIRECT_COMMAND_MAX_BYTES) {
        answer(413, { error: { code: 'PAYLOAD_TOO_LARGE', message: `At most ${DIRECT_COMMAND_MAX_BYTES} bytes` } });
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let request: DirectCommandRequest | null = null;
      try {
        request = parseDirectCommandRequest(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        request = null;
      }
      if (!request) return answer(400, { error: { code: 'BAD_USER_INPUT', message: 'Expected { commandId, expiresAt, credential }' } });
      const agentKey = key();
      if (!agentKey || !checkDirectCredential(agentKey, request)) return answer(401, { error: { code: 'BAD_CREDENTIAL', message: 'The credential does not check out or has expired' } });
      take(request).then(
        (outcome) => (outcome.status === 202 ? answer(202, { accepted: true }) : answer(outcome.status, { error: { code: outcome.code, message: outcome.message } })),
        (error: unknown) => answer(502, { error: { code: 'AGENT_ERROR', message: error instanceof Error ? error.message : String(error) } }),
      );
    });
    req.on('error', () => res.destroy());
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '::', ipv6Only: false }, () => resolve());
  }).catch(
    // A machine without IPv6: IPv4 only.
    () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: '0.0.0.0' }, () => resolve());
      }),
  );
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
