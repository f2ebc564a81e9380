// Upstream → client frames stay a byte stream (relayed as they arrive, compressed or not), but
// aigate must sometimes add frames of its own on that stream (the error event and close that
// answer a blocked message). A frame can only go between two frames, never inside one, so the
// headers are followed here, minimally: where each frame ends, whether a fragmented message is
// open, and the two things RFC 6455 forbids a server to send that a client might not catch.
// Linear in the bytes, constant memory (a header is at most 14 bytes).

export class FrameError extends Error {
  /** Where the bad frame's header starts in the chunk being followed; -1 when it began in an earlier one. */
  frameStart = -1;
}

const MAX_HEADER = 14;

export class DownstreamFrames {
  private readonly header = Buffer.alloc(MAX_HEADER);
  /** Header bytes collected so far for the next frame. */
  private have = 0;
  /** Payload bytes of the current frame still to pass. */
  private remaining = 0;
  /** A data frame without FIN was seen and its final continuation not yet (RFC 6455 §5.4). */
  fragmented = false;
  /** Complete data messages passed. */
  messages = 0;

  /** True between two frames: a frame of aigate's may be written now. */
  get atBoundary(): boolean {
    return this.have === 0 && this.remaining === 0;
  }

  /** Forgets a bad frame whose header was never relayed, so that aigate's close may follow what was. */
  dropFrame(): void {
    this.have = 0;
    this.remaining = 0;
  }

  /**
   * Follows `chunk` from its start. Returns how many bytes were followed: all of them, or with
   * `stopAtBoundary` only up to the first frame end within it. Throws FrameError for a masked
   * frame or a length over 2^63 (RFC 6455 §5.1, §5.2).
   */
  follow(chunk: Buffer, stopAtBoundary = false): number {
    let i = 0;
    let headerStart = -1;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0 && stopAtBoundary) return i;
        continue;
      }
      if (this.have === 0) headerStart = i;
      this.header[this.have++] = chunk[i++]!;
      try {
        const need = this.headerLength();
        if (need === 0 || this.have < need) continue;
        this.frameStarts();
      } catch (err) {
        if (err instanceof FrameError) err.frameStart = headerStart;
        throw err;
      }
      if (this.atBoundary && stopAtBoundary) return i;
    }
    return i;
  }

  /** Bytes the header has once its first two are known, else 0. */
  private headerLength(): number {
    if (this.have < 2) return 0;
    const b1 = this.header[1]!;
    if ((b1 & 0x80) !== 0) throw new FrameError('the upstream sent a masked frame (servers must not mask, RFC 6455 §5.1)');
    const len7 = b1 & 0x7f;
    return len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  }

  private frameStarts(): void {
    const h = this.header;
    const len7 = h[1]! & 0x7f;
    let length = len7;
    if (len7 === 126) length = h.readUInt16BE(2);
    else if (len7 === 127) {
      const high = h.readUInt32BE(2);
      if (high > 0x1fffff) throw new FrameError('the upstream sent a frame length over 2^53 (RFC 6455 §5.2)');
      length = high * 2 ** 32 + h.readUInt32BE(6);
    }
    const fin = (h[0]! & 0x80) !== 0;
    const opcode = h[0]! & 0x0f;
    if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
      this.fragmented = !fin;
      if (fin) this.messages++;
    }
    this.have = 0;
    this.remaining = length;
  }
}
