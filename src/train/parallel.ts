/**
 * Data-parallel training on several cores.
 *
 * The wasm backend runs one thread per TensorFlow.js instance (its threaded build does not run in Node),
 * so to use N cores we run N instances: one per `worker_threads` worker. Each step:
 *
 * 1. the main thread splits the batch into N contiguous slices and sends worker i slice i;
 * 2. every worker reads the weights from one SharedArrayBuffer, computes the mean-loss gradient of its
 *    slice and writes it to its own shared gradient buffer;
 * 3. the workers meet at a barrier (Atomics.wait), then worker i updates shard i of the weights (a fixed
 *    1/N of the flat parameter vector): it sums the N gradients of its shard in worker order, weighted by
 *    slice size (which is exactly the gradient of the whole batch's mean loss), and applies the update rule
 *    (flat.ts) with the optimizer state it keeps for that shard;
 * 4. each worker replies with its slice's loss; when all have, the shared weights are the next step's.
 *
 * So the update runs on both cores instead of in the main thread between steps, and no weights or
 * gradients travel through messages. The sum's order is fixed, so a fixed N is deterministic; every
 * replica reads the same shared weights, so they are identical by construction. Each worker augments its
 * own slice and draws its dropout masks, from per-image streams (prepare.ts): the main thread only draws
 * the batch, and the result does not depend on the number of workers.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { BackendName } from '../backend.ts';
import { classCount, type NetworkConfig, type OptimizerConfig } from '../model/config.ts';
import type { OptimizerState } from './optimizer.ts';
import { maskBuffers, sliceMasks, type MaskArrays } from './dropout.ts';
import type { StepRandomness } from './prepare.ts';
import { paramCount, paramLayout, type ParamSlice } from './layout.ts';
import { ServingChannel, servingBuffers, type ServingBuffers } from './serving.ts';

/** Slots of the shared control block (an Int32Array). */
export const ARRIVED = 0; // workers that reached the barrier, over the pool's life
export const FAILED = 1; // the generation in which a worker failed: nobody updates in it
export const ABORT = 2; // set by the main thread when a worker is gone: stop waiting

export interface WorkerInit {
  net: NetworkConfig;
  backend: BackendName;
  /** This worker's number, 0..count−1. */
  index: number;
  count: number;
  /** Shared weights, all parameters concatenated in weightSpecs order. */
  params: SharedArrayBuffer;
  /** Every worker's gradient output, same layout. */
  grads: SharedArrayBuffer[];
  /** Int32 control block: ARRIVED, FAILED, ABORT. */
  control: SharedArrayBuffer;
  height: number;
  width: number;
  channels: number;
}

/**
 * The name under which a worker's optimizer state holds its shard: a worker's FlatOptimizer sees its shard
 * as one parameter, so its state is an ordinary OptimizerState, `slots[slot].shard`.
 */
export const SHARD = 'shard';

export type StepRequest =
  | {
      /** Gradients of the slice, the barrier, then the update of this worker's shard. */
      kind: 'train';
      images: Float32Array;
      labels: Uint8Array;
      /** This slice's dropout masks, when training with dropout (and not drawn by the worker: `random`). */
      masks?: MaskArrays;
      /** Augment the slice and draw its masks (prepareSlice); `first` is the slice's first image in the batch. */
      random?: StepRandomness;
      first: number;
      learningRate: number;
      /** Step number over the pool's life (1, 2, …): the barrier waits for generation × count arrivals. */
      generation: number;
      /** Each worker's share of the batch (n_i / n), to weight the gradients. */
      sliceWeights: number[];
    }
  | {
      kind: 'predict';
      images: Float32Array;
      count: number;
    }
  /** From now on, answer forward passes through this shared-memory channel (serving.ts), with the published weights. */
  | { kind: 'serve'; channel: ServingBuffers }
  | { kind: 'optimizer'; config: OptimizerConfig; state?: OptimizerState }
  | { kind: 'state' }
  /** What this worker's TensorFlow.js holds (for leak tests). */
  | { kind: 'memory' };

/** A worker's live tensors, backend data ids and wasm heap size (0 on other backends). */
export interface WorkerMemory {
  tensors: number;
  dataIds: number;
  heapBytes: number;
}

export interface StepReply {
  loss: number;
  correct: number;
  /** For 'predict': the predicted class of each image of the slice. */
  classes?: Uint8Array;
  /** For 'state': this worker's shard of the optimizer state. */
  state?: OptimizerState;
  /** For 'memory'. */
  memory?: WorkerMemory;
  error?: string;
}

export function defaultWorkerCount(): number {
  return availableParallelism();
}

