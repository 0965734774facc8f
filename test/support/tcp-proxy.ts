import net from 'node:net';

/**
 * A TCP proxy in front of the server, standing in for the network between a client and it:
 * counts the bytes clients send through it, can hold them to a rate (one limit for all
 * connections together, like a link; changeable at any time) and can cut every connection.
 */
export interface TcpProxy {
  url: string;
  /** Bytes clients sent through the proxy since it started or since `reset`. */
  sent(): number;
  reset(): void;
  /** Client-to-server bytes per second from now on; Infinity for no limit. */
  setRate(bytesPerSecond: number): void;
  /** Drops every open connection at once (both sides see a reset). */
  cutAll(): void;
  /** Called with the running byte count after every piece a client sends. */
  onSent?: (sent: number) => void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: URL): Promise<TcpProxy> {
  let sent = 0;
  let rate = Infinity;
  /** When the link is free again (shared by all connections). */
  let freeAt = 0;
  const sockets = new Set<net.Socket>();
  const proxy: TcpProxy = {
    url: '',
    sent: () => sent,
    reset: () => void (sent = 0),
    setRate: (bytesPerSecond) => {
      rate = bytesPerSecond;
      freeAt = 0;
    },
    cutAll: () => {
      for (const socket of sockets) socket.resetAndDestroy();
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    // Reading from the client waits for the server to take what it got, and for the link.
    let holds = 0;
    const hold = () => {
      if (holds++ === 0) client.pause();
    };
    const letGo = () => {
      if (--holds === 0) client.resume();
    };
    client.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (!upstream.write(chunk)) {
        hold();
        upstream.once('drain', letGo);
      }
      proxy.onSent?.(sent);
      if (Number.isFinite(rate)) {
        // The piece takes its time on the link: nothing more is read from this client until then.
        const now = Date.now();
        freeAt = Math.max(freeAt, now) + (chunk.length / rate) * 1000;
        hold();
        setTimeout(letGo, freeAt - now);
      }
    });
    upstream.pipe(client);
    const end = () => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end).on('end', () => upstream.end());
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return proxy;
}
