import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The listener's open connections, and which of them carry accepted work (a
 * webhook whose body was read and is being committed). At stop every other
 * connection is closed at once — idle keep-alive ones, and slow senders that
 * would otherwise hold the daemon until their request timeout — while the
 * accepted ones get their answer (sent with `Connection: close`) first.
 */
export class Connections {
  readonly #open = new Set<Socket>();
  /** Sockets with a request in its handler, and how many (pipelining). */
  readonly #busy = new Map<Socket, number>();
  /** Answers sent on each socket (for webhook.max_requests_per_socket). */
  readonly #answers = new Map<Socket, number>();
  #closing = false;
  readonly #maxRequestsPerSocket: number;

  /** maxRequestsPerSocket: answers one connection may carry (webhook.max_requests_per_socket; 0: no cap). */
  constructor(server: Server, maxRequestsPerSocket: number) {
    this.#maxRequestsPerSocket = maxRequestsPerSocket;
    server.on('connection', (socket: Socket) => {
      // Accepted after closeIdle() (between the preClose hook and the listener's close): not served.
      if (this.#closing) {
        socket.destroy();
        return;
      }
      this.#open.add(socket);
      socket.once('close', () => {
        this.#open.delete(socket);
        this.#busy.delete(socket);
        this.#answers.delete(socket);
      });
    });
  }

  get closing(): boolean {
    return this.#closing;
  }

  get size(): number {
    return this.#open.size;
  }

  /** The socket carries accepted work until done() is called. */
  busy(socket: Socket): void {
    this.#busy.set(socket, (this.#busy.get(socket) ?? 0) + 1);
  }

  done(socket: Socket): void {
    const n = (this.#busy.get(socket) ?? 1) - 1;
    if (n > 0) this.#busy.set(socket, n);
    else this.#busy.delete(socket);
  }

  /**
   * One more answer goes out on the socket; whether it must close the connection: the bridge is stopping, or it
   * is the last answer the connection may carry. Node answers a request over max_requests_per_socket with 503 but
   * leaves the connection open until the keep-alive timeout: it is closed after the last answer instead.
   */
  answer(socket: Socket): boolean {
    const n = (this.#answers.get(socket) ?? 0) + 1;
    if (this.#open.has(socket)) this.#answers.set(socket, n);
    return this.#closing || (this.#maxRequestsPerSocket > 0 && n >= this.#maxRequestsPerSocket);
  }

  /** Stop: close every connection that carries no accepted work, now and as they come. Returns how many were closed. */
  closeIdle(): number {
    this.#closing = true;
    let closed = 0;
    for (const socket of this.#open) {
      if (this.#busy.has(socket)) continue;
      socket.destroy();
      closed++;
    }
    return closed;
  }
}