/** Shard i of a vector of `total` values split between `count` workers: [start, end). */
export function shardOf(i: number, count: number, total: number): [number, number] {
  return [Math.round((i * total) / count), Math.round(((i + 1) * total) / count)];
}

export class GradientPool {
  private readonly shared: Float32Array;
  private readonly control: Int32Array;
  private readonly layout: ParamSlice[];
  private generation = 0;
  private optimizer: OptimizerConfig['type'] | undefined;
  /** Set when a step failed half-way: the barrier count is off, so the pool cannot go on. */
  private broken: Error | undefined;

  private constructor(
    private readonly net: NetworkConfig,
    private readonly workers: Worker[],
    paramsBuffer: SharedArrayBuffer,
    controlBuffer: SharedArrayBuffer,
    private readonly pixels: number,
  ) {
    this.shared = new Float32Array(paramsBuffer);
    this.control = new Int32Array(controlBuffer);
    this.layout = paramLayout(net);
  }

  /** Starts `count` workers, each with its own TensorFlow.js on `backend`, and waits until they are ready. */
  static async start(net: NetworkConfig, count: number, backend: BackendName): Promise<GradientPool> {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`worker count must be ≥ 1, got ${count}`);
    const total = paramCount(paramLayout(net));
    const paramsBuffer = new SharedArrayBuffer(total * 4);
    const gradBuffers = Array.from({ length: count }, () => new SharedArrayBuffer(total * 4));
    const controlBuffer = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
    const { height, width, channels } = net.input;
    const workers = gradBuffers.map((_, index) => {
      const init: WorkerInit = { net, backend, index, count, params: paramsBuffer, grads: gradBuffers, control: controlBuffer, height, width, channels };
      // A plain-JS entry that loads TypeScript itself, however the parent was started.
      return new Worker(new URL('./worker-entry.js', import.meta.url), { workerData: init, execArgv: [] });
    });
    const pool = new GradientPool(net, workers, paramsBuffer, controlBuffer, height * width * channels);
    for (const w of workers) {
      // A worker that is gone must not leave the others waiting at the barrier.
      w.on('exit', () => pool.abort());
      w.on('error', () => pool.abort());
    }
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

  /** Sets the workers' weights (in weightSpecs order) for the next step. */
  publish(flat: Float32Array): void {
    this.shared.set(flat);
  }

  /** A copy of the current weights, in weightSpecs order. */
  readWeights(): Float32Array {
    return this.shared.slice();
  }

  /**
   * The update rule the workers apply to their shards, fresh or continuing from `state` (a whole-network
   * state, as checkpoints store it). Call before the first `step`.
   */
  async useOptimizer(config: OptimizerConfig, state?: OptimizerState): Promise<void> {
    if (state !== undefined && state.type !== config.type) throw new Error(`optimizer state is for ${state.type}, not ${config.type}`);
    const slots = state === undefined ? undefined : this.flatSlots(state);
    await this.all((i) => {
      const [a, b] = shardOf(i, this.size, this.shared.length);
      const shard: OptimizerState | undefined = slots && {
        type: config.type,
        step: state!.step,
        slots: Object.fromEntries(Object.entries(slots).map(([s, v]) => [s, { [SHARD]: v.slice(a, b) }])),
      };
      return { kind: 'optimizer', config, state: shard };
    });
    this.optimizer = config.type;
  }

  /** The optimizer state of the whole network, gathered from the workers' shards (for checkpoints). */
  async optimizerState(): Promise<OptimizerState> {
    if (this.optimizer === undefined) throw new Error('no optimizer: call useOptimizer first');
    const replies = await this.all(() => ({ kind: 'state' }));
    const slots: OptimizerState['slots'] = {};
    for (const slot of Object.keys(replies[0].state!.slots)) {
      const flat = new Float32Array(this.shared.length);
      replies.forEach((r, i) => flat.set(r.state!.slots[slot][SHARD], shardOf(i, this.size, flat.length)[0]));
      slots[slot] = Object.fromEntries(this.layout.map((p) => [p.name, flat.slice(p.offset, p.offset + p.size)]));
    }
    return { type: this.optimizer, step: replies[0].state!.step, slots };
  }

