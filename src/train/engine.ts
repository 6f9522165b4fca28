/**
 * Where a training step runs. The loop (loop.ts) decides everything a step depends on — the batch, what
 * its augmentation and dropout masks are drawn from (prepare.ts), the learning rate — and hands it to a
 * StepEngine, which prepares the images, computes the gradients and applies the update:
 *
 *   InThreadEngine  in this thread: computeGradients on the weight tensors, then the flat update rule
 *                   (flat.ts) on a flat copy of the weights, from which new weight tensors are made (step.ts);
 *   WorkerEngine    on a GradientPool's worker threads, each computing its slice's gradients with the same
 *                   computeGradients and updating its shard of the shared weights with the same flat rule
 *                   (parallel.ts, worker.ts, flat.ts).
 *
 * Both keep their optimizer state in one shape, OptimizerState (optimizer.ts), which checkpoints save.
 * `withEngine` is the one place that starts workers, runs something with them and stops them.
 */
import type { BackendName } from '../backend.ts';
import { imageFloats, type ImageSet } from '../data/images.ts';
import { classCount, type NetworkConfig, type OptimizerConfig } from '../model/config.ts';
import type { Params } from '../model/cnn.ts';
import { classify } from '../eval/classify.ts';
import { evaluatePredictions, type Evaluation } from '../eval/metrics.ts';
import type { OptimizerState } from './optimizer.ts';
import { InThreadStep, type StepBatch, type StepResult } from './step.ts';
import { prepareSlice, type StepRandomness } from './prepare.ts';
import { GradientPool } from './parallel.ts';
import { assignFlat, flattenParams } from './layout.ts';

export type { StepBatch, StepResult } from './step.ts';

export interface StepEngine {
  /** Worker threads doing the work (0: this thread). */
  readonly workers: number;
  /**
   * Takes `params` as the weights and sets the update rule, fresh or continuing a checkpoint's `state`.
   * Call before the first step (again for another run). The in-thread engine trains `params` in place.
   */
  restore(params: Params, optimizer: OptimizerConfig, state?: OptimizerState): Promise<void>;
  /**
   * One optimisation step on the whole batch at `learningRate`. With `random`, the batch's images are
   * augmented and its dropout masks drawn first, per image (prepare.ts; `batch.masks` is then ignored):
   * where that happens is the engine's business, what comes out is not.
   */
  step(batch: StepBatch, learningRate: number, random?: StepRandomness): Promise<StepResult>;
  /** The predicted class of each of `count` images with the current weights. */
  predict(images: Float32Array, count: number): Promise<Uint8Array>;
  /** Writes the current weights into `params` (for checkpoints and the end of a run). */
  weights(params: Params): void;
  /** The optimizer's whole state, as checkpoints store it. */
  optimizerState(): Promise<OptimizerState>;
  /** Frees the optimizer state, and stops the workers if this engine started them. */
  close(): Promise<void>;
}

/** Every step in this thread, on the tensors of `params` (InThreadStep, step.ts). */
export class InThreadEngine implements StepEngine {
  readonly workers = 0;
  private params: Params | undefined;
  private inThread: InThreadStep | undefined;

  constructor(private readonly net: NetworkConfig) {}

  async restore(params: Params, config: OptimizerConfig, state?: OptimizerState): Promise<void> {
    this.params = params;
    this.inThread = new InThreadStep(this.net, params, config, state);
  }

  step(batch: StepBatch, learningRate: number, random?: StepRandomness): Promise<StepResult> {
    const masks = random ? prepareSlice(this.net, batch.images, batch.labels.length, 0, random) : batch.masks;
    return this.ready().inThread.step({ images: batch.images, labels: batch.labels, masks }, learningRate);
  }

  async predict(images: Float32Array, count: number): Promise<Uint8Array> {
    return classify(this.net, this.ready().params, images, count);
  }

  weights(params: Params): void {
    const own = this.ready().params;
    if (params !== own) for (const [name, v] of own) params.get(name)!.assign(v);
  }

  async optimizerState(): Promise<OptimizerState> {
    return this.ready().inThread.optimizerState();
  }

  async close(): Promise<void> {
    this.inThread = undefined;
  }

  private ready(): { params: Params; inThread: InThreadStep } {
    if (this.params === undefined || this.inThread === undefined) throw new Error('no weights: call restore first');
    return { params: this.params, inThread: this.inThread };
  }
}

/** Every step on a pool of worker threads; the weights live in the pool's shared memory. */
export class WorkerEngine implements StepEngine {
  /** `owned`: close() stops the pool's workers (false when the caller manages the pool). */
  constructor(
    private readonly net: NetworkConfig,
    readonly pool: GradientPool,
    private readonly owned = true,
  ) {}

  get workers(): number {
    return this.pool.size;
  }

  async restore(params: Params, config: OptimizerConfig, state?: OptimizerState): Promise<void> {
    this.pool.publish(flattenParams(this.net, params));
    await this.pool.useOptimizer(config, state);
  }

  step(batch: StepBatch, learningRate: number, random?: StepRandomness): Promise<StepResult> {
    return this.pool.step(batch.images, batch.labels, learningRate, random ? undefined : batch.masks, random);
  }

  predict(images: Float32Array, count: number): Promise<Uint8Array> {
    return this.pool.predict(images, count);
  }

  weights(params: Params): void {
    assignFlat(this.net, params, this.pool.readWeights());
  }

  optimizerState(): Promise<OptimizerState> {
    return this.pool.optimizerState();
  }

  async close(): Promise<void> {
    if (this.owned) await this.pool.close();
  }
}

export interface EngineOptions {
  /** Worker threads (0: every step in this thread). */
  workers: number;
  /** The backend each worker loads (the main thread's is already set). */
  backend: BackendName;
}

/** An engine for `net`: `workers` worker threads on `backend`, or this thread when `workers` is 0. Close it. */
export async function openEngine(net: NetworkConfig, options: EngineOptions): Promise<StepEngine> {
  return options.workers > 0 ? new WorkerEngine(net, await GradientPool.start(net, options.workers, options.backend)) : new InThreadEngine(net);
}

/** Start an engine, run `use` with it, close it (whatever `use` does). */
export async function withEngine<T>(net: NetworkConfig, options: EngineOptions, use: (engine: StepEngine) => Promise<T>): Promise<T> {
  const engine = await openEngine(net, options);
  try {
    return await use(engine);
  } finally {
    await engine.close();
  }
}

/** Images per request in `evaluateOn`: a byte set is converted to floats this many at a time. */
export const EVALUATE_CHUNK = 2000;

/** Classifies every image of `data` (floats or bytes) on `engine` and scores the predictions. */
export async function evaluateOn(engine: StepEngine, net: NetworkConfig, data: ImageSet): Promise<Evaluation> {
  const predicted = new Uint8Array(data.count);
  for (let start = 0; start < data.count; start += EVALUATE_CHUNK) {
    const n = Math.min(EVALUATE_CHUNK, data.count - start);
    predicted.set(await engine.predict(imageFloats(data, start, n), n), start);
  }
  return evaluatePredictions(predicted, data.labels, classCount(net));
}
