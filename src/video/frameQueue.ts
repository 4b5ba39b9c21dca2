/**
 * Frames handed to the video writer while they are still being made (chained clips finish one at a time):
 * an async iterable that `writeVideo` consumes, fed with `push`, closed with `end`, or failed with `fail`
 * (the writer then stops, kills ffmpeg and removes its partial file).
 */
export class FrameQueue implements AsyncIterable<Uint8Array> {
  private frames: Uint8Array[] = [];
  private ended = false;
  private error: unknown;
  private wake: (() => void) | undefined;

  push(frames: readonly Uint8Array[]): void {
    this.frames.push(...frames);
    this.signal();
  }

  end(): void {
    this.ended = true;
    this.signal();
  }

  fail(error: unknown): void {
    this.error = error ?? new Error('frame queue failed');
    this.signal();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.error !== undefined) throw this.error;
      const next = this.frames.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
