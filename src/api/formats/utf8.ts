const CHUNK_BYTES = 64 * 1024;

/**
 * Text encoded as UTF-8 into chunks of 64 KiB, joined once at the end (never copied as they fill).
 * Large responses are built from many small strings: Node 20 encodes a small string quickly, but
 * took longer to measure and encode one ~330 kB string (a page of 1,000 jobs, for Content-Length
 * and the socket) than to build it.
 */
export class Utf8Writer {
  readonly #full: Buffer[] = [];
  #chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  #used = 0;
  #length = 0;

  write(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit.
    if (text.length * 3 > this.#chunk.length - this.#used) {
      this.#close();
      if (text.length * 3 > CHUNK_BYTES) {
        this.#keep(Buffer.from(text));
        return;
      }
      this.#chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      this.#used = 0;
    }
    this.#used += this.#chunk.write(text, this.#used);
  }

  bytes(): Buffer {
    this.#close();
    return this.#full.length === 1 ? (this.#full[0] as Buffer) : Buffer.concat(this.#full, this.#length);
  }

  #close(): void {
    if (this.#used > 0) this.#keep(this.#chunk.subarray(0, this.#used));
    this.#chunk = Buffer.alloc(0);
    this.#used = 0;
  }

  #keep(bytes: Buffer): void {
    this.#full.push(bytes);
    this.#length += bytes.length;
  }
}
