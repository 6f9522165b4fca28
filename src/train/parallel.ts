/**
 * Data-parallel gradients on several cores.
 *
 * The wasm backend runs one thread per TensorFlow.js instance (its threaded build does not run in Node),
 * so to use N cores we run N instances: one per `worker_threads` worker. Each step the main thread
 * splits the batch into N contiguous slices, each worker computes the mean-loss gradient of its slice
 * against the current weights, and the main thread combines them in worker order (fixed order ⇒ a fixed N
 * is deterministic) weighted by slice size, which is exactly the gradient of the whole batch's mean loss.
 * Augmentation and dropout masks are decided in the main thread for the whole batch (see loop.ts) and
 * sliced with it, so they do not depend on the number of workers.
 * The weights live in one SharedArrayBuffer that every worker reads at the start of a step; the main
 * thread's update rule (flat.ts) rewrites them in place between steps, so all replicas are identical by
 * construction and no weights are copied through messages.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { BackendName } from '../backend.ts';
import { weightSpecs, type NetworkConfig } from '../model/config.ts';
import { maskBuffers, sliceMasks, type MaskArrays } from './dropout.ts';

export interface WorkerInit {
  net: NetworkConfig;
  backend: BackendName;
  /** Shared weights, all parameters concatenated in weightSpecs order. */
  params: SharedArrayBuffer;
  /** This worker's gradient output, same layout. */
  grads: SharedArrayBuffer;
  height: number;
  width: number;
  channels: number;
}

export interface StepRequest {
  /** 'gradients' (default): the slice's loss gradients; 'predict': the slice's predicted classes. */
  kind?: 'gradients' | 'predict';
  images: Float32Array;
  labels: Uint8Array;
  /** For 'gradients' with dropout: this slice's dropout masks. */
  masks?: MaskArrays;
}

export interface StepReply {
  loss: number;
  correct: number;
  /** For 'predict': the predicted class of each image of the slice. */
  classes?: Uint8Array;
  error?: string;
}

export interface ParallelStep {
  /** dLoss/dθ of the whole batch's mean loss, all parameters concatenated in weightSpecs order. */
  grads: Float32Array;
  /** Mean loss over the batch. */
  loss: number;
  /** Correct predictions in the batch. */
  correct: number;
}

export function defaultWorkerCount(): number {
  return availableParallelism();
}

export class GradientPool {
  /**
   * The weights in this thread's own memory: the update rule rewrites them, `publish` hands them to the
   * workers. (V8 runs loops over SharedArrayBuffer-backed arrays about 4x slower than over ordinary ones,
   * so the per-step arithmetic stays off shared memory; copying 1 MB in or out takes ~0.03 ms.)
   */
  readonly weights: Float32Array;
  private readonly shared: Float32Array;
  private readonly grads: Float32Array[];
  /** Each worker's gradients copied out of shared memory, then their weighted sum. */
  private readonly local: Float32Array[];
  private readonly summed: Float32Array;

  private constructor(
    private readonly net: NetworkConfig,
    private readonly workers: Worker[],
    paramsBuffer: SharedArrayBuffer,
    gradBuffers: SharedArrayBuffer[],
    private readonly pixels: number,
  ) {
    this.shared = new Float32Array(paramsBuffer);
    this.weights = new Float32Array(this.shared.length);
    this.grads = gradBuffers.map((b) => new Float32Array(b));
    this.local = gradBuffers.map(() => new Float32Array(this.shared.length));
    this.summed = new Float32Array(this.shared.length);
  }

