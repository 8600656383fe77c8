import { Duplex } from 'node:stream';

/** The largest packet of a connection that has not logged in: a bigger CONNECT closes it at once. */
export const MAX_PACKET_BEFORE_LOGIN = 64 * 1024;
/** The largest packet of a logged-in device. */
export const MAX_PACKET_AFTER_LOGIN = 1024 * 1024;

/** The fixed header's remaining length takes at most 4 bytes (MQTT 3.1.1 §2.2.3). */
const MAX_LENGTH_BYTES = 4;

/**
 * A socket as the embedded broker reads it, with each packet's announced size checked before any
 * of its body is buffered: a packet over the limit destroys the socket. The broker parses whole
 * packets only, so without this a client could make it hold up to 256 MB per connection.
 */
export class PacketLimiter extends Duplex {
  readonly #socket: Duplex;
  #limit = MAX_PACKET_BEFORE_LOGIN;
  /** Where the next byte belongs: a packet's first byte, its remaining length, or its body. */
  #state: 'type' | 'length' | 'body' = 'type';
  #length = 0;
  #lengthBytes = 0;
  #bodyLeft = 0;

  constructor(socket: Duplex) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      if (!this.#scan(chunk)) {
        socket.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => this.destroy());
  }

  /** The device logged in: its packets may now be larger. */
  loggedIn(): void {
    this.#limit = MAX_PACKET_AFTER_LOGIN;
  }

  /** Follows packet boundaries through `chunk`; false once a packet is over the limit or malformed. */
  #scan(chunk: Buffer): boolean {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#state === 'body') {
        const skip = Math.min(this.#bodyLeft, chunk.length - offset);
        this.#bodyLeft -= skip;
        offset += skip;
        if (this.#bodyLeft === 0) this.#state = 'type';
        continue;
      }
      const byte = chunk[offset++] as number;
      if (this.#state === 'type') {
        this.#state = 'length';
        this.#length = 0;
        this.#lengthBytes = 0;
        continue;
      }
      this.#length += (byte & 0x7f) * 128 ** this.#lengthBytes;
      this.#lengthBytes++;
      if (1 + this.#lengthBytes + this.#length > this.#limit) return false;
      if (byte & 0x80) {
        if (this.#lengthBytes === MAX_LENGTH_BYTES) return false;
        continue;
      }
      this.#bodyLeft = this.#length;
      this.#state = this.#length === 0 ? 'type' : 'body';
    }
    return true;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#socket.write(chunk, encoding, callback);
  }

  /** What the broker wrote while corked (mqtt-packet writes each packet in pieces) goes out as one write. */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.#socket.write(Buffer.concat(chunks.map(({ chunk }) => chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(error);
  }
}
