/**
 * Dynamic batching for /api/predict, as TF Serving batches: concurrent requests are gathered into one
 * forward pass, run once, and answered individually.
 *
 * - A pass starts on an idle runner as soon as `maxBatch` images are queued, or when the oldest queued
 *   request has waited `windowMs`. The window applies only while another pass is running, i.e. under load:
 *   on an idle server a request goes at once (with those read in the same turn of the event loop, one
 *   `setImmediate`), so a lone request is never delayed, and a request never waits more than the window.
 * - Passes run on `runners`: the main thread, or worker threads (workers.ts). While every runner is busy,
 *   requests queue; a runner that comes free takes up to maxBatch of them, by the same rule (so with one
 *   runner, the requests that arrived during a pass form the next batch).
 * - A single request's images are never split between passes; answers come back in request order.
 */
import type { Prediction } from './schema.ts';
import { answers } from './inference.ts';

/** Runs one forward pass: `count` images of `pixels` values each → softmax [count × classes]. */
export interface Runner {
  run(images: Float32Array[], count: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** What the predict route calls. */
export interface Predictor {
  predict(images: Float32Array[], ms: number[]): Promise<Prediction[]>;
  /** Worker threads running the passes (0: the main thread). */
  readonly workers: number;
  /** Forward passes run so far, and the images in them. */
  readonly passes: number;
  readonly images: number;
  close(): Promise<void>;
}

export interface BatcherOptions {
  /** How long a request may wait for others to join its pass, in ms (0: the same event-loop turn only). */
  windowMs?: number;
  /** Most images in one pass. */
  maxBatch?: number;
  /** Worker threads behind the runners, for /readyz (0 for the main thread). */
  workers?: number;
}

interface Job {
  images: Float32Array[];
  ms: number[];
  queued: number;
  resolve: (answers: Prediction[]) => void;
  reject: (err: unknown) => void;
}

export class PredictBatcher implements Predictor {
  /** Forward passes run so far (images / passes is the mean batch size). */
  passes = 0;
  images = 0;
  readonly workers: number;
  private readonly windowMs: number;
  private readonly maxBatch: number;
  private queue: Job[] = [];
  private queuedImages = 0;
  private readonly idle: Runner[];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** The timer is a setImmediate (window 0), not a window's setTimeout. */
  private immediate = false;
  private running = 0;
  private closed = false;

  constructor(
    private readonly runners: Runner[],
    options: BatcherOptions = {},
  ) {
    if (runners.length === 0) throw new RangeError('a batcher needs at least one runner');
    this.windowMs = options.windowMs ?? 0;
    this.maxBatch = options.maxBatch ?? 64;
    this.workers = options.workers ?? 0;
    this.idle = [...runners];
  }

  predict(images: Float32Array[], ms: number[]): Promise<Prediction[]> {
    if (this.closed) return Promise.reject(new Error('the predictor is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ images, ms, queued: performance.now(), resolve, reject });
      this.queuedImages += images.length;
      this.schedule();
    });
  }

  /** The window a queued request waits for others now: only while a pass is running (see above). */
  private get window(): number {
    return this.running > 0 ? this.windowMs : 0;
  }

  /** Starts what may start now on idle runners; for the rest, sets the timer of the oldest request's window. */
  private schedule(): void {
    if (this.idle.length === 0 || this.queue.length === 0) return;
    const window = this.window;
    const due = this.queue[0].queued + window - performance.now();
    if (this.queuedImages >= this.maxBatch || (window > 0 && due <= 0)) {
      this.flush();
      return;
    }
    if (window === 0) {
      // after this turn's I/O callbacks, so every request read so far joins (replacing a window's timer)
      if (this.immediate) return;
      this.clearTimer();
      this.immediate = true;
      this.timer = setImmediate(() => this.flush());
      return;
    }
    if (this.timer === undefined) this.timer = setTimeout(() => this.flush(true), due);
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
    this.immediate = false;
  }

  /**
   * Starts passes on idle runners: full batches, and any batch whose oldest request's window is over
   * (`fromTimer`: the timer of the oldest fired; the event loop's clock is coarser than performance.now()).
   */
  private flush(fromTimer = false): void {
    this.clearTimer();
    const now = performance.now() + (fromTimer ? 1 : 0.05);
    while (this.idle.length > 0 && this.queue.length > 0) {
      const full = this.queuedImages >= this.maxBatch;
      const window = this.window;
      if (!full && window > 0 && this.queue[0].queued + window > now) break;
      const group: Job[] = [];
      let count = 0;
      while (this.queue.length > 0 && (group.length === 0 || count + this.queue[0].images.length <= this.maxBatch)) {
        const job = this.queue.shift()!;
        count += job.images.length;
        group.push(job);
      }
      this.queuedImages -= count;
      void this.runGroup(this.idle.pop()!, group, count);
    }
    this.schedule();
  }

  private async runGroup(runner: Runner, group: Job[], count: number): Promise<void> {
    this.passes += 1;
    this.images += count;
    this.running += 1;
    const t0 = performance.now();
    let values: Float32Array;
    try {
      values = await runner.run(
        group.flatMap((j) => j.images),
        count,
      );
    } catch (err) {
      for (const job of group) job.reject(err);
      return;
    } finally {
      // The runner's next pass first, with what queued meanwhile (no extra turn of the event loop: those
      // requests are all here), so that it computes while this thread sends the answers of the last one.
      this.running -= 1;
      this.idle.push(runner);
      if (this.queue.length > 0) this.flush();
    }
    const share = (performance.now() - t0) / count;
    const all = answers(
      values,
      count,
      group.flatMap((j) => j.ms.map((m) => m + share + (t0 - j.queued))),
    );
    let k = 0;
    for (const job of group) {
      job.resolve(all.slice(k, k + job.images.length));
      k += job.images.length;
    }
  }

  /** Passes in flight (for draining). */
  get inFlight(): number {
    return this.running + this.queue.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 5));
    await Promise.all(this.runners.map((r) => r.close()));
  }
}
