import { connect, type Socket } from 'node:net';

// A raw TCP client for HTTP tests that HTTP clients cannot write: a body sent a byte at a time, a
// connection left silent, headers without a body. Tests call destroyRawSockets() after each test.

const sockets: Socket[] = [];

/** Close every raw connection the test opened. */
export function destroyRawSockets(): void {
  for (const s of sockets.splice(0)) s.destroy();
}

/** A raw TCP client: what it received, and when the server closed it (ms after it connected). */
export interface Raw {
  readonly socket: Socket;
  readonly received: () => string;
  readonly closed: Promise<number>;
  readonly isClosed: () => boolean;
}

export function rawConnect(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    let data = '';
    let isClosed = false;
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', () => undefined);
    const closed = new Promise<number>((r) =>
      socket.once('close', () => {
        isClosed = true;
        r(Date.now() - t0);
      }),
    );
    socket.once('connect', () => resolve({ socket, received: () => data, closed, isClosed: () => isClosed }));
    socket.once('error', reject);
  });
}

/** Send one byte every intervalMs until the connection closes; returns the stop. */
export function trickle(c: Raw, intervalMs = 100): () => void {
  const t = setInterval(() => {
    if (c.isClosed() || c.socket.destroyed) return clearInterval(t);
    c.socket.write('a');
  }, intervalMs);
  return () => clearInterval(t);
}

/** The head of a webhook POST announcing a body of `length` bytes. */
export function postHead(token: string, length: number, path = '/zabbix/webhook'): string {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
}

/** The promise, or a rejection naming what did not happen within ms. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_r, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms).unref())]);
}