  /**
   * One training step on `labels.length` images: every worker prepares its slice (with `random`: augments
   * it and draws its dropout masks, prepare.ts; else `masks` are the batch's), computes its gradients, then
   * updates its shard of the shared weights. Returns the batch's mean loss and correct predictions.
   */
  async step(
    images: Float32Array,
    labels: Uint8Array,
    learningRate: number,
    masks?: MaskArrays,
    random?: StepRandomness,
  ): Promise<{ loss: number; correct: number }> {
    if (this.optimizer === undefined) throw new Error('no optimizer: call useOptimizer first');
    const n = labels.length;
    const k = this.size;
    const bounds = Array.from({ length: k + 1 }, (_, i) => Math.round((i * n) / k));
    const sliceWeights = Array.from({ length: k }, (_, i) => (bounds[i + 1] - bounds[i]) / n);
    const generation = ++this.generation;
    const replies = await this.all((i) => {
      const [a, b] = [bounds[i], bounds[i + 1]];
      // Copies, so the slices can be transferred rather than cloned.
      const request: StepRequest = {
        kind: 'train',
        images: images.slice(a * this.pixels, b * this.pixels),
        labels: labels.slice(a, b),
        learningRate,
        generation,
        sliceWeights,
        first: a,
      };
      if (random) request.random = random;
      else if (masks) request.masks = sliceMasks(this.net, masks, a, b);
      return request;
    });
    let loss = 0;
    let correct = 0;
    replies.forEach((r, i) => {
      loss += sliceWeights[i] * r.loss;
      correct += r.correct;
    });
    return { loss, correct };
  }

  /** Predicted classes of `count` images, the slices classified in parallel with the published weights. */
  async predict(images: Float32Array, count: number): Promise<Uint8Array> {
    const k = this.size;
    const bounds = Array.from({ length: k + 1 }, (_, i) => Math.round((i * count) / k));
    const replies = await this.all((i) => ({
      kind: 'predict',
      images: images.slice(bounds[i] * this.pixels, bounds[i + 1] * this.pixels),
      count: bounds[i + 1] - bounds[i],
    }));
    const out = new Uint8Array(count);
    replies.forEach((r, i) => out.set(r.classes!, bounds[i]));
    return out;
  }

  /**
   * A shared-memory channel to this pool's one worker for serving (serving.ts): passes of up to `maxImages`
   * images with the weights published now, without a message each. The pool stays usable for messages.
   */
  async serve(maxImages: number): Promise<ServingChannel> {
    if (this.size !== 1) throw new Error(`serving channels are for a pool of one worker, this one has ${this.size}`);
    const channel = new ServingChannel(servingBuffers(maxImages, this.pixels, classCount(this.net)));
    this.workers[0].once('exit', () => channel.gone());
    await this.all(() => ({ kind: 'serve', channel: channel.buffers }));
    return channel;
  }

  /** Each worker's live tensors, data ids and heap size, between steps (leak tests watch them). */
  async memory(): Promise<WorkerMemory[]> {
    return (await this.all(() => ({ kind: 'memory' }))).map((r) => r.memory!);
  }

  async close(): Promise<void> {
    this.abort();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Sends each worker its request (transferring its buffers) and waits for every reply. */
  private async all(request: (i: number) => StepRequest): Promise<StepReply[]> {
    if (this.broken) throw this.broken;
    const requests = this.workers.map((_, i) => request(i));
    const replies = this.workers.map((w, i) => {
      const reply = once(w);
      w.postMessage(requests[i], transferables(requests[i]));
      return reply;
    });
    // Wait for every reply (settled, not just the first failure) so no reply is left for the next request.
    const settled = await Promise.allSettled(replies);
    const failure = settled.find((s) => s.status === 'rejected');
    if (failure) {
      const err = (failure as PromiseRejectedResult).reason as Error;
      if (requests[0].kind === 'train') this.broken = err; // the barrier count is off now
      throw err;
    }
    return settled.map((s) => (s as PromiseFulfilledResult<StepReply>).value);
  }

  private abort(): void {
    Atomics.store(this.control, ABORT, 1);
    Atomics.notify(this.control, ARRIVED);
  }

  /** A whole-network optimizer state as one flat array per slot (weightSpecs order), checked against the network. */
  private flatSlots(state: OptimizerState): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [slot, byName] of Object.entries(state.slots)) {
      const flat = new Float32Array(this.shared.length);
      for (const p of this.layout) {
        const values = byName[p.name];
        if (values === undefined || values.length !== p.size) throw new Error(`${state.type} state ${slot} for ${p.name} does not fit the network`);
        flat.set(values, p.offset);
      }
      out[slot] = flat;
    }
    return out;
  }
}

function transferables(r: StepRequest): ArrayBuffer[] {
  if (r.kind === 'train') return [r.images.buffer as ArrayBuffer, r.labels.buffer as ArrayBuffer, ...(r.masks ? maskBuffers(r.masks) : [])];
  if (r.kind === 'predict') return [r.images.buffer as ArrayBuffer];
  return [];
}

/** The next message from a worker, or its error. */
function once(worker: Worker): Promise<StepReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: StepReply) => {
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
