import type { ApiClient } from '../client/api-client.js';
import { openLive, type LiveClient } from '../client/live-client.js';
import { loginRefused } from './push.js';

/**
 * Runs `work` over a live connection to the server (graphql-ws), closed afterwards; a token the
 * server refuses on it ends the command like any refused login (exit code 3).
 */
export async function withLive<T>(api: ApiClient, signal: AbortSignal, work: (live: LiveClient) => Promise<T>, on?: { connected?(): void }): Promise<T> {
  const live = openLive(api, signal, on);
  try {
    const result = await work(live);
    if (live.refused) throw loginRefused();
    return result;
  } catch (error) {
    if (live.refused) throw loginRefused();
    throw error;
  } finally {
    await live.dispose();
  }
}