  /** Starts `count` workers, each with its own TensorFlow.js on `backend`, and waits until they are ready. */
  static async start(net: NetworkConfig, count: number, backend: BackendName): Promise<GradientPool> {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`worker count must be ≥ 1, got ${count}`);
    const total = weightSpecs(net).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    const paramsBuffer = new SharedArrayBuffer(total * 4);
    const gradBuffers = Array.from({ length: count }, () => new SharedArrayBuffer(total * 4));
    const { height, width, channels } = net.input;
    const workers = gradBuffers.map((grads) => {
      const init: WorkerInit = { net, backend, params: paramsBuffer, grads, height, width, channels };
      // A plain-JS entry that loads TypeScript itself, however the parent was started.
      return new Worker(new URL('./worker-entry.js', import.meta.url), { workerData: init, execArgv: [] });
    });
    const pool = new GradientPool(net, workers, paramsBuffer, gradBuffers, height * width * channels);
    try {
      await Promise.all(workers.map((w) => once(w)));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Makes `weights` (after copying `flat` into it, if given; weightSpecs order) the workers' weights for the next step. */
  publish(flat?: Float32Array): void {
    if (flat) this.weights.set(flat);
    this.shared.set(this.weights);
  }

  /** Gradients of the mean loss over `labels.length` images, computed in slices on every worker. */
  async step(images: Float32Array, labels: Uint8Array, masks?: MaskArrays): Promise<ParallelStep> {
    const n = labels.length;
    const k = Math.min(this.workers.length, n);
    const bounds = Array.from({ length: k + 1 }, (_, i) => Math.round((i * n) / k));
    const replies = await Promise.all(
      Array.from({ length: k }, (_, i) => {
        const [a, b] = [bounds[i], bounds[i + 1]];
        // Copies, so the slices can be transferred rather than cloned.
        const request: StepRequest = { images: images.slice(a * this.pixels, b * this.pixels), labels: labels.slice(a, b) };
        if (masks) request.masks = sliceMasks(this.net, masks, a, b);
        const reply = once(this.workers[i]);
        const transfer = [request.images.buffer as ArrayBuffer, request.labels.buffer as ArrayBuffer, ...(request.masks ? maskBuffers(request.masks) : [])];
        this.workers[i].postMessage(request, transfer);
        return reply;
      }),
    );
    const TA = performance.now() + performance.timeOrigin;
    // Combine in worker order: Σ (n_i / n) · g_i is the gradient of the whole batch's mean loss.
    const out = this.summed;
    const weights = Array.from({ length: k }, (_, i) => (bounds[i + 1] - bounds[i]) / n);
    let loss = 0;
    let correct = 0;
    for (let i = 0; i < k; i++) {
      loss += weights[i] * replies[i].loss;
      correct += replies[i].correct;
    }
    if (k === 1) out.set(this.grads[0]);
    else {
      for (let i = 0; i < k; i++) this.local[i].set(this.grads[i]);
      combine(out, this.local.slice(0, k), weights);
    }
    (this as any).lastTrace = [TA, performance.now() + performance.timeOrigin, ...replies.map((r) => (r as any).recv)];
    return { grads: out, loss, correct };
  }

  /** Predicted classes of `count` images, the slices classified in parallel with the published weights. */
  async predict(images: Float32Array, count: number): Promise<Uint8Array> {
    const k = Math.min(this.workers.length, count);
    const bounds = Array.from({ length: k + 1 }, (_, i) => Math.round((i * count) / k));
    const replies = await Promise.all(
      Array.from({ length: k }, (_, i) => {
        const [a, b] = [bounds[i], bounds[i + 1]];
        const request: StepRequest = { kind: 'predict', images: images.slice(a * this.pixels, b * this.pixels), labels: new Uint8Array(b - a) };
        const reply = once(this.workers[i]);
        this.workers[i].postMessage(request, [request.images.buffer as ArrayBuffer]);
        return reply;
      }),
    );
    const out = new Uint8Array(count);
    replies.forEach((r, i) => out.set(r.classes!, bounds[i]));
    return out;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** out = Σ weights[i]·g[i], in worker order, in one pass (the usual 2 workers spelled out). */
function combine(out: Float32Array, g: Float32Array[], weights: number[]): void {
  if (g.length === 2) {
    const [g0, g1] = g;
    const [w0, w1] = weights;
    for (let j = 0; j < out.length; j++) out[j] = w0 * g0[j] + w1 * g1[j];
    return;
  }
  for (let j = 0; j < out.length; j++) {
    let sum = 0;
    for (let i = 0; i < g.length; i++) sum += weights[i] * g[i][j];
    out[j] = sum;
  }
}

/** The next message from a worker, or its error. */
function once(worker: Worker): Promise<StepReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: StepReply) => {
      (m as any).recv = performance.now() + performance.timeOrigin;
      cleanup();
      if (m.error !== undefined) reject(new Error(`training worker failed: ${m.error}`));
      else resolve(m);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`training worker exited with code ${code}`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
