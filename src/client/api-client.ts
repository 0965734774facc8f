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

  /** Sends one chunk with PUT; `body` is the exact bytes. */
  async putChunk<T>(uploadId: string, offset: number, body: Uint8Array, sha256: Buffer, signal?: AbortSignal): Promise<T> {
    const response = await fetch(`${this.baseUrl}/uploads/${uploadId}/chunks/${offset}`, {
      method: 'PUT',
      headers: this.headers({ 'content-type': 'application/octet-stream', 'content-digest': `sha-256=:${sha256.toString('base64')}:` }),
      body: body as Uint8Array<ArrayBuffer>,
      signal,
    });
    const json = (await response.json().catch(() => ({}))) as T & { error?: { code: string; message: string } & Record<string, unknown> };
    if (!response.ok || json.error) {
      const { code = 'HTTP_ERROR', message = `HTTP ${response.status}`, ...details } = json.error ?? {};
      throw new ApiError(code, message, details);
    }
    return json;
  }
}
