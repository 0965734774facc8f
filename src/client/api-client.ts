import http from 'node:http';
import https from 'node:https';

// Keep-alive connections for chunk PUTs, like fetch's pool does for the GraphQL requests.
const httpAgent = new http.Agent({ keepAlive: true });
const httpsAgent = new https.Agent({ keepAlive: true });

/**
 * A small client for the pixshare API: GraphQL over fetch with a device token,
 * plus the streaming chunk PUT. The command-line tool and the benchmarks use it,
 * exactly as any other client would.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  async graphql<T>(query: string, variables: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
    const response = await fetch(`${this.baseUrl}/graphql`, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' }),
      body: JSON.stringify({ query, variables }),
      signal,
    });
    const text = await response.text();
    let body: { data?: T | null; errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[] };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new ApiError('BAD_RESPONSE', `HTTP ${response.status}: ${text.slice(0, 200)}`);
    }
    const error = body.errors?.[0];
    if (error) throw new ApiError(error.extensions?.code ?? 'UNKNOWN', error.message, error.extensions ?? {});
    return body.data as T;
  }

  /**
   * Sends one chunk with PUT; `body` is the exact bytes. Through node:http rather than
   * fetch: fetch copies a byte body twice before sending it, which for 64 MiB chunks
   * costs as much CPU as hashing them.
   */
  async putChunk<T>(uploadId: string, offset: number, body: Uint8Array, sha256: Uint8Array, signal?: AbortSignal): Promise<T> {
    const url = new URL(`${this.baseUrl}/uploads/${uploadId}/chunks/${offset}`);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'PUT',
          agent: url.protocol === 'https:' ? httpsAgent : httpAgent,
          signal,
          headers: this.headers({
            'content-type': 'application/octet-stream',
            'content-length': String(body.byteLength),
            'content-digest': `sha-256=:${Buffer.from(sha256).toString('base64')}:`,
          }),
        },
        (response) => {
          const parts: Buffer[] = [];
          response.on('data', (part: Buffer) => parts.push(part));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
          response.on('error', reject);
        },
      );
      request.on('error', (error) => reject(error.name === 'AbortError' ? error : new TypeError(`PUT failed: ${error.message}`, { cause: error })));
      request.end(body);
    });
    let json: T & { error?: { code: string; message: string } & Record<string, unknown> };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new ApiError('HTTP_ERROR', `HTTP ${status}: ${text.slice(0, 200)}`);
    }
    if (status >= 300 || json.error) {
      const { code = 'HTTP_ERROR', message = `HTTP ${status}`, ...details } = json.error ?? {};
      throw new ApiError(code, message, details);
    }
    return json;
  }
}
