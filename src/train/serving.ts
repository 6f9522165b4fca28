/**
 * Serving a worker's forward passes through shared memory: `convlab serve`'s runners (serve/workers.ts).
 *
 * A GradientPool worker answers training and evaluation requests by message. For serving, where a pass is
 * small (a few images) and frequent (hundreds a second), each message costs more than it carries: a
 * structured clone each way, listeners added and removed, the batch copied twice. So a serving worker gets
 * one channel instead: a SharedArrayBuffer with room for the largest batch, its answer, and an Int32 state
 * that the two threads hand back and forth with Atomics (`Atomics.waitAsync` on both sides, so neither
 * event loop blocks and the worker still answers messages such as 'memory').
 *
 *   main thread                                  worker
 *   writes count + images, state = REQUEST  →   runs the pass, writes the probabilities, state = DONE
 *   reads the probabilities                 ←   (or state = FAILED with the error's text)
 *
 * One pass at a time per channel: the batcher never gives a runner a second batch before the first is back.
 */

/** Slots of the channel's Int32 state block. */
const STATE = 0;
const COUNT = 1;
const ERROR_BYTES = 2;
const SLOTS = 4;

/** Values of the STATE slot (0, as the buffer starts: idle). */
const REQUEST = 1;
const DONE = 2;
const FAILED = 3;
/** Set by the main thread when the worker is gone: a pass waiting for it fails instead of hanging. */
const GONE = 4;

/** Atomics.waitAsync (ES2024, in Node since 16), typed here: the project compiles against ES2022's lib. */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

/** Room for the text of a worker's error, bytes of UTF-8. */
const ERROR_ROOM = 1024;

/** What the worker is sent once, to serve through. */
export interface ServingBuffers {
  buffer: SharedArrayBuffer;
  /** Most images in one pass. */
  maxImages: number;
  /** Values per image (height × width × channels) and per answer (classes). */
  pixels: number;
  classes: number;
}

/** The views of a channel's buffer: [state | images | probabilities | error text]. */
function views(b: ServingBuffers) {
  const inputBytes = b.maxImages * b.pixels * 4;
  const outputBytes = b.maxImages * b.classes * 4;
  const base = SLOTS * 4;
  return {
    state: new Int32Array(b.buffer, 0, SLOTS),
    input: new Float32Array(b.buffer, base, b.maxImages * b.pixels),
    output: new Float32Array(b.buffer, base + inputBytes, b.maxImages * b.classes),
    error: new Uint8Array(b.buffer, base + inputBytes + outputBytes, ERROR_ROOM),
  };
}

export function servingBuffers(maxImages: number, pixels: number, classes: number): ServingBuffers {
  if (!Number.isInteger(maxImages) || maxImages < 1) throw new RangeError(`a serving channel needs room for ≥ 1 image, got ${maxImages}`);
  const bytes = SLOTS * 4 + maxImages * (pixels + classes) * 4 + ERROR_ROOM;
  return { buffer: new SharedArrayBuffer(bytes), maxImages, pixels, classes };
}

/** The main thread's end: one pass at a time. */
export class ServingChannel {
  private readonly v: ReturnType<typeof views>;
  private busy = false;

  constructor(readonly buffers: ServingBuffers) {
    this.v = views(buffers);
  }

  /** Softmax outputs [count × classes] of `images` (each `pixels` values), computed by the worker. */
  async run(images: Float32Array[], count: number): Promise<Float32Array> {
    const { state, input, output } = this.v;
    const { pixels, classes, maxImages } = this.buffers;
    if (this.busy) throw new Error('a serving channel runs one pass at a time');
    if (count > maxImages || images.length !== count)
      throw new RangeError(`a pass of ${count} images (${images.length} given) does not fit a channel of ${maxImages}`);
    if (Atomics.load(state, STATE) === GONE) throw new Error('the inference worker is gone');
    this.busy = true;
    try {
      for (let i = 0; i < count; i++) input.set(images[i], i * pixels);
      Atomics.store(state, COUNT, count);
      Atomics.store(state, STATE, REQUEST);
      Atomics.notify(state, STATE);
      for (;;) {
        const s = Atomics.load(state, STATE);
        if (s === DONE) return output.slice(0, count * classes);
        if (s === FAILED) throw new Error(`inference worker failed: ${this.errorText()}`);
        if (s === GONE) throw new Error('the inference worker is gone');
        const wait = waitAsync(state, STATE, s);
        if (wait.async) await wait.value;
      }
    } finally {
      this.busy = false;
    }
  }

  /** The worker exited: fail the pass in flight and every later one. */
  gone(): void {
    Atomics.store(this.v.state, STATE, GONE);
    Atomics.notify(this.v.state, STATE);
  }

  private errorText(): string {
    const n = Atomics.load(this.v.state, ERROR_BYTES);
    return new TextDecoder().decode(this.v.error.slice(0, n));
  }
}

/**
 * The worker's end: answers every pass the main thread asks for, for the worker's life, with `run`
 * (count images, flat → count × classes probabilities). Returns at once; the loop runs on the event loop.
 */
export function serveChannel(buffers: ServingBuffers, run: (images: Float32Array, count: number) => Float32Array): void {
  const { state, input, output, error } = views(buffers);
  const { pixels } = buffers;
  const loop = async () => {
    for (;;) {
      const s = Atomics.load(state, STATE);
      if (s === GONE) return;
      if (s === REQUEST) {
        let next = DONE;
        try {
          const count = Atomics.load(state, COUNT);
          output.set(run(input.subarray(0, count * pixels), count));
        } catch (err) {
          const text = new TextEncoder().encode((err as Error)?.message ?? String(err)).slice(0, ERROR_ROOM);
          error.set(text);
          Atomics.store(state, ERROR_BYTES, text.length);
          next = FAILED;
        }
        Atomics.store(state, STATE, next);
        Atomics.notify(state, STATE);
        continue;
      }
      const wait = waitAsync(state, STATE, s);
      if (wait.async) await wait.value;
    }
  };
  void loop();
}
